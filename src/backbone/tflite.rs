//! Read the backbone's weights out of a `.tflite` file (a TFLite flatbuffer, schema v3).
//!
//! The first subgraph is read whole ([`read_graph`]): tensors with their bytes, operators with
//! the options MobileNetV2's kinds have. For the backbone ([`read_ops`]) each convolution's
//! weight and bias tensors are dequantized to `f32` with
//! `(q - zero_point) * scale` (per tensor, or per channel where the file says so).
//! Every offset is bounds-checked: a truncated or foreign file gives an [`Error::Weights`]
//! naming what did not fit, never a panic.
//!
//! Field numbers follow `tensorflow/lite/schema/schema.fbs`.

use crate::error::{Error, Result};

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

/// The options of the operators MobileNetV2 uses (fields of schema.fbs's option tables, in
/// their order); any other kind is kept only as its union type.
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

/// BuiltinOptions union types (schema.fbs).
pub const OPTIONS_CONV: u8 = 1;
pub const OPTIONS_DEPTHWISE: u8 = 2;
pub const OPTIONS_POOL: u8 = 5;
pub const OPTIONS_ADD: u8 = 11;
pub const OPTIONS_REDUCER: u8 = 27;

/// Read the first subgraph of a `.tflite` file.
pub fn read_graph(bytes: &[u8]) -> Result<Graph<'_>> {
    let buf = Buf(bytes);
    if bytes.len() < 8 {
        return Err(Error::Weights(format!("file is only {} bytes long", bytes.len())));
    }
    if &bytes[4..8] != b"TFL3" {
        return Err(Error::Weights(
            "not a TFLite model (the file identifier \"TFL3\" is missing)".into(),
        ));
    }
    let model = buf.root()?;
    let codes = model.tables(1)?;
    let buffers = model.tables(4)?;
    let graph = model
        .tables(2)?
        .first()
        .copied()
        .ok_or_else(|| Error::Weights("the model has no subgraph".into()))?;
    check_appended_archive(bytes, &buffers)?;

    let mut tensors = vec![];
    for t in graph.tables(0)? {
        let buffer_index = t.u32(2, 0)? as usize;
        let buffer = buffers
            .get(buffer_index)
            .ok_or_else(|| Error::Weights(format!("tensor refers to missing buffer {buffer_index}")))?;
        let q = t.table(4)?;
        tensors.push(Tensor {
            name: t.string(3)?.unwrap_or_default(),
            shape: t.i32s(0)?.into_iter().map(|d| d.max(0) as usize).collect(),
            dtype: t.u8(1, 0)?,
            data: buffer.bytes(0)?.unwrap_or(&[]),
            scale: match q {
                Some(q) => q.f32s(2)?,
                None => vec![],
            },
            zero_point: match q {
                Some(q) => q.i64s(3)?,
                None => vec![],
            },
            quantized_dimension: match q {
                Some(q) => q.i32(6, 0)?.max(0) as usize,
                None => 0,
            },
        });
    }

    let mut operators = vec![];
    for op in graph.tables(3)? {
        let code_index = op.u32(0, 0)? as usize;
        let code = codes
            .get(code_index)
            .ok_or_else(|| Error::Weights(format!("operator code {code_index} is missing")))?;
        let inputs = op.i32s(1)?;
        let outputs = op.i32s(2)?;
        if let Some(bad) = inputs.iter().chain(&outputs).find(|&&i| i < -1 || i as i64 >= tensors.len() as i64) {
            return Err(Error::Weights(format!("operator refers to missing tensor {bad}")));
        }
        let options = match (op.u8(3, 0)?, op.table(4)?) {
            (_, None) | (0, _) => Options::None,
            (OPTIONS_CONV, Some(o)) => Options::Conv {
                padding: o.u8(0, 0)?,
                stride_w: o.i32(1, 0)?,
                stride_h: o.i32(2, 0)?,
                activation: o.u8(3, 0)?,
                dilation_w: o.i32(4, 1)?,
                dilation_h: o.i32(5, 1)?,
            },
            (OPTIONS_DEPTHWISE, Some(o)) => Options::Depthwise {
                padding: o.u8(0, 0)?,
                stride_w: o.i32(1, 0)?,
                stride_h: o.i32(2, 0)?,
                multiplier: o.i32(3, 0)?,
                activation: o.u8(4, 0)?,
                dilation_w: o.i32(5, 1)?,
                dilation_h: o.i32(6, 1)?,
            },
            (OPTIONS_POOL, Some(o)) => Options::Pool {
                padding: o.u8(0, 0)?,
                stride_w: o.i32(1, 0)?,
                stride_h: o.i32(2, 0)?,
                filter_w: o.i32(3, 0)?,
                filter_h: o.i32(4, 0)?,
                activation: o.u8(5, 0)?,
            },
            (OPTIONS_ADD, Some(o)) => Options::Add { activation: o.u8(0, 0)? },
            (OPTIONS_REDUCER, Some(o)) => Options::Reducer { keep_dims: o.u8(0, 0)? != 0 },
            (other, Some(_)) => Options::Other(other),
        };
        operators.push(Operator {
            // Newer files keep the code in field 3; field 0 is the deprecated 8-bit copy.
            code: (code.u8(0, 0)? as i8 as i32).max(code.i32(3, 0)?),
            version: code.i32(2, 1)?,
            inputs,
            outputs,
            options,
        });
    }
    Ok(Graph { tensors, operators, inputs: graph.i32s(1)? })
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
                let (depthwise, padding, stride_w, stride_h, activation) = match op.options {
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
                    same_padding: padding == PADDING_SAME,
                    relu6: activation == RELU6,
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
        if let Some(data) = buffer.bytes(0)? {
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

/// BuiltinOperator codes (schema.fbs).
pub const ADD: i32 = 0;
pub const AVERAGE_POOL_2D: i32 = 1;
pub const CONCATENATION: i32 = 2;
pub const CONV_2D: i32 = 3;
pub const DEPTHWISE_CONV_2D: i32 = 4;
pub const DEQUANTIZE: i32 = 6;
pub const FULLY_CONNECTED: i32 = 9;
pub const L2_NORMALIZATION: i32 = 11;
pub const SOFTMAX: i32 = 25;
pub const MEAN: i32 = 40;
pub const REVERSE_V2: i32 = 105;
pub const SLICE: i32 = 65;
pub const RESIZE_BILINEAR: i32 = 23;
const PADDING_SAME: u8 = 0;
/// ActivationFunctionType values (schema.fbs).
pub const RELU: u8 = 1;
pub const RELU6: u8 = 3;

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
            TYPE_FLOAT32 => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            TYPE_INT32 => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
            TYPE_UINT8 => (1, |b| b[0] as f64),
            TYPE_INT8 => (1, |b| b[0] as i8 as f64),
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
        if self.dtype == TYPE_FLOAT32 || self.scale.is_empty() {
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

/// TensorType values (schema.fbs).
pub const TYPE_FLOAT32: u8 = 0;
pub const TYPE_INT32: u8 = 2;
pub const TYPE_UINT8: u8 = 3;
pub const TYPE_INT8: u8 = 9;

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

    /// Position of field `id`, or `None` when the field is absent.
    fn field(&self, id: usize) -> Result<Option<usize>> {
        let vtable_len = self.buf.u16_at(self.vtable)? as usize;
        let slot = 4 + 2 * id;
        if slot + 2 > vtable_len {
            return Ok(None);
        }
        match self.buf.u16_at(self.vtable + slot)? {
            0 => Ok(None),
            off => Ok(Some(self.pos + off as usize)),
        }
    }

    fn u8(&self, id: usize, default: u8) -> Result<u8> {
        match self.field(id)? {
            Some(p) => Ok(self.buf.slice(p, 1)?[0]),
            None => Ok(default),
        }
    }
    fn u32(&self, id: usize, default: u32) -> Result<u32> {
        match self.field(id)? {
            Some(p) => self.buf.u32_at(p),
            None => Ok(default),
        }
    }
    fn i32(&self, id: usize, default: i32) -> Result<i32> {
        Ok(self.u32(id, default as u32)? as i32)
    }

    /// The bytes of a vector field: (element count, start of the elements).
    fn vector(&self, id: usize, element_size: usize) -> Result<Option<(usize, usize)>> {
        let Some(p) = self.field(id)? else { return Ok(None) };
        let start = self.buf.follow(p)?;
        let len = self.buf.u32_at(start)? as usize;
        self.buf.slice(start + 4, len.saturating_mul(element_size))?;
        Ok(Some((len, start + 4)))
    }
    fn bytes(&self, id: usize) -> Result<Option<&'a [u8]>> {
        match self.vector(id, 1)? {
            Some((len, start)) => Ok(Some(self.buf.slice(start, len)?)),
            None => Ok(None),
        }
    }
    fn string(&self, id: usize) -> Result<Option<String>> {
        Ok(self.bytes(id)?.map(|b| String::from_utf8_lossy(b).into_owned()))
    }
    fn words(&self, id: usize, size: usize) -> Result<Vec<&'a [u8]>> {
        match self.vector(id, size)? {
            Some((len, start)) => Ok(self.buf.slice(start, len * size)?.chunks_exact(size).collect()),
            None => Ok(vec![]),
        }
    }
    fn i32s(&self, id: usize) -> Result<Vec<i32>> {
        Ok(self.words(id, 4)?.iter().map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
    fn f32s(&self, id: usize) -> Result<Vec<f32>> {
        Ok(self.words(id, 4)?.iter().map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
    fn i64s(&self, id: usize) -> Result<Vec<i64>> {
        Ok(self
            .words(id, 8)?
            .iter()
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect())
    }
    fn table(&self, id: usize) -> Result<Option<Table<'a>>> {
        match self.field(id)? {
            Some(p) => Ok(Some(Table::at(self.buf, self.buf.follow(p)?)?)),
            None => Ok(None),
        }
    }
    fn tables(&self, id: usize) -> Result<Vec<Table<'a>>> {
        let Some((len, start)) = self.vector(id, 4)? else { return Ok(vec![]) };
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
