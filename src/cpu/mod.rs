//! The CPU backend: every kernel runs at once through its twin in `kernels`.

pub mod kernels;

use crate::backend::{
    Activation, AdamStep, Backend, Counters, DeviceRows, GanLossKind, MAX_ROW_CHUNKS, MatView,
    Tensor,
};
use crate::rng::RngKey;
use anyhow::Result;

#[derive(Default)]
pub struct CpuBackend {
    buffers: Vec<Vec<f32>>,
    counters: Counters,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, t: Tensor) -> &[f32] {
        let buf = &self.buffers[t.buf as usize];
        assert!(
            !buf.is_empty() || t.len == 0,
            "buffer {} is in use as this kernel's output: an input may not alias an output",
            t.buf
        );
        &buf[t.offset as usize..(t.offset + t.len) as usize]
    }

    fn get_u32(&self, t: Tensor) -> &[u32] {
        bytemuck::cast_slice(self.get(t))
    }

    /// Takes an output buffer out of the table so inputs can be borrowed beside it.
    fn take(&mut self, t: Tensor) -> Vec<f32> {
        std::mem::take(&mut self.buffers[t.buf as usize])
    }

    fn put(&mut self, t: Tensor, buf: Vec<f32>) {
        self.buffers[t.buf as usize] = buf;
    }

    /// Runs `f` on the output view `out` with the backend available for reading inputs.
    fn with_out(&mut self, out: Tensor, f: impl FnOnce(&mut [f32], &Self)) {
        let mut buf = self.take(out);
        f(
            &mut buf[out.offset as usize..(out.offset + out.len) as usize],
            self,
        );
        self.put(out, buf);
        self.counters.dispatches += 1;
    }

    fn with_out_u32(&mut self, out: Tensor, f: impl FnOnce(&mut [u32], &Self)) {
        self.with_out(out, |o, be| f(bytemuck::cast_slice_mut(o), be));
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn alloc(&mut self, len: usize, _label: &str) -> Result<Tensor> {
        self.buffers.push(vec![0.0; len]);
        Ok(Tensor {
            buf: (self.buffers.len() - 1) as u32,
            offset: 0,
            len: len as u32,
        })
    }

    fn max_binding_words(&self) -> usize {
        u32::MAX as usize / 4
    }

    fn write(&mut self, t: Tensor, data: &[f32]) {
        assert_eq!(
            data.len(),
            t.len(),
            "write: {} words into a view of {}",
            data.len(),
            t.len
        );
        self.buffers[t.buf as usize][t.offset as usize..(t.offset + t.len) as usize]
            .copy_from_slice(data);
        self.counters.bytes_written += 4 * data.len() as u64;
    }

    fn write_u32(&mut self, t: Tensor, data: &[u32]) {
        self.write(t, bytemuck::cast_slice(data));
    }

    fn read(&mut self, t: Tensor) -> Result<Vec<f32>> {
        self.counters.bytes_read += 4 * t.len as u64;
        Ok(self.get(t).to_vec())
    }

    fn read_u32(&mut self, t: Tensor) -> Result<Vec<u32>> {
        Ok(bytemuck::cast_slice(&self.read(t)?).to_vec())
    }

    fn flush(&mut self) {}

    fn counters(&self) -> Counters {
        self.counters
    }

    fn matmul_act(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        bias: Option<Tensor>,
        act: Activation,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
    ) {
        self.with_out(c, |c, be| {
            let bias = bias.map(|t| be.get(t));
            kernels::matmul_act(
                c,
                be.get(a.t),
                (a.rs, a.cs),
                be.get(b.t),
                (b.rs, b.cs),
                bias,
                act,
                m,
                n,
                k,
                accumulate,
            )
        });
    }

    fn matmul_act_grad(
        &mut self,
        c: Tensor,
        a: MatView,
        b: MatView,
        act: Activation,
        y: Tensor,
        m: usize,
        n: usize,
        k: usize,
    ) {
        self.with_out(c, |c, be| {
            kernels::matmul_act_grad(
                c,
                be.get(a.t),
                (a.rs, a.cs),
                be.get(b.t),
                (b.rs, b.cs),
                act,
                be.get(y),
                m,
                n,
                k,
            )
        });
    }

    fn bias_backward(&mut self, db: Tensor, dy: Tensor, m: usize, n: usize, accumulate: bool) {
        self.with_out(db, |db, be| {
            kernels::bias_backward(db, be.get(dy), m, n, accumulate)
        });
    }

    fn activation_forward(&mut self, act: Activation, y: Tensor, x: Tensor, n: usize) {
        self.with_out(y, |y, be| kernels::activation_forward(act, y, be.get(x), n));
    }

    fn activation_backward(
        &mut self,
        act: Activation,
        dx: Tensor,
        dy: Tensor,
        y: Tensor,
        n: usize,
    ) {
        self.with_out(dx, |dx, be| {
            kernels::activation_backward(act, dx, be.get(dy), be.get(y), n)
        });
    }

    fn maxout_forward(
        &mut self,
        y: Tensor,
        idx: Tensor,
        x: Tensor,
        rows: usize,
        units: usize,
        pieces: usize,
    ) {
        let mut idx_buf = self.take(idx);
        self.with_out(y, |y, be| {
            let idx_view = &mut idx_buf[idx.offset as usize..(idx.offset + idx.len) as usize];
            kernels::maxout_forward(
                y,
                bytemuck::cast_slice_mut(idx_view),
                be.get(x),
                rows,
                units,
                pieces,
            )
        });
        self.put(idx, idx_buf);
    }

    fn maxout_backward(
        &mut self,
        dx: Tensor,
        dy: Tensor,
        idx: Tensor,
        rows: usize,
        units: usize,
        pieces: usize,
    ) {
        self.with_out(dx, |dx, be| {
            kernels::maxout_backward(dx, be.get(dy), be.get_u32(idx), rows, units, pieces)
        });
    }

    fn dropout_forward(&mut self, y: Tensor, x: Tensor, n: usize, keep: f32, key: RngKey) {
        self.with_out(y, |y, be| {
            kernels::dropout_forward(y, be.get(x), n, keep, key)
        });
    }

    fn dropout_backward(&mut self, dx: Tensor, dy: Tensor, n: usize, keep: f32, key: RngKey) {
        self.with_out(dx, |dx, be| {
            kernels::dropout_backward(dx, be.get(dy), n, keep, key)
        });
    }

    fn gan_loss(
        &mut self,
        kind: GanLossKind,
        grad: Tensor,
        logits: Tensor,
        n_real: usize,
        n_fake: usize,
        stats: Tensor,
        accumulate: bool,
    ) {
        let mut stats_buf = self.take(stats);
        self.with_out(grad, |grad, be| {
            let s = &mut stats_buf[stats.offset as usize..(stats.offset + stats.len) as usize];
            kernels::gan_loss(kind, grad, be.get(logits), n_real, n_fake, s, accumulate)
        });
        self.put(stats, stats_buf);
    }

    fn sgd_momentum(
        &mut self,
        param: Tensor,
        grad: Tensor,
        velocity: Tensor,
        n: usize,
        lr: f32,
        momentum: f32,
    ) {
        let mut vel = self.take(velocity);
        self.with_out(param, |p, be| {
            let v = &mut vel[velocity.offset as usize..(velocity.offset + velocity.len) as usize];
            kernels::sgd_momentum(p, be.get(grad), v, n, lr, momentum)
        });
        self.put(velocity, vel);
    }

    fn adam(
        &mut self,
        param: Tensor,
        grad: Tensor,
        m: Tensor,
        v: Tensor,
        n: usize,
        step: &AdamStep,
    ) {
        let mut m_buf = self.take(m);
        let mut v_buf = self.take(v);
        self.with_out(param, |p, be| {
            let mv = &mut m_buf[m.offset as usize..(m.offset + m.len) as usize];
            let vv = &mut v_buf[v.offset as usize..(v.offset + v.len) as usize];
            kernels::adam(p, be.get(grad), mv, vv, n, step)
        });
        self.put(v, v_buf);
        self.put(m, m_buf);
    }

    fn ema_update(&mut self, avg: Tensor, param: Tensor, n: usize, decay: f32) {
        self.with_out(avg, |a, be| kernels::ema_update(a, be.get(param), n, decay));
    }

    fn rng_uniform(&mut self, out: Tensor, n: usize, lo: f32, hi: f32, key: RngKey) {
        self.with_out(out, |o, _| kernels::rng_uniform(o, n, lo, hi, key));
    }

    fn rng_normal(&mut self, out: Tensor, n: usize, key: RngKey) {
        self.with_out(out, |o, _| kernels::rng_normal(o, n, key));
    }

    fn rng_index(&mut self, out: Tensor, n: usize, range: u32, key: RngKey) {
        self.with_out_u32(out, |o, _| kernels::rng_index(o, n, range, key));
    }

    fn rng_bits(&mut self, out: Tensor, n: usize, key: RngKey) {
        self.with_out_u32(out, |o, _| kernels::rng_bits(o, n, key));
    }

    fn gather_rows_u8(
        &mut self,
        out: Tensor,
        src: &DeviceRows,
        idx: Tensor,
        rows: usize,
        scale: f32,
        offset: f32,
    ) {
        self.with_out(out, |o, be| {
            let mut chunks: [&[u8]; MAX_ROW_CHUNKS] = [&[]; MAX_ROW_CHUNKS];
            for (c, &t) in chunks.iter_mut().zip(&src.chunks) {
                *c = bytemuck::cast_slice::<f32, u8>(be.get(t));
            }
            kernels::gather_rows_u8(
                o,
                &chunks[..src.chunks.len().min(MAX_ROW_CHUNKS)],
                src.chunk_rows,
                src.row_len,
                be.get_u32(idx),
                rows,
                scale,
                offset,
            )
        });
    }

    fn gather_rows_f32(
        &mut self,
        out: Tensor,
        src: Tensor,
        idx: Tensor,
        rows: usize,
        row_len: usize,
    ) {
        self.with_out(out, |o, be| {
            kernels::gather_rows_f32(o, be.get(src), be.get_u32(idx), rows, row_len)
        });
    }

    fn row_sum_squares(&mut self, out: Tensor, x: Tensor, rows: usize, cols: usize) {
        self.with_out(out, |o, be| {
            kernels::row_sum_squares(o, be.get(x), rows, cols)
        });
    }

    fn parzen_log_density(
        &mut self,
        out: Tensor,
        dot: Tensor,
        x_sq: Tensor,
        mu_sq: Tensor,
        rows: usize,
        n: usize,
        dim: usize,
        sigma: f32,
    ) {
        self.with_out(out, |o, be| {
            kernels::parzen_log_density(
                o,
                be.get(dot),
                be.get(x_sq),
                be.get(mu_sq),
                rows,
                n,
                dim,
                sigma,
            )
        });
    }
}
