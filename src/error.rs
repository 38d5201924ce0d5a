//! The one error type of the crate, worded for the person using the page or the CLI, and the
//! kind that travels with it across every seam (wasm → worker → page): only a lost GPU restarts
//! the engine, a stop is not a failure, everything else is shown as what it is. Depends on
//! nothing else in the crate.

use std::fmt;

/// What a caller does about an error; crosses the wasm and worker seams as the string of
/// [`ErrorKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something the person (or a JavaScript caller) gave: show the message, change nothing.
    BadInput,
    /// Training was stopped on request: not a failure.
    Stopped,
    /// WebGPU failed or was lost: restart the engine on the CPU.
    GpuLost,
    /// Reading or writing a file or the browser's storage.
    Storage,
    /// A bug: the engine must be restarted.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad-input",
            ErrorKind::Stopped => "stopped",
            ErrorKind::GpuLost => "gpu-lost",
            ErrorKind::Storage => "storage",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Everything that can fail, worded for the person using Fewshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An RGBA buffer whose length does not match width × height × 4.
    BadPixels { width: u32, height: u32, got: usize },
    /// An image too small to say anything about: a side under `min`.
    ImageTooSmall { width: u32, height: u32, min: u32 },
    /// An image larger than the engine accepts: more than `max_pixels`.
    ImageTooLarge { width: u32, height: u32, max_pixels: u64 },
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
    /// A project file (its `project.json`) that is damaged, another program's or too new.
    ProjectFile(String),
    /// WebGPU missing, a lost device, or a failed read-back.
    Gpu(String),
    /// Reading or writing a file.
    Io(String),
    /// A class name that is empty, too long or used twice, or too many classes.
    BadClasses(String),
    /// Photos whose embeddings are not there yet.
    NotReady { waiting: usize },
    /// Training was stopped before it finished.
    Stopped,
    /// A bug (a panic caught at a seam, a broken invariant).
    Internal(String),
}

impl Error {
    /// What a caller should do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Gpu(_) => ErrorKind::GpuLost,
            Error::Io(_) => ErrorKind::Storage,
            Error::Stopped => ErrorKind::Stopped,
            Error::Internal(_) => ErrorKind::Internal,
            Error::BadPixels { .. }
            | Error::ImageTooSmall { .. }
            | Error::ImageTooLarge { .. }
            | Error::NotAnImage(_)
            | Error::Weights(_)
            | Error::TooFewClasses { .. }
            | Error::EmptyClass(_)
            | Error::BadConfig(_)
            | Error::ModelFile(_)
            | Error::ProjectFile(_)
            | Error::BadClasses(_)
            | Error::NotReady { .. } => ErrorKind::BadInput,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadPixels { width, height, got } => write!(
                f,
                "pixel buffer has {got} bytes but a {width}x{height} RGBA image needs {}",
                *width as usize * *height as usize * 4
            ),
            Error::ImageTooSmall { width, height, min } => {
                write!(f, "image is only {width}x{height} pixels; use a photo at least {min}x{min}")
            }
            Error::ImageTooLarge { width, height, max_pixels } => write!(
                f,
                "image is {width}x{height} pixels ({:.0} megapixels); the limit is {} megapixels: shrink it first",
                *width as f64 * *height as f64 / 1e6,
                max_pixels / 1_000_000
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
            Error::Io(why) | Error::ProjectFile(why) => write!(f, "{why}"),
            Error::BadClasses(why) => write!(f, "{why}"),
            Error::NotReady { waiting } => write!(
                f,
                "wait a moment: {waiting} photo{} still being prepared",
                if *waiting == 1 { " is" } else { "s are" }
            ),
            Error::Stopped => write!(f, "training was stopped"),
            Error::Internal(why) => write!(f, "internal error (please report it): {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
