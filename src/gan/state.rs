//! A GAN's complete training state as host arrays, so a run restored from it continues exactly
//! as if it had never stopped.

use super::{Gan, RngState};
use crate::backend::Backend;
use crate::model::Network;
use anyhow::{Result, bail};

/// A network's complete training state as host arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct NetState {
    pub params: Vec<f32>,
    pub opt_m: Vec<f32>,
    pub opt_v: Vec<f32>,
    /// Persistent non-trainable state (batch-norm statistics, spectral norm's vectors).
    pub state: Vec<f32>,
    pub steps: u64,
    pub dropout_counter: u64,
}

/// Everything that determines how training continues: with the config, a run restored from
/// this continues exactly as if it had never stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct GanState {
    pub iteration: u64,
    pub rng: RngState,
    pub g: NetState,
    pub d: NetState,
    /// The moving average of G's parameters, when the run keeps one.
    pub g_ema: Option<Vec<f32>>,
    /// The persistent state that goes with the moving average, when the run keeps one: its
    /// standing batch-norm statistics (`Gan::standing_statistics`) where G has batch norm, else
    /// a copy of G's state. Derived, not training state: `restore` ignores it and it is
    /// recomputed when needed; checkpoints store it so samples need no recomputation.
    pub g_ema_state: Option<Vec<f32>>,
}

fn net_state(be: &mut dyn Backend, n: &Network) -> Result<NetState> {
    Ok(NetState {
        params: be.read(n.unpadded(n.params))?,
        opt_m: be.read(n.unpadded(n.opt_m))?,
        opt_v: be.read(n.unpadded(n.opt_v))?,
        state: be.read(n.state.slice(0, n.n_state))?,
        steps: n.steps,
        dropout_counter: n.rng.counter,
    })
}

fn restore_net(be: &mut dyn Backend, n: &mut Network, s: &NetState, name: &str) -> Result<()> {
    let want = n.n_params;
    for (what, v) in [("parameters", &s.params), ("m", &s.opt_m), ("v", &s.opt_v)] {
        if v.len() != want {
            bail!(
                "the checkpoint's {name} {what} hold {} values but this model has {want}",
                v.len()
            );
        }
    }
    if s.state.len() != n.n_state {
        bail!(
            "the checkpoint's {name} state holds {} values but this model has {}",
            s.state.len(),
            n.n_state
        );
    }
    be.write(n.unpadded(n.params), &s.params);
    be.write(n.unpadded(n.opt_m), &s.opt_m);
    be.write(n.unpadded(n.opt_v), &s.opt_v);
    be.write(n.state.slice(0, n.n_state), &s.state);
    n.steps = s.steps;
    n.rng.counter = s.dropout_counter;
    Ok(())
}

impl Gan {
    /// Reads the whole training state back to the host.
    pub fn state(&mut self, be: &mut dyn Backend) -> Result<GanState> {
        Ok(GanState {
            iteration: self.iteration,
            rng: self.rng,
            g: net_state(be, &self.g)?,
            d: net_state(be, &self.d)?,
            g_ema: match self.g_ema {
                Some(t) => Some(be.read(self.g.unpadded(t))?),
                None => None,
            },
            g_ema_state: match (self.g_ema, self.standing_statistics(be)) {
                (None, _) => None,
                (Some(_), Some(t)) => Some(be.read(t)?),
                (Some(_), None) => Some(be.read(self.g.state.slice(0, self.g.n_state))?),
            },
        })
    }

    /// Puts a saved state back, so training continues exactly where it stopped.
    pub fn restore(&mut self, be: &mut dyn Backend, s: &GanState) -> Result<()> {
        restore_net(be, &mut self.g, &s.g, "generator")?;
        restore_net(be, &mut self.d, &s.d, "discriminator")?;
        match (self.g_ema, &s.g_ema) {
            (Some(t), Some(v)) if v.len() == self.g.n_params => be.write(self.g.unpadded(t), v),
            (None, None) => {}
            _ => {
                bail!("the checkpoint's generator moving average does not match the config's --ema")
            }
        }
        self.standing_at = None;
        self.iteration = s.iteration;
        self.rng = s.rng;
        self.apply_growth();
        Ok(())
    }
}
