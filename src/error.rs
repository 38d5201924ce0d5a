//! The one error type of the crate, worded for the person using the page or the CLI.

use std::fmt;

/// Everything that can fail, worded for the person using Fewshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An RGBA buffer whose length does not match width × height × 4.
    BadPixels { width: u32, height: u32, got: usize },
    /// An image too small to say anything about.
    ImageTooSmall { width: u32, height: u32 },
    /// An image larger than the engine accepts.
    ImageTooLarge { width: u32, height: u32 },
    /// A file that could not be decoded as an image.
    NotAnImage(String),
    /// The weights file does not fit the backbone.
    Weights(String),
    /// Training needs photos in at least two classes.
    TooFewClasses { with_photos: usize },
    /// A class has no photos at all.
    EmptyClass(String),
    /// A setting out of range.
    BadConfig(String),
    /// A model file that cannot be read.
    ModelFile(String),
    /// WebGPU missing, a lost device, or a failed read-back.
    Gpu(String),
    /// Reading or writing a file.
    Io(String),
    /// Training was stopped before it finished.
    Stopped,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadPixels { width, height, got } => write!(
                f,
                "pixel buffer has {got} bytes but a {width}x{height} RGBA image needs {}",
                *width as usize * *height as usize * 4
            ),
            Error::ImageTooSmall { width, height } => write!(
                f,
                "image is only {width}x{height} pixels; use a photo at least {MIN}x{MIN}",
                MIN = crate::preprocess::MIN_SIDE
            ),
            Error::ImageTooLarge { width, height } => write!(
                f,
                "image is {width}x{height} pixels ({:.0} megapixels); the limit is {} megapixels: shrink it first",
                *width as f64 * *height as f64 / 1e6,
                crate::preprocess::MAX_PIXELS / 1_000_000
            ),
            Error::NotAnImage(why) => write!(f, "not a readable image: {why}"),
            Error::Weights(why) => write!(f, "weights file does not fit MobileNetV2: {why}"),
            Error::TooFewClasses { with_photos } => write!(
                f,
                "training needs photos in at least two classes; {with_photos} class{} photos",
                if *with_photos == 1 { " has" } else { "es have" }
            ),
            Error::EmptyClass(name) => write!(f, "class \"{name}\" has no photos; add some or remove the class"),
            Error::BadConfig(why) => write!(f, "invalid setting: {why}"),
            Error::ModelFile(why) => write!(f, "cannot read this model file: {why}"),
            Error::Gpu(why) => write!(f, "GPU error: {why}"),
            Error::Io(why) => write!(f, "{why}"),
            Error::Stopped => write!(f, "training was stopped"),
        }
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
