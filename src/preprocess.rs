//! RGBA pixels of any size → the backbone's input: a 224x224 RGB square scaled to [-1, 1].
//!
//! The square is the centre crop of the photo (default) or the whole photo padded to a square
//! (`Framing::Pad`, for things that fill the frame unevenly). Resizing is bilinear with the
//! filter widened when shrinking, as PIL's `Image.resize(..., BILINEAR)` does, so that the
//! embeddings match the reference pipeline that produced `../shared/fixtures`. Transparent
//! pixels are laid on white.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Side of the square the backbone sees.
pub const INPUT_SIDE: usize = 224;
/// Values per preprocessed photo: `[3, 224, 224]`.
pub const INPUT_LEN: usize = 3 * INPUT_SIDE * INPUT_SIDE;
/// Smallest width or height accepted.
pub const MIN_SIDE: u32 = 16;
/// Largest photo accepted, in pixels (a 64-megapixel RGBA buffer is 256 MB).
pub const MAX_PIXELS: u64 = 64_000_000;

/// How a photo that is not square becomes a square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Keep the largest centred square; the edges of long photos are cut.
    #[default]
    Crop,
    /// Keep the whole photo and fill the rest of the square with grey.
    Pad,
}

/// A photo as RGBA bytes, row-major, 4 bytes a pixel.
#[derive(Debug, Clone, Copy)]
pub struct Rgba<'a> {
    pub pixels: &'a [u8],
    pub width: u32,
    pub height: u32,
}

impl<'a> Rgba<'a> {
    /// Check the buffer and the size.
    pub fn new(pixels: &'a [u8], width: u32, height: u32) -> Result<Self> {
        let bytes = Self::byte_len(width, height)?;
        if pixels.len() != bytes {
            return Err(Error::BadPixels { width, height, got: pixels.len() });
        }
        Ok(Rgba { pixels, width, height })
    }

    /// The bytes an RGBA image of this size takes, once the size is known to be accepted
    /// (at least [`MIN_SIDE`] a side, at most [`MAX_PIXELS`]): never zero, never an overflow.
    pub fn byte_len(width: u32, height: u32) -> Result<usize> {
        if width as u64 * height as u64 > MAX_PIXELS {
            return Err(Error::ImageTooLarge { width, height, max_pixels: MAX_PIXELS });
        }
        if width < MIN_SIDE || height < MIN_SIDE {
            return Err(Error::ImageTooSmall { width, height, min: MIN_SIDE });
        }
        Ok(width as usize * height as usize * 4)
    }
}

/// One view of a photo: how it is framed, mirrored and brought closer on its way to the
/// backbone's input ([`View::apply`]). A photo is embedded in the [`views`] its settings ask
/// for. Missing fields take their defaults, so `{}` from JavaScript is the plain view.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct View {
    pub framing: Framing,
    /// Mirror left-right (an augmentation).
    pub flip: bool,
    /// Zoom in on the centre by this fraction of the side (0 = none; an augmentation).
    pub zoom: f32,
}

impl View {
    /// The photo as `[3, 224, 224]` floats, `(x - 127.5) / 127.5`, channel-major.
    pub fn apply(&self, image: Rgba) -> Vec<f32> {
        let rgb = to_rgb_on_white(image);
        let (w, h) = (image.width as usize, image.height as usize);
        let mut square = vec![0.0f32; INPUT_SIDE * INPUT_SIDE * 3];
        match self.framing {
            Framing::Crop => {
                let side = w.min(h) as f64 * (1.0 - self.zoom.clamp(0.0, 0.9) as f64);
                let region = Region {
                    x0: (w as f64 - side) / 2.0,
                    y0: (h as f64 - side) / 2.0,
                    width: side,
                    height: side,
                };
                // PIL crops on whole pixels: ((w - s) // 2, (h - s) // 2).
                let region = if self.zoom == 0.0 { region.floor_origin() } else { region };
                resize_into(&rgb, w, h, region, &mut square, INPUT_SIDE, INPUT_SIDE, INPUT_SIDE);
            }
            Framing::Pad => {
                square.iter_mut().for_each(|v| *v = 127.5);
                let scale = INPUT_SIDE as f64 / w.max(h) as f64;
                let out_w = ((w as f64 * scale).round() as usize).clamp(1, INPUT_SIDE);
                let out_h = ((h as f64 * scale).round() as usize).clamp(1, INPUT_SIDE);
                let mut resized = vec![0.0f32; out_w * out_h * 3];
                let region = Region { x0: 0.0, y0: 0.0, width: w as f64, height: h as f64 };
                resize_into(&rgb, w, h, region, &mut resized, out_w, out_h, out_w);
                let (left, top) = ((INPUT_SIDE - out_w) / 2, (INPUT_SIDE - out_h) / 2);
                for y in 0..out_h {
                    let dst = ((top + y) * INPUT_SIDE + left) * 3;
                    square[dst..dst + out_w * 3].copy_from_slice(&resized[y * out_w * 3..(y + 1) * out_w * 3]);
                }
            }
        }
        to_chw_normalised(&square, self.flip)
    }
}

/// How the person wants photos seen: the page's and the CLI's settings that decide the
/// [`views`]. Unknown fields are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seeing {
    pub framing: Framing,
    /// Also learn from each photo's mirror image, and average the two when predicting.
    pub mirror: bool,
    /// Also learn from a closer view of each cropped photo (its centre, [`ZOOM`] nearer), and
    /// average it in when predicting.
    pub zoom: bool,
}

/// How much nearer the closer view is: a quarter of the side is cut away (an eighth at each
/// edge). Measured on clothing-small against the linear probe (5 draws each, mirroring on),
/// learning from and averaging in the closer view at 0.15 / 0.25 / (0.1 and 0.25) gained
/// -0.8 / -1.0 / -1.4 points at 1 photo a class (within the draws' spread of 6 to 8), +2.1 /
/// +2.6 / +2.8 at 5, +3.6 / +3.7 / +4.4 at 10 and, for 0.25, +2.5 at 20 (README, "Learning").
pub const ZOOM: f32 = 0.25;

impl Default for Seeing {
    /// Mirroring on: measured on clothing-small against the linear probe (same draws), training
    /// on each photo and its mirror and averaging both at prediction gained 0.3 to 1.4 points
    /// from 1 to 30 photos a class (README, "Learning"), for twice the embedding work.
    fn default() -> Self {
        Seeing { framing: Framing::Crop, mirror: true, zoom: true }
    }
}

/// The only framing with a closer view: a padded photo is kept whole, so nearer would cut it.
pub const CLOSER_VIEW_FRAMING: Framing = Framing::Crop;

/// The views of a photo that are embedded: the photo as framed first, then (with mirroring)
/// its mirror image, then (with zoom, for a cropped photo) the closer view and its mirror. The
/// head trains on all of them; a prediction averages over all of them.
pub fn views(seeing: Seeing) -> Vec<View> {
    let base = View { framing: seeing.framing, ..View::default() };
    let mut framed = vec![base];
    if seeing.zoom && seeing.framing == CLOSER_VIEW_FRAMING {
        framed.push(View { zoom: ZOOM, ..base });
    }
    framed
        .into_iter()
        .flat_map(|view| if seeing.mirror { vec![view, View { flip: true, ..view }] } else { vec![view] })
        .collect()
}

/// Views a photo may be embedded in at once, at most (a project uses one to four: [`views`]).
pub const MAX_VIEWS: usize = 8;

/// The views as text: a project's `viewsKey` (embeddings stored under another key are made
/// again), and how the page's helper workers are told which views to embed.
pub fn views_key(views: &[View]) -> String {
    serde_json::to_string(views).expect("views are plain numbers and names")
}

/// The views of a [`views_key`]: one to [`MAX_VIEWS`] of them.
pub fn views_from_key(key: &str) -> Result<Vec<View>> {
    let views: Vec<View> =
        serde_json::from_str(key).map_err(|e| Error::BadConfig(format!("not a list of views ({e})")))?;
    if views.is_empty() || views.len() > MAX_VIEWS {
        return Err(Error::BadConfig(format!("between 1 and {MAX_VIEWS} views, not {}", views.len())));
    }
    Ok(views)
}

/// The stored 224x224 RGB bytes of a fixture, as the backbone's input.
pub fn from_rgb224(rgb: &[u8]) -> Result<Vec<f32>> {
    if rgb.len() != INPUT_SIDE * INPUT_SIDE * 3 {
        return Err(Error::BadPixels { width: 224, height: 224, got: rgb.len() * 4 / 3 });
    }
    let rgb: Vec<f32> = rgb.iter().map(|&v| v as f32).collect();
    Ok(to_chw_normalised(&rgb, false))
}

/// HWC RGB in [0, 255] → CHW in [-1, 1], mirrored if asked.
fn to_chw_normalised(rgb: &[f32], flip: bool) -> Vec<f32> {
    let plane = INPUT_SIDE * INPUT_SIDE;
    let mut out = vec![0.0; INPUT_LEN];
    for y in 0..INPUT_SIDE {
        for x in 0..INPUT_SIDE {
            let src_x = if flip { INPUT_SIDE - 1 - x } else { x };
            let src = (y * INPUT_SIDE + src_x) * 3;
            for c in 0..3 {
                out[c * plane + y * INPUT_SIDE + x] = (rgb[src + c] - 127.5) / 127.5;
            }
        }
    }
    out
}

/// RGB floats with transparency composited onto white.
fn to_rgb_on_white(image: Rgba) -> Vec<f32> {
    let mut rgb = Vec::with_capacity(image.width as usize * image.height as usize * 3);
    for px in image.pixels.chunks_exact(4) {
        let alpha = px[3] as f32 / 255.0;
        for &v in &px[..3] {
            rgb.push(v as f32 * alpha + 255.0 * (1.0 - alpha));
        }
    }
    rgb
}

/// A rectangle of the source photo, in pixels.
#[derive(Clone, Copy)]
struct Region {
    x0: f64,
    y0: f64,
    width: f64,
    height: f64,
}

impl Region {
    fn floor_origin(self) -> Self {
        Region { x0: self.x0.floor(), y0: self.y0.floor(), width: self.width.floor(), height: self.height.floor() }
    }
}

/// Resize `region` of an HWC RGB image into the top-left `out_w` x `out_h` of `out`
/// (row stride `out_stride` pixels): separable, horizontal pass first.
#[allow(clippy::too_many_arguments)]
fn resize_into(rgb: &[f32], w: usize, h: usize, region: Region, out: &mut [f32], out_w: usize, out_h: usize, out_stride: usize) {
    let cols = coefficients(region.x0, region.width, w, out_w);
    let rows = coefficients(region.y0, region.height, h, out_h);
    let (row_min, row_max) = rows
        .iter()
        .fold((usize::MAX, 0), |(lo, hi), (start, k)| (lo.min(*start), hi.max(start + k.len())));
    // Horizontal pass over the rows the vertical pass will read: [rows, out_w, 3].
    let mut horizontal = vec![0.0f32; (row_max - row_min) * out_w * 3];
    for y in row_min..row_max {
        let src_row = &rgb[y * w * 3..(y + 1) * w * 3];
        let dst_row = &mut horizontal[(y - row_min) * out_w * 3..(y - row_min + 1) * out_w * 3];
        for (x, (start, weights)) in cols.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for (i, weight) in weights.iter().enumerate() {
                let p = (start + i) * 3;
                acc[0] += src_row[p] * weight;
                acc[1] += src_row[p + 1] * weight;
                acc[2] += src_row[p + 2] * weight;
            }
            dst_row[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }
    for (y, (start, weights)) in rows.iter().enumerate() {
        let dst = &mut out[y * out_stride * 3..(y * out_stride + out_w) * 3];
        dst.iter_mut().for_each(|v| *v = 0.0);
        for (i, weight) in weights.iter().enumerate() {
            let src = &horizontal[(start + i - row_min) * out_w * 3..(start + i - row_min + 1) * out_w * 3];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s * weight;
            }
        }
    }
}

/// For each output pixel, the first source pixel it reads and the weights of the pixels from
/// there: a triangle filter stretched by the scale when shrinking (PIL's `precompute_coeffs`).
fn coefficients(start: f64, length: f64, size: usize, out: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = length / out as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    (0..out)
        .map(|i| {
            let center = start + (i as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0) as usize).min(size - 1);
            let hi = ((center + support + 0.5).floor() as usize).clamp(lo + 1, size);
            let mut weights: Vec<f64> = (lo..hi)
                .map(|x| (1.0 - ((x as f64 - center + 0.5) / filter_scale).abs()).max(0.0))
                .collect();
            let total: f64 = weights.iter().sum();
            if total > 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            } else {
                weights.iter_mut().for_each(|w| *w = 0.0);
                weights[0] = 1.0;
            }
            (lo, weights.into_iter().map(|w| w as f32).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_views_key_gives_its_views_back_and_nothing_else_passes() {
        let views = views(Seeing::default());
        assert_eq!(views_from_key(&views_key(&views)).unwrap(), views);
        for bad in ["", "[]", "{}", "[{\"framing\":\"sideways\"}]", &format!("[{}]", ["{}"; MAX_VIEWS + 1].join(","))] {
            let error = views_from_key(bad).unwrap_err();
            assert_eq!(error.kind(), crate::error::ErrorKind::BadInput, "{bad}: {error}");
        }
    }

    fn solid(w: u32, h: u32, rgba: [u8; 4]) -> Vec<u8> {
        rgba.iter().copied().cycle().take((w * h * 4) as usize).collect()
    }

    #[test]
    fn output_is_chw_in_minus_one_to_one() {
        let pixels = solid(300, 200, [255, 0, 127, 255]);
        let x = View::default().apply(Rgba::new(&pixels, 300, 200).unwrap());
        assert_eq!(x.len(), INPUT_LEN);
        let plane = INPUT_SIDE * INPUT_SIDE;
        assert!((x[0] - 1.0).abs() < 1e-5);
        assert!((x[plane] + 1.0).abs() < 1e-5);
        assert!((x[2 * plane] - (-0.5 / 127.5)).abs() < 1e-5);
    }

    #[test]
    fn transparent_is_white_and_padding_is_grey() {
        let pixels = solid(400, 100, [0, 0, 0, 0]);
        let pad = View { framing: Framing::Pad, ..Default::default() };
        let x = pad.apply(Rgba::new(&pixels, 400, 100).unwrap());
        assert!((x[0]).abs() < 1e-5, "top-left is padding: grey");
        let middle = 112 * INPUT_SIDE + 112;
        assert!((x[middle] - 1.0).abs() < 1e-5, "transparent photo is white");
    }

    #[test]
    fn flip_mirrors() {
        let mut pixels = solid(224, 224, [0, 0, 0, 255]);
        pixels[0] = 255; // top-left red
        let image = Rgba::new(&pixels, 224, 224).unwrap();
        let flipped = View { flip: true, ..Default::default() }.apply(image);
        assert!((flipped[INPUT_SIDE - 1] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn identity_resize_keeps_pixels() {
        let pixels: Vec<u8> = (0..224 * 224).flat_map(|i| [(i % 251) as u8, 0, 0, 255]).collect();
        let x = View::default().apply(Rgba::new(&pixels, 224, 224).unwrap());
        for i in [0, 1, 500, 224 * 224 - 1] {
            assert!((x[i] - ((i % 251) as f32 - 127.5) / 127.5).abs() < 1e-4);
        }
    }

    #[test]
    fn options_default_field_by_field() {
        let p: View = serde_json::from_str(r#"{"flip":true}"#).unwrap();
        assert_eq!(p, View { flip: true, ..Default::default() });
        let p: View = serde_json::from_str(r#"{"framing":"pad"}"#).unwrap();
        assert_eq!(p.framing, Framing::Pad);
    }

    #[test]
    fn bad_sizes_are_clear_errors() {
        assert_eq!(Rgba::new(&[0; 4], 1, 1).unwrap_err(), Error::ImageTooSmall { width: 1, height: 1, min: MIN_SIDE });
        assert!(matches!(Rgba::new(&[], 10000, 10000), Err(Error::ImageTooLarge { .. })));
        assert!(Rgba::new(&[0; 10], 20, 20).unwrap_err().to_string().contains("needs 1600"));
    }
}
