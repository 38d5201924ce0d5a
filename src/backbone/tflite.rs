//! Read the backbone's weights out of a `.tflite` file (a TFLite flatbuffer, schema v3).
//!
//! Only what MobileNetV2 needs is read: the operators in graph order, and for each convolution
//! its options and its weight and bias tensors, dequantized to `f32` with
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

/// The operators of the file's first subgraph, in order.
pub fn read_ops(bytes: &[u8]) -> Result<Vec<Op>> {
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
    let tensors = graph.tables(0)?;
    let operators = graph.tables(3)?;

    let tensor = |i: i32| -> Result<Tensor> {
        let t = usize::try_from(i)
            .ok()
            .and_then(|i| tensors.get(i))
            .ok_or_else(|| Error::Weights(format!("operator refers to missing tensor {i}")))?;
        let buffer_index = t.u32(2, 0)? as usize;
        let buffer = buffers
            .get(buffer_index)
            .ok_or_else(|| Error::Weights(format!("tensor refers to missing buffer {buffer_index}")))?;
        let q = t.table(4)?;
        Ok(Tensor {
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
        })
    };

    check_appended_archive(bytes, &buffers)?;
    let mut ops = Vec::with_capacity(operators.len());
    for op in operators {
        let code_index = op.u32(0, 0)? as usize;
        let code = codes
            .get(code_index)
            .ok_or_else(|| Error::Weights(format!("operator code {code_index} is missing")))?;
        // Newer files keep the code in field 3; field 0 is the deprecated 8-bit copy.
        let builtin = (code.u8(0, 0)? as i8 as i32).max(code.i32(3, 0)?);
        let inputs = op.i32s(1)?;
        let options = op.table(4)?;
        ops.push(match builtin {
            CONV_2D | DEPTHWISE_CONV_2D => {
                let depthwise = builtin == DEPTHWISE_CONV_2D;
                let options = options.ok_or_else(|| Error::Weights("a convolution has no options".into()))?;
                // Conv2DOptions: padding 0, stride_w 1, stride_h 2, activation 3.
                // DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2, multiplier 3, activation 4.
                let activation = options.u8(if depthwise { 4 } else { 3 }, 0)?;
                let (stride_w, stride_h) = (options.i32(1, 0)?, options.i32(2, 0)?);
                if stride_w != stride_h || stride_w < 1 {
                    return Err(Error::Weights(format!("unsupported strides {stride_h}x{stride_w}")));
                }
                if inputs.len() < 3 {
                    return Err(Error::Weights("a convolution has no bias".into()));
                }
                let weight = tensor(inputs[1])?;
                let bias = tensor(inputs[2])?;
                Op::Conv(ConvOp {
                    depthwise,
                    weight: weight.dequantize()?,
                    weight_shape: weight.shape.clone(),
                    bias: bias.dequantize()?,
                    stride: stride_w as usize,
                    same_padding: options.u8(0, 0)? == PADDING_SAME,
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

const ADD: i32 = 0;
const AVERAGE_POOL_2D: i32 = 1;
const CONV_2D: i32 = 3;
const DEPTHWISE_CONV_2D: i32 = 4;
const MEAN: i32 = 40;
const PADDING_SAME: u8 = 0;
const RELU6: u8 = 3;

/// A constant tensor of the file, still quantized.
struct Tensor<'a> {
    name: String,
    shape: Vec<usize>,
    dtype: u8,
    data: &'a [u8],
    scale: Vec<f32>,
    zero_point: Vec<i64>,
    quantized_dimension: usize,
}

impl Tensor<'_> {
    /// The values as `f32`: `(q - zero_point) * scale`, per channel of `quantized_dimension`
    /// when the file stores one scale per channel.
    fn dequantize(&self) -> Result<Vec<f32>> {
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

const TYPE_FLOAT32: u8 = 0;
const TYPE_INT32: u8 = 2;
const TYPE_UINT8: u8 = 3;
const TYPE_INT8: u8 = 9;

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
