//! The feature network's weights as a safetensors file: each tensor in PyTorch's layout under
//! "trunk.<i>.<name>" and "head.<i>.<name>" (i the layer's index in an `nn.Sequential` of the
//! unfused layers, as duel's checkpoints name them), and one metadata entry, `duel_features`, a
//! JSON object of sorted keys (the format, both networks' descriptions, how they were trained).
//! One entry, because safetensors writes a metadata map in hash order: with several the bytes
//! would differ between two writes of the same weights.

use super::{head_spec, trunk_spec};
use crate::model::{NamedTensor, NetSpec};
use anyhow::{Context, Result, bail};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const FORMAT: &str = "duel-features-1";
const META_KEY: &str = "duel_features";

/// Both networks' parameters (flat, duel's layout) and what the file says about them.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub trunk: Vec<f32>,
    pub head: Vec<f32>,
    /// Free-form facts kept in the file: training options, held-out accuracy.
    pub info: BTreeMap<String, String>,
}

/// `t`'s values in PyTorch's layout (duel keeps a Linear weight [in, out], PyTorch [out, in]).
fn to_torch(t: &NamedTensor, flat: &[f32]) -> Vec<f32> {
    let v = &flat[t.offset..t.offset + t.len];
    if !t.transposed {
        return v.to_vec();
    }
    let (rows, cols) = (t.shape[0], t.shape[1]);
    (0..rows * cols)
        .map(|i| v[(i % cols) * rows + i / cols])
        .collect()
}

fn from_torch(t: &NamedTensor, torch: &[f32], flat: &mut [f32]) {
    let v = &mut flat[t.offset..t.offset + t.len];
    if !t.transposed {
        v.copy_from_slice(torch);
        return;
    }
    let (rows, cols) = (t.shape[0], t.shape[1]);
    for (i, &x) in torch.iter().enumerate() {
        v[(i % cols) * rows + i / cols] = x;
    }
}

impl Weights {
    /// The weights shipped in the binary.
    pub fn shipped() -> Result<Self> {
        Self::parse(super::SHIPPED).context("the shipped feature network")
    }

    pub fn load(path: &Path) -> Result<Self> {
        let data =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        Self::parse(&data).with_context(|| {
            format!(
                "{}: not a duel feature network (write one with duel features train --out FILE)",
                path.display()
            )
        })
    }

    pub fn parse(data: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(data).context("not a whole safetensors file")?;
        let (_, meta) = SafeTensors::read_metadata(data)?;
        let json = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .context("no duel_features metadata")?;
        let mut info: BTreeMap<String, String> = serde_json::from_str(json)?;
        if info.get("format").map(String::as_str) != Some(FORMAT) {
            bail!(
                "format {:?}; this duel reads {FORMAT}",
                info.get("format").cloned().unwrap_or_default()
            );
        }
        info.remove("format");
        let read = |prefix: &str, spec: NetSpec| -> Result<Vec<f32>> {
            let net = spec.build(prefix)?;
            let mut flat = vec![0.0; net.param_count()];
            for t in net.param_tensors() {
                let name = format!("{prefix}.{}", t.key);
                let v = st
                    .tensor(&name)
                    .with_context(|| format!("tensor {name} is missing"))?;
                if v.dtype() != Dtype::F32 || v.shape() != t.shape {
                    bail!(
                        "tensor {name} is {:?} {:?}; the network needs F32 {:?}",
                        v.dtype(),
                        v.shape(),
                        t.shape
                    );
                }
                from_torch(t, &bytemuck::pod_collect_to_vec(v.data()), &mut flat);
            }
            Ok(flat)
        };
        Ok(Self {
            trunk: read("trunk", trunk_spec())?,
            head: read("head", head_spec())?,
            info,
        })
    }

    /// The file's bytes: the same weights and info give the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        let (trunk, head) = (trunk_spec().build("trunk")?, head_spec().build("head")?);
        for (prefix, net, flat) in [("trunk", &trunk, &self.trunk), ("head", &head, &self.head)] {
            if flat.len() != net.param_count() {
                bail!(
                    "{prefix}: {} parameters, the network has {}",
                    flat.len(),
                    net.param_count()
                );
            }
            for t in net.param_tensors() {
                let name = format!("{prefix}.{}", t.key);
                tensors.push((name, t.shape.clone(), to_torch(t, flat)));
            }
        }
        let views = tensors
            .iter()
            .map(|(n, shape, v)| {
                let view = TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(v))?;
                Ok((n.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut info = self.info.clone();
        info.insert("format".into(), FORMAT.into());
        info.insert("trunk".into(), trunk.describe());
        info.insert("head".into(), head.describe());
        let meta = HashMap::from([(META_KEY.to_string(), serde_json::to_string(&info)?)]);
        Ok(safetensors::serialize(views, Some(meta))?)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::checkpoint::write_atomic(path, &self.to_bytes()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(seed: u64) -> Weights {
        Weights {
            trunk: trunk_spec().build("trunk").unwrap().init_params(seed, 0),
            head: head_spec()
                .build("head")
                .unwrap()
                .init_params(seed, 1 << 48),
            info: BTreeMap::from([("epochs".into(), "3".into()), ("seed".into(), "9".into())]),
        }
    }

    #[test]
    fn round_trips_and_writes_the_same_bytes_twice() {
        let w = weights(4);
        let bytes = w.to_bytes().unwrap();
        assert_eq!(bytes, w.to_bytes().unwrap());
        let back = Weights::parse(&bytes).unwrap();
        assert_eq!(back.trunk, w.trunk);
        assert_eq!(back.head, w.head);
        assert_eq!(back.info["epochs"], "3");
        assert!(back.info["trunk"].contains("Linear(2048 → 128)"));
        // PyTorch's layout: the head's Linear weight is [10, 128].
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("head.1.weight").unwrap().shape(), [10, 128]);
    }

    #[test]
    fn a_foreign_file_is_refused_naming_the_problem() {
        let err = Weights::parse(b"not safetensors").unwrap_err();
        assert!(format!("{err:#}").contains("safetensors"), "{err:#}");
        let views: Vec<(String, TensorView)> = Vec::new();
        let other = safetensors::serialize(views, None).unwrap();
        let err = Weights::parse(&other).unwrap_err();
        assert!(format!("{err:#}").contains("duel_features"), "{err:#}");
    }
}
