//! Per-pixel anomaly maps from an input and its reconstruction, and image scores from maps.

use crate::error::{AnomalyError, Result, check_finite, check_pos, invalid};
use crate::filter::{gaussian_blur, same_shape};
use crate::ssim::{Ssim, SsimParams};
use latent_linalg::{Real, Tensor4};
use latent_optim::fit::{Checked, ParamGuard};
use serde::{Deserialize, Serialize};

/// How a pixel's anomaly value is computed from the input `x` and the reconstruction `x̂`.
///
/// | variant | map | note |
/// |---|---|---|
/// | `SquaredError` | `mean_c (x − x̂)²` | the lecture's per-pixel reconstruction error |
/// | `AbsoluteError` | `mean_c |x − x̂|` | |
/// | `Ssim(p)` | `1 − SSIM(x, x̂)` with window `p` | Bergmann et al. 2019; in `[0, 2]` |
/// | `SquaredWithLocalMean { sigma, weight }` | `e² + weight · (G_σ ∗ e)²`, `e = mean_c (x − x̂)` | see below |
///
/// `SquaredWithLocalMean` adds to the squared error the squared *local mean* of the residual: a
/// soft intensity shift (a stain) leaves a residual of one sign that the Gaussian mean keeps,
/// while it averages out the zero-mean residual of a busy texture. With `weight` = the ratio of
/// the two terms' means on normal images, both count alike on normal data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MapKind {
    /// Squared error per pixel (mean over channels).
    SquaredError,
    /// Absolute error per pixel (mean over channels).
    AbsoluteError,
    /// One minus the local structural similarity.
    Ssim(SsimParams),
    /// Squared error plus `weight` times the squared Gaussian (σ = `sigma` px) local mean of the
    /// residual.
    SquaredWithLocalMean {
        /// Gaussian σ of the local mean, in pixels, `(0, 1000]`.
        sigma: f64,
        /// Weight of the local-mean term, finite, `≥ 0`.
        weight: f64,
    },
}

/// Division of a map by the local contrast of the reconstruction, `m / (V + floor)` with
/// `V = mean_c G_σ ∗ (x̂ − G_σ ∗ x̂)²` (the local variance of the reconstruction; Gaussian windows
/// of standard deviation `sigma`, border-renormalised like [`gaussian_blur`]).
///
/// On a busy texture the normal residual is largest where the texture has the most contrast (a
/// reconstructor never reproduces every blade of grass), so a raw error map is brightest on
/// normal high-contrast texture. The reconstruction shows what normal texture the model expects
/// at each pixel; dividing by its local variance compares the error with the error that texture
/// of that contrast normally has. `floor` (in the map input's intensity² units; F11: the mean of
/// `V` on held-out normal images) keeps flat regions from being amplified without bound. Applied
/// after the map's smoothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContrastNorm {
    /// Gaussian σ of the local mean and of the local variance, in pixels, `(0, 1000]`.
    pub sigma: f64,
    /// Added to the local variance, finite, `> 0`.
    pub floor: f64,
}

impl ContrastNorm {
    /// The local variance `V` `(N, 1, H, W)` of a batch of reconstructions `(N, C, H, W)`
    /// (mean over channels), the quantity this normalisation divides by (before `floor`).
    ///
    /// # Errors
    /// [`AnomalyError::InvalidParameter`] for `sigma` outside `(0, 1000]`,
    /// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`].
    ///
    /// # Example
    /// ```
    /// use latent_anomaly::maps::ContrastNorm;
    /// use latent_linalg::Tensor4;
    /// // a constant image has no local variance; a checkerboard has about 0.25
    /// let flat = Tensor4::<f32>::from_fn([1, 1, 16, 16], |_| 0.5)?;
    /// let board = Tensor4::<f32>::from_fn([1, 1, 16, 16], |[_, _, i, j]| ((i + j) % 2) as f32)?;
    /// let cn = ContrastNorm { sigma: 2.0, floor: 0.01 };
    /// assert!(cn.local_variance(&flat)?.as_slice().iter().all(|&v| v.abs() < 1e-6));
    /// assert!(cn.local_variance(&board)?.as_slice().iter().all(|&v| (v - 0.25).abs() < 0.05));
    /// # Ok::<(), latent_anomaly::AnomalyError>(())
    /// ```
    pub fn local_variance<T: Real>(&self, xhat: &Tensor4<T>) -> Result<Tensor4<T>> {
        self.validate()?;
        if xhat.is_empty() {
            return Err(AnomalyError::Empty { what: "reconstruction" });
        }
        check_finite("reconstruction", xhat.as_slice())?;
        let mean = gaussian_blur(xhat, self.sigma)?;
        let mut dev = xhat.clone();
        dev.as_mut_slice().iter_mut().zip(mean.as_slice()).for_each(|(d, &m)| *d = (*d - m) * (*d - m));
        let var = gaussian_blur(&dev, self.sigma)?;
        let [n, c, h, w] = var.shape();
        let plane = h * w;
        let cf = T::from_count(c);
        let src = var.as_slice();
        let mut out = vec![T::zero(); n * plane];
        for i in 0..n {
            for ch in 0..c {
                let o = (i * c + ch) * plane;
                for p in 0..plane {
                    out[i * plane + p] += src[o + p] / cf;
                }
            }
        }
        Ok(Tensor4::from_vec([n, 1, h, w], out)?)
    }

    fn validate(&self) -> Result<()> {
        check_pos("contrast sigma", self.sigma)?;
        if self.sigma > 1000.0 {
            return Err(invalid("contrast sigma", self.sigma, "must be at most 1000 pixels"));
        }
        check_pos("contrast floor", self.floor)?;
        Ok(())
    }
}

/// How an image score is pooled from its anomaly map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ImageScore {
    /// The largest pixel value (anomalib's default for reconstruction models).
    #[default]
    Max,
    /// The mean pixel value (for squared error: the image's mean reconstruction error).
    Mean,
    /// The mean of the largest `p` % of the pixel values (at least one value), `p` in
    /// `1..=100`: between `Max` (one pixel) and `Mean` (100 %), less sensitive to one noisy
    /// pixel than the maximum.
    TopPercent(u8),
}

/// Anomaly-map settings (builder; [`ParamGuard::check`] validates them, and
/// `MapConfig::from(checked)` builds the map computer).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `kind` | `SquaredError` | per-pixel measure, see [`MapKind`] | SSIM parameters as [`SsimParams`]' [`ParamGuard::validate`] |
/// | `smoothing` | `None` | Gaussian smoothing σ of the map, in pixels | finite, `(0, 1000]` |
/// | `score` | `Max` | image score pooled from the (smoothed) map, see [`ImageScore`] | — |
/// | `contrast` | `None` | divide the (smoothed) map by the reconstruction's local contrast, see [`ContrastNorm`] | σ `(0, 1000]`, floor finite `> 0` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapParams {
    /// Per-pixel measure.
    pub kind: MapKind,
    /// Gaussian smoothing σ.
    pub smoothing: Option<f64>,
    /// Image-score pooling.
    pub score: ImageScore,
    /// Division by the reconstruction's local contrast (after smoothing). Files written before
    /// this field existed read as `None`.
    #[serde(default)]
    pub contrast: Option<ContrastNorm>,
}

impl Default for MapParams {
    fn default() -> Self {
        Self { kind: MapKind::SquaredError, smoothing: None, score: ImageScore::Max, contrast: None }
    }
}

impl MapParams {
    /// Squared error, no smoothing, max pooling.
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the per-pixel measure.
        kind: MapKind,
        /// Set the image-score pooling.
        score: ImageScore,
    }
    /// Use `1 − SSIM` with the given window settings.
    pub fn ssim(mut self, p: SsimParams) -> Self {
        self.kind = MapKind::Ssim(p);
        self
    }
    /// Smooth maps with a Gaussian of standard deviation `sigma` pixels.
    pub fn smoothing(mut self, sigma: f64) -> Self {
        self.smoothing = Some(sigma);
        self
    }
    /// Divide the (smoothed) maps by the reconstruction's local variance plus `floor`, see
    /// [`ContrastNorm`].
    pub fn contrast(mut self, sigma: f64, floor: f64) -> Self {
        self.contrast = Some(ContrastNorm { sigma, floor });
        self
    }
}

impl ParamGuard for MapParams {
    type Error = AnomalyError;

    /// # Errors
    /// [`AnomalyError::InvalidParameter`] naming `smoothing`, `score`, `sigma`, `weight`,
    /// `contrast sigma`, `contrast floor` or an SSIM parameter.
    fn validate(&self) -> Result<()> {
        if let Some(cn) = &self.contrast {
            cn.validate()?;
        }
        if let Some(s) = self.smoothing {
            check_pos("smoothing", s)?;
            if s > 1000.0 {
                return Err(invalid("smoothing", s, "must be at most 1000 pixels"));
            }
        }
        if let ImageScore::TopPercent(p) = self.score
            && !(1..=100).contains(&p)
        {
            return Err(invalid("score", format!("TopPercent({p})"), "the percentage must be in 1..=100"));
        }
        match self.kind {
            MapKind::Ssim(p) => p.validate(),
            MapKind::SquaredWithLocalMean { sigma, weight } => {
                check_pos("sigma", sigma)?;
                if sigma > 1000.0 {
                    return Err(invalid("sigma", sigma, "must be at most 1000 pixels"));
                }
                if !(weight.is_finite() && weight >= 0.0) {
                    return Err(invalid("weight", weight, "must be finite and at least 0"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The map computer of checked [`MapParams`]: holds the precomputed SSIM window (when the map
/// kind is SSIM); built with `MapConfig::from(params.check()?)`.
///
/// # Example
/// ```
/// use latent_anomaly::maps::{ImageScore, MapConfig, MapParams};
/// use latent_anomaly::ParamGuard;
/// use latent_linalg::Tensor4;
/// let cfg = MapConfig::from(MapParams::new().score(ImageScore::Mean).check()?);
/// let x = Tensor4::<f32>::from_vec([1, 1, 1, 4], vec![0.0, 0.5, 1.0, 1.0])?;
/// let xh = Tensor4::<f32>::from_vec([1, 1, 1, 4], vec![0.0, 0.5, 1.0, 0.0])?;
/// let maps = cfg.maps(&x, &xh)?;
/// assert_eq!(maps.as_slice(), &[0.0, 0.0, 0.0, 1.0]);
/// assert_eq!(cfg.scores(&maps)?, vec![0.25]);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MapConfig {
    params: MapParams,
    ssim: Option<Ssim>,
}

impl From<Checked<MapParams>> for MapConfig {
    fn from(params: Checked<MapParams>) -> Self {
        Self::from_valid(params.into_inner())
    }
}

impl MapConfig {
    /// Build from parameters that passed [`ParamGuard::validate`] (directly or as part of
    /// checked detector settings).
    pub(crate) fn from_valid(params: MapParams) -> Self {
        let ssim = match params.kind {
            MapKind::Ssim(p) => Some(Ssim::from_valid(p)),
            _ => None,
        };
        Self { params, ssim }
    }

    /// The parameters.
    pub fn params(&self) -> &MapParams {
        &self.params
    }

    /// Per-pixel anomaly maps `(N, 1, H, W)` of a batch and its reconstruction (same shape),
    /// smoothed when configured.
    ///
    /// # Errors
    /// [`AnomalyError::ShapeMismatch`] for different shapes, [`AnomalyError::Empty`],
    /// [`AnomalyError::NonFinite`].
    pub fn maps<T: Real>(&self, x: &Tensor4<T>, xhat: &Tensor4<T>) -> Result<Tensor4<T>> {
        same_shape("anomaly map", x, xhat)?;
        if x.is_empty() {
            return Err(AnomalyError::Empty { what: "anomaly map input" });
        }
        check_finite("anomaly map input", x.as_slice())?;
        check_finite("reconstruction", xhat.as_slice())?;
        let map = match (&self.params.kind, &self.ssim) {
            (MapKind::Ssim(_), Some(s)) => {
                let mut m = s.map(x, xhat)?;
                m.map_inplace(|v| T::one() - v);
                m
            }
            (kind, _) => {
                let abs = matches!(kind, MapKind::AbsoluteError);
                let [n, c, h, w] = x.shape();
                let plane = h * w;
                let (xs, ys) = (x.as_slice(), xhat.as_slice());
                let mut out = vec![T::zero(); n * plane];
                for i in 0..n {
                    for ch in 0..c {
                        let o = (i * c + ch) * plane;
                        for p in 0..plane {
                            let d = xs[o + p] - ys[o + p];
                            out[i * plane + p] += if abs { d.abs() } else { d * d };
                        }
                    }
                }
                let cf = T::from_count(c);
                out.iter_mut().for_each(|v| *v /= cf);
                Tensor4::from_vec([n, 1, h, w], out)?
            }
        };
        let map = match self.params.kind {
            MapKind::SquaredWithLocalMean { sigma, weight } => {
                let [n, c, h, w] = x.shape();
                let plane = h * w;
                let (xs, ys) = (x.as_slice(), xhat.as_slice());
                let cf = T::from_count(c);
                let mut e = vec![T::zero(); n * plane];
                for i in 0..n {
                    for ch in 0..c {
                        let o = (i * c + ch) * plane;
                        for p in 0..plane {
                            e[i * plane + p] += xs[o + p] - ys[o + p];
                        }
                    }
                }
                e.iter_mut().for_each(|v| *v /= cf);
                let local = gaussian_blur(&Tensor4::from_vec([n, 1, h, w], e)?, sigma)?;
                let wt = T::from_f64(weight).expect("a finite weight converts");
                let mut map = map;
                map.as_mut_slice().iter_mut().zip(local.as_slice()).for_each(|(m, &l)| *m += wt * l * l);
                map
            }
            _ => map,
        };
        let map = match self.params.smoothing {
            Some(s) => gaussian_blur(&map, s)?,
            None => map,
        };
        match &self.params.contrast {
            Some(cn) => {
                let var = cn.local_variance(xhat)?;
                let floor = T::from_f64(cn.floor).expect("a finite floor converts");
                let mut map = map;
                map.as_mut_slice().iter_mut().zip(var.as_slice()).for_each(|(m, &v)| *m /= v + floor);
                Ok(map)
            }
            None => Ok(map),
        }
    }

    /// Image scores pooled from maps `(N, C, H, W)` (one score per sample over all its values).
    ///
    /// # Errors
    /// [`AnomalyError::Empty`] for maps without pixels, [`AnomalyError::NonFinite`].
    pub fn scores<T: Real>(&self, maps: &Tensor4<T>) -> Result<Vec<f64>> {
        pool_scores(maps, self.params.score)
    }
}

/// Pool one score per sample from maps `(N, C, H, W)`.
///
/// # Errors
/// [`AnomalyError::Empty`] for maps without pixels, [`AnomalyError::NonFinite`].
pub fn pool_scores<T: Real>(maps: &Tensor4<T>, how: ImageScore) -> Result<Vec<f64>> {
    let d = maps.sample_len();
    if d == 0 || maps.n() == 0 {
        return Err(AnomalyError::Empty { what: "anomaly maps" });
    }
    check_finite("anomaly maps", maps.as_slice())?;
    Ok(maps
        .as_slice()
        .chunks_exact(d)
        .map(|m| match how {
            ImageScore::Max => m.iter().fold(f64::NEG_INFINITY, |a, v| a.max(v.as_f64())),
            ImageScore::Mean => m.iter().map(|v| v.as_f64()).sum::<f64>() / d as f64,
            ImageScore::TopPercent(p) => {
                let k = (d * usize::from(p)).div_ceil(100).clamp(1, d);
                let mut v: Vec<f64> = m.iter().map(|v| v.as_f64()).collect();
                v.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                v[..k].iter().sum::<f64>() / k as f64
            }
        })
        .collect())
}
