//! Checkpoints in the safetensors format, laid out for PyTorch: each network's tensors are named
//! as in an `nn.Sequential` of its layers ("generator.2.weight", a Linear weight [out, in]), the
//! generator samples come from (the moving average, when the run keeps one) under
//! `generator_ema.`, and the optimizers' state under `optimizer.`; the metadata holds the step,
//! the RNG counters and the run's config. `safetensors.torch.load_file` reads it, and a
//! state_dict with the prefix stripped loads into the matching `nn.Sequential` (docs/outputs.md).
//!
//! Writes are atomic: a temporary file is written, flushed and renamed over the old one, so the
//! previous checkpoint survives until the new one is whole. Checkpoints of format 1 (before the
//! PyTorch layout) still load.

use crate::config::TrainConfig;
use crate::gan::{GanState, NetState, RngState};
use crate::model::{BuiltNet, NamedTensor};
use anyhow::{Context, Result, bail};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

const FORMAT: &str = "duel-checkpoint-2";
const FORMAT_V1: &str = "duel-checkpoint-1";
pub const FILE_NAME: &str = "checkpoint.safetensors";

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub config: TrainConfig,
    /// Values per sample and whether they are images (fixes the networks' shapes).
    pub dim: usize,
    pub image_shape: Option<(usize, usize, usize)>,
    pub state: GanState,
}

/// `t`'s values from the flat buffer, in PyTorch's layout.
fn to_torch(t: &NamedTensor, flat: &[f32]) -> Vec<f32> {
    let v = &flat[t.offset..t.offset + t.len];
    if !t.transposed {
        return v.to_vec();
    }
    // Stored [cols, rows] = the transpose of PyTorch's [rows, cols].
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut out = vec![0.0; t.len];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = v[c * rows + r];
        }
    }
    out
}

/// The inverse of `to_torch`, into the flat buffer.
fn from_torch(t: &NamedTensor, torch: &[f32], flat: &mut [f32]) {
    let v = &mut flat[t.offset..t.offset + t.len];
    if !t.transposed {
        v.copy_from_slice(torch);
        return;
    }
    let (rows, cols) = (t.shape[0], t.shape[1]);
    for r in 0..rows {
        for c in 0..cols {
            v[c * rows + r] = torch[r * cols + c];
        }
    }
}

/// A tensor's values as a checkpoint stores them: f32, or int64 for counts (PyTorch's dtype for
/// batch norm's num_batches_tracked, so a state_dict loads with strict=True as it is).
#[derive(Clone, Debug, PartialEq)]
enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Values {
    fn dtype(&self) -> Dtype {
        match self {
            Values::F32(_) => Dtype::F32,
            Values::I64(_) => Dtype::I64,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Values::F32(v) => bytemuck::cast_slice(v),
            Values::I64(v) => bytemuck::cast_slice(v),
        }
    }
}

/// (name, shape, values) of every tensor a network contributes under `prefix`.
fn net_tensors(
    prefix: &str,
    net: &BuiltNet,
    params: &[f32],
    state: &[f32],
) -> Vec<(String, Vec<usize>, Values)> {
    let mut out = Vec::new();
    for t in net.param_tensors() {
        out.push((
            format!("{prefix}.{}", t.key),
            t.shape.clone(),
            Values::F32(to_torch(t, params)),
        ));
    }
    for t in net.state_tensors() {
        let v = &state[t.offset..t.offset + t.len];
        let values = match t.integer {
            true => Values::I64(v.iter().map(|&x| x as i64).collect()),
            false => Values::F32(v.to_vec()),
        };
        out.push((format!("{prefix}.{}", t.key), t.shape.clone(), values));
    }
    out
}

/// A network's state tensors under `prefix` of `st`, into a flat buffer (counts from int64).
fn read_state(st: &SafeTensors, prefix: &str, net: &BuiltNet) -> Result<Vec<f32>> {
    let mut state = vec![0.0; net.state_count()];
    for t in net.state_tensors() {
        let name = format!("{prefix}.{}", t.key);
        let v = st
            .tensor(&name)
            .with_context(|| format!("tensor {name} is missing"))?;
        let want = if t.integer { Dtype::I64 } else { Dtype::F32 };
        if v.dtype() != want || v.shape() != t.shape {
            bail!(
                "tensor {name} is {:?} {:?}; this model needs {want:?} {:?}",
                v.dtype(),
                v.shape(),
                t.shape
            );
        }
        let out = &mut state[t.offset..t.offset + t.len];
        if t.integer {
            let ints: Vec<i64> = bytemuck::pod_collect_to_vec(v.data());
            for (o, i) in out.iter_mut().zip(ints) {
                *o = i as f32;
            }
        } else {
            out.copy_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(v.data()));
            refuse_non_finite(&name, out)?;
        }
    }
    Ok(state)
}

/// A tensor holding NaN or ±∞ (a diverged run's) is refused, naming it and the first bad index.
fn refuse_non_finite(name: &str, v: &[f32]) -> Result<()> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        bail!(
            "tensor {name} holds {} at index {i}; a run that diverged wrote it: use an earlier \
             checkpoint",
            v[i]
        );
    }
    Ok(())
}

/// A checkpoint of the first `sagan32` (a DCGAN-like model with attention, before the preset
/// was re-founded on residual blocks) records `preset = "sagan32"` over that model's tensors:
/// it is read as `sagan32-dcgan`, the preset that model now has. Any other config is kept.
fn with_legacy_preset(
    config: TrainConfig,
    st: &SafeTensors,
    dim: usize,
    image_shape: Option<(usize, usize, usize)>,
) -> TrainConfig {
    use crate::config::Preset;
    // Whether every parameter tensor of the config's generator is in the file, with its shape.
    let fits = |cfg: &TrainConfig| {
        let g = cfg
            .gan(dim, image_shape)
            .and_then(|gan| gan.g.build("generator"));
        g.is_ok_and(|g| {
            g.param_tensors().iter().all(|t| {
                st.tensor(&format!("generator.{}", t.key))
                    .is_ok_and(|v| v.shape() == t.shape.as_slice())
            })
        })
    };
    if config.preset != Preset::Sagan32 || fits(&config) {
        return config;
    }
    let old = TrainConfig {
        preset: Preset::Sagan32Dcgan,
        ..config.clone()
    };
    if fits(&old) { old } else { config }
}

impl Checkpoint {
    pub fn save(&self, path: &Path) -> Result<()> {
        let gan = self.config.gan(self.dim, self.image_shape)?;
        let (g_net, d_net) = gan.build()?;
        let s = &self.state;
        let mut tensors = Vec::new();
        tensors.extend(net_tensors("generator", &g_net, &s.g.params, &s.g.state));
        if let Some(avg) = &s.g_ema {
            let state = s.g_ema_state.as_ref().unwrap_or(&s.g.state);
            tensors.extend(net_tensors("generator_ema", &g_net, avg, state));
        }
        tensors.extend(net_tensors(
            "discriminator",
            &d_net,
            &s.d.params,
            &s.d.state,
        ));
        for (name, net) in [("generator", &s.g), ("discriminator", &s.d)] {
            for (what, v) in [("m", &net.opt_m), ("v", &net.opt_v)] {
                tensors.push((
                    format!("optimizer.{name}.{what}"),
                    vec![v.len()],
                    Values::F32(v.clone()),
                ));
            }
        }
        let views = tensors
            .iter()
            .map(|(n, shape, v)| {
                Ok((
                    n.clone(),
                    TensorView::new(v.dtype(), shape.clone(), v.bytes())?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
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
            (
                "fingerprint".to_string(),
                crate::run_dir::fingerprint(&self.config, self.dim, self.image_shape),
            ),
            ("generator.describe".to_string(), g_net.describe()),
            ("discriminator.describe".to_string(), d_net.describe()),
        ]);
        if let Some((c, h, w)) = self.image_shape {
            meta.insert("image_shape".into(), format!("{c},{h},{w}"));
        }
        if let Some((level, alpha)) = growth(&gan, s.iteration) {
            meta.insert("progressive.level".into(), level.to_string());
            meta.insert("progressive.alpha".into(), alpha.to_string());
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
        let format = get("format")?.as_str();
        if format != FORMAT && format != FORMAT_V1 {
            bail!(
                "it was written as {format:?}, which this version of duel ({}) cannot read; it \
                 reads {FORMAT:?} and {FORMAT_V1:?}",
                env!("CARGO_PKG_VERSION")
            );
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
        // The fingerprint is of the config as written; the networks are those the tensors fit.
        let recorded_config = config.clone();
        let config = with_legacy_preset(config, &st, dim, image_shape);
        let gan = config.gan(dim, image_shape)?;
        let (g_net, d_net) = gan.build()?;
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
            let v: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
            refuse_non_finite(name, &v)?;
            Ok(v)
        };
        let v1 = format == FORMAT_V1;
        // A network's parameters (and state) under `prefix`, into flat buffers.
        let read_net = |prefix: &str, net: &BuiltNet| -> Result<(Vec<f32>, Vec<f32>)> {
            let mut params = vec![0.0; net.param_count()];
            for (i, t) in net.param_tensors().iter().enumerate() {
                if v1 {
                    // Format 1: "prefix.linear{j}.weight" [in, out] and ".bias", already in the
                    // flat layout (every parametrised layer was a Linear).
                    let name = format!(
                        "{prefix}.linear{}.{}",
                        i / 2,
                        t.key.rsplit('.').next().unwrap_or("")
                    );
                    let shape = if t.transposed {
                        vec![t.shape[1], t.shape[0]]
                    } else {
                        t.shape.clone()
                    };
                    params[t.offset..t.offset + t.len].copy_from_slice(&read(&name, &shape)?);
                } else {
                    let v = read(&format!("{prefix}.{}", t.key), &t.shape)?;
                    from_torch(t, &v, &mut params);
                }
            }
            Ok((params, read_state(&st, prefix, net)?))
        };
        let mut nets = Vec::new();
        for (prefix, net) in [("generator", &g_net), ("discriminator", &d_net)] {
            let (params, state) = read_net(prefix, net)?;
            let n = params.len();
            let opt = |what: &str| {
                let name = if v1 {
                    format!("{prefix}.optimizer.{what}")
                } else {
                    format!("optimizer.{prefix}.{what}")
                };
                read(&name, &[n])
            };
            nets.push(NetState {
                opt_m: opt("m")?,
                opt_v: opt("v")?,
                params,
                state,
                steps: num(&format!("{prefix}.steps"))?,
                dropout_counter: num(&format!("{prefix}.dropout"))?,
            });
        }
        let d = nets.pop().expect("two networks");
        let g = nets.pop().expect("two networks");
        let (g_ema, g_ema_state) = match (config.ema > 0.0, v1) {
            (false, _) => (None, None),
            (true, true) => (
                Some(read("generator.ema", &[g.params.len()])?),
                Some(g.state.clone()),
            ),
            (true, false) => {
                let (p, s) = read_net("generator_ema", &g_net)?;
                (Some(p), Some(s))
            }
        };
        if let Some(recorded) = meta.get("fingerprint") {
            let own = crate::run_dir::fingerprint(&recorded_config, dim, image_shape);
            if *recorded != own {
                bail!(
                    "its fingerprint {recorded} is not its config's ({own}): the metadata was \
                     edited; use the checkpoint as duel wrote it"
                );
            }
        }
        let iteration = num("iteration")?;
        // Progressive growing's phase: what the schedule gives at this iteration must be what
        // the run was at when it wrote the checkpoint.
        if let Some((level, alpha)) = growth(&gan, iteration) {
            let saved = (meta.get("progressive.level"), meta.get("progressive.alpha"));
            let (Some(l), Some(a)) = saved else {
                bail!("a progressive run's checkpoint must hold progressive.level and .alpha");
            };
            if l.parse::<usize>().ok() != Some(level) || a.parse::<f32>().ok() != Some(alpha) {
                bail!(
                    "it was written at level {l}, α {a}, but its config's schedule puts \
                     iteration {iteration} at level {level}, α {alpha}"
                );
            }
        }
        Ok(Checkpoint {
            config,
            dim,
            image_shape,
            state: GanState {
                iteration,
                rng: RngState {
                    noise: num("rng.noise")?,
                    batch: num("rng.batch")?,
                },
                g,
                d,
                g_ema,
                g_ema_state,
            },
        })
    }
}

impl Checkpoint {
    /// Progressive growing's (level, α) at this checkpoint's iteration, for a progressive run:
    /// the resolution its generator samples at.
    pub fn growth(&self) -> Result<Option<(usize, f32)>> {
        let gan = self.config.gan(self.dim, self.image_shape)?;
        Ok(growth(&gan, self.state.iteration))
    }
}

/// Progressive growing's (level, α) after `iteration` iterations, for a progressive pair.
fn growth(gan: &crate::gan::GanConfig, iteration: u64) -> Option<(usize, f32)> {
    crate::gan::progressive_spec(gan).map(|p| p.growth(iteration * gan.batch as u64))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Preset, TrainConfig};
    use crate::model::NetSpec;

    fn state(cfg: &TrainConfig) -> GanState {
        let (g_net, d_net) = cfg.gan(2, None).unwrap().build().unwrap();
        let net = |built: &BuiltNet, seed: u64| {
            let params = built.init_params(seed, 0);
            let n = params.len();
            NetState {
                opt_m: (0..n).map(|i| i as f32 * 1e-3).collect(),
                opt_v: (0..n).map(|i| i as f32 * 1e-4).collect(),
                params,
                state: Vec::new(),
                steps: 17,
                dropout_counter: 5,
            }
        };
        let g = net(&g_net, 1);
        GanState {
            iteration: 17,
            rng: RngState {
                noise: 123,
                batch: 456,
            },
            g_ema: Some(g.params.iter().map(|v| v * 0.5).collect()),
            g_ema_state: Some(Vec::new()),
            g,
            d: net(&d_net, 2),
        }
    }

    /// Writes `s` as format 1 did: "prefix.linear{j}.weight" [in, out] in the flat layout.
    fn save_v1(cfg: &TrainConfig, s: &GanState) -> Vec<u8> {
        let (g_net, d_net) = cfg.gan(2, None).unwrap().build().unwrap();
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        for (prefix, spec, net) in [("generator", &g_net, &s.g), ("discriminator", &d_net, &s.d)] {
            for (i, t) in spec.param_tensors().iter().enumerate() {
                let what = if i % 2 == 0 { "weight" } else { "bias" };
                let shape = if t.transposed {
                    vec![t.shape[1], t.shape[0]]
                } else {
                    t.shape.clone()
                };
                let v = net.params[t.offset..t.offset + t.len].to_vec();
                tensors.push((format!("{prefix}.linear{}.{what}", i / 2), shape, v));
            }
            for (what, v) in [("m", &net.opt_m), ("v", &net.opt_v)] {
                tensors.push((
                    format!("{prefix}.optimizer.{what}"),
                    vec![v.len()],
                    v.clone(),
                ));
            }
        }
        let avg = s.g_ema.clone().unwrap();
        tensors.push(("generator.ema".into(), vec![avg.len()], avg));
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, sh, v)| {
                let view = TensorView::new(Dtype::F32, sh.clone(), bytemuck::cast_slice(v));
                (n.clone(), view.unwrap())
            })
            .collect();
        let mut meta = HashMap::new();
        for (k, v) in [
            ("format", FORMAT_V1.to_string()),
            ("config", cfg.to_toml()),
            ("dim", "2".into()),
            ("iteration", s.iteration.to_string()),
            ("rng.noise", s.rng.noise.to_string()),
            ("rng.batch", s.rng.batch.to_string()),
            ("generator.steps", "17".into()),
            ("generator.dropout", "5".into()),
            ("discriminator.steps", "17".into()),
            ("discriminator.dropout", "5".into()),
        ] {
            meta.insert(k.to_string(), v);
        }
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    #[test]
    fn format_2_round_trips_and_format_1_still_loads() {
        let cfg = TrainConfig::preset(Preset::Small, "ring8");
        let s = state(&cfg);
        let ck = Checkpoint {
            config: cfg.clone(),
            dim: 2,
            image_shape: None,
            state: s.clone(),
        };
        let path = std::env::temp_dir().join(format!("duel-ck-{}.safetensors", std::process::id()));
        ck.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), ck);
        let v1 = Checkpoint::parse(&save_v1(&cfg, &s)).unwrap();
        assert_eq!(v1, ck, "a format-1 checkpoint loads to the same state");
        // The PyTorch layout: Linear weights [out, in], the transpose of the flat layout.
        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let w = st.tensor("generator.0.weight").unwrap();
        assert_eq!(w.shape(), &[128, 8]);
        let w: Vec<f32> = bytemuck::pod_collect_to_vec(w.data());
        // Flat [in=8, out=128]: element (i, o) at i·128 + o; PyTorch's (o, i) at o·8 + i.
        assert_eq!(w[3 * 8 + 5], s.g.params[5 * 128 + 3]);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn an_unknown_format_is_refused_naming_it() {
        let cfg = TrainConfig::preset(Preset::Small, "ring8");
        let mut bytes = save_v1(&cfg, &state(&cfg));
        let at = bytes
            .windows(FORMAT_V1.len())
            .position(|w| w == FORMAT_V1.as_bytes())
            .unwrap();
        bytes[at..at + FORMAT_V1.len()].copy_from_slice(b"duel-checkpoint-9");
        let err = format!("{:#}", Checkpoint::parse(&bytes).unwrap_err());
        assert!(
            err.contains("duel-checkpoint-9") && err.contains("cannot read"),
            "{err}"
        );
    }

    use crate::model::{Layer, Shape};

    #[test]
    fn batch_norm_state_is_stored_as_pytorch_holds_it() {
        let spec = NetSpec {
            input: Shape::image(2, 3, 3),
            layers: vec![
                Layer::BatchNorm,
                Layer::Reshape(Shape::flat(18)),
                Layer::Linear(1),
            ],
        };
        let built = spec.build("generator").unwrap();
        let params = built.init_params(1, 0);
        // running_mean, running_var, num_batches_tracked.
        let state = vec![0.5, -0.25, 1.5, 2.0, 12.0];
        let tensors = net_tensors("generator", &built, &params, &state);
        let views: Vec<_> = tensors
            .iter()
            .map(|(n, shape, v)| {
                let t = TensorView::new(v.dtype(), shape.clone(), v.bytes()).unwrap();
                (n.clone(), t)
            })
            .collect();
        let data = safetensors::serialize(views, None).unwrap();
        let st = SafeTensors::deserialize(&data).unwrap();
        let count = st.tensor("generator.0.num_batches_tracked").unwrap();
        assert_eq!((count.dtype(), count.shape()), (Dtype::I64, &[][..]));
        assert_eq!(count.data(), 12i64.to_le_bytes());
        let var = st.tensor("generator.0.running_var").unwrap();
        assert_eq!((var.dtype(), var.shape()), (Dtype::F32, &[2][..]));
        for key in ["0.weight", "0.bias", "0.running_mean", "2.weight", "2.bias"] {
            assert!(st.tensor(&format!("generator.{key}")).is_ok(), "{key}");
        }
        assert_eq!(read_state(&st, "generator", &built).unwrap(), state);
    }
}
