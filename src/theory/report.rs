//! How `duel theory` reports the checks: a verdict per claim with its numbers and tolerance,
//! and the plots.

use super::{
    Density1d, Equilibrium, OptimalD, SUPPORT_DENSITY, Saturation, TheoryOptions, VALUE_SAMPLES,
    equilibrium_check, optimal_discriminator_check, saturation_check, tolerance,
};
use crate::backend::Backend;
use anyhow::Result;

/// The plot of the optimal-D check: D, D*, p_data and p_g over the grid.
pub fn write_optimal_d_plot(path: &std::path::Path, r: &OptimalD) -> Result<()> {
    let series = |v: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
        (0..r.grid.len()).map(|i| (r.grid[i], v(i))).collect()
    };
    let (d, d_star) = (series(&|i| r.d[i]), series(&|i| r.d_star[i]));
    let p_data = series(&|i| r.p_data.pdf(r.grid[i]));
    let p_g = series(&|i| r.p_g.pdf(r.grid[i]));
    exact_curves_plot(
        path,
        "optimal discriminator: trained D vs pdata/(pdata+pg)",
        &[
            ("trained D(x)", &d),
            ("pdata/(pdata+pg)", &d_star),
            ("pdata(x)", &p_data),
            ("pg(x)", &p_g),
        ],
    )
}

/// The plot of the equilibrium check: D against 1/2.
pub fn write_equilibrium_plot(path: &std::path::Path, r: &Equilibrium) -> Result<()> {
    let xs = &r.grid;
    let d: Vec<(f64, f64)> = xs.iter().zip(&r.d).map(|(&x, &d)| (x, d)).collect();
    let half: Vec<(f64, f64)> = xs.iter().map(|&x| (x, 0.5)).collect();
    let pdf = Density1d::gaussian(0.5, 1.0);
    let p: Vec<(f64, f64)> = xs.iter().map(|&x| (x, pdf.pdf(x))).collect();
    exact_curves_plot(
        path,
        "equilibrium: pg = pdata, trained D vs 1/2",
        &[
            ("trained D(x)", &d),
            ("1/2", &half),
            ("pdata(x) = pg(x)", &p),
        ],
    )
}

/// One 900×500 panel of exact curves over x (no smoothing).
fn exact_curves_plot(
    path: &std::path::Path,
    title: &str,
    series: &[crate::output::Series],
) -> Result<()> {
    let panel = crate::output::Panel {
        x_label: "x",
        smooth: false,
        ..crate::output::Panel::new(title, "D(x), density", series)
    };
    crate::output::write_panels_png(path, &[panel], 1, (900, 500))
}

/// One check's outcome as printed by `duel theory`.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub title: String,
    pub lines: Vec<String>,
    pub passed: bool,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.title)?;
        for l in &self.lines {
            writeln!(f, "    {l}")?;
        }
        write!(f, "    {}", if self.passed { "PASS" } else { "FAIL" })
    }
}

impl OptimalD {
    /// The verdicts of Proposition 1 and Theorem 1.
    pub fn verdicts(&self, plot: Option<&std::path::Path>) -> [Verdict; 2] {
        let (g_mean, g_std) = (self.p_g.parts[0].1, self.p_g.parts[0].2);
        let mut lines = vec![
            format!("p_data = {}", self.p_data),
            format!(
                "p_g = {} (G(z) = {g_mean} + {g_std}·z, z ~ N(0, 1))",
                self.p_g
            ),
            format!(
                "|D − D*| on {} points over [{}, {}]: max {:.4} where (p_data + p_g)/2 ≥ {} \
                 (tolerance {}), mean {:.4} under (p_data + p_g)/2 (tolerance {})",
                self.grid.len(),
                self.grid[0],
                self.grid[self.grid.len() - 1],
                self.max_abs_error,
                SUPPORT_DENSITY,
                tolerance::OPTIMAL_D_MAX,
                self.mean_abs_error,
                tolerance::OPTIMAL_D_MEAN
            ),
        ];
        if let Some(p) = plot {
            lines.push(format!("plot of D, D*, p_data and p_g: {}", p.display()));
        }
        let optimal = Verdict {
            title:
                "optimal discriminator (Proposition 1): D*(x) = p_data(x) / (p_data(x) + p_g(x))"
                    .into(),
            lines,
            passed: self.optimal_d_passed(),
        };
        let value = Verdict {
            title: "value at the optimum (Theorem 1): V(D*, G) = −log 4 + 2·JSD(p_data ‖ p_g)"
                .into(),
            lines: vec![
                format!(
                    "JSD(p_data ‖ p_g) = {:.4} nats by numerical integration, so −log 4 + 2·JSD = {:.4}",
                    self.jsd, self.value_closed_form
                ),
                format!(
                    "V(D, G) of the trained D, Monte Carlo over {VALUE_SAMPLES} fresh samples of \
                     each: {:.4} (|difference| {:.4}, tolerance {})",
                    self.value_trained,
                    (self.value_trained - self.value_closed_form).abs(),
                    tolerance::VALUE
                ),
                format!(
                    "V(D*, G) on the same samples: {:.4} (Monte Carlo error alone)",
                    self.value_optimal_mc
                ),
            ],
            passed: self.value_passed(),
        };
        [optimal, value]
    }
}

impl Equilibrium {
    pub fn verdict(&self, plot: Option<&std::path::Path>) -> Verdict {
        let mut lines = vec![
            "p_data = p_g = N(0.5, 1²); each update sees 2 real samples per sample of G".into(),
            format!(
                "|D − 1/2| on {} points over [{}, {}]: max {:.4} where p_data ≥ {} (tolerance {}), \
                 mean {:.4} under p_data (tolerance {})",
                self.grid.len(),
                self.grid[0],
                self.grid[self.grid.len() - 1],
                self.max_deviation,
                SUPPORT_DENSITY,
                tolerance::EQUILIBRIUM_MAX,
                self.mean_deviation,
                tolerance::EQUILIBRIUM_MEAN
            ),
            format!("V(D, G) = {:.4} (−log 4 = {:.4})", self.value, -4f64.ln()),
        ];
        if let Some(p) = plot {
            lines.push(format!("plot: {}", p.display()));
        }
        Verdict {
            title: "equilibrium: when p_g = p_data, D* = 1/2 everywhere".into(),
            lines,
            passed: self.passed(),
        }
    }
}

impl Saturation {
    pub fn verdict(&self) -> Verdict {
        let mut lines = vec![
            "p_data = N(2, 0.5²), p_g = N(−2, 0.5²); D trains, G stays; gradient norms reach G's \
             parameters through D"
                .to_string(),
            format!(
                "{:>9}  {:>12}  {:>20}  {:>17}  {:>9}",
                "D updates", "mean D(G(z))", "‖∇G‖ log(1−D(G(z)))", "‖∇G‖ −log D(G(z))", "ratio"
            ),
        ];
        for r in &self.rows {
            lines.push(format!(
                "{:>9}  {:>12.3e}  {:>20.3e}  {:>17.3e}  {:>9.1}",
                r.d_steps,
                r.d_fake,
                r.saturating,
                r.non_saturating,
                r.ratio()
            ));
        }
        let worst = self
            .rows
            .iter()
            .map(|r| r.identity_error)
            .fold(0.0, f64::max);
        lines.push(format!(
            "once D is confident (mean D(G(z)) ≤ {}) the saturating loss passes G {:.0}× less \
             gradient (tolerance ≥ {}×); undecided, the two agree within 4× ({:.2}×)",
            tolerance::CONFIDENT_D,
            self.last().ratio(),
            tolerance::SATURATION_RATIO,
            self.first().ratio()
        ));
        lines.push(format!(
            "per sample, ∂sat/∂x = ∂ns/∂x · D/(1 − D) to {worst:.1e} (tolerance {})",
            tolerance::IDENTITY
        ));
        Verdict {
            title:
                "saturation (§3): log(1 − D(G(z))) vanishes when D rejects G; −log D(G(z)) does not"
                    .into(),
            lines,
            passed: self.passed(),
        }
    }
}

/// Which checks `run` performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Proposition 1 and Theorem 1 (one trained D serves both).
    OptimalD,
    Equilibrium,
    Saturation,
    /// Critics with clipping, gradient penalty and spectral norm estimate W1.
    Wasserstein,
    /// WGAN's Figure 2: the saturated D's gradient vanishes, the critic's does not.
    WganFigure2,
    /// Spectral norm's σ against an SVD, and an SN critic's Lipschitz constant.
    SpectralNorm,
    /// The gradient penalty's and R1's gradients against finite differences.
    PenaltyGradient,
}

/// Runs `checks` in order, writing plots into `out` when given, and hands each verdict to
/// `report` as soon as it is known.
pub fn run(
    be: &mut dyn Backend,
    opts: &TheoryOptions,
    checks: &[Check],
    out: Option<&std::path::Path>,
    report: &mut dyn FnMut(&Verdict),
) -> Result<Vec<Verdict>> {
    let mut all = Vec::new();
    for check in checks {
        let verdicts = match check {
            Check::OptimalD => {
                let r = optimal_discriminator_check(be, opts)?;
                let plot = out.map(|d| d.join("optimal_d.png"));
                if let Some(p) = &plot {
                    write_optimal_d_plot(p, &r)?;
                }
                r.verdicts(plot.as_deref()).to_vec()
            }
            Check::Equilibrium => {
                let r = equilibrium_check(be, opts)?;
                let plot = out.map(|d| d.join("equilibrium.png"));
                if let Some(p) = &plot {
                    write_equilibrium_plot(p, &r)?;
                }
                vec![r.verdict(plot.as_deref())]
            }
            Check::Saturation => vec![saturation_check(be, opts)?.verdict()],
            Check::Wasserstein => {
                let o = super::critic_options(opts);
                vec![super::wasserstein::w1_check(be, &o)?.verdict(&o)]
            }
            Check::WganFigure2 => {
                let r = super::wasserstein::figure2_check(be, &super::critic_options(opts))?;
                let plot = out.map(|d| d.join("wgan_figure2.png"));
                if let Some(p) = &plot {
                    super::wasserstein::write_figure2_plot(p, &r)?;
                }
                vec![r.verdict(plot.as_deref())]
            }
            Check::SpectralNorm => {
                let o = super::critic_options(opts);
                super::spectral::spectral_norm_check(be, &o)?.verdicts()
            }
            Check::PenaltyGradient => super::penalty_fd::penalty_gradient_check(be, opts.seed)?
                .iter()
                .map(|r| r.verdict())
                .collect(),
        };
        for v in verdicts {
            report(&v);
            all.push(v);
        }
    }
    Ok(all)
}
