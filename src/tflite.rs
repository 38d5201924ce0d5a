//! TFLite's file format, declared once: the tables of `tensorflow/lite/schema/schema.fbs`
//! (schema version 3) that Fewshot reads or writes, the vtable slot of each of their fields,
//! and the codes of the schema's enums. The backbone's loader (`backbone::tflite`) reads a
//! file through these; the export (`export`) writes one with them and the `flatbuffers`
//! crate. Only what the two use is here; names and numbers are schema.fbs's, in its order, so
//! each line can be checked against it.

/// The file identifier, bytes 4..8 of every file.
pub const FILE_IDENTIFIER: &str = "TFL3";
/// The schema version a file states (`Model.version`).
pub const VERSION: u32 = 3;

/// A table: each field with its id (its place in schema.fbs), declared as its vtable slot,
/// `4 + 2 × id`, which the reader looks up and `FlatBufferBuilder::push_slot_always` takes.
macro_rules! table {
    ($(#[$doc:meta])* $name:ident { $($field:ident = $id:literal),* $(,)? }) => {
        $(#[$doc])*
        pub mod $name {
            $(pub const $field: flatbuffers::VOffsetT = 4 + 2 * $id;)*
        }
    };
}

table!(/// Model, the root table.
    model { VERSION = 0, OPERATOR_CODES = 1, SUBGRAPHS = 2, DESCRIPTION = 3, BUFFERS = 4, METADATA = 6 });
table!(/// OperatorCode: which builtin operator, in which version. The byte at
    /// DEPRECATED_BUILTIN_CODE is the code of older files, PLACEHOLDER_FOR_GREATER_OP_CODES
    /// past 127; BUILTIN_CODE holds it whole.
    operator_code { DEPRECATED_BUILTIN_CODE = 0, VERSION = 2, BUILTIN_CODE = 3 });
table!(/// SubGraph: tensors, operators, and the indices of the input and output tensors.
    subgraph { TENSORS = 0, INPUTS = 1, OUTPUTS = 2, OPERATORS = 3, NAME = 4 });
table!(/// Tensor: its bytes are `Model.buffers[BUFFER]` (empty for a tensor computed while running).
    tensor { SHAPE = 0, TYPE = 1, BUFFER = 2, NAME = 3, QUANTIZATION = 4 });
table!(/// QuantizationParameters: `real = (q - zero_point) × scale`, one scale per channel of
    /// QUANTIZED_DIMENSION or one for the tensor.
    quantization { SCALE = 2, ZERO_POINT = 3, QUANTIZED_DIMENSION = 6 });
table!(/// Operator: its code is `Model.operator_codes[OPCODE_INDEX]`; its options table's type
    /// is a `builtin_options` code.
    operator { OPCODE_INDEX = 0, INPUTS = 1, OUTPUTS = 2, BUILTIN_OPTIONS_TYPE = 3, BUILTIN_OPTIONS = 4 });
table!(/// Buffer.
    buffer { DATA = 0 });
table!(/// Metadata: a name and the buffer that holds it.
    metadata { NAME = 0, BUFFER = 1 });

// The options tables of the operators MobileNetV2 and the export's head use.
table!(/// Conv2DOptions.
    conv_2d { PADDING = 0, STRIDE_W = 1, STRIDE_H = 2, FUSED_ACTIVATION_FUNCTION = 3, DILATION_W_FACTOR = 4, DILATION_H_FACTOR = 5 });
table!(/// DepthwiseConv2DOptions.
    depthwise_conv_2d {
        PADDING = 0, STRIDE_W = 1, STRIDE_H = 2, DEPTH_MULTIPLIER = 3, FUSED_ACTIVATION_FUNCTION = 4,
        DILATION_W_FACTOR = 5, DILATION_H_FACTOR = 6,
    });
table!(/// Pool2DOptions.
    pool_2d { PADDING = 0, STRIDE_W = 1, STRIDE_H = 2, FILTER_WIDTH = 3, FILTER_HEIGHT = 4, FUSED_ACTIVATION_FUNCTION = 5 });
table!(/// AddOptions.
    add { FUSED_ACTIVATION_FUNCTION = 0 });
table!(/// ReducerOptions (MEAN's).
    reducer { KEEP_DIMS = 0 });
table!(/// ConcatenationOptions.
    concatenation { AXIS = 0, FUSED_ACTIVATION_FUNCTION = 1 });
table!(/// ResizeBilinearOptions.
    resize_bilinear { ALIGN_CORNERS = 2, HALF_PIXEL_CENTERS = 3 });
table!(/// FullyConnectedOptions.
    fully_connected { FUSED_ACTIVATION_FUNCTION = 0, WEIGHTS_FORMAT = 1, KEEP_NUM_DIMS = 2 });
table!(/// SoftmaxOptions.
    softmax { BETA = 0 });
table!(/// L2NormOptions.
    l2_norm { FUSED_ACTIVATION_FUNCTION = 0 });

/// TensorType: a tensor's element type.
pub mod tensor_type {
    pub const FLOAT32: u8 = 0;
    pub const INT32: u8 = 2;
    pub const UINT8: u8 = 3;
    pub const INT8: u8 = 9;
}

/// BuiltinOperator: an operator's code.
pub mod builtin_operator {
    pub const ADD: i32 = 0;
    pub const AVERAGE_POOL_2D: i32 = 1;
    pub const CONCATENATION: i32 = 2;
    pub const CONV_2D: i32 = 3;
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    pub const DEQUANTIZE: i32 = 6;
    pub const FULLY_CONNECTED: i32 = 9;
    pub const L2_NORMALIZATION: i32 = 11;
    pub const RESIZE_BILINEAR: i32 = 23;
    pub const SOFTMAX: i32 = 25;
    pub const MEAN: i32 = 40;
    pub const SLICE: i32 = 65;
    pub const REVERSE_V2: i32 = 105;
    /// The deprecated byte of a code past 127.
    pub const PLACEHOLDER_FOR_GREATER_OP_CODES: i32 = 127;
}

/// BuiltinOptions: the type of an operator's options table (the union's tag; 0, NONE: none).
pub mod builtin_options {
    pub const NONE: u8 = 0;
    pub const CONV_2D: u8 = 1;
    pub const DEPTHWISE_CONV_2D: u8 = 2;
    pub const POOL_2D: u8 = 5;
    pub const FULLY_CONNECTED: u8 = 8;
    pub const SOFTMAX: u8 = 9;
    pub const CONCATENATION: u8 = 10;
    pub const ADD: u8 = 11;
    pub const L2_NORM: u8 = 12;
    pub const RESIZE_BILINEAR: u8 = 15;
    pub const REDUCER: u8 = 27;
}

/// ActivationFunctionType: the activation fused into an operator.
pub mod activation {
    pub const NONE: u8 = 0;
    pub const RELU: u8 = 1;
    pub const RELU6: u8 = 3;
}

/// Padding.
pub mod padding {
    pub const SAME: u8 = 0;
    pub const VALID: u8 = 1;
}

/// FullyConnectedOptionsWeightsFormat.
pub mod weights_format {
    pub const DEFAULT: u8 = 0;
}
