//! The training step the paper's code ran (`AdversaryCost2` of goodfeli/adversarial under one
//! pylearn2 SGD over both networks' parameters): one real batch and one noise batch; D sees
//! [real; G(z)] once, with one set of dropout masks; D's gradient of its loss and G's gradient of
//! −log D(G(z)) through those same outputs are both taken at the current weights, then both
//! networks are updated. Algorithm 1 (`Updates::Alternating`) instead updates D first and
//! gives G fresh noise through the updated D.
//!
//! dL_G/dx over D's [real; fake] input comes from one more backward through D over all 2m rows
//! with the real rows' logit gradients 0 (rows are independent in D, so the fake rows' input
//! gradients are exactly those of a backward over the fakes alone).

use super::Gan;
use crate::backend::Backend;
use crate::kernels::gan_loss::{LossArgs, Record, gan_loss, gan_loss_with_drift};
use crate::model::Backprop;

impl Gan {
    /// One simultaneous update of D and G (see the module documentation).
    pub fn simultaneous_step(&mut self, be: &mut dyn Backend) {
        let (m, dim) = (self.cfg.batch, self.g.output_len());
        let packs = m / self.cfg.pack;
        let real = self.x_d.slice(0, m * dim);
        let fake = self.x_d.slice(m * dim, m * dim);
        self.real_batch(be, real);
        self.fresh_noise(be);
        self.g.forward(be, self.z, m, true, Some(fake));
        let logits = self.d.forward(be, self.x_d, 2 * packs, true, None);

        // D: its loss over [real; fake] and its parameter gradients.
        let dl_d = self.dlogits.slice(0, 2 * packs);
        let kind = self.cfg.objective.d_kind();
        gan_loss_with_drift(
            be,
            kind,
            LossArgs {
                logits,
                grad: dl_d,
                real: packs,
                fake: packs,
                stats: self.stats.slice(0, 3),
            },
            Record::Add,
            self.cfg.objective.drift,
        );
        self.d.backward(be, dl_d, Backprop::Weights);

        // G: its loss on the same fake logits; the real half of dl_g is never written (zero).
        let dl_g = self.dlogits.slice(2 * m, 2 * packs);
        let (fake_logits, fake_dl) = (logits.slice(packs, packs), dl_g.slice(packs, packs));
        let kind = self.cfg.objective.g_kind(self.cfg.g_loss);
        gan_loss(
            be,
            kind,
            LossArgs::generated(fake_logits, fake_dl, packs, self.stats.slice(3, 3)),
            Record::Add,
        );
        let dx = self
            .d
            .backward(be, dl_g, Backprop::Input)
            .expect("input gradient requested");
        self.g
            .backward(be, dx.slice(m * dim, m * dim), Backprop::Weights);
        // The penalty runs D again (on x̂ or the real rows) once G's gradient has been taken.
        self.add_penalty_gradient(be, real, fake, packs);

        // Both optimizers' hyper-parameters before either update counts it.
        let (opt_d, opt_g) = (self.next_d_optimizer(), self.next_g_optimizer());
        self.d.update(be, &opt_d);
        self.g.update(be, &opt_g);
        self.update_ema(be);
        self.d_steps += 1;
        self.g_steps += 1;
    }
}
