//! Heatmap rendering: gray images, colour-mapped anomaly maps, thresholded overlays and
//! ground-truth comparisons as RGB buffers, written as PNG through `latent-datasets`.

use crate::error::{AnomalyError, Result, check_finite, invalid, same_len};
use latent_linalg::Real;
use std::path::Path;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `3·width·height` bytes.
    pub data: Vec<u8>,
}

/// The "jet" colormap: `t ∈ [0, 1]` from dark blue through cyan, yellow to dark red (values
/// outside are clamped, NaN maps to 0).
///
/// # Example
/// ```
/// use latent_anomaly::heatmap::jet;
/// assert_eq!(jet(0.0), [0, 0, 128]);
/// assert_eq!(jet(0.5), [128, 255, 128]);
/// assert_eq!(jet(1.0), [128, 0, 0]);
/// ```
pub fn jet(t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let ch = |c: f64| ((1.5 - (4.0 * t - c).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [ch(3.0), ch(2.0), ch(1.0)]
}

fn pixels(width: usize, height: usize) -> Result<usize> {
    width
        .checked_mul(height)
        .filter(|&n| n > 0 && n.checked_mul(3).is_some())
        .ok_or_else(|| invalid("width·height", format!("{width}x{height}"), "must be non-zero and fit in memory"))
}

fn norm(v: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
}

fn check_range(lo: f64, hi: f64) -> Result<()> {
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return Err(invalid("range", format!("[{lo}, {hi}]"), "must be finite with lo <= hi"));
    }
    Ok(())
}

impl RgbImage {
    /// An image filled with one colour.
    ///
    /// # Errors
    /// [`AnomalyError::InvalidParameter`] for a zero or overflowing size.
    pub fn filled(width: usize, height: usize, color: [u8; 3]) -> Result<Self> {
        let n = pixels(width, height)?;
        Ok(Self { width, height, data: color.iter().copied().cycle().take(3 * n).collect() })
    }

    /// A gray image from values mapped linearly from `[lo, hi]` to black..white.
    ///
    /// # Errors
    /// [`AnomalyError::LengthMismatch`] when `values.len() != width·height`,
    /// [`AnomalyError::NonFinite`], [`AnomalyError::InvalidParameter`] for a bad range or size.
    pub fn from_gray<T: Real>(values: &[T], width: usize, height: usize, lo: f64, hi: f64) -> Result<Self> {
        Self::mapped(values, width, height, lo, hi, |t| {
            let g = (t.clamp(0.0, 1.0) * 255.0).round() as u8;
            [g, g, g]
        })
    }

    /// A heatmap: values mapped from `[lo, hi]` through [`jet`].
    ///
    /// # Errors
    /// As [`RgbImage::from_gray`].
    pub fn from_heat<T: Real>(values: &[T], width: usize, height: usize, lo: f64, hi: f64) -> Result<Self> {
        Self::mapped(values, width, height, lo, hi, jet)
    }

    fn mapped<T: Real>(
        values: &[T],
        width: usize,
        height: usize,
        lo: f64,
        hi: f64,
        f: impl Fn(f64) -> [u8; 3],
    ) -> Result<Self> {
        let n = pixels(width, height)?;
        same_len("image values vs width·height", n, values.len())?;
        check_finite("image values", values)?;
        check_range(lo, hi)?;
        Ok(Self { width, height, data: values.iter().flat_map(|v| f(norm(v.as_f64(), lo, hi))).collect() })
    }

    /// A boolean mask as an image: `on` where `true`, `off` elsewhere.
    ///
    /// # Errors
    /// [`AnomalyError::LengthMismatch`], [`AnomalyError::InvalidParameter`] for a bad size.
    pub fn from_mask(mask: &[bool], width: usize, height: usize, on: [u8; 3], off: [u8; 3]) -> Result<Self> {
        let n = pixels(width, height)?;
        same_len("mask vs width·height", n, mask.len())?;
        Ok(Self { width, height, data: mask.iter().flat_map(|&m| if m { on } else { off }).collect() })
    }

    /// Blend `color` with opacity `alpha ∈ [0, 1]` into the pixels where `mask` is `true`.
    ///
    /// # Errors
    /// [`AnomalyError::LengthMismatch`], [`AnomalyError::InvalidParameter`] for `alpha`.
    pub fn blend_mask(&mut self, mask: &[bool], color: [u8; 3], alpha: f64) -> Result<()> {
        same_len("mask vs image", self.width * self.height, mask.len())?;
        if !(0.0..=1.0).contains(&alpha) {
            return Err(invalid("alpha", alpha, "must be in [0, 1]"));
        }
        for (px, &m) in self.data.chunks_exact_mut(3).zip(mask) {
            if m {
                for (v, &c) in px.iter_mut().zip(&color) {
                    *v = ((1.0 - alpha) * f64::from(*v) + alpha * f64::from(c)).round() as u8;
                }
            }
        }
        Ok(())
    }

    /// Draw the outline of `mask` (mask pixels with a non-mask 4-neighbour or on the border) in
    /// `color`.
    ///
    /// # Errors
    /// [`AnomalyError::LengthMismatch`].
    pub fn outline(&mut self, mask: &[bool], color: [u8; 3]) -> Result<()> {
        let (w, h) = (self.width, self.height);
        same_len("mask vs image", w * h, mask.len())?;
        for y in 0..h {
            for x in 0..w {
                let k = y * w + x;
                if !mask[k] {
                    continue;
                }
                let edge = x == 0
                    || y == 0
                    || x + 1 == w
                    || y + 1 == h
                    || !mask[k - 1]
                    || !mask[k + 1]
                    || !mask[k - w]
                    || !mask[k + w];
                if edge {
                    self.data[3 * k..3 * k + 3].copy_from_slice(&color);
                }
            }
        }
        Ok(())
    }

    /// Scale up by an integer factor (nearest neighbour).
    ///
    /// # Errors
    /// [`AnomalyError::InvalidParameter`] for a zero or overflowing factor.
    pub fn upscale(&self, factor: usize) -> Result<Self> {
        if factor == 0 {
            return Err(invalid("factor", 0, "must be >= 1"));
        }
        let (w, h) = (
            self.width.checked_mul(factor).ok_or_else(|| invalid("factor", factor, "overflows"))?,
            self.height.checked_mul(factor).ok_or_else(|| invalid("factor", factor, "overflows"))?,
        );
        let n = pixels(w, h)?;
        let mut data = Vec::with_capacity(3 * n);
        for y in 0..h {
            for x in 0..w {
                let k = 3 * ((y / factor) * self.width + x / factor);
                data.extend_from_slice(&self.data[k..k + 3]);
            }
        }
        Ok(Self { width: w, height: h, data })
    }

    /// Place images side by side (top-aligned) with `gap` pixels of `background` between them
    /// and around them.
    ///
    /// # Errors
    /// [`AnomalyError::Empty`] for no images.
    pub fn hconcat(images: &[RgbImage], gap: usize, background: [u8; 3]) -> Result<Self> {
        if images.is_empty() {
            return Err(AnomalyError::Empty { what: "images to concatenate" });
        }
        let w = images.iter().map(|i| i.width + gap).sum::<usize>() + gap;
        let h = images.iter().map(|i| i.height).max().unwrap_or(0) + 2 * gap;
        let mut out = Self::filled(w, h, background)?;
        let mut x0 = gap;
        for im in images {
            out.paste(im, x0, gap);
            x0 += im.width + gap;
        }
        Ok(out)
    }

    /// Stack images vertically (left-aligned) with `gap` pixels of `background`.
    ///
    /// # Errors
    /// [`AnomalyError::Empty`] for no images.
    pub fn vconcat(images: &[RgbImage], gap: usize, background: [u8; 3]) -> Result<Self> {
        if images.is_empty() {
            return Err(AnomalyError::Empty { what: "images to concatenate" });
        }
        let w = images.iter().map(|i| i.width).max().unwrap_or(0) + 2 * gap;
        let h = images.iter().map(|i| i.height + gap).sum::<usize>() + gap;
        let mut out = Self::filled(w, h, background)?;
        let mut y0 = gap;
        for im in images {
            out.paste(im, gap, y0);
            y0 += im.height + gap;
        }
        Ok(out)
    }

    /// Copy `src` with its top-left corner at `(x0, y0)` (clipped at the borders).
    pub fn paste(&mut self, src: &RgbImage, x0: usize, y0: usize) {
        for y in 0..src.height {
            let ty = y0 + y;
            if ty >= self.height {
                break;
            }
            let n = src.width.min(self.width.saturating_sub(x0));
            let d = 3 * (ty * self.width + x0);
            let s = 3 * y * src.width;
            self.data[d..d + 3 * n].copy_from_slice(&src.data[s..s + 3 * n]);
        }
    }

    /// Write as an 8-bit RGB PNG.
    ///
    /// # Errors
    /// [`AnomalyError::Dataset`] for I/O errors.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        Ok(latent_datasets::write_png_rgb8(path, self.width, self.height, &self.data)?)
    }
}

/// Colours of [`compare_masks`].
pub mod colors {
    /// True positive.
    pub const TRUE_POSITIVE: [u8; 3] = [255, 220, 0];
    /// False positive.
    pub const FALSE_POSITIVE: [u8; 3] = [230, 30, 30];
    /// False negative.
    pub const FALSE_NEGATIVE: [u8; 3] = [40, 110, 255];
    /// True negative.
    pub const TRUE_NEGATIVE: [u8; 3] = [0, 0, 0];
}

/// Predicted mask against ground truth: true positives yellow, false positives red, false
/// negatives blue, true negatives black (see [`colors`]).
///
/// # Errors
/// [`AnomalyError::LengthMismatch`], [`AnomalyError::InvalidParameter`] for a bad size.
pub fn compare_masks(pred: &[bool], truth: &[bool], width: usize, height: usize) -> Result<RgbImage> {
    let n = pixels(width, height)?;
    same_len("predicted mask vs width·height", n, pred.len())?;
    same_len("ground truth vs predicted mask", n, truth.len())?;
    let data = pred
        .iter()
        .zip(truth)
        .flat_map(|(&p, &t)| match (p, t) {
            (true, true) => colors::TRUE_POSITIVE,
            (true, false) => colors::FALSE_POSITIVE,
            (false, true) => colors::FALSE_NEGATIVE,
            (false, false) => colors::TRUE_NEGATIVE,
        })
        .collect();
    Ok(RgbImage { width, height, data })
}

/// One row of the classic figure: input | reconstruction | anomaly heatmap | input with the
/// thresholded map in red (and the ground-truth outline in green when given).
///
/// | parameter | meaning |
/// |---|---|
/// | `image`, `reconstruction` | gray values in `[0, 1]`, `width × height` |
/// | `map` | anomaly map, `width × height` |
/// | `map_range` | `(lo, hi)` mapped to the ends of the colormap |
/// | `threshold` | pixels with `map ≥ threshold` are flagged |
/// | `truth` | ground-truth mask, outlined in green |
///
/// # Errors
/// [`AnomalyError::LengthMismatch`], [`AnomalyError::NonFinite`],
/// [`AnomalyError::InvalidParameter`] for a bad size or range.
///
/// # Example
/// ```
/// use latent_anomaly::heatmap::heatmap_panel;
/// let img = vec![0.5f32; 16];
/// let mut map = vec![0.0f32; 16];
/// map[5] = 1.0;
/// let panel = heatmap_panel(&img, &img, &map, 4, 4, (0.0, 1.0), 0.5, None)?;
/// assert_eq!((panel.width, panel.height), (4 * 4 + 5 * 2, 4 + 2 * 2));
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn heatmap_panel<T: Real>(
    image: &[T],
    reconstruction: &[T],
    map: &[T],
    width: usize,
    height: usize,
    map_range: (f64, f64),
    threshold: f64,
    truth: Option<&[bool]>,
) -> Result<RgbImage> {
    let a = RgbImage::from_gray(image, width, height, 0.0, 1.0)?;
    let b = RgbImage::from_gray(reconstruction, width, height, 0.0, 1.0)?;
    let c = RgbImage::from_heat(map, width, height, map_range.0, map_range.1)?;
    let mut d = a.clone();
    let flagged: Vec<bool> = map.iter().map(|v| v.as_f64() >= threshold).collect();
    d.blend_mask(&flagged, [255, 0, 0], 0.55)?;
    if let Some(t) = truth {
        d.outline(t, [0, 230, 0])?;
    }
    RgbImage::hconcat(&[a, b, c, d], 2, [255, 255, 255])
}
