//! The minibatch standard-deviation feature (Karras et al. 2018, ProGAN's discriminator):
//! (C, H, W) → (C + 1, H, W), the new channel holding, for each group of `group` consecutive
//! rows, the mean over every (channel, position) of the group's standard deviation (see
//! `kernels::minibatch_std`). A batch smaller than the group is one group; otherwise the
//! batch must be whole groups.
//!
//! It couples the rows of a group and is smooth, so a gradient penalty through it has a
//! second-order term: `tangent_with_term` gives it as u = ∂(S·ṡ)/∂x, which the layers below
//! must then back-propagate into their weight gradients. The progressive critic
//! (`layers::progressive`) does that; as a layer of an ordinary network it refuses a penalty.

use super::{Bwd, Fwd, Module, NetRng, Shape};
use crate::backend::{Backend, Tensor};
use crate::kernels::minibatch_std::{
    StdGroups, minibatch_std_backward, minibatch_std_forward, minibatch_std_tangent,
};
use anyhow::{Result, bail};

pub struct MinibatchStd {
    input: Shape,
    group: usize,
    /// The last backward's dy (the tangent pass reads its extra channel).
    last_dy: Option<Tensor>,
}

impl MinibatchStd {
    pub fn new(input: Shape, group: usize) -> Result<Self> {
        if group == 0 {
            bail!("the minibatch standard deviation needs groups of at least 1 row");
        }
        Ok(MinibatchStd {
            input,
            group,
            last_dy: None,
        })
    }

    /// The group size for a batch of `rows`.
    pub fn group_for(&self, rows: usize) -> usize {
        let g = self.group.min(rows).max(1);
        assert!(
            rows.is_multiple_of(g),
            "minibatch std: a batch of {rows} rows is not whole groups of {g}"
        );
        g
    }

    fn groups(&self, rows: usize) -> StdGroups {
        let s = self.input;
        let (group, channels, plane) = (self.group_for(rows), s.c, s.h * s.w);
        StdGroups {
            rows,
            group,
            channels,
            plane,
        }
    }

    /// The tangent pass with its second-order term: `v_out` = [v | ṡ] and `u` ([rows, C, H, W])
    /// = ∂(S·ṡ)/∂x, S from the last backward's δ.
    pub fn tangent_with_term(
        &self,
        be: &mut dyn Backend,
        x: Tensor,
        v: Tensor,
        v_out: Tensor,
        u: Tensor,
        rows: usize,
    ) {
        let dy = self
            .last_dy
            .expect("the tangent pass follows a backward to the input");
        minibatch_std_tangent(be, v_out, u, x, v, dy, self.groups(rows));
    }
}

impl Module for MinibatchStd {
    fn describe(&self) -> String {
        format!("MinibatchStd(group {})", self.group)
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        Shape::image(self.input.c + 1, self.input.h, self.input.w)
    }

    fn flops(&self, rows: usize) -> f64 {
        4.0 * (rows * self.input.len()) as f64
    }

    fn forward(&mut self, be: &mut dyn Backend, f: &Fwd, _rng: &mut NetRng) {
        minibatch_std_forward(be, f.y, f.x, self.groups(f.rows));
    }

    fn backward(&mut self, be: &mut dyn Backend, b: &Bwd) {
        self.last_dy = Some(b.dy);
        if let Some(dx) = b.dx {
            minibatch_std_backward(be, dx, b.x, b.dy, self.groups(b.rows));
        }
    }

    fn check_tangent(&self) -> Result<()> {
        bail!(
            "{} couples the rows of a group and has a second-order term the layers below it \
             must back-propagate; only the progressive critic (--preset progan) runs it",
            self.describe()
        )
    }
}
