//! The Parzen-window kernels on the GPU against their CPU twins on ragged shapes, and the whole
//! estimate against closed-form answers.

mod common;

use common::{assert_close, cpu, data, gpu};
use duel::Backend;
use duel::kernels::parzen::row_sum_squares;
use duel::kernels::parzen::{GaussianMixture, parzen_log_density};
use duel::metrics::parzen::{ParzenWindow, paper_sigmas, parzen_evaluate};

fn upload(be: &mut dyn Backend, values: &[f32]) -> duel::Tensor {
    let t = be.alloc(values.len(), "test input").unwrap();
    be.write(t, values);
    t
}

/// (x·μ, ‖x‖², ‖μ‖²) computed on the host in f64.
fn host_terms(x: &[f32], mu: &[f32], dim: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let sq = |v: &[f32]| -> Vec<f32> {
        v.chunks(dim)
            .map(|r| r.iter().map(|&a| a as f64 * a as f64).sum::<f64>() as f32)
            .collect()
    };
    let mut dot = Vec::new();
    for xr in x.chunks(dim) {
        for mr in mu.chunks(dim) {
            dot.push(
                xr.iter()
                    .zip(mr)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum::<f64>() as f32,
            );
        }
    }
    (dot, sq(x), sq(mu))
}

#[test]
fn parzen_kernels_match_their_cpu_twins_on_ragged_shapes() {
    let shapes = [
        (1, 1, 1),
        (3, 255, 7),
        (65, 257, 63),
        (127, 3, 2),
        (100, 1000, 784),
    ];
    let (mut g, mut c) = (gpu(), cpu());
    for (i, &(rows, n, dim)) in shapes.iter().enumerate() {
        let x = data(100 + i as u64, rows * dim, 0.0, 1.0);
        let mu = data(200 + i as u64, n * dim, 0.0, 1.0);
        let (dot, x_sq, mu_sq) = host_terms(&x, &mu, dim);
        let run = |be: &mut dyn Backend| {
            let (xt, dt, xs, ms) = (
                upload(be, &x),
                upload(be, &dot),
                upload(be, &x_sq),
                upload(be, &mu_sq),
            );
            let norms = be.alloc(rows, "norms").unwrap();
            row_sum_squares(be, norms, xt, rows, dim);
            let mut out = be.read(norms).unwrap();
            for sigma in [0.1f32, 0.35, 1.0] {
                let ll = be.alloc(rows, "log density").unwrap();
                let window = GaussianMixture { n, dim, sigma };
                parzen_log_density(be, ll, dt, xs, ms, rows, window);
                out.extend(be.read(ll).unwrap());
            }
            out
        };
        let (got, want) = (run(&mut g), run(&mut c));
        let what = format!("row_sum_squares + parzen_log_density rows={rows} n={n} dim={dim}");
        assert_close(&what, &got, &want, 1e-3, 1e-5);
        assert_close(
            &format!("{what}: norms against the host"),
            &got[..rows],
            &x_sq,
            1e-3,
            1e-5,
        );
    }
}

/// log (1/N) Σ_j N(x; μ_j, σ²I) in f64, by logsumexp.
fn closed_form(x: &[f64], centres: &[Vec<f64>], sigma: f64) -> f64 {
    let d = x.len() as f64;
    let e: Vec<f64> = centres
        .iter()
        .map(|m| {
            let d2: f64 = x.iter().zip(m).map(|(a, b)| (a - b).powi(2)).sum();
            -d2 / (2.0 * sigma * sigma)
        })
        .collect();
    let max = e.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + e.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    lse - (centres.len() as f64).ln() - 0.5 * d * (std::f64::consts::TAU * sigma * sigma).ln()
}

#[test]
fn log_density_matches_the_closed_form_on_both_backends() {
    let centres = vec![vec![0.0, 0.0, 0.0], vec![2.0, 0.0, 0.0]];
    // On a centre, between the two, off-axis, and so far away that exp() alone underflows.
    let points = [
        vec![0.0, 0.0, 0.0],
        vec![1.0, 0.0, 0.0],
        vec![1.0, 1.0, 1.0],
        vec![30.0, 0.0, 0.0],
    ];
    let sigmas = [0.1f32, 0.5, 1.0];
    let flat = |v: &[Vec<f64>]| -> Vec<f32> { v.iter().flatten().map(|&a| a as f32).collect() };
    for be in [&mut gpu() as &mut dyn Backend, &mut cpu()] {
        let window = ParzenWindow::new(be, &flat(&centres), 3).unwrap();
        let got = window.log_density(be, &flat(&points), &sigmas).unwrap();
        for (s, &sigma) in sigmas.iter().enumerate() {
            let want: Vec<f32> = points
                .iter()
                .map(|p| closed_form(p, &centres, sigma as f64) as f32)
                .collect();
            assert!(
                want[3] < -300.0 && want[3].is_finite(),
                "e^-392 and less underflow f32"
            );
            assert_close(
                &format!("{} σ={sigma}", be.name()),
                &got[s],
                &want,
                1e-3,
                1e-5,
            );
        }
    }
}

#[test]
fn windows_agree_across_backends_on_ragged_chunks() {
    // 1,500 centres of 65 values and 301 points in chunks of 64 rows (the last one ragged): the
    // dot products come from the matmul kernel.
    let (n, dim, rows) = (1500, 65, 301);
    let centres = data(7, n * dim, 0.0, 1.0);
    let points = data(8, rows * dim, 0.0, 1.0);
    let sigmas = paper_sigmas();
    let mut results = Vec::new();
    for be in [&mut gpu() as &mut dyn Backend, &mut cpu()] {
        let mut w = ParzenWindow::new(be, &centres, dim).unwrap();
        w.block_words = 64 * n;
        results.push(w.log_density(be, &points, &sigmas).unwrap().concat());
    }
    assert_close("Parzen GPU vs CPU", &results[0], &results[1], 1e-2, 1e-4);
    // Chunking changes nothing.
    let mut be = cpu();
    let w = ParzenWindow::new(&mut be, &centres, dim).unwrap();
    let whole = w.log_density(&mut be, &points, &sigmas).unwrap().concat();
    assert_close("one chunk vs five", &whole, &results[1], 1e-4, 1e-6);
}

#[test]
fn the_procedure_picks_sigma_on_validation_and_scores_the_test_set() {
    let dim = 20;
    let centres = data(11, 200 * dim, 0.0, 1.0);
    // Validation points that are centres: the narrowest window wins, and each log density is
    // the self term, −log N − (d/2)·log(2π·0.01), the others being e^-100 or smaller.
    let on_centres = centres[..50 * dim].to_vec();
    // Points 3 away in every coordinate: the widest window wins.
    let far: Vec<f32> = on_centres.iter().map(|v| v + 3.0).collect();
    for be in [&mut gpu() as &mut dyn Backend, &mut cpu()] {
        let r =
            parzen_evaluate(be, &centres, &on_centres, &on_centres, dim, &paper_sigmas()).unwrap();
        assert_eq!(r.search.len(), 10);
        assert!(
            (r.sigma - 0.1).abs() < 1e-7,
            "{}: chose σ = {}",
            be.name(),
            r.sigma
        );
        let want = -(200f64).ln() - 0.5 * dim as f64 * (std::f64::consts::TAU * 0.01).ln();
        assert!(
            (r.test_mean - want).abs() < 1e-3 && r.test_se < 1e-3,
            "{}: {} ± {}, want {want}",
            be.name(),
            r.test_mean,
            r.test_se
        );
        let r = parzen_evaluate(be, &centres, &far, &on_centres, dim, &paper_sigmas()).unwrap();
        assert!(
            (r.sigma - 1.0).abs() < 1e-6,
            "{}: chose σ = {}",
            be.name(),
            r.sigma
        );
        assert_eq!((r.valid, r.test, r.centres), (50, 50, 200));
    }
}
