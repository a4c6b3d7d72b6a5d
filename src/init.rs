//! How a run's networks start: each layer's default (PyTorch's: W and b uniform in
//! ±1/√fan_in), or every weight drawn from U(−r, r) or N(0, s²) with the biases at 0 as the paper's
//! pylearn2 code does (`irange`, `init_bias` 0); and optionally G's output bias set from the
//! training data's pixel marginals (pylearn2's `init_sigmoid_bias_from_marginals`).

use crate::backend::Activation;
use crate::config::TrainConfig;
use crate::data::dataset::HostData;
use crate::gan::GanConfig;
use crate::layers::Layer;
use crate::model::BuiltNet;
pub use crate::weight_init::{OutputBias, WeightInit};
use anyhow::{Result, bail};

/// Where G's and D's initial draws come from: their offsets in the INIT random stream (`Gan::new`
/// draws from the same ones when given no parameters).
pub const G_STREAM: u64 = 0;
pub const D_STREAM: u64 = 1 << 40;

/// pylearn2's clip of a marginal before its logit (`init_sigmoid_bias_from_array`, 2014).
pub const MARGINAL_CLIP: f64 = 1e-7;

/// The bias b with act(b) = each value's mean over `pixels` ([n, len] bytes, 0..255 mapping to
/// the output's range): logit(m) for a sigmoid, atanh(2m − 1) = logit(m)/2 for tanh, m the mean
/// in [0, 1] clipped to [1e-7, 1 − 1e-7].
pub fn marginal_bias(pixels: &[u8], len: usize, act: Activation) -> Result<Vec<f32>> {
    let half = match act {
        Activation::Sigmoid => false,
        Activation::Tanh => true,
        other => bail!(
            "--g-output-bias marginals needs a generator ending in sigmoid or tanh, not {}",
            other.describe()
        ),
    };
    let n = pixels.len() / len.max(1);
    if n == 0 || pixels.len() != n * len {
        bail!("--g-output-bias marginals: no training images to take the marginals from");
    }
    let mut sum = vec![0u64; len];
    for row in pixels.chunks_exact(len) {
        for (s, &b) in sum.iter_mut().zip(row) {
            *s += b as u64;
        }
    }
    Ok(sum
        .iter()
        .map(|&s| {
            let m = (s as f64 / (255.0 * n as f64)).clamp(MARGINAL_CLIP, 1.0 - MARGINAL_CLIP);
            let logit = (m / (1.0 - m)).ln();
            (if half { logit / 2.0 } else { logit }) as f32
        })
        .collect())
}

/// The run's initial parameters of G and D (flat buffers, as `Gan::new` takes them) for the
/// networks `gan.build()` made.
pub fn initial_params(
    cfg: &TrainConfig,
    gan: &GanConfig,
    (g_net, d_net): (&BuiltNet, &BuiltNet),
    data: &HostData,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut g = g_net.init_params_with(gan.seed, G_STREAM, |p| cfg.init_g.for_param(p));
    let d = d_net.init_params_with(gan.seed, D_STREAM, |p| cfg.init_d.for_param(p));
    if cfg.g_output_bias == OutputBias::Marginals {
        let HostData::Images { train, .. } = data else {
            bail!(
                "--g-output-bias marginals applies to image datasets, not {}",
                cfg.dataset
            );
        };
        let act = match gan.g.layers.last() {
            Some(Layer::Act(a)) => *a,
            _ => Activation::Identity,
        };
        let bias = marginal_bias(&train.pixels, train.image_len(), act)?;
        let last = g_net
            .param_tensors()
            .last()
            .filter(|t| t.key.ends_with(".bias"));
        match last {
            Some(t) if t.len == bias.len() => g[t.offset..t.offset + t.len].copy_from_slice(&bias),
            _ => bail!(
                "--g-output-bias marginals: the generator's last tensor is not its output bias"
            ),
        }
    }
    Ok((g, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use crate::data::ImageSet;

    #[test]
    fn options_parse_print_and_refuse_nonsense() {
        for s in ["default", "uniform:0.05", "normal:0.02"] {
            assert_eq!(s.parse::<WeightInit>().unwrap().to_string(), s);
        }
        assert_eq!("uniform:0.005".parse(), Ok(WeightInit::Uniform(0.005)));
        for bad in [
            "uniform",
            "uniform:-1",
            "normal:x",
            "xavier:1",
            "uniform:inf",
        ] {
            let e = bad.parse::<WeightInit>().unwrap_err();
            assert!(e.contains(bad.split(':').next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn marginal_bias_is_the_clipped_logit_of_each_pixels_mean() {
        // Three images of four pixels: means 0, 1, 0.5 and 85/255·… of the bytes.
        let px = [0u8, 255, 255, 0, 0, 255, 0, 255, 0, 255, 255, 0];
        let b = marginal_bias(&px, 4, Activation::Sigmoid).unwrap();
        let logit = |m: f64| (m / (1.0 - m)).ln() as f32;
        assert_eq!(b[0], logit(1e-7), "an always-black pixel clips to 1e-7");
        assert_eq!(
            b[1],
            logit(1.0 - 1e-7),
            "an always-white pixel clips to 1 − 1e-7"
        );
        assert_eq!(b[2], logit(2.0 / 3.0));
        assert_eq!(b[3], logit(1.0 / 3.0));
        assert!((b[0] + 16.118).abs() < 1e-3, "{}", b[0]);
        let t = marginal_bias(&px, 4, Activation::Tanh).unwrap();
        assert!(((t[2] as f64).tanh() - (2.0 * 2.0 / 3.0 - 1.0)).abs() < 1e-6);
        assert!(marginal_bias(&px, 4, Activation::Relu).is_err());
    }

    #[test]
    fn the_paper_preset_starts_as_pylearn2_does() {
        let cfg = TrainConfig::preset(Preset::Paper, "mnist");
        let gan = cfg.gan(784, Some((1, 28, 28))).unwrap();
        // 64 images: pixel i of image j is (i + j) mod 256, so each pixel's mean is known.
        let pixels: Vec<u8> = (0..64 * 784)
            .map(|k| ((k % 784 + k / 784) % 256) as u8)
            .collect();
        let data = HostData::Images {
            train: ImageSet::unlabelled(64, 1, 28, 28, pixels.clone()),
            heldout: None,
        };
        let (g_net, d_net) = gan.build().unwrap();
        let (g, d) = initial_params(&cfg, &gan, (&g_net, &d_net), &data).unwrap();
        let want_bias = marginal_bias(&pixels, 784, Activation::Sigmoid).unwrap();
        for (net, values, r) in [(&g_net, &g, 0.05f32), (&d_net, &d, 0.005)] {
            let tensors = net.param_tensors();
            for (i, t) in tensors.iter().enumerate() {
                let v = &values[t.offset..t.offset + t.len];
                if t.key.ends_with(".weight") {
                    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
                    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
                    let var =
                        v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
                    // U(−r, r): all inside, reaching near the bound, variance r²/3.
                    assert!(
                        max <= r && max > 0.99 * r,
                        "{}: max |w| {max}, r {r}",
                        t.key
                    );
                    assert!(mean.abs() < 0.01 * r as f64, "{}: mean {mean}", t.key);
                    let want = (r as f64).powi(2) / 3.0;
                    assert!((var / want - 1.0).abs() < 0.05, "{}: var {var}", t.key);
                } else if std::ptr::eq(net, &g_net) && i == tensors.len() - 1 {
                    assert_eq!(v, &want_bias[..], "G's output bias from the marginals");
                } else {
                    assert!(v.iter().all(|&x| x == 0.0), "{}: biases start at 0", t.key);
                }
            }
        }
    }

    #[test]
    fn default_init_is_what_gan_new_draws() {
        let cfg = TrainConfig::preset(Preset::Mlp, "mnist");
        let gan = cfg.gan(784, Some((1, 28, 28))).unwrap();
        let data = HostData::Images {
            train: ImageSet::unlabelled(1, 1, 28, 28, vec![0; 784]),
            heldout: None,
        };
        let (g_net, d_net) = gan.build().unwrap();
        let (g, d) = initial_params(&cfg, &gan, (&g_net, &d_net), &data).unwrap();
        assert_eq!(g, g_net.init_params(gan.seed, 0));
        assert_eq!(d, d_net.init_params(gan.seed, 1 << 40));
    }
}
