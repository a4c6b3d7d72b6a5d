//! ONNX export of a run's generator (`duel export --onnx`): the network `duel sample` runs —
//! the moving average of G's weights when the run kept one, batch norm with the running (or
//! standing) statistics sampling uses, spectral norm and equalized learning rate folded into
//! the weights, a progressive generator at its checkpoint's level and fade — as an opset-17
//! graph with a dynamic batch dimension: `noise` float32 [N, noise-dim] (and `class` int64 [N]
//! for a conditional run) in, `images` float32 [N, C, H, W] in [0, 1] out as `duel sample`
//! writes them to .npy (or `samples` [N, 2] for the 2-D point sets).
//!
//! Each module appends its own inference forward (`Module::onnx`); `walk` runs a list of built
//! modules, reshaping between flat and image tensors where one module's view of the values
//! differs from the last one's.

pub mod graph;
pub mod proto;

use crate::checkpoint::{Checkpoint, write_atomic};
use crate::layers::{Built, Shape};
use anyhow::{Context, Result};
pub use graph::{Attr, OnnxGraph, channel_dims};
use prost::Message;
use std::path::Path;

/// The built `modules` on input `x` (of shape `input`), each taking its tensors in order from
/// `params` and `state` (one slice per tensor, as `Module::params` and `state` list them).
/// Returns the output and its shape.
pub fn walk(
    g: &mut OnnxGraph,
    modules: &[Built],
    input: Shape,
    x: &str,
    params: &[&[f32]],
    state: &[&[f32]],
) -> Result<(String, Shape)> {
    let (mut x, mut shape) = (x.to_string(), input);
    let (mut p, mut s) = (0, 0);
    for b in modules {
        let m = &b.module;
        let (np, ns) = (m.params().len(), m.state().len());
        if m.input().is_flat() != shape.is_flat() {
            x = g.reshape(&x, m.input());
        }
        x = m
            .onnx(g, &x, &params[p..p + np], &state[s..s + ns])
            .with_context(|| format!("layer {} ({})", b.index, m.describe()))?;
        (p, s, shape) = (p + np, s + ns, m.output());
    }
    Ok((x, shape))
}

/// Writes the checkpoint's generator to `path` as an ONNX model; errors name the layer that
/// has no export.
pub fn export_generator(ck: &Checkpoint, path: &Path) -> Result<()> {
    let gan = ck.config.gan(ck.dim, ck.image_shape)?;
    let spec = &gan.g;
    let s = &ck.state;
    let weights = s.g_ema.as_ref().unwrap_or(&s.g.params);
    let values = s.g_ema_state.as_ref().unwrap_or(&s.g.state);
    let mut built = spec.build("generator")?;
    if let Some((level, alpha)) = ck.growth()? {
        for b in &mut built.modules {
            b.module.set_growth(level, alpha);
        }
    }
    let params: Vec<&[f32]> = built
        .param_tensors()
        .iter()
        .map(|t| &weights[t.offset..t.offset + t.len])
        .collect();
    let state: Vec<&[f32]> = built
        .state_tensors()
        .iter()
        .map(|t| &values[t.offset..t.offset + t.len])
        .collect();
    let mut g = OnnxGraph::new();
    let zdim = spec.input.len();
    let mut inputs = vec![("noise", proto::FLOAT, vec![None, Some(zdim)])];
    if spec.classes().is_some() {
        g.labels = Some("class".into());
        inputs.push(("class", proto::INT64, vec![None]));
    }
    let (y, shape) = walk(&mut g, &built.modules, spec.input, "noise", &params, &state)
        .context("the generator cannot be exported to ONNX")?;
    let (name, dims) = match ck.image_shape {
        Some((c, h, w)) => {
            let y = if shape.is_flat() {
                g.reshape(&y, Shape::image(c, h, w))
            } else {
                y
            };
            // As `duel sample` writes .npy: (y − lo)/(hi − lo), clamped to [0, 1].
            let (lo, hi) = ck.config.data_range();
            let lo_t = g.weight("data_low", &[1], &[lo]);
            let span = g.weight("data_span", &[1], &[hi - lo]);
            let y = g.node("Sub", &[&y, &lo_t], vec![]);
            let y = g.node("Div", &[&y, &span], vec![]);
            let (zero, one) = (g.weight("zero", &[], &[0.0]), g.weight("one", &[], &[1.0]));
            let y = g.node("Clip", &[&y, &zero, &one], vec![]);
            g.rename_output(&y, "images");
            ("images", vec![None, Some(c), Some(h), Some(w)])
        }
        None => {
            let y = g.node("Identity", &[&y], vec![]);
            g.rename_output(&y, "samples");
            ("samples", vec![None, Some(shape.len())])
        }
    };
    let doc = format!(
        "duel generator, iteration {}: {}",
        s.iteration,
        built.describe()
    );
    let model = g.finish(&inputs, &[(name, proto::FLOAT, dims)], doc);
    write_atomic(path, &model.encode_to_vec())
        .with_context(|| format!("{}: cannot write the ONNX model", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Activation;
    use crate::layers::{Layer, NetSpec};

    /// Every preset's generator (and a conditional, spectrally normalised DCGAN's) builds into
    /// a graph with no layer refused; tests/onnx_export.rs runs such graphs in onnxruntime.
    #[test]
    fn every_presets_generator_exports() {
        use crate::config::{Preset, TrainConfig};
        use clap::ValueEnum;
        let mut extra = vec![("dcgan", "conditional = true\nsn = \"both\"\n")];
        let names: Vec<String> = Preset::value_variants().iter().map(|p| p.name()).collect();
        extra.extend(names.iter().map(|n| (n.as_str(), "")));
        for (name, more) in extra {
            let size = if name == "progan" {
                "image-size = 32\n"
            } else {
                ""
            };
            let file = format!("preset = \"{name}\"\nwidth = 4\n{size}{more}");
            let mut cfg = TrainConfig::resolve(Some((&file, "t.toml")), Default::default())
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            cfg.classes = 10;
            let image = match name {
                "small" => None,
                "dcgan32" | "sagan32" | "sngan-resnet32" | "sagan32-dcgan" | "progan" => {
                    Some((3, 32, 32))
                }
                "dcgan64" => Some((3, 64, 64)),
                _ => Some((1, 28, 28)),
            };
            let dim = image.map_or(2, |(c, h, w)| c * h * w);
            let (spec, _) = cfg.networks(dim, image).unwrap();
            let built = spec.build("g").unwrap();
            let (w, st) = (built.init_params(1, 0), built.init_state());
            let slices = |v: &[f32], t: &[crate::model::NamedTensor]| -> Vec<Vec<f32>> {
                t.iter()
                    .map(|t| v[t.offset..t.offset + t.len].to_vec())
                    .collect()
            };
            let (p, s) = (
                slices(&w, built.param_tensors()),
                slices(&st, built.state_tensors()),
            );
            let p: Vec<&[f32]> = p.iter().map(|v| &v[..]).collect();
            let s: Vec<&[f32]> = s.iter().map(|v| &v[..]).collect();
            let mut g = OnnxGraph::new();
            g.labels = spec.classes().map(|_| "class".to_string());
            let (_, shape) = walk(&mut g, &built.modules, spec.input, "noise", &p, &s)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(shape, built.output_shape(), "{name}");
        }
    }

    #[test]
    fn a_layer_without_an_export_is_named() {
        let spec = NetSpec::flat(
            4,
            vec![
                Layer::Linear(6),
                Layer::Act(Activation::Relu),
                Layer::Maxout(2),
            ],
        );
        let built = spec.build("g").unwrap();
        let w = vec![0.5f32; built.param_count()];
        let params: Vec<&[f32]> = built
            .param_tensors()
            .iter()
            .map(|t| &w[t.offset..t.offset + t.len])
            .collect();
        let mut g = OnnxGraph::new();
        let err = walk(&mut g, &built.modules, spec.input, "noise", &params, &[]).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("layer 2 (Maxout"), "{text}");
        assert!(text.contains("has no ONNX export"), "{text}");
    }
}
