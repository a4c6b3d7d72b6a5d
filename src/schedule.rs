//! Learning-rate decay and a momentum ramp, as the paper's pylearn2 configuration ran them
//! (`ExponentialDecay` and `MomentumAdjustor`). Both are pure functions of a network's update
//! count and the size of the dataset, and the update counts are in the checkpoint, so a resumed
//! run uses exactly the values an unbroken one would.
//!
//! - Learning rate of the update that follows t earlier updates of the same network:
//!   lr_t = max(lr₀ / decay^t, lr_min). pylearn2 divides after every update, so the first update
//!   uses lr₀.
//! - Momentum during epoch e (1-based): μ₀ until epoch `start`, then linear to `final` at epoch
//!   `saturate`: μ = μ₀ + (final − μ₀)·clamp((e − start) / (saturate − start), 0, 1). pylearn2
//!   counts e from 1 for the first epoch (its monitor runs once before training starts).
//! - An epoch is one pass over the training set in real samples: D's update t is in epoch
//!   ⌊t·batch / n⌋ + 1; G's update t comes after k·t D-updates, so in ⌊k·t·batch / n⌋ + 1.
//!
//! A leaf the configuration and the training step share, with `Updates` (how an iteration
//! updates the two networks); `Gan::optimizers_now` applies the schedule.

use crate::model::Optimizer;
use anyhow::{Result, bail};

/// How an iteration updates the two networks (`--updates`; each variant's doc is its `--help`
/// line). Simultaneous is the paper's code (`AdversaryCost2` under one SGD): one real and one
/// fake batch through D once; D's gradient and G's gradient (through the same D outputs and
/// dropout masks) are both taken at the current weights, then both networks are updated.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Updates {
    /// Algorithm 1: k D-updates, then a G-update on fresh noise through the updated D.
    #[default]
    Alternating,
    /// The paper's code: D's and G's gradients from the same batch and D outputs, both taken
    /// before either network is updated.
    Simultaneous,
}

/// A linear momentum ramp over epochs (pylearn2's `MomentumAdjustor`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MomentumRamp {
    /// The momentum from epoch `saturate` on.
    pub final_momentum: f32,
    /// The epoch the ramp leaves the initial momentum (1 = the first).
    pub start: u64,
    /// The epoch it reaches `final_momentum`.
    pub saturate: u64,
}

/// How the optimizers' learning rate and SGD momentum change over training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The learning rate is divided by this after every update; 1 keeps it constant.
    pub lr_decay: f64,
    /// The learning rate never falls below this.
    pub lr_min: f32,
    /// SGD's momentum ramp; None keeps the momentum constant. (Adam is unaffected.)
    pub momentum: Option<MomentumRamp>,
}

impl Default for Schedule {
    fn default() -> Self {
        Self::CONSTANT
    }
}

impl Schedule {
    /// Constant learning rate and momentum.
    pub const CONSTANT: Schedule = Schedule {
        lr_decay: 1.0,
        lr_min: 0.0,
        momentum: None,
    };

    /// The learning rate of the update that follows `t` earlier ones: max(lr₀ / decay^t, lr_min),
    /// computed in f64 as pylearn2 does (numpy) and rounded once to f32.
    pub fn lr(&self, lr0: f32, t: u64) -> f32 {
        if self.lr_decay == 1.0 {
            return lr0;
        }
        let lr = lr0 as f64 / self.lr_decay.powf(t as f64);
        lr.max(self.lr_min as f64) as f32
    }

    /// SGD's momentum during (1-based) `epoch`, starting from `m0`.
    pub fn momentum(&self, m0: f32, epoch: u64) -> f32 {
        let Some(r) = self.momentum else {
            return m0;
        };
        if r.saturate == r.start {
            return if epoch >= r.start {
                r.final_momentum
            } else {
                m0
            };
        }
        let alpha = (epoch as f64 - r.start as f64) / (r.saturate - r.start) as f64;
        let alpha = alpha.clamp(0.0, 1.0);
        (m0 as f64 * (1.0 - alpha) + alpha * r.final_momentum as f64) as f32
    }

    /// `opt` as it applies to the update that follows `t` earlier ones, made during `epoch`.
    pub fn apply(&self, opt: Optimizer, t: u64, epoch: u64) -> Optimizer {
        match opt {
            Optimizer::Sgd { lr, momentum } => Optimizer::Sgd {
                lr: self.lr(lr, t),
                momentum: self.momentum(momentum, epoch),
            },
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => Optimizer::Adam {
                lr: self.lr(lr, t),
                beta1,
                beta2,
                eps,
            },
            Optimizer::RmsProp { lr, alpha, eps } => Optimizer::RmsProp {
                lr: self.lr(lr, t),
                alpha,
                eps,
            },
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.lr_decay >= 1.0 && self.lr_decay.is_finite()) {
            bail!(
                "--lr-decay must be at least 1 (1 keeps the learning rate constant), not {}",
                self.lr_decay
            );
        }
        if !(self.lr_min >= 0.0 && self.lr_min.is_finite()) {
            bail!("--lr-min must be 0 or more, not {}", self.lr_min);
        }
        if let Some(r) = self.momentum {
            if !(0.0..1.0).contains(&r.final_momentum) {
                bail!(
                    "--momentum-final must be in [0, 1), not {}",
                    r.final_momentum
                );
            }
            if r.saturate < r.start {
                bail!(
                    "--momentum-saturate {} is before --momentum-start {}; the ramp must end \
                     after it starts",
                    r.saturate,
                    r.start
                );
            }
        }
        Ok(())
    }
}

/// The 1-based epoch an update falls in after `samples` real samples of a set of `n`.
pub fn epoch(samples: u64, n: u64) -> u64 {
    samples / n.max(1) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper() -> Schedule {
        Schedule {
            lr_decay: 1.000004,
            lr_min: 1e-6,
            momentum: Some(MomentumRamp {
                final_momentum: 0.7,
                start: 1,
                saturate: 250,
            }),
        }
    }

    #[test]
    fn learning_rate_decays_after_every_update_down_to_its_floor() {
        let s = paper();
        assert_eq!(s.lr(0.1, 0), 0.1, "the first update uses lr0");
        assert_eq!(s.lr(0.1, 1), (0.1f32 as f64 / 1.000004) as f32);
        // 125,000 updates (250 epochs of 50,000 digits at batch 100): 0.1·e^(−0.5) nearly.
        let at = s.lr(0.1, 125_000) as f64;
        let want = 0.1f32 as f64 * (-125_000.0 * 1.000004f64.ln()).exp();
        assert!((at - want).abs() < 1e-9, "{at} vs {want}");
        assert!((at - 0.0606531).abs() < 1e-6, "{at}");
        // The floor: lr0 / 1.000004^t = 1e-6 at t = ln(1e5) / ln(1.000004) ≈ 2,878,236.
        let t_floor = (1e5f64.ln() / 1.000004f64.ln()).ceil() as u64;
        assert_eq!(s.lr(0.1, t_floor + 10), 1e-6);
        assert!(s.lr(0.1, t_floor - 1000) > 1e-6);
        assert_eq!(s.lr(0.1, u64::MAX), 1e-6, "no overflow to NaN");
        assert_eq!(Schedule::CONSTANT.lr(0.1, 1_000_000), 0.1);
    }

    #[test]
    fn momentum_ramps_linearly_between_its_epochs() {
        let s = paper();
        assert_eq!(
            s.momentum(0.5, 1),
            0.5,
            "epoch 1 trains with the initial momentum"
        );
        let e2 = s.momentum(0.5, 2) as f64;
        assert!((e2 - (0.5 + 0.2 / 249.0)).abs() < 1e-7, "{e2}");
        let mid = s.momentum(0.5, 125) as f64;
        assert!((mid - (0.5 + 0.2 * 124.0 / 249.0)).abs() < 1e-7, "{mid}");
        assert_eq!(s.momentum(0.5, 250), 0.7);
        assert_eq!(s.momentum(0.5, 10_000), 0.7);
        let step = Schedule {
            momentum: Some(MomentumRamp {
                final_momentum: 0.9,
                start: 3,
                saturate: 3,
            }),
            ..Schedule::CONSTANT
        };
        assert_eq!((step.momentum(0.5, 2), step.momentum(0.5, 3)), (0.5, 0.9));
        assert_eq!(Schedule::CONSTANT.momentum(0.5, 400), 0.5);
    }

    #[test]
    fn epochs_count_real_samples() {
        // 50,000 digits at batch 100: updates 0..499 are epoch 1, 500 starts epoch 2.
        assert_eq!(epoch(499 * 100, 50_000), 1);
        assert_eq!(epoch(500 * 100, 50_000), 2);
        assert_eq!(epoch(124_500 * 100, 50_000), 250);
    }

    #[test]
    fn adam_takes_the_decay_but_keeps_its_betas() {
        let s = paper();
        let adam = Optimizer::adam(2e-4, 0.5, 0.999);
        let Optimizer::Adam { lr, beta1, .. } = s.apply(adam, 10, 300) else {
            panic!("still Adam")
        };
        assert_eq!((lr, beta1), (s.lr(2e-4, 10), 0.5));
    }

    #[test]
    fn bad_schedules_are_named() {
        let mut s = paper();
        s.lr_decay = 0.9;
        assert!(s.validate().unwrap_err().to_string().contains("--lr-decay"));
        let mut s = paper();
        s.momentum.as_mut().unwrap().saturate = 0;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("--momentum-saturate")
        );
        paper().validate().unwrap();
    }
}
