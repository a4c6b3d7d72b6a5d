//! What a log step reports for an objective: the columns of `metrics.csv` and the labels of
//! the progress line, from the step's statistics.

use super::Stats;
use crate::kernels::penalty::PenaltyKind;
use crate::objective::{Loss, Objective};

/// One logged quantity: its metrics.csv column, its label on the progress line and plot.
#[derive(Clone, Debug, PartialEq)]
pub struct LogField {
    pub column: &'static str,
    pub label: &'static str,
    pub value: f64,
}

impl Objective {
    /// What a log step reports: D's and G's losses and D's mean outputs (probabilities for the
    /// original loss, raw scores otherwise), then what this objective adds — the critic's
    /// estimate of the Wasserstein-1 distance, E[D(x)] − E[D(G(z))], and the penalty with the
    /// mean ‖∇ₓD‖ it is taken on. The first four columns are the same for every objective.
    pub fn log_fields(&self, s: &Stats) -> Vec<LogField> {
        let field = |column, label, value: f32| LogField {
            column,
            label,
            value: value as f64,
        };
        let d_label = match self.loss {
            Loss::Wasserstein => "critic loss",
            _ => "D loss",
        };
        let mut out = vec![
            field("d_loss", d_label, s.d_loss),
            field("g_loss", "G loss", s.g_loss),
            field("d_real", "D(x)", s.d_real),
            field("d_fake", "D(G(z))", s.d_fake),
        ];
        if self.loss == Loss::Wasserstein {
            out.push(field("wasserstein", "W estimate", s.d_real - s.d_fake));
        }
        match self.penalty() {
            Some((PenaltyKind::GradientPenalty, _)) => {
                out.push(field("penalty", "GP", s.penalty));
                out.push(field("grad_norm", "‖∇D(x̂)‖", s.grad_norm));
            }
            Some((PenaltyKind::R1, _)) => {
                out.push(field("penalty", "R1", s.penalty));
                out.push(field("grad_norm", "‖∇D(x)‖", s.grad_norm));
            }
            None => {}
        }
        out
    }
}
