//! Structural similarity (Wang et al. 2004) as a per-pixel map, a per-image score and a
//! differentiable training loss with its exact gradient.
//!
//! With local (windowed) means `μ`, variances `σ²` and covariance `σ_xy`,
//!
//! `SSIM(p) = (2μ_xμ_y + C₁)(2σ_xy + C₂) / ((μ_x² + μ_y² + C₁)(σ_x² + σ_y² + C₂))`,
//! `C₁ = (k₁L)²`, `C₂ = (k₂L)²`.
//!
//! The window is an 11×11 Gaussian with σ = 1.5 by default (Wang et al.; the SSIM autoencoder of
//! Bergmann et al. 2019 uses 11×11 windows), or uniform. Windows that leave the image are
//! restricted to the pixels inside and renormalised, so the map has the image's size. For
//! several channels the map is the mean over channels.
//!
//! The anomaly map of the SSIM autoencoder is `1 − SSIM(x, x̂)` per pixel; the training loss is
//! `1 − mean SSIM(x̂, x)` over all pixels, channels and samples.

use crate::error::{AnomalyError, Result, check_finite, check_pos, invalid};
use crate::filter::{SeparableFilter, same_shape};
use latent_linalg::{Real, Tensor4};
use latent_optim::fit::{Checked, ParamGuard};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// SSIM settings (builder; [`ParamGuard::check`] validates them and `Ssim::from(checked)`
/// precomputes the window).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `window` | `11` | window side in pixels | odd, `1..=255` |
/// | `sigma` | `Some(1.5)` | Gaussian window σ; `None` for a uniform window | finite, `> 0` |
/// | `dynamic_range` | `1.0` | `L`, the value range of the data | finite, `> 0` |
/// | `k1` | `0.01` | `C₁ = (k₁L)²` | finite, `> 0` |
/// | `k2` | `0.03` | `C₂ = (k₂L)²` | finite, `> 0` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SsimParams {
    /// Window side.
    pub window: usize,
    /// Gaussian σ (`None`: uniform window).
    pub sigma: Option<f64>,
    /// Value range `L`.
    pub dynamic_range: f64,
    /// `k₁`.
    pub k1: f64,
    /// `k₂`.
    pub k2: f64,
}

impl Default for SsimParams {
    fn default() -> Self {
        Self { window: 11, sigma: Some(1.5), dynamic_range: 1.0, k1: 0.01, k2: 0.03 }
    }
}

impl SsimParams {
    /// The defaults (11×11 Gaussian window, σ = 1.5, `L = 1`).
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the window side.
        window: usize,
        /// Set the dynamic range `L`.
        dynamic_range: f64,
    }
    /// Use a Gaussian window of standard deviation `sigma`.
    pub fn gaussian(mut self, sigma: f64) -> Self {
        self.sigma = Some(sigma);
        self
    }
    /// Use a uniform window.
    pub fn uniform(mut self) -> Self {
        self.sigma = None;
        self
    }
    /// Set `k₁` and `k₂`.
    pub fn constants(mut self, k1: f64, k2: f64) -> Self {
        self.k1 = k1;
        self.k2 = k2;
        self
    }
}

impl ParamGuard for SsimParams {
    type Error = AnomalyError;

    /// # Errors
    /// [`AnomalyError::InvalidParameter`] naming `window`, `sigma`, `dynamic_range`, `k1` or `k2`.
    fn validate(&self) -> Result<()> {
        if self.window == 0 || self.window.is_multiple_of(2) || self.window > 255 {
            return Err(invalid("window", self.window, "must be odd and in 1..=255"));
        }
        if let Some(s) = self.sigma {
            check_pos("sigma", s)?;
        }
        check_pos("dynamic_range", self.dynamic_range)?;
        check_pos("k1", self.k1)?;
        check_pos("k2", self.k2)
    }
}

impl From<Checked<SsimParams>> for Ssim {
    /// Precompute the window and the constants.
    fn from(params: Checked<SsimParams>) -> Self {
        Self::from_valid(params.into_inner())
    }
}

/// SSIM of checked [`SsimParams`] with its precomputed window: maps, scores, and the loss with
/// its gradient.
///
/// # Example
/// ```
/// use latent_anomaly::ParamGuard;
/// use latent_anomaly::ssim::{Ssim, SsimParams};
/// use latent_linalg::Tensor4;
/// let ssim = Ssim::from(SsimParams::new().check()?);
/// let x = Tensor4::<f64>::from_fn([1, 1, 16, 16], |[_, _, i, j]| ((i * 3 + j) % 5) as f64 / 5.0)?;
/// assert!((ssim.mean(&x, &x)?[0] - 1.0).abs() < 1e-12);
/// let mut y = x.clone();
/// y.map_inplace(|v| 1.0 - v);
/// assert!(ssim.mean(&x, &y)?[0] < 0.0); // inverted structure
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Ssim {
    params: SsimParams,
    filter: SeparableFilter,
    c1: f64,
    c2: f64,
}

/// Local statistics of one plane pair.
struct Stats {
    mx: Vec<f64>,
    my: Vec<f64>,
    vx: Vec<f64>,
    vy: Vec<f64>,
    cxy: Vec<f64>,
}

impl Ssim {
    /// Build from parameters that passed [`ParamGuard::validate`].
    pub(crate) fn from_valid(params: SsimParams) -> Self {
        let filter = match params.sigma {
            Some(s) => SeparableFilter::gaussian(params.window, s),
            None => SeparableFilter::uniform(params.window),
        };
        let c1 = (params.k1 * params.dynamic_range).powi(2);
        let c2 = (params.k2 * params.dynamic_range).powi(2);
        Self { params, filter, c1, c2 }
    }

    /// The parameters.
    pub fn params(&self) -> &SsimParams {
        &self.params
    }

    fn check_pair<T: Real>(op: &'static str, x: &Tensor4<T>, y: &Tensor4<T>) -> Result<()> {
        same_shape(op, x, y)?;
        if x.is_empty() {
            return Err(AnomalyError::Empty { what: "SSIM input" });
        }
        check_finite("SSIM first input", x.as_slice())?;
        check_finite("SSIM second input", y.as_slice())
    }

    fn stats(&self, x: &[f64], y: &[f64], h: usize, w: usize) -> Stats {
        let f = |v: &[f64]| self.filter.apply(v, h, w, false);
        let mx = f(x);
        let my = f(y);
        let xx: Vec<f64> = x.iter().map(|a| a * a).collect();
        let yy: Vec<f64> = y.iter().map(|a| a * a).collect();
        let xy: Vec<f64> = x.iter().zip(y).map(|(a, b)| a * b).collect();
        let vx: Vec<f64> = f(&xx).iter().zip(&mx).map(|(s, m)| s - m * m).collect();
        let vy: Vec<f64> = f(&yy).iter().zip(&my).map(|(s, m)| s - m * m).collect();
        let cxy: Vec<f64> = f(&xy).iter().zip(mx.iter().zip(&my)).map(|(s, (a, b))| s - a * b).collect();
        Stats { mx, my, vx, vy, cxy }
    }

    fn value(&self, s: &Stats, p: usize) -> f64 {
        let (mx, my) = (s.mx[p], s.my[p]);
        let n1 = 2.0 * mx * my + self.c1;
        let n2 = 2.0 * s.cxy[p] + self.c2;
        let d1 = mx * mx + my * my + self.c1;
        let d2 = s.vx[p] + s.vy[p] + self.c2;
        n1 * n2 / (d1 * d2)
    }

    /// Per-pixel SSIM of every `(n, c)` plane pair, in `f64`, planes in storage order.
    fn plane_maps<T: Real>(&self, x: &Tensor4<T>, y: &Tensor4<T>) -> Vec<Vec<f64>> {
        let (h, w) = (x.h(), x.w());
        let plane = h * w;
        x.as_slice()
            .par_chunks(plane)
            .zip(y.as_slice().par_chunks(plane))
            .map(|(a, b)| {
                let a: Vec<f64> = a.iter().map(|v| v.as_f64()).collect();
                let b: Vec<f64> = b.iter().map(|v| v.as_f64()).collect();
                let s = self.stats(&a, &b, h, w);
                (0..plane).map(|p| self.value(&s, p)).collect()
            })
            .collect()
    }

    /// Per-pixel SSIM `(N, 1, H, W)` (mean over channels) of two batches of the same shape.
    ///
    /// # Errors
    /// [`AnomalyError::ShapeMismatch`] for different shapes, [`AnomalyError::Empty`],
    /// [`AnomalyError::NonFinite`].
    pub fn map<T: Real>(&self, x: &Tensor4<T>, y: &Tensor4<T>) -> Result<Tensor4<T>> {
        Self::check_pair("ssim map", x, y)?;
        let [n, c, h, w] = x.shape();
        let planes = self.plane_maps(x, y);
        let plane = h * w;
        let mut out = Vec::with_capacity(n * plane);
        for i in 0..n {
            for p in 0..plane {
                let s: f64 = (0..c).map(|ch| planes[i * c + ch][p]).sum();
                out.push(T::lit(s / c as f64));
            }
        }
        Ok(Tensor4::from_vec([n, 1, h, w], out)?)
    }

    /// Mean SSIM of every sample (over pixels and channels).
    ///
    /// # Errors
    /// As [`Ssim::map`].
    pub fn mean<T: Real>(&self, x: &Tensor4<T>, y: &Tensor4<T>) -> Result<Vec<f64>> {
        Self::check_pair("ssim mean", x, y)?;
        let c = x.c();
        let planes = self.plane_maps(x, y);
        let per = (x.h() * x.w() * c) as f64;
        Ok(planes.chunks(c).map(|ps| ps.iter().flat_map(|p| p.iter()).sum::<f64>() / per).collect())
    }

    /// The SSIM loss `1 − mean SSIM(pred, target)` over all pixels, channels and samples.
    ///
    /// # Errors
    /// As [`Ssim::map`].
    pub fn loss<T: Real>(&self, pred: &Tensor4<T>, target: &Tensor4<T>) -> Result<f64> {
        let m = self.mean(pred, target)?;
        Ok(1.0 - m.iter().sum::<f64>() / m.len() as f64)
    }

    /// The SSIM loss and its gradient with respect to `pred`, written (not added) into `grad`
    /// (same length as `pred`). Exact: the derivative of the windowed statistics is propagated
    /// through the adjoint of the window filter.
    ///
    /// # Errors
    /// As [`Ssim::map`], and [`AnomalyError::LengthMismatch`] when `grad` has another length.
    ///
    /// # Example
    /// ```
    /// use latent_anomaly::ParamGuard;
    /// use latent_anomaly::ssim::{Ssim, SsimParams};
    /// use latent_linalg::Tensor4;
    /// let ssim = Ssim::from(SsimParams::new().window(5).check()?);
    /// let t = Tensor4::<f64>::from_fn([2, 1, 8, 8], |[n, _, i, j]| ((n + i * j) % 4) as f64 / 4.0)?;
    /// let mut p = t.clone();
    /// p.map_inplace(|v| 0.5 * v + 0.2);
    /// let mut g = vec![0.0; p.len()];
    /// let l0 = ssim.loss_grad(&p, &t, &mut g)?;
    /// // a small step against the gradient lowers the loss
    /// p.as_mut_slice().iter_mut().zip(&g).for_each(|(v, d)| *v -= 0.5 * d);
    /// assert!(ssim.loss(&p, &t)? < l0);
    /// # Ok::<(), latent_anomaly::AnomalyError>(())
    /// ```
    pub fn loss_grad<T: Real>(&self, pred: &Tensor4<T>, target: &Tensor4<T>, grad: &mut [T]) -> Result<f64> {
        Self::check_pair("ssim loss", pred, target)?;
        crate::error::same_len("ssim loss gradient", pred.len(), grad.len())?;
        let (h, w) = (pred.h(), pred.w());
        let plane = h * w;
        let scale = -1.0 / pred.len() as f64;
        let sums: Vec<f64> = grad
            .par_chunks_mut(plane)
            .zip(pred.as_slice().par_chunks(plane))
            .zip(target.as_slice().par_chunks(plane))
            .map(|((g, yv), xv)| {
                let y: Vec<f64> = yv.iter().map(|v| v.as_f64()).collect();
                let x: Vec<f64> = xv.iter().map(|v| v.as_f64()).collect();
                let s = self.stats(&x, &y, h, w);
                let mut ga = vec![0.0; plane];
                let mut gb = vec![0.0; plane];
                let mut gc = vec![0.0; plane];
                let mut sum = 0.0;
                for p in 0..plane {
                    let (mx, my) = (s.mx[p], s.my[p]);
                    let n1 = 2.0 * mx * my + self.c1;
                    let n2 = 2.0 * s.cxy[p] + self.c2;
                    let d1 = mx * mx + my * my + self.c1;
                    let d2 = s.vx[p] + s.vy[p] + self.c2;
                    let v = n1 * n2 / (d1 * d2);
                    sum += v;
                    // ∂S/∂μ_y (direct) + through σ_y² = E[y²] − μ_y² and σ_xy = E[xy] − μ_xμ_y
                    let ds_dmy = 2.0 * mx * n2 / (d1 * d2) - 2.0 * my * v / d1;
                    let ds_dvy = -v / d2;
                    let ds_dcxy = 2.0 * n1 / (d1 * d2);
                    ga[p] = scale * (ds_dmy - 2.0 * my * ds_dvy - mx * ds_dcxy);
                    gb[p] = scale * ds_dvy;
                    gc[p] = scale * ds_dcxy;
                }
                let ta = self.filter.apply(&ga, h, w, true);
                let tb = self.filter.apply(&gb, h, w, true);
                let tc = self.filter.apply(&gc, h, w, true);
                for p in 0..plane {
                    g[p] = T::lit(ta[p] + 2.0 * y[p] * tb[p] + x[p] * tc[p]);
                }
                sum
            })
            .collect();
        Ok(1.0 - sums.iter().sum::<f64>() / pred.len() as f64)
    }
}
