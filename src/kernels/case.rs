//! Kernel cases: a parameter block and the initial contents of every binding, runnable on any
//! backend or on the reference. The table-driven tests compare a case's outputs across the GPU,
//! the CPU twin and the reference; `duel bench kernels` times the benchmark cases.

use super::{Access, Bindings, KernelDef, Params, launch_bytes};
use crate::backend::{Backend, Tensor};
use anyhow::Result;

/// |got − want| ≤ abs + rel·|want| for f32 outputs (u32 outputs must match exactly).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    pub abs: f32,
    pub rel: f32,
}

impl Default for Tol {
    fn default() -> Self {
        Tol {
            abs: 1e-5,
            rel: 1e-5,
        }
    }
}

/// Work of one launch, for GFLOP/s and GB/s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    pub flops: f64,
    pub bytes: f64,
}

impl Work {
    /// An elementwise kernel touching `words` 4-byte words per element over `n` elements.
    pub fn elementwise(n: u32, words: u32) -> Work {
        Work {
            flops: n as f64,
            bytes: 4.0 * n as f64 * words as f64,
        }
    }
}

/// One launch of a kernel: its parameters and every binding's initial contents (as 32-bit
/// words; f32 values by their bits). Unused bindings hold nothing.
#[derive(Clone, Debug)]
pub struct Case {
    pub label: String,
    pub params: Vec<u8>,
    pub bufs: Vec<Vec<u32>>,
    pub tol: Tol,
}

/// Words of padding before every view that has an offset field: a nonzero offset catches a
/// kernel that ignores it, and the padding's sentinel catches writes outside the view.
pub const PAD: usize = 4;
const SENTINEL: u32 = 0x7fc0_dead;

impl Case {
    pub fn new<P: Params>(label: impl Into<String>, p: P) -> Self {
        Case {
            label: label.into(),
            params: bytemuck::bytes_of(&p).to_vec(),
            bufs: Vec::new(),
            tol: Tol::default(),
        }
    }

    /// The next binding holds these f32 values.
    pub fn f32(mut self, v: Vec<f32>) -> Self {
        self.bufs.push(bytemuck::cast_vec(v));
        self
    }

    pub fn u32(mut self, v: Vec<u32>) -> Self {
        self.bufs.push(v);
        self
    }

    /// The next binding holds `n` zeros.
    pub fn zeros(self, n: usize) -> Self {
        self.f32(vec![0.0; n])
    }

    /// The next binding is not used by this kernel.
    pub fn unused(mut self) -> Self {
        self.bufs.push(Vec::new());
        self
    }

    pub fn tol(mut self, abs: f32, rel: f32) -> Self {
        self.tol = Tol { abs, rel };
        self
    }

    fn padded(def: &KernelDef, i: usize) -> usize {
        let b = def.bindings[i];
        let field = format!("{}_off", b.name);
        if b.access != Access::Unused && def.params.field(&field).is_some() {
            PAD
        } else {
            0
        }
    }

    /// Uploads the case to `be`, each binding in a buffer of its own behind `PAD` sentinel words
    /// when it has an offset field. Returns the views.
    pub fn upload(&self, def: &KernelDef, be: &mut dyn Backend) -> Result<Vec<Tensor>> {
        assert_eq!(
            self.bufs.len(),
            def.bindings.len(),
            "{} case {}: {} buffers for {} bindings",
            def.name,
            self.label,
            self.bufs.len(),
            def.bindings.len()
        );
        let mut views = Vec::new();
        let mut first_input: Option<Tensor> = None;
        for (i, data) in self.bufs.iter().enumerate() {
            if def.bindings[i].access == Access::Unused {
                views.push(Tensor {
                    buf: u32::MAX,
                    offset: 0,
                    len: 0,
                });
                continue;
            }
            let pad = Self::padded(def, i);
            let t = be.alloc(pad + data.len() + PAD, &format!("{} binding {i}", def.name))?;
            let mut words = vec![SENTINEL; pad + data.len() + PAD];
            words[pad..pad + data.len()].copy_from_slice(data);
            be.write_u32(t, &words);
            let view = t.slice(pad, data.len());
            if def.bindings[i].access == Access::Read {
                first_input.get_or_insert(view);
            }
            views.push(view);
        }
        // Unused bindings get any input view (never touched).
        let stand_in = first_input.unwrap_or(views[0]);
        for (v, b) in views.iter_mut().zip(def.bindings) {
            if b.access == Access::Unused {
                *v = stand_in;
            }
        }
        Ok(views)
    }

    /// Runs the case on `be` and returns the contents of every written binding (empty for the
    /// others). Panics if a kernel wrote into the padding around a view.
    pub fn run(&self, def: &'static KernelDef, be: &mut dyn Backend) -> Result<Vec<Vec<u32>>> {
        let views = self.upload(def, be)?;
        launch_bytes(be, def, &self.params, &views);
        let mut out = Vec::new();
        for (i, (v, b)) in views.iter().zip(def.bindings).enumerate() {
            if b.access != Access::ReadWrite {
                out.push(Vec::new());
                continue;
            }
            let pad = Self::padded(def, i);
            let whole = Tensor {
                buf: v.buf,
                offset: 0,
                len: (pad + v.len() + PAD) as u32,
            };
            let words = be.read_u32(whole)?;
            let outside = words[..pad]
                .iter()
                .chain(&words[pad + v.len()..])
                .any(|&w| w != SENTINEL);
            assert!(
                !outside,
                "{} case {}: binding {} was written outside its view",
                def.name, self.label, b.name
            );
            out.push(words[pad..pad + v.len()].to_vec());
        }
        Ok(out)
    }

    /// Runs the case through `f` (the reference or the twin) on plain host vectors.
    pub fn run_host(&self, def: &KernelDef, f: super::CpuFn) -> Vec<Vec<u32>> {
        let mut bufs: Vec<Vec<f32>> = self
            .bufs
            .iter()
            .map(|v| bytemuck::cast_slice(v).to_vec())
            .collect();
        {
            let mut b = Bindings::default();
            let (reads, writes): (Vec<_>, Vec<_>) = bufs
                .iter_mut()
                .enumerate()
                .partition(|(i, _)| def.bindings[*i].access != Access::ReadWrite);
            for (i, v) in reads {
                b.set_read(i, v);
            }
            for (i, v) in writes {
                b.set_write(i, v);
            }
            f(&self.params, &mut b);
        }
        bufs.into_iter()
            .zip(def.bindings)
            .map(|(v, b)| match b.access {
                Access::ReadWrite => bytemuck::cast_vec(v),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Compares `got` with `want` (outputs of `run`/`run_host`): u32 bindings exactly, f32
    /// within the case's tolerance. The error names the first mismatch.
    pub fn compare(
        &self,
        def: &KernelDef,
        what: &str,
        got: &[Vec<u32>],
        want: &[Vec<u32>],
    ) -> Result<(), String> {
        for (i, b) in def.bindings.iter().enumerate() {
            if b.access != Access::ReadWrite {
                continue;
            }
            let (g, w) = (&got[i], &want[i]);
            if g.len() != w.len() {
                return Err(format!("{what}: binding {} lengths differ", b.name));
            }
            let mut bad = 0;
            let mut first = None;
            for (j, (&gv, &wv)) in g.iter().zip(w).enumerate() {
                let ok = match b.elem {
                    super::Elem::U32 => gv == wv,
                    _ => {
                        let (gf, wf) = (f32::from_bits(gv), f32::from_bits(wv));
                        (gf - wf).abs() <= self.tol.abs + self.tol.rel * wf.abs()
                            || (gf.is_nan() && wf.is_nan())
                            || gf == wf
                    }
                };
                if !ok {
                    bad += 1;
                    first.get_or_insert((j, gv, wv));
                }
            }
            if let Some((j, gv, wv)) = first {
                let show = |v: u32| match b.elem {
                    super::Elem::U32 => v.to_string(),
                    _ => f32::from_bits(v).to_string(),
                };
                return Err(format!(
                    "{} [{}] {what}: binding {}: {bad} of {} values differ; first at {j}: got {}, \
                     want {} (abs {}, rel {})",
                    def.name,
                    self.label,
                    b.name,
                    g.len(),
                    show(gv),
                    show(wv),
                    self.tol.abs,
                    self.tol.rel
                ));
            }
        }
        Ok(())
    }
}

/// `n` values uniform in [lo, hi) from a seed (the counter-based RNG, so cases are reproducible).
pub fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let key = crate::rng::RngKey::new(seed, crate::rng::stream::TEST, 0);
    (0..n)
        .map(|i| crate::rng::uniform(key, i as u64, lo, hi))
        .collect()
}
