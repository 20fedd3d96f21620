//! Cell (nuclei) segmentation data: the real DSB 2018 image with its instance labels, binary
//! mask and border map; U-Net-style augmentation (crops, flips, 90° rotations, elastic
//! deformation) applied consistently to image and labels; and a synthetic generator of touching
//! cells for larger training sets.
//!
//! Conventions: `instances` holds 0 for background and 1.. for cells; `mask[i]` is
//! `instances[i] != 0`; `borders[i]` is `true` for instance pixels with a 4-neighbour of a
//! different label (outside the image counts as background) — the pixels U-Net weights up to
//! separate touching cells (see [`border_map`]). Every transform keeps the three layers
//! consistent with this definition.

use crate::dataset::rng_from_seed;
use crate::error::{DatasetError, Result, invalid};
use crate::image::{GrayImage, LabelImage, read_png, read_png_labels, stack_images};
use crate::paths::{CELLS, data_file};
use latent_linalg::filter::{Border, Kernel1d};
use latent_linalg::{Real, Tensor4};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

/// File names of the real nuclei image and its annotations inside the cells folder.
pub const DSB2018_FILES: [&str; 4] =
    ["dsb2018_img.png", "dsb2018_instances.png", "dsb2018_mask.png", "dsb2018_borders.png"];

/// An image with instance labels, foreground mask and border map, all of one size.
///
/// The fields are private so the four layers always agree (sizes, `mask = instances != 0`);
/// read them with the accessors or take them with [`CellSample::into_parts`].
#[derive(Debug, Clone, PartialEq)]
pub struct CellSample {
    image: GrayImage,
    instances: LabelImage,
    mask: Vec<bool>,
    borders: Vec<bool>,
}

/// Border pixels of a label map: non-zero pixels with at least one 4-neighbour whose label
/// differs (background or another instance); pixels outside the image count as background, so
/// instance pixels on the image edge are borders. This reproduces `dsb2018_borders.png` exactly.
pub fn border_map(labels: &LabelImage) -> Vec<bool> {
    let (w, h) = (labels.width, labels.height);
    let l = &labels.data;
    let mut out = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let v = l[y * w + x];
            if v == 0 {
                continue;
            }
            let differs = x == 0
                || x + 1 == w
                || y == 0
                || y + 1 == h
                || l[y * w + x - 1] != v
                || l[y * w + x + 1] != v
                || l[(y - 1) * w + x] != v
                || l[(y + 1) * w + x] != v;
            out[y * w + x] = differs;
        }
    }
    out
}

fn same_size(path: &Path, w: usize, h: usize, aw: usize, ah: usize) -> Result<()> {
    if (w, h) != (aw, ah) {
        return Err(DatasetError::SizeMismatch {
            path: path.to_path_buf(),
            expected_w: w,
            expected_h: h,
            actual_w: aw,
            actual_h: ah,
        });
    }
    Ok(())
}

fn binary(path: &Path, l: &LabelImage) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(l.data.len());
    for &v in &l.data {
        match v {
            0 => out.push(false),
            1 | 255 | 65535 => out.push(true),
            other => {
                return Err(DatasetError::Format {
                    path: path.to_path_buf(),
                    what: format!("binary mask holds value {other} (expected 0 and 255 or 1)"),
                });
            }
        }
    }
    Ok(out)
}

impl CellSample {
    /// Build from an image and a label map; mask and borders are derived.
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when the sizes differ or a buffer does not hold
    /// `width·height` values.
    pub fn from_labels(image: GrayImage, instances: LabelImage) -> Result<Self> {
        if !image.is_consistent() {
            return Err(invalid("image", image.data.len(), "image data must hold width*height values"));
        }
        if (image.width, image.height) != (instances.width, instances.height)
            || image.data.len() != instances.data.len()
        {
            return Err(invalid(
                "instances",
                format!("{}x{}", instances.width, instances.height),
                format!("must match the {}x{} image", image.width, image.height),
            ));
        }
        let mask = instances.to_mask();
        let borders = border_map(&instances);
        Ok(Self { image, instances, mask, borders })
    }

    /// Load the real DSB 2018 nuclei image (512×512, 125 nuclei) from the repository's
    /// `data/cells` folder.
    ///
    /// # Errors
    /// [`crate::DatasetError::Missing`] when there is no data folder (see
    /// [`crate::find_data_dir`]: the message names every place looked at and how to set
    /// `LATENT_DATA_DIR`) or it has no `cells/`; otherwise as [`CellSample::load_dsb2018_from`].
    ///
    /// # Example
    /// ```
    /// let s = latent_datasets::cells::CellSample::load_dsb2018()?;
    /// assert_eq!((s.width(), s.height()), (512, 512));
    /// assert_eq!(s.instances().max_label(), 125);
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn load_dsb2018() -> Result<Self> {
        Self::load_dsb2018_from(data_file(CELLS)?)
    }

    /// Load `dsb2018_img.png` (8-bit gray), `dsb2018_instances.png` (8- or 16-bit gray label
    /// map, values are instance ids), `dsb2018_mask.png` and `dsb2018_borders.png` (0/255) from
    /// `dir`, checking sizes, that the mask equals `instances != 0` and that the borders equal
    /// [`border_map`] of the instances.
    ///
    /// # Errors
    /// [`DatasetError::Missing`] for an absent file; PNG errors; [`DatasetError::SizeMismatch`]
    /// naming the file of the wrong size; [`DatasetError::Mismatch`] when the mask disagrees
    /// or the borders disagree with the labels; [`DatasetError::Format`] for a non-binary mask.
    pub fn load_dsb2018_from(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let p: Vec<_> = DSB2018_FILES.iter().map(|f| dir.join(f)).collect();
        if let Some(missing) = p.iter().find(|q| !q.is_file()) {
            return Err(DatasetError::Missing {
                path: missing.clone(),
                expected: format!("a cells folder holding {}", DSB2018_FILES.join(", ")),
            });
        }
        let image = read_png(&p[0])?;
        let instances = read_png_labels(&p[1])?;
        same_size(&p[1], image.width, image.height, instances.width, instances.height)?;
        let mask_l = read_png_labels(&p[2])?;
        same_size(&p[2], image.width, image.height, mask_l.width, mask_l.height)?;
        let mask = binary(&p[2], &mask_l)?;
        let borders_l = read_png_labels(&p[3])?;
        same_size(&p[3], image.width, image.height, borders_l.width, borders_l.height)?;
        let borders = binary(&p[3], &borders_l)?;
        if let Some(i) = mask.iter().zip(&instances.data).position(|(&m, &l)| m != (l != 0)) {
            return Err(DatasetError::Mismatch {
                path: p[2].clone(),
                what: format!(
                    "mask disagrees with {} at pixel ({}, {})",
                    p[1].display(),
                    i % image.width,
                    i / image.width
                ),
            });
        }
        if let Some(i) = border_map(&instances).iter().zip(&borders).position(|(a, b)| a != b) {
            return Err(DatasetError::Mismatch {
                path: p[3].clone(),
                what: format!(
                    "borders disagree with those derived from {} at pixel ({}, {})",
                    p[1].display(),
                    i % image.width,
                    i / image.width
                ),
            });
        }
        Ok(Self { image, instances, mask, borders })
    }

    /// The intensities in `[0, 1]`.
    pub fn image(&self) -> &GrayImage {
        &self.image
    }
    /// Instance ids: 0 background, 1.. cells.
    pub fn instances(&self) -> &LabelImage {
        &self.instances
    }
    /// Foreground mask (`instances != 0`), row-major.
    pub fn mask(&self) -> &[bool] {
        &self.mask
    }
    /// Border map (see [`border_map`]), row-major.
    pub fn borders(&self) -> &[bool] {
        &self.borders
    }
    /// Give up `(image, instances, mask, borders)`.
    pub fn into_parts(self) -> (GrayImage, LabelImage, Vec<bool>, Vec<bool>) {
        (self.image, self.instances, self.mask, self.borders)
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.image.width
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.image.height
    }

    /// Number of distinct non-zero instance ids.
    pub fn count_instances(&self) -> usize {
        let mut ids: Vec<u32> = self.instances.data.iter().copied().filter(|&v| v != 0).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// The mask as a 0/1 gray image (for U-Net targets and figures).
    pub fn mask_image(&self) -> GrayImage {
        bool_image(self.width(), self.height(), &self.mask)
    }
    /// The borders as a 0/1 gray image.
    pub fn borders_image(&self) -> GrayImage {
        bool_image(self.width(), self.height(), &self.borders)
    }

    /// The `w × h` window at `(x0, y0)` of image and labels; mask and borders are recomputed
    /// (so cells cut by the window edge get a border there).
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when the window leaves the image.
    pub fn crop(&self, x0: usize, y0: usize, w: usize, h: usize) -> Result<CellSample> {
        CellSample::from_labels(self.image.crop(x0, y0, w, h)?, self.instances.crop(x0, y0, w, h)?)
    }

    /// A `w × h` crop at a uniformly random position.
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when the crop is empty or larger than the image.
    pub fn random_crop(&self, w: usize, h: usize, rng: &mut ChaCha8Rng) -> Result<CellSample> {
        if w == 0 || h == 0 || w > self.width() || h > self.height() {
            return Err(invalid(
                "crop",
                format!("{w}x{h}"),
                format!("must be 1x1 .. {}x{}", self.width(), self.height()),
            ));
        }
        let x0 = rng.random_range(0..=self.width() - w);
        let y0 = rng.random_range(0..=self.height() - h);
        self.crop(x0, y0, w, h)
    }

    /// Apply a pixel permutation `dst(x, y) = src(f(x, y))` to every layer.
    fn remap(&self, nw: usize, nh: usize, f: impl Fn(usize, usize) -> (usize, usize)) -> CellSample {
        let w = self.width();
        let idx: Vec<usize> = (0..nh)
            .flat_map(|y| (0..nw).map(move |x| (x, y)))
            .map(|(x, y)| {
                let (sx, sy) = f(x, y);
                sy * w + sx
            })
            .collect();
        CellSample {
            image: GrayImage { width: nw, height: nh, data: idx.iter().map(|&k| self.image.data[k]).collect() },
            instances: LabelImage {
                width: nw,
                height: nh,
                data: idx.iter().map(|&k| self.instances.data[k]).collect(),
            },
            mask: idx.iter().map(|&k| self.mask[k]).collect(),
            borders: idx.iter().map(|&k| self.borders[k]).collect(),
        }
    }

    /// Mirror left–right.
    pub fn flip_horizontal(&self) -> CellSample {
        let w = self.width();
        self.remap(w, self.height(), |x, y| (w - 1 - x, y))
    }

    /// Mirror top–bottom.
    pub fn flip_vertical(&self) -> CellSample {
        let h = self.height();
        self.remap(self.width(), h, |x, y| (x, h - 1 - y))
    }

    /// Rotate by `k · 90°` counter-clockwise (as displayed, y down); `k` is taken mod 4.
    pub fn rot90(&self, k: u32) -> CellSample {
        let (w, h) = (self.width(), self.height());
        match k % 4 {
            0 => self.clone(),
            // new (x, y) shows old (w-1-y, x); new size h × w
            1 => self.remap(h, w, |x, y| (w - 1 - y, x)),
            2 => self.remap(w, h, |x, y| (w - 1 - x, h - 1 - y)),
            _ => self.remap(h, w, |x, y| (y, h - 1 - x)),
        }
    }

    /// Elastic deformation as in the U-Net paper: random displacement vectors on a coarse
    /// `grid × grid` lattice (each component `~ N(0, sigma²)` pixels), interpolated bicubically
    /// to a dense field; the image is resampled bilinearly, the labels by nearest neighbour
    /// (mirror boundary); mask and borders are recomputed from the warped labels.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `grid` | control points per side, ≥ 2 (U-Net: 3) |
    /// | `sigma` | displacement standard deviation in pixels, ≥ 0 (U-Net: 10) |
    /// | `rng` | random source |
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] for `grid < 2` or a bad `sigma`.
    pub fn elastic(&self, grid: usize, sigma: f64, rng: &mut ChaCha8Rng) -> Result<CellSample> {
        let field = ElasticField::random(self.width(), self.height(), grid, sigma, rng)?;
        let image = field.warp_bilinear(&self.image)?;
        let instances = field.warp_nearest(&self.instances)?;
        CellSample::from_labels(image, instances)
    }

    /// Random augmentation: optional random crop, then (each with probability ½) horizontal
    /// and vertical flips, a random multiple of 90°, and the elastic deformation.
    ///
    /// # Errors
    /// As [`CellSample::random_crop`] and [`CellSample::elastic`].
    ///
    /// # Example
    /// ```
    /// use latent_datasets::cells::{Augment, CellSample};
    /// let s = CellSample::load_dsb2018()?;
    /// let a = s.augment(&Augment { crop: Some((128, 128)), ..Augment::default() }, 5)?;
    /// assert_eq!((a.width(), a.height()), (128, 128));
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn augment(&self, cfg: &Augment, seed: u64) -> Result<CellSample> {
        let mut rng = rng_from_seed(seed);
        let mut s = match cfg.crop {
            Some((w, h)) => self.random_crop(w, h, &mut rng)?,
            None => self.clone(),
        };
        if cfg.flips {
            if rng.random::<bool>() {
                s = s.flip_horizontal();
            }
            if rng.random::<bool>() {
                s = s.flip_vertical();
            }
        }
        if cfg.rotations {
            s = s.rot90(rng.random_range(0..4));
        }
        if let Some((grid, sigma)) = cfg.elastic
            && rng.random::<bool>()
        {
            s = s.elastic(grid, sigma, &mut rng)?;
        }
        Ok(s)
    }
}

/// Stack cell samples of one size into U-Net tensors `(images, masks, borders)`, each
/// `(n, 1, height, width)`, masks and borders as 0/1.
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for an empty list or samples of different sizes.
///
/// # Example
/// ```
/// use latent_datasets::cells::{SynthCells, stack_cells, synth_cell_set};
/// let set = synth_cell_set(&SynthCells { width: 64, height: 48, ..SynthCells::default() }, 3, 0)?;
/// let (x, y, b) = stack_cells::<f32>(&set)?;
/// assert_eq!((x.shape(), y.shape(), b.shape()), ([3, 1, 48, 64], [3, 1, 48, 64], [3, 1, 48, 64]));
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn stack_cells<T: Real>(samples: &[CellSample]) -> Result<(Tensor4<T>, Tensor4<T>, Tensor4<T>)> {
    let images: Vec<GrayImage> = samples.iter().map(|s| s.image.clone()).collect();
    let masks: Vec<GrayImage> = samples.iter().map(CellSample::mask_image).collect();
    let borders: Vec<GrayImage> = samples.iter().map(CellSample::borders_image).collect();
    Ok((stack_images(&images)?, stack_images(&masks)?, stack_images(&borders)?))
}

fn bool_image(w: usize, h: usize, v: &[bool]) -> GrayImage {
    GrayImage { width: w, height: h, data: v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect() }
}

/// Augmentation settings for [`CellSample::augment`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Random crop `(width, height)` taken first, if any.
    pub crop: Option<(usize, usize)>,
    /// Random horizontal/vertical flips.
    pub flips: bool,
    /// Random multiple of 90°.
    pub rotations: bool,
    /// Elastic deformation `(grid, sigma)`, applied with probability ½.
    pub elastic: Option<(usize, f64)>,
}

impl Default for Augment {
    /// No crop, flips and rotations on, elastic `(3, 10.0)` as in the U-Net paper.
    fn default() -> Self {
        Self { crop: None, flips: true, rotations: true, elastic: Some((3, 10.0)) }
    }
}

/// A dense displacement field: output pixel `(x, y)` samples the input at
/// `(x + dx(x, y), y + dy(x, y))`.
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticField {
    width: usize,
    height: usize,
    dx: Vec<f64>,
    dy: Vec<f64>,
}

fn cubic_weights(t: f64) -> [f64; 4] {
    // Catmull–Rom
    let t2 = t * t;
    let t3 = t2 * t;
    [-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0, -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]
}

/// Mirror an integer coordinate into `0..n` (reflect without repeating the edge).
fn mirror(i: i64, n: usize) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

impl ElasticField {
    /// A random field (see [`CellSample::elastic`]).
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] for `grid < 2`, a bad `sigma` or an empty size.
    pub fn random(width: usize, height: usize, grid: usize, sigma: f64, rng: &mut ChaCha8Rng) -> Result<Self> {
        if grid < 2 {
            return Err(invalid("grid", grid, "need at least 2 control points per side"));
        }
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(invalid("sigma", sigma, "must be finite and >= 0"));
        }
        if width == 0 || height == 0 {
            return Err(invalid("width/height", format!("{width}x{height}"), "must be at least 1x1"));
        }
        let mut cx = vec![0f64; grid * grid];
        let mut cy = vec![0f64; grid * grid];
        for k in 0..grid * grid {
            let a: f64 = StandardNormal.sample(rng);
            let b: f64 = StandardNormal.sample(rng);
            cx[k] = sigma * a;
            cy[k] = sigma * b;
        }
        let g = grid as i64;
        let interp = |c: &[f64], gx: f64, gy: f64| -> f64 {
            let (ix, iy) = (gx.floor() as i64, gy.floor() as i64);
            let (wx, wy) = (cubic_weights(gx - ix as f64), cubic_weights(gy - iy as f64));
            let mut s = 0.0;
            for (j, wyj) in wy.iter().enumerate() {
                let yy = (iy - 1 + j as i64).clamp(0, g - 1) as usize;
                for (i, wxi) in wx.iter().enumerate() {
                    let xx = (ix - 1 + i as i64).clamp(0, g - 1) as usize;
                    s += wyj * wxi * c[yy * grid + xx];
                }
            }
            s
        };
        let sx = if width > 1 { (grid - 1) as f64 / (width - 1) as f64 } else { 0.0 };
        let sy = if height > 1 { (grid - 1) as f64 / (height - 1) as f64 } else { 0.0 };
        let mut dx = Vec::with_capacity(width * height);
        let mut dy = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let (gx, gy) = (x as f64 * sx, y as f64 * sy);
                dx.push(interp(&cx, gx, gy));
                dy.push(interp(&cy, gx, gy));
            }
        }
        Ok(Self { width, height, dx, dy })
    }

    /// Field width.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Field height.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Displacement at `(x, y)`, `None` outside.
    pub fn displacement(&self, x: usize, y: usize) -> Option<(f64, f64)> {
        (x < self.width && y < self.height).then(|| (self.dx[y * self.width + x], self.dy[y * self.width + x]))
    }

    fn check_size(&self, w: usize, h: usize, len: usize) -> Result<()> {
        if (w, h) != (self.width, self.height) || len != w * h {
            return Err(invalid(
                "image",
                format!("{w}x{h} with {len} values"),
                format!("must be a consistent {}x{} image (the field's size)", self.width, self.height),
            ));
        }
        Ok(())
    }

    /// Resample an image of the field's size bilinearly (mirror boundary).
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when the image size differs from the field.
    pub fn warp_bilinear(&self, img: &GrayImage) -> Result<GrayImage> {
        self.check_size(img.width, img.height, img.data.len())?;
        let (w, h) = (img.width, img.height);
        Ok(GrayImage::from_fn(w, h, |x, y| {
            let (ddx, ddy) = (self.dx[y * w + x], self.dy[y * w + x]);
            let (sx, sy) = (x as f64 + ddx, y as f64 + ddy);
            let (x0, y0) = (sx.floor() as i64, sy.floor() as i64);
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            let p = |xi: i64, yi: i64| f64::from(img.data[mirror(yi, h) * w + mirror(xi, w)]);
            let v = (1.0 - fy) * ((1.0 - fx) * p(x0, y0) + fx * p(x0 + 1, y0))
                + fy * ((1.0 - fx) * p(x0, y0 + 1) + fx * p(x0 + 1, y0 + 1));
            v as f32
        }))
    }

    /// Resample a label map of the field's size by nearest neighbour (mirror boundary).
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when the size differs from the field.
    pub fn warp_nearest(&self, labels: &LabelImage) -> Result<LabelImage> {
        self.check_size(labels.width, labels.height, labels.data.len())?;
        let (w, h) = (labels.width, labels.height);
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let (ddx, ddy) = (self.dx[y * w + x], self.dy[y * w + x]);
                let sx = (x as f64 + ddx).round() as i64;
                let sy = (y as f64 + ddy).round() as i64;
                data.push(labels.data[mirror(sy, h) * w + mirror(sx, w)]);
            }
        }
        Ok(LabelImage { width: w, height: h, data })
    }
}

/// Settings of the synthetic cell generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthCells {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Number of ellipses placed (some may be covered by neighbours and vanish).
    pub n_cells: usize,
    /// Semi-axis range `(min, max)` in pixels.
    pub radius: (f64, f64),
    /// Probability that a cell is placed touching an earlier one.
    pub touching: f64,
    /// Gaussian blur standard deviation in pixels (0: none).
    pub blur_sigma: f64,
    /// Additive Gaussian noise standard deviation (intensity units).
    pub noise_sigma: f64,
}

impl Default for SynthCells {
    /// 128×128, 18 cells with semi-axes 6–14 px, half of them touching, blur 1 px, noise 0.03.
    fn default() -> Self {
        Self {
            width: 128,
            height: 128,
            n_cells: 18,
            radius: (6.0, 14.0),
            touching: 0.5,
            blur_sigma: 1.0,
            noise_sigma: 0.03,
        }
    }
}

struct Ellipse {
    cx: f64,
    cy: f64,
    a: f64,
    b: f64,
    cos: f64,
    sin: f64,
    brightness: f64,
    phase: [f64; 4],
}

impl Ellipse {
    /// Normalised squared radius (< 1 inside).
    fn rho2(&self, x: f64, y: f64) -> f64 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = dx * self.cos + dy * self.sin;
        let v = -dx * self.sin + dy * self.cos;
        (u / self.a).powi(2) + (v / self.b).powi(2)
    }
}

/// Generate one synthetic cell image: random ellipses (sizes, orientations, some placed to
/// touch a neighbour); each pixel belongs to the ellipse it is deepest inside; cells get a
/// random brightness, a radial falloff and a sinusoidal internal texture; then Gaussian blur
/// and noise, clamped to `[0, 1]`. Instance ids are consecutive from 1.
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for an empty size or bad radii, probabilities or
/// sigmas.
///
/// # Example
/// ```
/// use latent_datasets::cells::{SynthCells, synth_cells};
/// let s = synth_cells(&SynthCells::default(), 9)?;
/// assert!(s.count_instances() > 5);
/// assert!(s.borders().iter().zip(s.mask()).all(|(&b, &m)| !b || m));
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn synth_cells(cfg: &SynthCells, seed: u64) -> Result<CellSample> {
    let (w, h) = (cfg.width, cfg.height);
    if w == 0 || h == 0 {
        return Err(invalid("width/height", format!("{w}x{h}"), "must be at least 1x1"));
    }
    let (rmin, rmax) = cfg.radius;
    if !(rmin.is_finite() && rmax.is_finite() && rmin >= 1.0 && rmax >= rmin) {
        return Err(invalid("radius", format!("{rmin}..{rmax}"), "need 1 <= min <= max"));
    }
    if !(0.0..=1.0).contains(&cfg.touching) {
        return Err(invalid("touching", cfg.touching, "a probability in [0, 1]"));
    }
    for (name, v) in [("blur_sigma", cfg.blur_sigma), ("noise_sigma", cfg.noise_sigma)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(invalid(name, v, "must be finite and >= 0"));
        }
    }
    let mut rng = rng_from_seed(seed);
    let mut cells: Vec<Ellipse> = Vec::with_capacity(cfg.n_cells);
    for _ in 0..cfg.n_cells {
        let a = rng.random_range(rmin..=rmax);
        let b = rng.random_range((0.6 * a).max(rmin.min(a))..=a);
        let th = rng.random_range(0.0..std::f64::consts::PI);
        let (cx, cy) = if !cells.is_empty() && rng.random::<f64>() < cfg.touching {
            // place next to an earlier cell so that the two overlap slightly
            let o = &cells[rng.random_range(0..cells.len())];
            let dir = rng.random_range(0.0..std::f64::consts::TAU);
            let dist = 0.85 * (o.a.min(o.b) + b);
            (o.cx + dist * dir.cos(), o.cy + dist * dir.sin())
        } else {
            (rng.random_range(0.0..w as f64), rng.random_range(0.0..h as f64))
        };
        let brightness = rng.random_range(0.45..0.9);
        let phase = [
            rng.random_range(0.0..std::f64::consts::TAU),
            rng.random_range(0.0..std::f64::consts::TAU),
            rng.random_range(0.15..0.45),
            rng.random_range(0.15..0.45),
        ];
        cells.push(Ellipse { cx, cy, a, b, cos: th.cos(), sin: th.sin(), brightness, phase });
    }
    let mut owner = vec![0u32; w * h];
    let mut value = vec![0.08f64; w * h];
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let mut best: Option<(usize, f64)> = None;
            for (k, c) in cells.iter().enumerate() {
                let r2 = c.rho2(px, py);
                if r2 < 1.0 && best.is_none_or(|(_, b)| r2 < b) {
                    best = Some((k, r2));
                }
            }
            if let Some((k, r2)) = best {
                let c = &cells[k];
                let texture = 0.08 * (c.phase[2] * px + c.phase[0]).sin() * (c.phase[3] * py + c.phase[1]).cos();
                owner[y * w + x] = k as u32 + 1;
                value[y * w + x] = c.brightness * (1.0 - 0.35 * r2) + texture;
            }
        }
    }
    // relabel consecutively in order of first appearance (drops fully covered cells)
    let mut map = vec![0u32; cells.len() + 1];
    let mut next = 0;
    for o in owner.iter_mut() {
        if *o != 0 {
            if map[*o as usize] == 0 {
                next += 1;
                map[*o as usize] = next;
            }
            *o = map[*o as usize];
        }
    }
    let mut img = gaussian_blur(&value, w, h, cfg.blur_sigma)?;
    for v in img.iter_mut() {
        let e: f64 = StandardNormal.sample(&mut rng);
        *v = (*v + cfg.noise_sigma * e).clamp(0.0, 1.0);
    }
    let image = GrayImage { width: w, height: h, data: img.iter().map(|&v| v as f32).collect() };
    CellSample::from_labels(image, LabelImage { width: w, height: h, data: owner })
}

/// `count` synthetic samples; sample `i` uses seed `seed` on ChaCha stream `i + 1`, so the set
/// is reproducible and samples are independent.
///
/// # Errors
/// As [`synth_cells`].
pub fn synth_cell_set(cfg: &SynthCells, count: usize, seed: u64) -> Result<Vec<CellSample>> {
    (0..count)
        .map(|i| {
            let mut r = rng_from_seed(seed);
            r.set_stream(i as u64 + 1);
            synth_cells(cfg, r.random())
        })
        .collect()
}

/// Separable Gaussian blur with mirror boundary, radius ⌈3σ⌉ (σ ≤ 0 returns a copy).
fn gaussian_blur(v: &[f64], w: usize, h: usize, sigma: f64) -> Result<Vec<f64>> {
    if sigma <= 0.0 {
        return Ok(v.to_vec());
    }
    Ok(Kernel1d::gaussian_truncated(sigma, 3.0)?.apply(v, h, w, Border::Mirror)?)
}

#[cfg(test)]
mod blur_tests {
    use super::*;

    /// The blur as it was before it moved to `latent_linalg::filter` (reference for the test).
    fn gaussian_blur_before(v: &[f64], w: usize, h: usize, sigma: f64) -> Vec<f64> {
        if sigma <= 0.0 {
            return v.to_vec();
        }
        let r = (3.0 * sigma).ceil() as i64;
        let k: Vec<f64> = (-r..=r).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
        let s: f64 = k.iter().sum();
        let k: Vec<f64> = k.iter().map(|x| x / s).collect();
        let mut tmp = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] =
                    k.iter().enumerate().map(|(j, kj)| kj * v[y * w + mirror(x as i64 + j as i64 - r, w)]).sum();
            }
        }
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                out[y * w + x] =
                    k.iter().enumerate().map(|(j, kj)| kj * tmp[mirror(y as i64 + j as i64 - r, h) * w + x]).sum();
            }
        }
        out
    }

    #[test]
    fn linalg_blur_is_bit_identical_to_the_old_one() {
        let mut rng = rng_from_seed(5);
        for (w, h, sigma) in [(37, 23, 1.0), (8, 5, 2.6), (1, 9, 0.7), (64, 64, 1.0), (3, 3, 4.0), (16, 2, 0.3)] {
            let v: Vec<f64> = (0..w * h).map(|_| rng.random::<f64>() * 2.0 - 0.5).collect();
            let new = gaussian_blur(&v, w, h, sigma).unwrap();
            let old = gaussian_blur_before(&v, w, h, sigma);
            assert_eq!(
                new.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                old.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
