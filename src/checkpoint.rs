//! Checkpoints in the safetensors format, readable by PyTorch (`safetensors.torch.load_file`)
//! and other tools: each linear layer's weight [in, out] (y = x·W + b) and bias, both
//! optimizers' state, and in the metadata the step, the RNG counters and the run's config.
//! Writes are atomic: a temporary file is written, flushed and renamed over the old one, so the
//! previous checkpoint survives until the new one is whole.

use crate::config::TrainConfig;
use crate::gan::{GanState, NetState, RngState};
use crate::model::{Layer, NetSpec};
use anyhow::{Context, Result, bail};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

const FORMAT: &str = "duel-checkpoint-1";
pub const FILE_NAME: &str = "checkpoint.safetensors";

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub config: TrainConfig,
    /// Values per sample and whether they are images (fixes the networks' shapes).
    pub dim: usize,
    pub image_shape: Option<(usize, usize, usize)>,
    pub state: GanState,
}

/// (name, shape) of each parameter tensor of a network, in flat-buffer order.
fn param_tensors(prefix: &str, spec: &NetSpec) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let mut w = spec.input;
    let mut i = 0;
    for l in &spec.layers {
        match *l {
            Layer::Linear(n) => {
                out.push((format!("{prefix}.linear{i}.weight"), vec![w, n]));
                out.push((format!("{prefix}.linear{i}.bias"), vec![n]));
                w = n;
                i += 1;
            }
            Layer::Maxout(p) => w /= p,
            _ => {}
        }
    }
    out
}

fn bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

impl Checkpoint {
    pub fn save(&self, path: &Path) -> Result<()> {
        let gan = self.config.gan(self.dim, self.image_shape.is_some());
        let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
        for (prefix, spec, net) in [
            ("generator", &gan.g, &self.state.g),
            ("discriminator", &gan.d, &self.state.d),
        ] {
            let mut off = 0;
            for (name, shape) in param_tensors(prefix, spec) {
                let n: usize = shape.iter().product();
                let data = bytes(&net.params[off..off + n]);
                views.push((name, TensorView::new(Dtype::F32, shape, data)?));
                off += n;
            }
            for (what, v) in [("m", &net.opt_m), ("v", &net.opt_v)] {
                let view = TensorView::new(Dtype::F32, vec![v.len()], bytes(v))?;
                views.push((format!("{prefix}.optimizer.{what}"), view));
            }
        }
        let s = &self.state;
        let mut meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("config".to_string(), self.config.to_toml()),
            ("dim".to_string(), self.dim.to_string()),
            ("iteration".to_string(), s.iteration.to_string()),
            ("rng.noise".to_string(), s.rng.noise.to_string()),
            ("rng.batch".to_string(), s.rng.batch.to_string()),
            ("generator.steps".to_string(), s.g.steps.to_string()),
            (
                "generator.dropout".to_string(),
                s.g.dropout_counter.to_string(),
            ),
            ("discriminator.steps".to_string(), s.d.steps.to_string()),
            (
                "discriminator.dropout".to_string(),
                s.d.dropout_counter.to_string(),
            ),
        ]);
        if let Some((c, h, w)) = self.image_shape {
            meta.insert("image_shape".into(), format!("{c},{h},{w}"));
        }
        let data = safetensors::serialize(views, Some(meta))?;
        write_atomic(path, &data)
    }

    /// Reads and validates a checkpoint; errors name the file and the problem.
    pub fn load(path: &Path) -> Result<Self> {
        let data = std::fs::read(path)
            .with_context(|| format!("{}: cannot read the checkpoint", path.display()))?;
        Self::parse(&data)
            .with_context(|| format!("{}: not a usable duel checkpoint", path.display()))
    }

    fn parse(data: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(data).context("not a whole safetensors file")?;
        let (_, header) = SafeTensors::read_metadata(data)?;
        let meta = header
            .metadata()
            .clone()
            .context("no duel metadata (a safetensors file from another tool?)")?;
        let get = |k: &str| -> Result<&String> {
            meta.get(k)
                .with_context(|| format!("metadata key {k:?} is missing"))
        };
        if get("format")? != FORMAT {
            bail!("format {:?}, expected {FORMAT:?}", get("format")?);
        }
        let num = |k: &str| -> Result<u64> {
            get(k)?
                .parse()
                .with_context(|| format!("metadata {k:?} is not a number"))
        };
        let config = TrainConfig::from_toml(get("config")?, "the checkpoint's config")?;
        let dim = num("dim")? as usize;
        let image_shape = match meta.get("image_shape") {
            None => None,
            Some(s) => {
                let v: Vec<usize> = s
                    .split(',')
                    .map(|x| x.parse())
                    .collect::<Result<_, _>>()
                    .context("bad image_shape")?;
                match v[..] {
                    [c, h, w] if c * h * w == dim => Some((c, h, w)),
                    _ => bail!("image_shape {s:?} does not match {dim} values per sample"),
                }
            }
        };
        let gan = config.gan(dim, image_shape.is_some());
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st
                .tensor(name)
                .with_context(|| format!("tensor {name} is missing"))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                bail!(
                    "tensor {name} is {:?} {:?}; this model needs F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                );
            }
            Ok(bytemuck::pod_collect_to_vec(t.data()))
        };
        let mut nets = Vec::new();
        for (prefix, spec) in [("generator", &gan.g), ("discriminator", &gan.d)] {
            let mut params = Vec::with_capacity(spec.param_count());
            for (name, shape) in param_tensors(prefix, spec) {
                params.extend(read(&name, &shape)?);
            }
            let n = params.len();
            nets.push(NetState {
                params,
                opt_m: read(&format!("{prefix}.optimizer.m"), &[n])?,
                opt_v: read(&format!("{prefix}.optimizer.v"), &[n])?,
                steps: num(&format!("{prefix}.steps"))?,
                dropout_counter: num(&format!("{prefix}.dropout"))?,
            });
        }
        let d = nets.pop().expect("two networks");
        let g = nets.pop().expect("two networks");
        Ok(Checkpoint {
            config,
            dim,
            image_shape,
            state: GanState {
                iteration: num("iteration")?,
                rng: RngState {
                    noise: num("rng.noise")?,
                    batch: num("rng.batch")?,
                },
                g,
                d,
            },
        })
    }
}

/// Writes `data` to `path` through a temporary file that is flushed to disk and renamed, so a
/// reader (or a crash) sees either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
