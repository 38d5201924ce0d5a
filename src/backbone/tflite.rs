//! Read the backbone's weights out of a `.tflite` file (a TFLite flatbuffer, schema v3).
//!
//! The first subgraph is read whole ([`read_graph`]): tensors with their bytes, operators with
//! the options MobileNetV2's kinds have. For the backbone ([`read_ops`]) each convolution's
//! weight and bias tensors are dequantized to `f32` with
//! `(q - zero_point) * scale` (per tensor, or per channel where the file says so).
//! Every offset is bounds-checked: a truncated or foreign file gives an [`Error::Weights`]
//! naming what did not fit, never a panic (hence this file's own small `Table` rather than the
//! `flatbuffers` crate's, whose reads trust the offsets unless generated code verifies them).
//!
//! The tables, field slots and codes are those of [`crate::tflite`], the schema the export
//! writes with too.

use flatbuffers::VOffsetT;

use crate::error::{Error, Result};
use crate::tflite::builtin_operator::{ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, MEAN};
use crate::tflite::{
    activation, add, buffer, builtin_options, conv_2d, depthwise_conv_2d, model, operator, operator_code, padding,
    pool_2d, quantization, reducer, subgraph, tensor, tensor_type, FILE_IDENTIFIER,
};

/// A convolution as stored in the file, weights already in `f32`.
#[derive(Debug, Clone)]
pub struct ConvOp {
    /// `true` for DEPTHWISE_CONV_2D.
    pub depthwise: bool,
    /// TFLite layout: `[out, kh, kw, in]`, or `[1, kh, kw, channels]` for depthwise.
    pub weight_shape: Vec<usize>,
    pub weight: Vec<f32>,
    /// The weights' scale in the file per output channel (one for all of them), or empty for
    /// float weights or scales along another dimension: the integers a quantized file holds
    /// are `weight / scale`, which the CPU's 1x1 convolutions compute with.
    pub weight_scale: Vec<f32>,
    pub bias: Vec<f32>,
    pub stride: usize,
    pub same_padding: bool,
    pub relu6: bool,
}

/// One operator of the graph, as far as the backbone cares.
#[derive(Debug, Clone)]
pub enum Op {
    Conv(ConvOp),
    Add,
    AveragePool,
    Other(i32),
}

/// The file's first subgraph, read whole: every tensor with its bytes, every operator with the
/// options the backbone's operators have. The backbone ([`read_ops`]) and the standalone
/// export (`crate::export`) both read the file through this.
pub struct Graph<'a> {
    pub tensors: Vec<Tensor<'a>>,
    pub operators: Vec<Operator>,
    /// Indices of the graph's input tensors.
    pub inputs: Vec<i32>,
}

/// One operator as stored: its builtin code and version, tensor indices, options.
#[derive(Debug, Clone)]
pub struct Operator {
    pub code: i32,
    pub version: i32,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: Options,
}

/// The options of the operators MobileNetV2 uses (the fields of the options tables of
/// [`crate::tflite`], in their order); any other kind is kept only as its union type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Options {
    None,
    /// Conv2DOptions.
    Conv { padding: u8, stride_w: i32, stride_h: i32, activation: u8, dilation_w: i32, dilation_h: i32 },
    /// DepthwiseConv2DOptions.
    Depthwise { padding: u8, stride_w: i32, stride_h: i32, multiplier: i32, activation: u8, dilation_w: i32, dilation_h: i32 },
    /// Pool2DOptions.
    Pool { padding: u8, stride_w: i32, stride_h: i32, filter_w: i32, filter_h: i32, activation: u8 },
    /// AddOptions.
    Add { activation: u8 },
    /// ReducerOptions (MEAN).
    Reducer { keep_dims: bool },
    /// Another union type, not read.
    Other(u8),
}

/// Read the first subgraph of a `.tflite` file.
pub fn read_graph(bytes: &[u8]) -> Result<Graph<'_>> {
    let buf = Buf(bytes);
    if bytes.len() < 8 {
        return Err(Error::Weights(format!("file is only {} bytes long", bytes.len())));
    }
    if &bytes[4..8] != FILE_IDENTIFIER.as_bytes() {
        return Err(Error::Weights(
            "not a TFLite model (the file identifier \"TFL3\" is missing)".into(),
        ));
    }
    let root = buf.root()?;
    let codes = root.tables(model::OPERATOR_CODES)?;
    let buffers = root.tables(model::BUFFERS)?;
    let graph = root
        .tables(model::SUBGRAPHS)?
        .first()
        .copied()
        .ok_or_else(|| Error::Weights("the model has no subgraph".into()))?;
    check_appended_archive(bytes, &buffers)?;

    let mut tensors = vec![];
    for t in graph.tables(subgraph::TENSORS)? {
        let buffer_index = t.u32(tensor::BUFFER, 0)? as usize;
        let buffer = buffers
            .get(buffer_index)
            .ok_or_else(|| Error::Weights(format!("tensor refers to missing buffer {buffer_index}")))?;
        let q = t.table(tensor::QUANTIZATION)?;
        tensors.push(Tensor {
            name: t.string(tensor::NAME)?.unwrap_or_default(),
            shape: t.i32s(tensor::SHAPE)?.into_iter().map(|d| d.max(0) as usize).collect(),
            dtype: t.u8(tensor::TYPE, tensor_type::FLOAT32)?,
            data: buffer.bytes(buffer::DATA)?.unwrap_or(&[]),
            scale: match q {
                Some(q) => q.f32s(quantization::SCALE)?,
                None => vec![],
            },
            zero_point: match q {
                Some(q) => q.i64s(quantization::ZERO_POINT)?,
                None => vec![],
            },
            quantized_dimension: match q {
                Some(q) => q.i32(quantization::QUANTIZED_DIMENSION, 0)?.max(0) as usize,
                None => 0,
            },
        });
    }

    let mut operators = vec![];
    for op in graph.tables(subgraph::OPERATORS)? {
        let code_index = op.u32(operator::OPCODE_INDEX, 0)? as usize;
        let code = codes
            .get(code_index)
            .ok_or_else(|| Error::Weights(format!("operator code {code_index} is missing")))?;
        let inputs = op.i32s(operator::INPUTS)?;
        let outputs = op.i32s(operator::OUTPUTS)?;
        if let Some(bad) = inputs.iter().chain(&outputs).find(|&&i| i < -1 || i as i64 >= tensors.len() as i64) {
            return Err(Error::Weights(format!("operator refers to missing tensor {bad}")));
        }
        // Absent fields read as the schema's defaults.
        let (none, same) = (activation::NONE, padding::SAME);
        let kind = op.u8(operator::BUILTIN_OPTIONS_TYPE, builtin_options::NONE)?;
        let options = match (kind, op.table(operator::BUILTIN_OPTIONS)?) {
            (_, None) | (builtin_options::NONE, _) => Options::None,
            (builtin_options::CONV_2D, Some(o)) => Options::Conv {
                padding: o.u8(conv_2d::PADDING, same)?,
                stride_w: o.i32(conv_2d::STRIDE_W, 0)?,
                stride_h: o.i32(conv_2d::STRIDE_H, 0)?,
                activation: o.u8(conv_2d::FUSED_ACTIVATION_FUNCTION, none)?,
                dilation_w: o.i32(conv_2d::DILATION_W_FACTOR, 1)?,
                dilation_h: o.i32(conv_2d::DILATION_H_FACTOR, 1)?,
            },
            (builtin_options::DEPTHWISE_CONV_2D, Some(o)) => Options::Depthwise {
                padding: o.u8(depthwise_conv_2d::PADDING, same)?,
                stride_w: o.i32(depthwise_conv_2d::STRIDE_W, 0)?,
                stride_h: o.i32(depthwise_conv_2d::STRIDE_H, 0)?,
                multiplier: o.i32(depthwise_conv_2d::DEPTH_MULTIPLIER, 0)?,
                activation: o.u8(depthwise_conv_2d::FUSED_ACTIVATION_FUNCTION, none)?,
                dilation_w: o.i32(depthwise_conv_2d::DILATION_W_FACTOR, 1)?,
                dilation_h: o.i32(depthwise_conv_2d::DILATION_H_FACTOR, 1)?,
            },
            (builtin_options::POOL_2D, Some(o)) => Options::Pool {
                padding: o.u8(pool_2d::PADDING, same)?,
                stride_w: o.i32(pool_2d::STRIDE_W, 0)?,
                stride_h: o.i32(pool_2d::STRIDE_H, 0)?,
                filter_w: o.i32(pool_2d::FILTER_WIDTH, 0)?,
                filter_h: o.i32(pool_2d::FILTER_HEIGHT, 0)?,
                activation: o.u8(pool_2d::FUSED_ACTIVATION_FUNCTION, none)?,
            },
            (builtin_options::ADD, Some(o)) => Options::Add { activation: o.u8(add::FUSED_ACTIVATION_FUNCTION, none)? },
            (builtin_options::REDUCER, Some(o)) => Options::Reducer { keep_dims: o.u8(reducer::KEEP_DIMS, 0)? != 0 },
            (other, Some(_)) => Options::Other(other),
        };
        // Newer files keep the code whole in BUILTIN_CODE, older ones only the deprecated byte.
        let deprecated = code.u8(operator_code::DEPRECATED_BUILTIN_CODE, 0)? as i8 as i32;
        operators.push(Operator {
            code: deprecated.max(code.i32(operator_code::BUILTIN_CODE, 0)?),
            version: code.i32(operator_code::VERSION, 1)?,
            inputs,
            outputs,
            options,
        });
    }
    Ok(Graph { tensors, operators, inputs: graph.i32s(subgraph::INPUTS)? })
}

/// The operators of the file's first subgraph, in order.
pub fn read_ops(bytes: &[u8]) -> Result<Vec<Op>> {
    let graph = read_graph(bytes)?;
    let tensor = |i: i32| -> Result<&Tensor> {
        usize::try_from(i)
            .ok()
            .and_then(|i| graph.tensors.get(i))
            .ok_or_else(|| Error::Weights(format!("operator refers to missing tensor {i}")))
    };
    let mut ops = Vec::with_capacity(graph.operators.len());
    for op in &graph.operators {
        ops.push(match op.code {
            CONV_2D | DEPTHWISE_CONV_2D => {
                let (depthwise, pad, stride_w, stride_h, act) = match op.options {
                    Options::Conv { padding, stride_w, stride_h, activation, .. } => (false, padding, stride_w, stride_h, activation),
                    Options::Depthwise { padding, stride_w, stride_h, activation, .. } => (true, padding, stride_w, stride_h, activation),
                    _ => return Err(Error::Weights("a convolution has no options".into())),
                };
                if depthwise != (op.code == DEPTHWISE_CONV_2D) {
                    return Err(Error::Weights("a convolution has the options of another kind".into()));
                }
                if stride_w != stride_h || stride_w < 1 {
                    return Err(Error::Weights(format!("unsupported strides {stride_h}x{stride_w}")));
                }
                if op.inputs.len() < 3 {
                    return Err(Error::Weights("a convolution has no bias".into()));
                }
                let weight = tensor(op.inputs[1])?;
                let bias = tensor(op.inputs[2])?;
                Op::Conv(ConvOp {
                    depthwise,
                    weight: weight.dequantize()?,
                    weight_scale: if weight.scale.len() == 1 || weight.quantized_dimension == 0 {
                        weight.scale.clone()
                    } else {
                        Vec::new()
                    },
                    weight_shape: weight.shape.clone(),
                    bias: bias.dequantize()?,
                    stride: stride_w as usize,
                    same_padding: pad == padding::SAME,
                    relu6: act == activation::RELU6,
                })
            }
            ADD => Op::Add,
            AVERAGE_POOL_2D | MEAN => Op::AveragePool,
            other => Op::Other(other),
        });
    }
    Ok(ops)
}

/// The published file carries its labels in a ZIP archive appended after the flatbuffer, which
/// no offset points into: a file cut inside it would otherwise pass. If an archive starts
/// after the last buffer, its end-of-central-directory record must be there.
fn check_appended_archive(bytes: &[u8], buffers: &[Table]) -> Result<()> {
    let mut end = 0;
    for buffer in buffers {
        if let Some(data) = buffer.bytes(buffer::DATA)? {
            end = end.max(data.as_ptr() as usize - bytes.as_ptr() as usize + data.len());
        }
    }
    let tail = &bytes[end..];
    let Some(start) = tail.windows(4).position(|w| w == b"PK\x03\x04") else { return Ok(()) };
    let archive = &tail[start..];
    // The record is 22 bytes, the last two the length of the comment that ends the file.
    let search_from = archive.len().saturating_sub(22 + 65_535);
    let complete = (search_from..archive.len().saturating_sub(21)).any(|p| {
        archive[p..p + 4] == *b"PK\x05\x06"
            && p + 22 + u16::from_le_bytes([archive[p + 20], archive[p + 21]]) as usize == archive.len()
    });
    if complete {
        Ok(())
    } else {
        Err(Error::Weights(format!("file is truncated (the label archive at its end is cut off; {} bytes long)", bytes.len())))
    }
}

/// A tensor of the file: its shape and type, its bytes if it is a constant (still quantized),
/// and its quantization.
pub struct Tensor<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: u8,
    /// Empty for a tensor computed while running.
    pub data: &'a [u8],
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub quantized_dimension: usize,
}

impl Tensor<'_> {
    /// The values as `f32`: `(q - zero_point) * scale`, per channel of `quantized_dimension`
    /// when the file stores one scale per channel.
    pub fn dequantize(&self) -> Result<Vec<f32>> {
        let count: usize = self.shape.iter().product();
        let (width, read): (usize, fn(&[u8]) -> f64) = match self.dtype {
            tensor_type::FLOAT32 => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            tensor_type::INT32 => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            tensor_type::UINT8 => (1, |b| b[0] as f64),
            tensor_type::INT8 => (1, |b| b[0] as i8 as f64),
            other => {
                return Err(Error::Weights(format!(
                    "tensor \"{}\" has element type {other}, which is not supported",
                    self.name
                )))
            }
        };
        if self.data.len() != count * width {
            return Err(Error::Weights(format!(
                "tensor \"{}\" of shape {:?} should hold {} bytes but holds {}",
                self.name,
                self.shape,
                count * width,
                self.data.len()
            )));
        }
        let values = self.data.chunks_exact(width).map(read);
        if self.dtype == tensor_type::FLOAT32 || self.scale.is_empty() {
            return Ok(values.map(|v| v as f32).collect());
        }
        let channels = self.scale.len();
        // Elements between two steps of the quantized dimension (row-major layout).
        let inner: usize = self.shape.iter().skip(self.quantized_dimension + 1).product();
        if channels > 1 && self.shape.get(self.quantized_dimension) != Some(&channels) {
            return Err(Error::Weights(format!(
                "tensor \"{}\" has {channels} scales for shape {:?}",
                self.name, self.shape
            )));
        }
        Ok(values
            .enumerate()
            .map(|(i, q)| {
                let c = if channels == 1 { 0 } else { (i / inner.max(1)) % channels };
                let zero = self.zero_point.get(c).or(self.zero_point.first()).copied().unwrap_or(0);
                ((q - zero as f64) * self.scale[c] as f64) as f32
            })
            .collect())
    }
}

/// The file's bytes, with bounds-checked little-endian reads.
#[derive(Clone, Copy)]
struct Buf<'a>(&'a [u8]);

impl<'a> Buf<'a> {
    fn slice(&self, pos: usize, len: usize) -> Result<&'a [u8]> {
        pos.checked_add(len)
            .and_then(|end| self.0.get(pos..end))
            .ok_or_else(|| Error::Weights(format!("file is truncated (needed bytes {pos}..{})", pos.saturating_add(len))))
    }
    fn u32_at(&self, pos: usize) -> Result<u32> {
        let b = self.slice(pos, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u16_at(&self, pos: usize) -> Result<u16> {
        let b = self.slice(pos, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    /// Follow the unsigned offset stored at `pos`.
    fn follow(&self, pos: usize) -> Result<usize> {
        Ok(pos + self.u32_at(pos)? as usize)
    }
    fn root(&self) -> Result<Table<'a>> {
        Table::at(*self, self.follow(0)?)
    }
}

/// A flatbuffer table: a position and its vtable.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: Buf<'a>,
    pos: usize,
    vtable: usize,
}

impl<'a> Table<'a> {
    fn at(buf: Buf<'a>, pos: usize) -> Result<Self> {
        let soffset = buf.u32_at(pos)? as i32 as i64;
        let vtable = usize::try_from(pos as i64 - soffset)
            .map_err(|_| Error::Weights("file is corrupt (a table points outside it)".into()))?;
        buf.u16_at(vtable)?;
        Ok(Table { buf, pos, vtable })
    }

    /// Position of the field at vtable slot `slot` (a constant of [`crate::tflite`]), or
    /// `None` when the field is absent.
    fn field(&self, slot: VOffsetT) -> Result<Option<usize>> {
        let vtable_len = self.buf.u16_at(self.vtable)? as usize;
        let slot = slot as usize;
        if slot + 2 > vtable_len {
            return Ok(None);
        }
        match self.buf.u16_at(self.vtable + slot)? {
            0 => Ok(None),
            off => Ok(Some(self.pos + off as usize)),
        }
    }

    fn u8(&self, slot: VOffsetT, default: u8) -> Result<u8> {
        match self.field(slot)? {
            Some(p) => Ok(self.buf.slice(p, 1)?[0]),
            None => Ok(default),
        }
    }
    fn u32(&self, slot: VOffsetT, default: u32) -> Result<u32> {
        match self.field(slot)? {
            Some(p) => self.buf.u32_at(p),
            None => Ok(default),
        }
    }
    fn i32(&self, slot: VOffsetT, default: i32) -> Result<i32> {
        Ok(self.u32(slot, default as u32)? as i32)
    }

    /// The bytes of a vector field: (element count, start of the elements).
    fn vector(&self, slot: VOffsetT, element_size: usize) -> Result<Option<(usize, usize)>> {
        let Some(p) = self.field(slot)? else { return Ok(None) };
        let start = self.buf.follow(p)?;
        let len = self.buf.u32_at(start)? as usize;
        self.buf.slice(start + 4, len.saturating_mul(element_size))?;
        Ok(Some((len, start + 4)))
    }
    fn bytes(&self, slot: VOffsetT) -> Result<Option<&'a [u8]>> {
        match self.vector(slot, 1)? {
            Some((len, start)) => Ok(Some(self.buf.slice(start, len)?)),
            None => Ok(None),
        }
    }
    fn string(&self, slot: VOffsetT) -> Result<Option<String>> {
        Ok(self.bytes(slot)?.map(|b| String::from_utf8_lossy(b).into_owned()))
    }
    fn words(&self, slot: VOffsetT, size: usize) -> Result<Vec<&'a [u8]>> {
        match self.vector(slot, size)? {
            Some((len, start)) => Ok(self.buf.slice(start, len * size)?.chunks_exact(size).collect()),
            None => Ok(vec![]),
        }
    }
    fn i32s(&self, slot: VOffsetT) -> Result<Vec<i32>> {
        Ok(self.words(slot, 4)?.iter().map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
    fn f32s(&self, slot: VOffsetT) -> Result<Vec<f32>> {
        Ok(self.words(slot, 4)?.iter().map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
    fn i64s(&self, slot: VOffsetT) -> Result<Vec<i64>> {
        Ok(self
            .words(slot, 8)?
            .iter()
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect())
    }
    fn table(&self, slot: VOffsetT) -> Result<Option<Table<'a>>> {
        match self.field(slot)? {
            Some(p) => Ok(Some(Table::at(self.buf, self.buf.follow(p)?)?)),
            None => Ok(None),
        }
    }
    fn tables(&self, slot: VOffsetT) -> Result<Vec<Table<'a>>> {
        let Some((len, start)) = self.vector(slot, 4)? else { return Ok(vec![]) };
        (0..len)
            .map(|i| Table::at(self.buf, self.buf.follow(start + 4 * i)?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_readable_error() {
        for bytes in [&b""[..], b"hello", &[0u8; 64], &[0xffu8; 64]] {
            let err = read_ops(bytes).unwrap_err();
            assert!(matches!(err, Error::Weights(_)), "{err}");
        }
    }

    #[test]
    fn offsets_outside_the_file_are_errors() {
        let mut bytes = vec![0u8; 16];
        bytes[0..4].copy_from_slice(&1000u32.to_le_bytes());
        bytes[4..8].copy_from_slice(b"TFL3");
        assert!(read_ops(&bytes).unwrap_err().to_string().contains("truncated"));
    }
}
