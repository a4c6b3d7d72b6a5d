//! Building an ONNX graph node by node: named initializers for the weights, fresh names for
//! intermediate tensors, and the few composite steps (activations, reshapes, per-channel
//! broadcasts) that several layers share. Tensors of flat layers are [N, n]; images [N, C, H, W].

use super::proto::*;
use crate::backend::Activation;
use crate::layers::Shape;
use anyhow::{Result, bail};

/// An attribute value of a node.
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Str(&'static str),
}

pub struct OnnxGraph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    next: usize,
    /// The name of the int64 [N] class-label input, when the network is conditional.
    pub labels: Option<String>,
}

impl Default for OnnxGraph {
    fn default() -> Self {
        Self::new()
    }
}

impl OnnxGraph {
    pub fn new() -> Self {
        OnnxGraph {
            nodes: Vec::new(),
            initializers: Vec::new(),
            next: 0,
            labels: None,
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// A float32 initializer of shape `dims` holding `data` (row-major).
    pub fn weight(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            data.len(),
            "{hint}: dims {dims:?} do not hold {} values",
            data.len()
        );
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// A 1-D int64 initializer (shapes, axes).
    pub fn ints(&mut self, hint: &str, data: &[i64]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: INT64,
            int64_data: data.to_vec(),
            name: name.clone(),
            ..Default::default()
        });
        name
    }

    /// A node of `op` over `inputs` ("" for an omitted optional input); returns its output.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        let attribute = attrs
            .into_iter()
            .map(|(name, a)| {
                let mut p = AttributeProto {
                    name: name.into(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => (p.i, p.r#type) = (i, ATTR_INT),
                    Attr::Float(f) => (p.f, p.r#type) = (f, ATTR_FLOAT),
                    Attr::Ints(v) => (p.ints, p.r#type) = (v, ATTR_INTS),
                    Attr::Str(s) => (p.s, p.r#type) = (s.as_bytes().to_vec(), ATTR_STRING),
                }
                p
            })
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute,
        });
        out
    }

    /// `act` applied to `x` (Identity adds nothing).
    pub fn activation(&mut self, x: &str, act: Activation) -> String {
        match act {
            Activation::Identity => x.to_string(),
            Activation::Relu => self.node("Relu", &[x], vec![]),
            Activation::LeakyRelu(a) => {
                self.node("LeakyRelu", &[x], vec![("alpha", Attr::Float(a))])
            }
            Activation::Tanh => self.node("Tanh", &[x], vec![]),
            Activation::Sigmoid => self.node("Sigmoid", &[x], vec![]),
        }
    }

    /// `x` seen as `to`: [N, n] for a flat shape, [N, C, H, W] for an image.
    pub fn reshape(&mut self, x: &str, to: Shape) -> String {
        let dims: Vec<i64> = if to.is_flat() {
            vec![-1, to.c as i64]
        } else {
            vec![-1, to.c as i64, to.h as i64, to.w as i64]
        };
        let shape = self.ints("shape", &dims);
        self.node("Reshape", &[x, &shape], vec![])
    }

    /// The class labels' input; an error when the network was not declared conditional.
    pub fn labels(&self) -> Result<String> {
        match &self.labels {
            Some(l) => Ok(l.clone()),
            None => bail!("a conditional layer in a generator without a class input"),
        }
    }

    /// The model: `inputs` and `outputs` as (name, element type, dims; None for the batch).
    pub fn finish(
        self,
        inputs: &[(&str, i32, Vec<Option<usize>>)],
        outputs: &[(&str, i32, Vec<Option<usize>>)],
        doc: String,
    ) -> ModelProto {
        let info = |(name, elem, dims): &(&str, i32, Vec<Option<usize>>)| ValueInfoProto {
            name: name.to_string(),
            r#type: Some(TypeProto {
                tensor_type: Some(TensorTypeProto {
                    elem_type: *elem,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|d| match d {
                                Some(v) => Dimension {
                                    dim_value: Some(*v as i64),
                                    dim_param: None,
                                },
                                None => Dimension {
                                    dim_value: None,
                                    dim_param: Some("N".into()),
                                },
                            })
                            .collect(),
                    }),
                }),
            }),
        };
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "duel".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc,
            graph: Some(GraphProto {
                node: self.nodes,
                name: "generator".into(),
                initializer: self.initializers,
                input: inputs.iter().map(info).collect(),
                output: outputs.iter().map(info).collect(),
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
        }
    }

    /// Renames the last node's output (the graph's output must carry its declared name).
    pub fn rename_output(&mut self, from: &str, to: &str) {
        for n in &mut self.nodes {
            for o in &mut n.output {
                if o == from {
                    *o = to.to_string();
                }
            }
            for i in &mut n.input {
                if i == from {
                    *i = to.to_string();
                }
            }
        }
    }
}

/// Per-channel values broadcast against a layer's tensor: [C] for flat [N, C], [C, 1, 1] for
/// images.
pub fn channel_dims(shape: Shape) -> Vec<usize> {
    if shape.is_flat() {
        vec![shape.c]
    } else {
        vec![shape.c, 1, 1]
    }
}

impl OnnxGraph {
    /// Nearest-neighbour 2× upsampling of [N, C, H, W] (`Upsample2x`): pixel (i, j) of the output
    /// is pixel (⌊i/2⌋, ⌊j/2⌋) of the input.
    pub fn upsample2x(&mut self, x: &str) -> String {
        let scales = self.weight("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
        self.node(
            "Resize",
            &[x, "", &scales],
            vec![
                ("mode", Attr::Str("nearest")),
                ("coordinate_transformation_mode", Attr::Str("asymmetric")),
                ("nearest_mode", Attr::Str("floor")),
            ],
        )
    }

    /// Gathers row `label` of `table` [K, C] for each sample: [N, C], or [N, C, 1, 1] when
    /// `image` (to broadcast over an image's positions).
    pub fn per_class(
        &mut self,
        hint: &str,
        table: &[f32],
        c: usize,
        image: bool,
    ) -> Result<String> {
        let labels = self.labels()?;
        let t = self.weight(hint, &[table.len() / c, c], table);
        let rows = self.node("Gather", &[&t, &labels], vec![("axis", Attr::Int(0))]);
        if !image {
            return Ok(rows);
        }
        let shape = self.ints("shape", &[-1, c as i64, 1, 1]);
        Ok(self.node("Reshape", &[&rows, &shape], vec![]))
    }
}
