//! A trained model as one standalone `.tflite` file that Google's LiteRT (TensorFlow Lite) runs
//! with no Fewshot code: the backbone's operators, copied from its file up to the last feature
//! map (computed in float from its uint8 weights, or with its own uint8 operators: see
//! [`Arithmetic`]), then the pooling and the head in float (mean, fully connected, ReLU for a
//! hidden layer, softmax). With mirroring on, the photo and its mirror image go through as a
//! batch of two and their probabilities are averaged, as Fewshot does.
//!
//! Input: uint8 `[1, 224, 224, 3]`, the photo's RGB framed as the model was trained (centre
//! square, or padded to a square) and resized to 224x224. Output: float `[1, classes]`, the
//! probabilities in label order. The labels and the input's description are in the file's
//! metadata (`fewshot`, JSON). The "none of these" check is not in the file.
//!
//! The flatbuffer is written with the `flatbuffers` crate (Google's own Rust runtime for the
//! format); the tables, field slots and codes are those of [`crate::tflite`], the schema the
//! backbone's loader (`backbone::tflite`) reads with.

use flatbuffers::{FlatBufferBuilder, TableFinishedWIPOffset, WIPOffset};
use serde::Serialize;

use crate::backbone::tflite::{read_graph, Options};
use crate::backbone::EMBEDDING_DIM;
use crate::classifier::Classifier;
use crate::engine::sha256_hex;
use crate::error::{Error, Result};
use crate::head::input_length;
use crate::preprocess::{Framing, View, INPUT_SIDE};
use crate::tflite::builtin_operator::{
    ADD, AVERAGE_POOL_2D, CONCATENATION, DEQUANTIZE, FULLY_CONNECTED, L2_NORMALIZATION, MEAN, RESIZE_BILINEAR, REVERSE_V2,
    SLICE, SOFTMAX,
};
use crate::tflite::{activation, tensor_type};

/// The metadata entry that holds [`Description`].
pub const METADATA_NAME: &str = "fewshot";

/// What the file's `fewshot` metadata says, as JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    pub format: &'static str,
    pub labels: Vec<String>,
    pub input: String,
    pub framing: Framing,
    pub output: String,
    pub mirror_averaged: bool,
    /// The share of the side cut away for the closer view averaged in (0: none).
    pub closer_view_zoom: f32,
    pub arithmetic: Arithmetic,
    pub backbone_sha256: String,
    pub not_included: String,
}

/// How the backbone's part of the file computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arithmetic {
    /// In float, from the file's own uint8 weights (a DEQUANTIZE before each convolution), as
    /// Fewshot computes: the same answers as Fewshot on 99 % of photos or more.
    Float,
    /// With the backbone's own uint8 operators, as its file does: for integer-only hardware.
    /// uint8 activations round every layer: on clothing-small's test photos 98.4 % got the same
    /// class as in Fewshot (the others were near-ties), against 100 % in float.
    Quantized,
}

impl Arithmetic {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "float" => Ok(Arithmetic::Float),
            "quantized" => Ok(Arithmetic::Quantized),
            other => Err(Error::BadConfig(format!("the arithmetic is float or quantized, not \"{other}\""))),
        }
    }
}

/// The `.tflite` file of a trained classifier, from the backbone file it was trained on.
pub fn tflite(weights: &[u8], classifier: &Classifier, arithmetic: Arithmetic) -> Result<Vec<u8>> {
    let info = classifier.info();
    let sha = sha256_hex(weights);
    if !info.backbone_sha256.is_empty() && info.backbone_sha256 != sha {
        return Err(Error::ModelFile(format!(
            "this model was trained on another backbone file (sha256 {}), not this one ({sha})",
            info.backbone_sha256
        )));
    }
    let views = classifier.views();
    let framing = views[0].framing;
    let side = INPUT_SIDE as i32;
    // A closer view is the square's centre resized back, as preprocess does on a square photo:
    // its border must fall on whole pixels of the 224x224 input.
    let cut = |zoom: f32| side as f32 * zoom / 2.0;
    // Only what this graph knows how to make (a view of a kind added to preprocess since is
    // refused here, never written as another view).
    let known = |v: &View| {
        let mut plain = View::default();
        (plain.framing, plain.flip, plain.zoom) = (v.framing, v.flip, v.zoom);
        plain == *v
    };
    if views.iter().any(|v| !known(v) || v.framing != framing || (v.zoom != 0.0 && (framing != Framing::Crop || cut(v.zoom).fract() != 0.0))) {
        return Err(Error::ModelFile("this model's views cannot be written as one TFLite graph".into()));
    }
    let graph = read_graph(weights)?;
    let input = graph.inputs.first().and_then(|&i| graph.tensors.get(i as usize)).ok_or_else(|| {
        Error::Weights("the backbone file names no input".into())
    })?;
    let mut out = Graph::default();

    // The photo, and each view of it the model averages over, as one batch of uint8. In float,
    // the photo's quantization reads x as x / 127.5, and 1 is taken off after: Fewshot's
    // (x - 127.5) / 127.5.
    let pixels = match arithmetic {
        Arithmetic::Quantized => (input.scale.clone(), input.zero_point.clone()),
        Arithmetic::Float => (vec![1.0 / 127.5], vec![0]),
    };
    let uint8 = |name: &str, shape: &[i32]| Tensor {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: tensor_type::UINT8,
        data: vec![],
        quantization: Some((pixels.0.clone(), pixels.1.clone(), 0)),
    };
    let photo = out.tensor(uint8("photo", &[1, side, side, 3]));
    // The views are made from the photo as the backbone reads it: in float, after
    // (x / 127.5) - 1, so that the closer view is not rounded to 8 bits; quantized, in uint8.
    let (source, pixel) = match arithmetic {
        Arithmetic::Quantized => (photo, &uint8 as &dyn Fn(&str, &[i32]) -> Tensor),
        Arithmetic::Float => {
            let shape = [1, side, side, 3];
            let halves = out.tensor(float("pixels / 127.5", &shape));
            out.op(DEQUANTIZE, vec![photo], halves, Opts::None);
            let minus_one = out.tensor(constant_f32("minus one", &[1], &[-1.0]));
            let scaled = out.tensor(float("photo in [-1, 1]", &shape));
            out.op(ADD, vec![halves, minus_one], scaled, Opts::Read(Options::Add { activation: activation::NONE }));
            (scaled, &float as &dyn Fn(&str, &[i32]) -> Tensor)
        }
    };
    let batch = views.len() as i32;
    let mut view_tensors = vec![];
    let mut closer_views: Vec<(f32, i32)> = vec![];
    for view in &views {
        let mut seen = source;
        if let Some(&(_, closer)) = closer_views.iter().find(|(zoom, _)| *zoom == view.zoom) {
            seen = closer;
        } else if view.zoom != 0.0 {
            let cut = cut(view.zoom) as i32;
            let inner = side - 2 * cut;
            let begin = out.tensor(constant_i32("centre begins", &[0, cut, cut, 0]));
            let size = out.tensor(constant_i32("centre size", &[1, inner, inner, 3]));
            let centre = out.tensor(pixel("centre", &[1, inner, inner, 3]));
            out.op(SLICE, vec![seen, begin, size], centre, Opts::None);
            let new_size = out.tensor(constant_i32("closer view size", &[side, side]));
            let closer = out.tensor(pixel("closer view", &[1, side, side, 3]));
            out.op(RESIZE_BILINEAR, vec![centre, new_size], closer, Opts::ResizeBilinear { half_pixel_centers: true });
            closer_views.push((view.zoom, closer));
            seen = closer;
        }
        if view.flip {
            let axis = out.tensor(constant_i32("width axis", &[2]));
            let mirrored = out.tensor(pixel("mirror image", &[1, side, side, 3]));
            out.op(REVERSE_V2, vec![seen, axis], mirrored, Opts::None);
            seen = mirrored;
        }
        view_tensors.push(seen);
    }
    let backbone_input = if batch == 1 {
        view_tensors[0]
    } else {
        let views = out.tensor(pixel("views", &[batch, side, side, 3]));
        out.op(CONCATENATION, view_tensors, views, Opts::Concatenation { axis: 0 });
        views
    };

    // The backbone's operators up to its last feature map, each tensor's batch set to the
    // views'; the pooling is done in float, with the head.
    let pool = graph
        .operators
        .iter()
        .position(|op| op.code == AVERAGE_POOL_2D || op.code == MEAN)
        .ok_or_else(|| Error::Weights("the backbone file has no pooling operator".into()))?;
    let mut copied: Vec<Option<i32>> = vec![None; graph.tensors.len()];
    copied[graph.inputs[0] as usize] = Some(backbone_input);
    for op in &graph.operators[..pool] {
        if let Options::Other(kind) = op.options {
            return Err(Error::Weights(format!("the backbone has an operator ({}, options {kind}) the export does not copy", op.code)));
        }
        if op.outputs.iter().chain(&op.inputs).any(|&i| i < 0) {
            return Err(Error::Weights("an operator of the backbone has a missing tensor".into()));
        }
        let mut tensors = vec![];
        for &i in op.inputs.iter().chain(&op.outputs) {
            let index = i as usize;
            if let Some(copy) = copied[index] {
                tensors.push(copy);
                continue;
            }
            let t = &graph.tensors[index];
            let mut shape: Vec<i32> = t.shape.iter().map(|&d| d as i32).collect();
            let constant = !t.data.is_empty();
            if !constant && shape.first() == Some(&1) {
                shape[0] = batch;
            }
            let quantization = (!t.scale.is_empty()).then(|| (t.scale.clone(), t.zero_point.clone(), t.quantized_dimension as i32));
            let as_stored = Tensor { name: t.name.clone(), shape: shape.clone(), dtype: t.dtype, data: t.data.to_vec(), quantization };
            let copy = match arithmetic {
                Arithmetic::Quantized => out.tensor(as_stored),
                // Computed tensors in float; 8-bit weights kept and dequantized when the file
                // loads; 32-bit biases (quantized by input × weight scale) stored in float.
                Arithmetic::Float if !constant => out.tensor(float(&t.name, &shape)),
                Arithmetic::Float if matches!(t.dtype, tensor_type::UINT8 | tensor_type::INT8) => {
                    let stored = out.tensor(as_stored);
                    let weight = out.tensor(float(&t.name, &shape));
                    out.op(DEQUANTIZE, vec![stored], weight, Opts::None);
                    weight
                }
                Arithmetic::Float => out.tensor(constant_f32(&t.name, &shape, &t.dequantize()?)),
            };
            copied[index] = Some(copy);
            tensors.push(copy);
        }
        let outputs = tensors.split_off(op.inputs.len());
        out.ops.push(Op { code: op.code, version: op.version, inputs: tensors, outputs, options: Opts::Read(op.options) });
    }
    let features = graph.operators[pool].inputs.first().and_then(|&i| usize::try_from(i).ok()).and_then(|i| copied[i]);
    let features = features.ok_or_else(|| Error::Weights("the backbone's pooling reads no feature map".into()))?;
    let map_side = out.tensors[features as usize].shape.get(1).copied().unwrap_or(0);
    let map_shape = [batch, map_side, map_side, EMBEDDING_DIM as i32];
    if out.tensors[features as usize].shape != map_shape {
        return Err(Error::Weights(format!("the backbone's last feature map has shape {:?}", out.tensors[features as usize].shape)));
    }
    let map = match arithmetic {
        Arithmetic::Float => features,
        Arithmetic::Quantized => {
            let map = out.tensor(float("feature map", &map_shape));
            out.op(DEQUANTIZE, vec![features], map, Opts::None);
            map
        }
    };
    let spatial = out.tensor(constant_i32("spatial axes", &[1, 2]));
    let mut x = out.tensor(float("embeddings", &[batch, EMBEDDING_DIM as i32]));
    out.op(MEAN, vec![map, spatial], x, Opts::Read(Options::Reducer { keep_dims: false }));

    // The head, in float. A head that reads embeddings scaled to one length: L2_NORMALIZATION
    // makes them 1 long, and its first layer's weights take the length.
    let head = &classifier.model.head;
    let mut length = 1.0;
    if info.scaled_input {
        let unit = out.tensor(float("embeddings of length 1", &[batch, EMBEDDING_DIM as i32]));
        out.op(L2_NORMALIZATION, vec![x], unit, Opts::L2Normalization);
        x = unit;
        length = input_length();
    }
    let dims = head.shape.layer_dims();
    for (i, ((inputs, outputs), (weight, bias))) in dims.iter().zip(&head.layers).enumerate() {
        let last = i + 1 == dims.len();
        let name = if last { "output" } else { "hidden" };
        let scale = if i == 0 { length } else { 1.0 };
        // Fewshot keeps [inputs, outputs]; FULLY_CONNECTED wants [outputs, inputs].
        let transposed: Vec<f32> = (0..*outputs).flat_map(|o| (0..*inputs).map(move |k| weight[k * outputs + o] * scale)).collect();
        let w = out.tensor(constant_f32(&format!("{name} weight"), &[*outputs as i32, *inputs as i32], &transposed));
        let b = out.tensor(constant_f32(&format!("{name} bias"), &[*outputs as i32], bias));
        let y = out.tensor(float(if last { "logits" } else { "hidden" }, &[batch, *outputs as i32]));
        let fused = if last { activation::NONE } else { activation::RELU };
        out.op(FULLY_CONNECTED, vec![x, w, b], y, Opts::FullyConnected { activation: fused });
        x = y;
    }
    let classes = head.shape.classes as i32;
    let mut probabilities = out.tensor(float(if batch == 1 { "probabilities" } else { "probabilities per view" }, &[batch, classes]));
    out.op(SOFTMAX, vec![x], probabilities, Opts::Softmax { beta: 1.0 });
    if batch > 1 {
        let axis = out.tensor(constant_i32("view axis", &[0]));
        let mean = out.tensor(float("probabilities", &[1, classes]));
        out.op(MEAN, vec![probabilities, axis], mean, Opts::Read(Options::Reducer { keep_dims: true }));
        probabilities = mean;
    }

    let description = Description {
        format: "fewshot-tflite",
        labels: info.labels.clone(),
        input: format!(
            "uint8 [1, {side}, {side}, 3]: the photo's RGB, {}, resized to {side}x{side}",
            match framing {
                Framing::Crop => "its centre square",
                Framing::Pad => "padded to a square with grey",
            }
        ),
        framing,
        output: format!("float [1, {classes}]: the probability of each label, in the order of labels"),
        mirror_averaged: views.iter().any(|v| v.flip),
        closer_view_zoom: views.iter().map(|v| v.zoom).fold(0.0, f32::max),
        arithmetic,
        backbone_sha256: sha,
        not_included: "the \"none of these\" check (a photo unlike every class still gets the probabilities of these classes)".into(),
    };
    let json = serde_json::to_vec_pretty(&description).map_err(|e| Error::Internal(e.to_string()))?;
    let title = format!("Fewshot classifier: {}", info.labels.join(", "));
    Ok(out.write(photo, probabilities, &title, &json))
}

/// The graph being written: tensors and operators in TFLite's terms.
#[derive(Default)]
struct Graph {
    tensors: Vec<Tensor>,
    ops: Vec<Op>,
}

struct Tensor {
    name: String,
    shape: Vec<i32>,
    dtype: u8,
    /// The constant's bytes; empty for a computed tensor.
    data: Vec<u8>,
    /// (scales, zero points, quantized dimension).
    quantization: Option<(Vec<f32>, Vec<i64>, i32)>,
}

struct Op {
    code: i32,
    version: i32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    options: Opts,
}

/// An operator's options: copied from the backbone's file, or one of the head's.
enum Opts {
    None,
    Read(Options),
    Concatenation { axis: i32 },
    ResizeBilinear { half_pixel_centers: bool },
    FullyConnected { activation: u8 },
    Softmax { beta: f32 },
    L2Normalization,
}

fn float(name: &str, shape: &[i32]) -> Tensor {
    Tensor { name: name.into(), shape: shape.to_vec(), dtype: tensor_type::FLOAT32, data: vec![], quantization: None }
}

fn constant_f32(name: &str, shape: &[i32], values: &[f32]) -> Tensor {
    let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Tensor { name: name.into(), shape: shape.to_vec(), dtype: tensor_type::FLOAT32, data, quantization: None }
}

fn constant_i32(name: &str, values: &[i32]) -> Tensor {
    let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Tensor { name: name.into(), shape: vec![values.len() as i32], dtype: tensor_type::INT32, data, quantization: None }
}

impl Graph {
    fn tensor(&mut self, tensor: Tensor) -> i32 {
        self.tensors.push(tensor);
        self.tensors.len() as i32 - 1
    }

    fn op(&mut self, code: i32, inputs: Vec<i32>, output: i32, options: Opts) {
        self.ops.push(Op { code, version: 1, inputs, outputs: vec![output], options });
    }

    /// The file's bytes: one subgraph, buffer 0 empty (TFLite's convention) and shared by every
    /// computed tensor, one buffer per constant, and the description as metadata.
    fn write(&self, input: i32, output: i32, title: &str, metadata: &[u8]) -> Vec<u8> {
        use crate::tflite::*;
        let size: usize = self.tensors.iter().map(|t| t.data.len()).sum();
        let mut fbb = FlatBufferBuilder::with_capacity(size + (1 << 16));

        let mut buffers = vec![table(&mut fbb, |_| {})];
        let mut buffer_of = vec![];
        for t in &self.tensors {
            if t.data.is_empty() {
                buffer_of.push(0u32);
            } else {
                let data = fbb.create_vector(&t.data);
                buffers.push(table(&mut fbb, |fbb| fbb.push_slot_always(buffer::DATA, data)));
                buffer_of.push(buffers.len() as u32 - 1);
            }
        }
        let metadata_data = fbb.create_vector(metadata);
        buffers.push(table(&mut fbb, |fbb| fbb.push_slot_always(buffer::DATA, metadata_data)));
        let metadata_buffer = buffers.len() as u32 - 1;

        let mut tensors = vec![];
        for (t, &buffer_index) in self.tensors.iter().zip(&buffer_of) {
            let name = fbb.create_string(&t.name);
            let shape = fbb.create_vector(&t.shape);
            let quantization = t.quantization.as_ref().map(|(scale, zero, dim)| {
                let scale = fbb.create_vector(scale);
                let zero = fbb.create_vector(zero);
                table(&mut fbb, |fbb| {
                    fbb.push_slot_always(quantization::SCALE, scale);
                    fbb.push_slot_always(quantization::ZERO_POINT, zero);
                    fbb.push_slot_always(quantization::QUANTIZED_DIMENSION, *dim);
                })
            });
            tensors.push(table(&mut fbb, |fbb| {
                fbb.push_slot_always(tensor::SHAPE, shape);
                fbb.push_slot_always(tensor::TYPE, t.dtype);
                fbb.push_slot_always(tensor::BUFFER, buffer_index);
                fbb.push_slot_always(tensor::NAME, name);
                if let Some(q) = quantization {
                    fbb.push_slot_always(tensor::QUANTIZATION, q);
                }
            }));
        }

        let mut codes: Vec<(i32, i32)> = vec![];
        let mut operators = vec![];
        for op in &self.ops {
            let index = match codes.iter().position(|&c| c == (op.code, op.version)) {
                Some(i) => i,
                None => {
                    codes.push((op.code, op.version));
                    codes.len() - 1
                }
            };
            let (kind, options) = options(&mut fbb, &op.options);
            let inputs = fbb.create_vector(&op.inputs);
            let outputs = fbb.create_vector(&op.outputs);
            operators.push(table(&mut fbb, |fbb| {
                fbb.push_slot_always(operator::OPCODE_INDEX, index as u32);
                fbb.push_slot_always(operator::INPUTS, inputs);
                fbb.push_slot_always(operator::OUTPUTS, outputs);
                if let Some(options) = options {
                    fbb.push_slot_always(operator::BUILTIN_OPTIONS_TYPE, kind);
                    fbb.push_slot_always(operator::BUILTIN_OPTIONS, options);
                }
            }));
        }
        let codes: Vec<_> = codes
            .iter()
            .map(|&(code, version)| {
                table(&mut fbb, |fbb| {
                    // Codes past 127 keep the old byte at PLACEHOLDER_FOR_GREATER_OP_CODES (127).
                    let deprecated = code.min(builtin_operator::PLACEHOLDER_FOR_GREATER_OP_CODES) as i8;
                    fbb.push_slot_always(operator_code::DEPRECATED_BUILTIN_CODE, deprecated);
                    fbb.push_slot_always(operator_code::VERSION, version);
                    fbb.push_slot_always(operator_code::BUILTIN_CODE, code);
                })
            })
            .collect();

        let tensors = fbb.create_vector(&tensors);
        let operators = fbb.create_vector(&operators);
        let inputs = fbb.create_vector(&[input]);
        let outputs = fbb.create_vector(&[output]);
        let name = fbb.create_string("main");
        let subgraph = table(&mut fbb, |fbb| {
            fbb.push_slot_always(subgraph::TENSORS, tensors);
            fbb.push_slot_always(subgraph::INPUTS, inputs);
            fbb.push_slot_always(subgraph::OUTPUTS, outputs);
            fbb.push_slot_always(subgraph::OPERATORS, operators);
            fbb.push_slot_always(subgraph::NAME, name);
        });
        let metadata_name = fbb.create_string(METADATA_NAME);
        let metadata = table(&mut fbb, |fbb| {
            fbb.push_slot_always(metadata::NAME, metadata_name);
            fbb.push_slot_always(metadata::BUFFER, metadata_buffer);
        });

        let codes = fbb.create_vector(&codes);
        let subgraphs = fbb.create_vector(&[subgraph]);
        let description = fbb.create_string(title);
        let buffers = fbb.create_vector(&buffers);
        let metadata = fbb.create_vector(&[metadata]);
        let root = table(&mut fbb, |fbb| {
            fbb.push_slot_always(model::VERSION, VERSION);
            fbb.push_slot_always(model::OPERATOR_CODES, codes);
            fbb.push_slot_always(model::SUBGRAPHS, subgraphs);
            fbb.push_slot_always(model::DESCRIPTION, description);
            fbb.push_slot_always(model::BUFFERS, buffers);
            fbb.push_slot_always(model::METADATA, metadata);
        });
        fbb.finish(root, Some(FILE_IDENTIFIER));
        fbb.finished_data().to_vec()
    }
}

type Table = WIPOffset<TableFinishedWIPOffset>;

/// One table, its fields pushed by `fill`.
fn table(fbb: &mut FlatBufferBuilder, fill: impl FnOnce(&mut FlatBufferBuilder)) -> Table {
    let start = fbb.start_table();
    fill(fbb);
    fbb.end_table(start)
}

/// An operator's options table and its BuiltinOptions union type.
fn options(fbb: &mut FlatBufferBuilder, options: &Opts) -> (u8, Option<Table>) {
    use crate::tflite::*;
    match options {
        Opts::None | Opts::Read(Options::None) | Opts::Read(Options::Other(_)) => (builtin_options::NONE, None),
        Opts::Read(Options::Conv { padding, stride_w, stride_h, activation, dilation_w, dilation_h }) => (
            builtin_options::CONV_2D,
            Some(table(fbb, |fbb| {
                fbb.push_slot_always(conv_2d::PADDING, *padding);
                fbb.push_slot_always(conv_2d::STRIDE_W, *stride_w);
                fbb.push_slot_always(conv_2d::STRIDE_H, *stride_h);
                fbb.push_slot_always(conv_2d::FUSED_ACTIVATION_FUNCTION, *activation);
                fbb.push_slot_always(conv_2d::DILATION_W_FACTOR, *dilation_w);
                fbb.push_slot_always(conv_2d::DILATION_H_FACTOR, *dilation_h);
            })),
        ),
        Opts::Read(Options::Depthwise { padding, stride_w, stride_h, multiplier, activation, dilation_w, dilation_h }) => (
            builtin_options::DEPTHWISE_CONV_2D,
            Some(table(fbb, |fbb| {
                fbb.push_slot_always(depthwise_conv_2d::PADDING, *padding);
                fbb.push_slot_always(depthwise_conv_2d::STRIDE_W, *stride_w);
                fbb.push_slot_always(depthwise_conv_2d::STRIDE_H, *stride_h);
                fbb.push_slot_always(depthwise_conv_2d::DEPTH_MULTIPLIER, *multiplier);
                fbb.push_slot_always(depthwise_conv_2d::FUSED_ACTIVATION_FUNCTION, *activation);
                fbb.push_slot_always(depthwise_conv_2d::DILATION_W_FACTOR, *dilation_w);
                fbb.push_slot_always(depthwise_conv_2d::DILATION_H_FACTOR, *dilation_h);
            })),
        ),
        Opts::Read(Options::Pool { padding, stride_w, stride_h, filter_w, filter_h, activation }) => (
            builtin_options::POOL_2D,
            Some(table(fbb, |fbb| {
                fbb.push_slot_always(pool_2d::PADDING, *padding);
                fbb.push_slot_always(pool_2d::STRIDE_W, *stride_w);
                fbb.push_slot_always(pool_2d::STRIDE_H, *stride_h);
                fbb.push_slot_always(pool_2d::FILTER_WIDTH, *filter_w);
                fbb.push_slot_always(pool_2d::FILTER_HEIGHT, *filter_h);
                fbb.push_slot_always(pool_2d::FUSED_ACTIVATION_FUNCTION, *activation);
            })),
        ),
        Opts::Read(Options::Add { activation }) => (
            builtin_options::ADD,
            Some(table(fbb, |fbb| fbb.push_slot_always(add::FUSED_ACTIVATION_FUNCTION, *activation))),
        ),
        Opts::Read(Options::Reducer { keep_dims }) => {
            (builtin_options::REDUCER, Some(table(fbb, |fbb| fbb.push_slot_always(reducer::KEEP_DIMS, *keep_dims))))
        }
        Opts::Concatenation { axis } => (
            builtin_options::CONCATENATION,
            Some(table(fbb, |fbb| {
                fbb.push_slot_always(concatenation::AXIS, *axis);
                fbb.push_slot_always(concatenation::FUSED_ACTIVATION_FUNCTION, activation::NONE);
            })),
        ),
        Opts::ResizeBilinear { half_pixel_centers } => (
            builtin_options::RESIZE_BILINEAR,
            Some(table(fbb, |fbb| {
                fbb.push_slot_always(resize_bilinear::ALIGN_CORNERS, false);
                fbb.push_slot_always(resize_bilinear::HALF_PIXEL_CENTERS, *half_pixel_centers);
            })),
        ),
        Opts::FullyConnected { activation } => (
            builtin_options::FULLY_CONNECTED,
            Some(table(fbb, |fbb| {
                fbb.push_slot_always(fully_connected::FUSED_ACTIVATION_FUNCTION, *activation);
                fbb.push_slot_always(fully_connected::WEIGHTS_FORMAT, weights_format::DEFAULT);
                fbb.push_slot_always(fully_connected::KEEP_NUM_DIMS, false);
            })),
        ),
        Opts::Softmax { beta } => (builtin_options::SOFTMAX, Some(table(fbb, |fbb| fbb.push_slot_always(softmax::BETA, *beta)))),
        Opts::L2Normalization => (
            builtin_options::L2_NORM,
            Some(table(fbb, |fbb| fbb.push_slot_always(l2_norm::FUSED_ACTIVATION_FUNCTION, activation::NONE))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{views, Seeing};

    fn weights() -> Option<Vec<u8>> {
        let path = std::env::var("FEWSHOT_WEIGHTS").ok()?;
        std::fs::read(path).ok()
    }

    fn classifier(hidden: usize, mirror: bool, sha: String) -> Classifier {
        let mut model = crate::model::tests::model(hidden);
        model.info.backbone_sha256 = sha;
        model.info.views = views(Seeing { mirror, zoom: mirror, ..Seeing::default() });
        Classifier::new(model)
    }

    #[test]
    fn the_file_reads_back_as_a_graph_with_the_head_at_its_end() {
        let Some(weights) = weights() else { return eprintln!("skipped: FEWSHOT_WEIGHTS is not set") };
        use crate::tflite::builtin_operator::*;
        use crate::tflite::tensor_type::UINT8;
        for (hidden, mirror, arithmetic) in [(0, true, Arithmetic::Float), (7, false, Arithmetic::Quantized)] {
            let bytes = tflite(&weights, &classifier(hidden, mirror, sha256_hex(&weights)), arithmetic).unwrap();
            let graph = read_graph(&bytes).unwrap();
            let codes: Vec<i32> = graph.operators.iter().map(|op| op.code).collect();
            let (start, end) = match arithmetic {
                // Into [-1, 1]; the mirror image, the closer view (once) and its mirror image;
                // the batch of four.
                Arithmetic::Float => (
                    vec![DEQUANTIZE, ADD, REVERSE_V2, SLICE, RESIZE_BILINEAR, REVERSE_V2, CONCATENATION, DEQUANTIZE, CONV_2D],
                    vec![MEAN, L2_NORMALIZATION, FULLY_CONNECTED, SOFTMAX, MEAN],
                ),
                Arithmetic::Quantized => (vec![CONV_2D, DEPTHWISE_CONV_2D], vec![DEQUANTIZE, MEAN, L2_NORMALIZATION, FULLY_CONNECTED, FULLY_CONNECTED, SOFTMAX]),
            };
            assert!(codes.starts_with(&start) && codes.ends_with(&end), "{codes:?}");
            // Every convolution of the backbone is there, and none of its classifier.
            let convolutions = |codes: &[i32]| codes.iter().filter(|&&c| c == CONV_2D || c == DEPTHWISE_CONV_2D).count();
            let backbone: Vec<i32> = read_graph(&weights).unwrap().operators.iter().map(|op| op.code).collect();
            assert_eq!(convolutions(&codes), convolutions(&backbone) - 1);
            let input = &graph.tensors[graph.inputs[0] as usize];
            assert_eq!((input.shape.as_slice(), input.dtype), (&[1, 224, 224, 3][..], UINT8));
        }
    }

    #[test]
    fn a_model_of_another_backbone_is_refused() {
        let Some(weights) = weights() else { return eprintln!("skipped: FEWSHOT_WEIGHTS is not set") };
        let err = tflite(&weights, &classifier(0, true, "0".repeat(64)), Arithmetic::Float).unwrap_err();
        assert!(err.to_string().contains("another backbone"), "{err}");
        assert!(tflite(b"not a model", &classifier(0, true, String::new()), Arithmetic::Float).is_err());
    }
}
