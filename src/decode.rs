//! Native only: read a photo file (JPEG, PNG, WebP, BMP, GIF) into RGBA pixels, turned upright
//! by its EXIF orientation. In the browser, the page decodes photos itself.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::error::{Error, Result};
use crate::preprocess::Rgba;

/// An owned RGBA photo.
#[derive(Debug, Clone)]
pub struct Photo {
    pub pixels: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Photo {
    /// Borrow as checked RGBA (fails for photos too small or too large).
    pub fn rgba(&self) -> Result<Rgba<'_>> {
        Rgba::new(&self.pixels, self.width, self.height)
    }
}

/// Decode a photo from its bytes.
pub fn decode(bytes: &[u8]) -> Result<Photo> {
    if bytes.is_empty() {
        return Err(Error::NotAnImage("the file is empty (0 bytes)".into()));
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::NotAnImage(e.to_string()))?;
    if reader.format().is_none() {
        return Err(Error::NotAnImage("not JPEG, PNG, WebP, BMP or GIF".into()));
    }
    let mut decoder = reader.into_decoder().map_err(|e| Error::NotAnImage(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    // Refuse before allocating: a 10000x10000 photo would take 400 MB as RGBA.
    Rgba::byte_len(width, height)?;
    let orientation = decoder.orientation().map_err(|e| Error::NotAnImage(e.to_string()))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| Error::NotAnImage(e.to_string()))?;
    image.apply_orientation(orientation);
    let rgba = image.to_rgba8();
    let (width, height) = rgba.dimensions();
    Ok(Photo { pixels: rgba.into_raw(), width, height })
}

/// Decode a photo file; errors name the file.
pub fn decode_file(path: &Path) -> Result<Photo> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    decode(&bytes).map_err(|e| match e {
        Error::NotAnImage(why) => Error::NotAnImage(format!("{}: {why}", path.display())),
        other => Error::Io(format!("{}: {other}", path.display())),
    })
}

/// Class names, sorted, and each photo file with the index of its class.
pub type ClassFolders = (Vec<String>, Vec<(std::path::PathBuf, usize)>);

/// Photo files of a folder with one subfolder per class.
pub fn class_folders(dir: &Path) -> Result<ClassFolders> {
    let list = |dir: &Path| -> Result<Vec<std::path::PathBuf>> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::Io(format!("cannot read the folder {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        entries.sort();
        Ok(entries)
    };
    let classes: Vec<_> = list(dir)?.into_iter().filter(|p| p.is_dir()).collect();
    let mut labels = vec![];
    let mut files = vec![];
    for (class, folder) in classes.iter().enumerate() {
        labels.push(folder.file_name().unwrap_or_default().to_string_lossy().into_owned());
        files.extend(list(folder)?.into_iter().filter(|p| p.is_file()).map(|p| (p, class)));
    }
    if labels.is_empty() {
        return Err(Error::Io(format!("{} has no subfolders: put each class's photos in a folder named after it", dir.display())));
    }
    Ok((labels, files))
}
