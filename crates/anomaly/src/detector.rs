//! The detector: any [`Reconstructor`] plus map settings, with patch-wise processing of images
//! larger than the model's input and thresholds calibrated on held-out normal data.

use crate::error::{AnomalyError, Result, check_finite, invalid, shape_err};
use crate::maps::{MapConfig, MapParams};
use crate::metrics::quantile;
use crate::normalize::{MapNormalizer, NormalizerParams};
use crate::reconstructor::Reconstructor;
use latent_linalg::{Real, Tensor4};
use latent_optim::fit::{Checked, ParamGuard};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// Patch-wise processing: the model sees `height × width` tiles taken every `stride` pixels
/// (the last tile of each row and column is moved in to end at the border, so every pixel is
/// covered) and overlapping reconstructions are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tiling {
    /// Tile height (the model's input height).
    pub height: usize,
    /// Tile width (the model's input width).
    pub width: usize,
    /// Step between tiles.
    pub stride: usize,
}

impl Tiling {
    /// Top-left offsets along an axis of length `len`.
    fn offsets(len: usize, tile: usize, stride: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..=len - tile).step_by(stride).collect();
        if v.last() != Some(&(len - tile)) {
            v.push(len - tile);
        }
        v
    }
}

/// Detector settings (builder; [`ParamGuard::check`] validates them into the
/// [`Checked<DetectorParams>`] that [`Detector::new`] takes).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `map` | [`MapParams::default`] | anomaly map and image-score pooling | see [`MapParams`] |
/// | `tiling` | `None` | patch-wise processing of large images, see [`Tiling`] | sizes and stride `>= 1`, stride `<=` tile size |
/// | `batch_size` | `64` | samples (or tiles) per call of the model | `>= 1` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorParams {
    /// Map settings.
    pub map: MapParams,
    /// Patch-wise processing.
    pub tiling: Option<Tiling>,
    /// Model batch size.
    pub batch_size: usize,
}

impl Default for DetectorParams {
    fn default() -> Self {
        Self { map: MapParams::default(), tiling: None, batch_size: 64 }
    }
}

impl DetectorParams {
    /// Defaults: squared-error maps, max pooling, whole images.
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the map settings.
        map: MapParams,
        /// Set the model batch size.
        batch_size: usize,
    }
    /// Process images in `height × width` tiles every `stride` pixels.
    pub fn tiles(mut self, height: usize, width: usize, stride: usize) -> Self {
        self.tiling = Some(Tiling { height, width, stride });
        self
    }
}

impl ParamGuard for DetectorParams {
    type Error = AnomalyError;

    /// # Errors
    /// [`AnomalyError::InvalidParameter`] naming `batch_size`, `tiling.height`, `tiling.width`,
    /// `tiling.stride` or a map parameter.
    fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(invalid("batch_size", 0, "must be >= 1"));
        }
        if let Some(t) = self.tiling {
            if t.height == 0 {
                return Err(invalid("tiling.height", 0, "must be >= 1"));
            }
            if t.width == 0 {
                return Err(invalid("tiling.width", 0, "must be >= 1"));
            }
            if t.stride == 0 || t.stride > t.height.min(t.width) {
                return Err(invalid("tiling.stride", t.stride, "must be in 1..=min(tile height, tile width)"));
            }
        }
        self.map.validate()
    }
}

/// Everything a detector computes for a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis<T> {
    /// Reconstructions, shaped like the input.
    pub reconstruction: Tensor4<T>,
    /// Anomaly maps `(N, 1, H, W)`.
    pub maps: Tensor4<T>,
    /// Image scores.
    pub scores: Vec<f64>,
}

/// Thresholds calibrated on held-out normal data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The quantile used.
    pub quantile: f64,
    /// Image threshold: the quantile of the normal image scores.
    pub image: f64,
    /// Pixel threshold: the quantile of all normal pixel values of the maps.
    pub pixel: f64,
}

/// An anomaly detector around any reconstructor `x ↦ x̂` (autoencoders, sparse coding, ...).
///
/// # Example
/// ```
/// use latent_anomaly::{Detector, DetectorParams, ParamGuard, Reconstructor, Result};
/// use latent_linalg::Tensor4;
/// // A "model" that only knows constant images: it reconstructs every image by its mean.
/// struct Mean;
/// impl Reconstructor<f64> for Mean {
///     fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
///         let d = x.sample_len();
///         let mut y = x.clone();
///         for s in y.as_mut_slice().chunks_mut(d) {
///             let m = s.iter().sum::<f64>() / d as f64;
///             s.iter_mut().for_each(|v| *v = m);
///         }
///         Ok(y)
///     }
/// }
/// let det = Detector::new(Mean, DetectorParams::new().check()?);
/// let mut x = Tensor4::full([2, 1, 4, 4], 0.5)?;
/// *x.get_mut([1, 0, 2, 2]).unwrap() = 1.0; // a bright defect in the second image
/// let a = det.analyze(&x)?;
/// assert_eq!(a.scores[0], 0.0);
/// assert!(a.scores[1] > 0.2);
/// assert_eq!(a.maps.shape(), [2, 1, 4, 4]);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Detector<T, R> {
    model: R,
    config: Checked<DetectorParams>,
    /// The map computer of `config.map` (with its precomputed SSIM window).
    maps: MapConfig,
    normalizer: Option<MapNormalizer>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Real, R: Reconstructor<T>> Detector<T, R> {
    /// Wrap a model with checked settings (`DetectorParams::new()...check()?`).
    pub fn new(model: R, config: Checked<DetectorParams>) -> Self {
        let maps = MapConfig::from_valid(config.map);
        Self { model, config, maps, normalizer: None, _t: PhantomData }
    }
    /// The model.
    pub fn model(&self) -> &R {
        &self.model
    }
    /// Give up the model.
    pub fn into_model(self) -> R {
        self.model
    }
    /// The settings.
    pub fn config(&self) -> &Checked<DetectorParams> {
        &self.config
    }
    /// The map computer built from the map settings.
    pub fn map_config(&self) -> &MapConfig {
        &self.maps
    }
    /// The map normaliser, when one is attached.
    pub fn normalizer(&self) -> Option<&MapNormalizer> {
        self.normalizer.as_ref()
    }
    /// Attach a fitted map normaliser (or remove it with `None`): from then on
    /// [`Detector::analyze`] (and everything built on it) returns
    /// [`MapNormalizer::apply`] of the configured maps.
    pub fn with_normalizer(mut self, normalizer: Option<MapNormalizer>) -> Self {
        self.normalizer = normalizer;
        self
    }

    /// Fit a [`MapNormalizer`] on the raw maps of held-out **normal** images and attach it
    /// (replacing any attached one): the detector then scores how far the local residual
    /// energy is from what normal images have, in both directions for
    /// [`crate::normalize::Side::TwoSided`] (see [`crate::normalize`]).
    ///
    /// # Errors
    /// As [`Detector::reconstruct`] and [`MapNormalizer`]'s fit (`Checked<NormalizerParams>::fit`).
    ///
    /// # Example
    /// ```
    /// use latent_anomaly::{Detector, DetectorParams, NormalizerParams, ParamGuard, Reconstructor, Result};
    /// use latent_linalg::Tensor4;
    /// // A "model" that can only draw flat images: it reconstructs every image by its mean.
    /// struct Mean;
    /// impl Reconstructor<f64> for Mean {
    ///     fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
    ///         let d = x.sample_len();
    ///         let mut y = x.clone();
    ///         for s in y.as_mut_slice().chunks_mut(d) {
    ///             let m = s.iter().sum::<f64>() / d as f64;
    ///             s.iter_mut().for_each(|v| *v = m);
    ///         }
    ///         Ok(y)
    ///     }
    /// }
    /// // Normal images: a fine checkerboard texture of varying contrast, which the model never
    /// // reconstructs.
    /// let texture = |a: f64, i: usize, j: usize| if (i + j) % 2 == 0 { 0.5 - a } else { 0.5 + a };
    /// let normal = Tensor4::from_fn([4, 1, 16, 16], |[n, _, i, j]| texture(0.15 + 0.05 * n as f64, i, j))?;
    /// // A test image whose right half lost its texture (a flat stain).
    /// let test = Tensor4::from_fn([1, 1, 16, 16], |[_, _, i, j]| if j >= 8 { 0.5 } else { texture(0.2, i, j) })?;
    /// let raw = Detector::new(Mean, DetectorParams::new().check()?);
    /// let m = raw.anomaly_maps(&test)?;
    /// assert!(m.get([0, 0, 8, 12]).unwrap() < m.get([0, 0, 8, 3]).unwrap()); // the raw map is inverted
    /// let det = raw.normalize_on(&normal, &NormalizerParams::new().check()?)?;
    /// let z = det.anomaly_maps(&test)?;
    /// assert!(z.get([0, 0, 8, 12]).unwrap() > 10.0 * z.get([0, 0, 8, 3]).unwrap().max(0.1));
    /// # Ok::<(), latent_anomaly::AnomalyError>(())
    /// ```
    pub fn normalize_on(mut self, normal: &Tensor4<T>, params: &Checked<NormalizerParams>) -> Result<Self> {
        self.normalizer = None;
        let raw = self.anomaly_maps(normal)?;
        self.normalizer = Some(params.fit(&raw)?);
        Ok(self)
    }

    /// One call of the model on a batch, checked to return the input's shape.
    fn run_model(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let y = self.model.reconstruct(x)?;
        if y.shape() == x.shape() {
            Ok(y)
        } else if y.len() == x.len() {
            Ok(y.reshape(x.shape())?)
        } else {
            Err(shape_err("reconstructor output", x.shape(), y.shape()))
        }
    }

    /// Reconstruct a batch `(N, C, H, W)`: in batches of `batch_size` samples, or tile by tile
    /// with overlaps averaged when tiling is configured.
    ///
    /// # Errors
    /// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], [`AnomalyError::ShapeMismatch`] for
    /// images smaller than a tile or a model that returns another size, and the model's own
    /// errors (see [`crate::reconstructor`]).
    pub fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        if x.is_empty() {
            return Err(AnomalyError::Empty { what: "images" });
        }
        check_finite("images", x.as_slice())?;
        match self.config.tiling {
            None => self.reconstruct_whole(x),
            Some(t) => self.reconstruct_tiled(x, t),
        }
    }

    /// Whole images, `batch_size` samples per model call.
    fn reconstruct_whole(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let bs = self.config.batch_size;
        let d = x.sample_len();
        let [n, c, h, w] = x.shape();
        let mut out = Vec::with_capacity(x.len());
        for i0 in (0..n).step_by(bs) {
            let i1 = (i0 + bs).min(n);
            let b = Tensor4::from_vec([i1 - i0, c, h, w], x.as_slice()[i0 * d..i1 * d].to_vec())?;
            out.extend_from_slice(self.run_model(&b)?.as_slice());
        }
        Ok(Tensor4::from_vec(x.shape(), out)?)
    }

    /// Tile by tile, `batch_size` tiles per model call, overlaps averaged (accumulated in `f64`).
    fn reconstruct_tiled(&self, x: &Tensor4<T>, t: Tiling) -> Result<Tensor4<T>> {
        let bs = self.config.batch_size;
        let [n, c, h, w] = x.shape();
        if h < t.height || w < t.width {
            return Err(shape_err(
                "tiled reconstruction",
                format!("images of at least {}x{} (the tile size)", t.height, t.width),
                x.shape(),
            ));
        }
        let ys = Tiling::offsets(h, t.height, t.stride);
        let xs = Tiling::offsets(w, t.width, t.stride);
        let mut tiles: Vec<(usize, usize, usize)> = Vec::with_capacity(n * ys.len() * xs.len());
        for i in 0..n {
            for &y0 in &ys {
                tiles.extend(xs.iter().map(|&x0| (i, y0, x0)));
            }
        }
        let mut acc = vec![0.0f64; x.len()];
        let mut cnt = vec![0u32; n * h * w];
        let (th, tw) = (t.height, t.width);
        let src = x.as_slice();
        for chunk in tiles.chunks(bs) {
            let mut buf = Vec::with_capacity(chunk.len() * c * th * tw);
            for &(i, y0, x0) in chunk {
                for ch in 0..c {
                    for yy in 0..th {
                        let o = ((i * c + ch) * h + y0 + yy) * w + x0;
                        buf.extend_from_slice(&src[o..o + tw]);
                    }
                }
            }
            let rec = self.run_model(&Tensor4::from_vec([chunk.len(), c, th, tw], buf)?)?;
            let r = rec.as_slice();
            for (k, &(i, y0, x0)) in chunk.iter().enumerate() {
                for ch in 0..c {
                    for yy in 0..th {
                        let o = ((i * c + ch) * h + y0 + yy) * w + x0;
                        let ro = ((k * c + ch) * th + yy) * tw;
                        for xx in 0..tw {
                            acc[o + xx] += r[ro + xx].as_f64();
                        }
                    }
                }
                for yy in 0..th {
                    let o = (i * h + y0 + yy) * w + x0;
                    cnt[o..o + tw].iter_mut().for_each(|v| *v += 1);
                }
            }
        }
        let plane = h * w;
        let out: Vec<T> = acc
            .iter()
            .enumerate()
            .map(|(k, &a)| {
                let (i, p) = (k / (c * plane), k % plane);
                T::lit(a / f64::from(cnt[i * plane + p]))
            })
            .collect();
        Ok(Tensor4::from_vec(x.shape(), out)?)
    }

    /// Reconstruction, anomaly maps and image scores of a batch (maps normalised when a
    /// [`MapNormalizer`] is attached).
    ///
    /// # Errors
    /// As [`Detector::reconstruct`].
    pub fn analyze(&self, x: &Tensor4<T>) -> Result<Analysis<T>> {
        let reconstruction = self.reconstruct(x)?;
        let mut maps = self.maps.maps(x, &reconstruction)?;
        if let Some(nz) = &self.normalizer {
            maps = nz.apply(&maps)?;
        }
        let scores = self.maps.scores(&maps)?;
        Ok(Analysis { reconstruction, maps, scores })
    }

    /// Anomaly maps `(N, 1, H, W)` of a batch.
    ///
    /// # Errors
    /// As [`Detector::reconstruct`].
    pub fn anomaly_maps(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        Ok(self.analyze(x)?.maps)
    }

    /// Image scores of a batch.
    ///
    /// # Errors
    /// As [`Detector::reconstruct`].
    pub fn scores(&self, x: &Tensor4<T>) -> Result<Vec<f64>> {
        Ok(self.analyze(x)?.scores)
    }

    /// Thresholds from held-out **normal** data: the `q`-quantile of its image scores and of its
    /// pixel values (e.g. `q = 0.99` flags about 1 % of normal images and pixels).
    ///
    /// # Errors
    /// As [`Detector::reconstruct`]; [`AnomalyError::InvalidParameter`] for `q` outside `[0, 1]`.
    pub fn calibrate(&self, normal: &Tensor4<T>, q: f64) -> Result<Calibration> {
        if !(0.0..=1.0).contains(&q) {
            return Err(invalid("q", q, "must be in [0, 1]"));
        }
        let a = self.analyze(normal)?;
        Ok(Calibration { quantile: q, image: quantile(&a.scores, q)?, pixel: quantile(a.maps.as_slice(), q)? })
    }
}
