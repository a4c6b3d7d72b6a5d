//! The plain initialisation choices a run's configuration names: each network's weight
//! initialisation (`--init-g`, `--init-d`) and G's output bias (`--g-output-bias`). A leaf:
//! `config` reads these, `init` applies them.

use crate::layers::{Init, ParamSpec};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A network's initialisation (`--init-g`, `--init-d`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WeightInit {
    /// Each layer's own default (PyTorch's for Linear: W and b uniform in ±1/√fan_in).
    #[default]
    Default,
    /// Weights U(−r, r), biases 0 (pylearn2's `irange: r`).
    Uniform(f32),
    /// Weights N(0, s²), biases 0 (pylearn2's `istdev: s`).
    Normal(f32),
}

impl WeightInit {
    /// How tensor `p` starts under this option: weight matrices and kernels (rank 2 or more) are
    /// drawn from the distribution, biases start at 0, and anything else (a normalisation's
    /// scale) keeps its layer's default.
    pub fn for_param(self, p: &ParamSpec) -> Init {
        match self {
            WeightInit::Default => p.init,
            // (Conditional batch norm's per-class scales are [classes, C] constants: kept.)
            WeightInit::Uniform(r) if p.shape.len() >= 2 && !is_const(p) => Init::Uniform(r),
            WeightInit::Normal(s) if p.shape.len() >= 2 && !is_const(p) => Init::Normal(s),
            _ if p.name == "bias" || p.name.ends_with(".bias") => Init::Const(0.0),
            _ => p.init,
        }
    }
}

fn is_const(p: &ParamSpec) -> bool {
    matches!(p.init, Init::Const(_))
}

impl FromStr for WeightInit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "unknown initialisation {s:?}; use default, uniform:R (weights in [-R, R], e.g. \
                 uniform:0.05) or normal:S (weights with standard deviation S, e.g. normal:0.02)"
            )
        };
        if s == "default" {
            return Ok(WeightInit::Default);
        }
        let (kind, value) = s.split_once(':').ok_or_else(bad)?;
        let v: f32 = value.trim().parse().map_err(|_| bad())?;
        if !(v > 0.0 && v.is_finite()) {
            return Err(format!(
                "{s}: the {kind} initialisation needs a positive finite scale, not {value}"
            ));
        }
        match kind.trim() {
            "uniform" => Ok(WeightInit::Uniform(v)),
            "normal" => Ok(WeightInit::Normal(v)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for WeightInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightInit::Default => write!(f, "default"),
            WeightInit::Uniform(r) => write!(f, "uniform:{r}"),
            WeightInit::Normal(s) => write!(f, "normal:{s}"),
        }
    }
}

impl TryFrom<String> for WeightInit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<WeightInit> for String {
    fn from(w: WeightInit) -> String {
        w.to_string()
    }
}

/// G's output bias (`--g-output-bias`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OutputBias {
    /// As `--init-g` draws it.
    #[default]
    Init,
    /// So that G's output for a zero hidden layer is the mean training image: the logit of each
    /// pixel's mean (sigmoid outputs; half of it for tanh), the mean clipped to [1e-7, 1 − 1e-7].
    Marginals,
}
