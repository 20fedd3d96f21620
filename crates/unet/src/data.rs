//! Cell images as U-Net inputs and targets: per-image standardisation, train/held-out splits of
//! one image, augmented training tiles with class and weight maps, and whole-image evaluation.

use crate::error::{Result, UnetError, invalid};
use crate::loss::argmax_classes;
use crate::metrics::{SegMetrics, evaluate_classes};
use crate::model::UNet;
use crate::weight_map::{WeightMapParams, class_map, weight_map};
use latent_datasets::GrayImage;
use latent_datasets::cells::{Augment, CellSample};
use latent_linalg::{Real, Tensor4};

/// The image with zero mean and unit standard deviation (labels unchanged). Train and predict on
/// images standardised the same way: every image by its own statistics.
///
/// # Errors
/// [`UnetError::Empty`] for an empty image; [`UnetError::InvalidParameter`] for a constant or
/// non-finite image.
pub fn standardize(sample: &CellSample) -> Result<CellSample> {
    let img = sample.image();
    if img.data.is_empty() {
        return Err(UnetError::Empty { what: "image" });
    }
    let n = img.data.len() as f64;
    let mean = img.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = img.data.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    if !(var.is_finite() && var > 0.0) {
        return Err(invalid("image", format!("variance {var}"), "must be finite and > 0 to standardise"));
    }
    let inv = 1.0 / var.sqrt();
    let data = img.data.iter().map(|&v| ((f64::from(v) - mean) * inv) as f32).collect();
    Ok(CellSample::from_labels(GrayImage { width: img.width, height: img.height, data }, sample.instances().clone())?)
}

/// Which part of an image trains and which is held out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// Train on the columns left of `fraction · width`, hold out the rest.
    Columns(f64),
    /// Train on the rows above `fraction · height`, hold out the rest.
    Rows(f64),
}

/// Cut one image into a training part and a disjoint held-out part. Cells crossing the cut
/// appear in both, each with the pixels on its side.
///
/// # Errors
/// [`UnetError::InvalidParameter`] unless the fraction leaves both parts non-empty.
///
/// # Example
/// ```
/// use latent_datasets::cells::CellSample;
/// use latent_unet::data::{Split, split};
/// let s = CellSample::load_dsb2018()?;
/// let (train, test) = split(&s, Split::Columns(0.75))?;
/// assert_eq!((train.width(), test.width(), test.height()), (384, 128, 512));
/// # Ok::<(), latent_unet::UnetError>(())
/// ```
pub fn split(sample: &CellSample, how: Split) -> Result<(CellSample, CellSample)> {
    let (w, h) = (sample.width(), sample.height());
    let (frac, len) = match how {
        Split::Columns(f) => (f, w),
        Split::Rows(f) => (f, h),
    };
    let cut = if frac.is_finite() { (frac * len as f64).round() as isize } else { -1 };
    if cut <= 0 || cut >= len as isize {
        return Err(invalid("split fraction", frac, format!("must leave both parts of the {len} pixels non-empty")));
    }
    let cut = cut as usize;
    Ok(match how {
        Split::Columns(_) => (sample.crop(0, 0, cut, h)?, sample.crop(cut, 0, w - cut, h)?),
        Split::Rows(_) => (sample.crop(0, 0, w, cut)?, sample.crop(0, cut, w, h - cut)?),
    })
}

/// The image as a `(1, 1, H, W)` tensor.
///
/// # Errors
/// [`UnetError::Linalg`] when the image is inconsistent.
pub fn image_tensor<T: Real>(sample: &CellSample) -> Result<Tensor4<T>> {
    let img = sample.image();
    Ok(Tensor4::from_vec([1, 1, img.height, img.width], img.data.iter().map(|&v| T::lit(f64::from(v))).collect())?)
}

/// One training tile: input pixels, target classes and (optionally) weights of the output window.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// `tile × tile` input pixels.
    pub image: Vec<f32>,
    /// Target class per output pixel.
    pub labels: Vec<u8>,
    /// Weight per output pixel.
    pub weights: Option<Vec<f32>>,
}

/// Augmentation of training tiles.
///
/// | name | default | meaning |
/// |---|---|---|
/// | `flips` | `true` | random horizontal/vertical flips and 90° rotations |
/// | `elastic` | `Some((3, 10.0))` | elastic deformation `(grid, σ pixels)` with probability ½ (the paper's 3×3 grid, σ = 10) |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileAugment {
    /// Flips and rotations.
    pub flips: bool,
    /// Elastic deformation `(grid, sigma)`.
    pub elastic: Option<(usize, f64)>,
}

impl Default for TileAugment {
    fn default() -> Self {
        Self { flips: true, elastic: Some((3, 10.0)) }
    }
}

/// A random augmented `tile × tile` training tile of `source`; targets are cut to the centre
/// `tile − 2·margin` (the output window of an unpadded network). Class and weight maps are
/// computed on the whole tile after augmentation, so borders and distances near the output edge
/// are right. The elastic deformation warps a crop 16 pixels larger on every side (when the
/// source allows) so that its mirrored boundary stays outside the tile.
///
/// # Errors
/// [`UnetError::InvalidParameter`] when the source is smaller than the tile or `2·margin >=
/// tile`; errors of the augmentation and target maps.
pub fn random_tile(
    source: &CellSample,
    tile: usize,
    margin: usize,
    classes: usize,
    augment: &TileAugment,
    weights: Option<&WeightMapParams>,
    seed: u64,
) -> Result<Tile> {
    let side = source.width().min(source.height());
    if tile == 0 || tile > side {
        return Err(invalid(
            "tile",
            tile,
            format!("must be in 1..={side} (the source is {}x{})", source.width(), source.height()),
        ));
    }
    if 2 * margin >= tile {
        return Err(invalid("tile", tile, format!("leaves no output inside the margin of {margin}")));
    }
    let e = if augment.elastic.is_some() { 16.min((side - tile) / 2) } else { 0 };
    let cfg = Augment {
        crop: Some((tile + 2 * e, tile + 2 * e)),
        flips: augment.flips,
        rotations: augment.flips,
        elastic: augment.elastic,
    };
    let a = source.augment(&cfg, seed)?;
    let a = if e > 0 { a.crop(e, e, tile, tile)? } else { a };
    let inst = &a.instances().data;
    let cls = class_map(inst, tile, tile, classes)?;
    let wm = weights.map(|wp| weight_map(inst, &cls, tile, tile, classes, wp)).transpose()?;
    let o = tile - 2 * margin;
    let cut =
        |v: &[u8]| -> Vec<u8> { (0..o).flat_map(|r| v[(r + margin) * tile + margin..][..o].iter().copied()).collect() };
    let cut_f = |v: &[f32]| -> Vec<f32> {
        (0..o).flat_map(|r| v[(r + margin) * tile + margin..][..o].iter().copied()).collect()
    };
    Ok(Tile { image: a.image().data.clone(), labels: cut(&cls), weights: wm.as_deref().map(cut_f) })
}

/// Segment a whole (standardised) image with overlap-tile prediction: the most likely class of
/// every pixel.
///
/// # Errors
/// As [`UNet::predict_tiled`].
pub fn segment<T: Real>(model: &UNet<T>, sample: &CellSample, tile: usize, batch: usize) -> Result<Vec<u8>> {
    let logits = model.predict_tiled(&image_tensor::<T>(sample)?, tile, batch)?;
    Ok(argmax_classes(&logits))
}

/// Segment a (standardised) image and compare with its instances: `(metrics, predicted classes)`.
/// Predicted instances smaller than `min_size` pixels are dropped before matching.
///
/// # Errors
/// As [`segment`] and [`evaluate_classes`].
pub fn evaluate<T: Real>(
    model: &UNet<T>,
    sample: &CellSample,
    tile: usize,
    min_size: usize,
) -> Result<(SegMetrics, Vec<u8>)> {
    let cls = segment(model, sample, tile, 4)?;
    let m = evaluate_classes(
        &cls,
        &sample.instances().data,
        sample.width(),
        sample.height(),
        model.params().classes,
        min_size,
    )?;
    Ok((m, cls))
}
