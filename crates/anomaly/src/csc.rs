//! Convolutional sparse coding as a [`Reconstructor`]: the image (minus its mean, optionally) is
//! coded against a bank of filters learned on normal images (`latent-conv-coding`), and the
//! reconstruction is `mean + Σ_m d_m * s_m`.

use crate::error::{AnomalyError, Result, check_finite, shape_err};
use crate::reconstructor::Reconstructor;
use latent_conv_coding::{Csc, CscParams, FftReal, Filters, ParamGuard};
use latent_linalg::Tensor4;

/// A convolutional-sparse-coding reconstructor (filters `(M, C, kh, kw)` + a coder).
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `filters` | — | the dictionary, e.g. `FittedCdl::filters` learned on normal images |
/// | `params` | — | the coder ([`CscParams`]: λ, solver, iterations, boundary) |
/// | `remove_mean` | `true` | code each image plane minus its mean and add the mean back |
///
/// # Example
/// ```
/// use latent_anomaly::{CscReconstructor, Reconstructor};
/// use latent_conv_coding::{CscParams, Filters};
/// use latent_linalg::Tensor4;
/// // one 3×3 "plus" filter; normal images are sparse sums of shifted pluses
/// let plus = [0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0].map(|v: f64| v / 5f64.sqrt());
/// let d = Filters::from_vec(1, 1, 3, 3, plus.to_vec())?;
/// let mut x = Tensor4::<f64>::zeros([1, 1, 12, 12])?;
/// for (i, j) in [(2, 2), (7, 5), (4, 9)] {
///     for (k, v) in plus.iter().enumerate() {
///         *x.get_mut([0, 0, i + k / 3, j + k % 3]).unwrap() += v;
///     }
/// }
/// let csc = CscReconstructor::new(d, CscParams::new(0.01).max_iter(300).tol(1e-6))?.remove_mean(false);
/// let err = csc.reconstruction_errors(&x)?[0];
/// assert!(err < 1e-4, "{err}");
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CscReconstructor<T: FftReal> {
    filters: Filters<T>,
    coder: Csc<T>,
    remove_mean: bool,
}

impl<T: FftReal> CscReconstructor<T> {
    /// A reconstructor from filters and coder settings.
    ///
    /// # Errors
    /// [`AnomalyError::ConvCoding`] for invalid coder settings.
    pub fn new(filters: Filters<T>, params: CscParams<T>) -> Result<Self> {
        Ok(Self { filters, coder: Csc::from(params.check()?), remove_mean: true })
    }
    /// Code mean-free planes (default) or the raw images.
    pub fn remove_mean(mut self, on: bool) -> Self {
        self.remove_mean = on;
        self
    }
    /// The filters.
    pub fn filters(&self) -> &Filters<T> {
        &self.filters
    }
}

impl<T: FftReal> Reconstructor<T> for CscReconstructor<T> {
    /// Reconstruct a batch `(N, C, H, W)`.
    ///
    /// # Errors
    /// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], [`AnomalyError::ShapeMismatch`]
    /// when the channels differ from the filters', and coding errors.
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        if x.is_empty() {
            return Err(AnomalyError::Empty { what: "images" });
        }
        check_finite("images", x.as_slice())?;
        if x.c() != self.filters.channels() {
            return Err(shape_err("csc reconstruction", format!("{} channels", self.filters.channels()), x.shape()));
        }
        let plane = x.h() * x.w();
        let mut centered = x.clone();
        let means: Vec<T> = centered
            .as_mut_slice()
            .chunks_mut(plane)
            .map(|p| {
                if !self.remove_mean {
                    return T::zero();
                }
                let m = p.iter().fold(T::zero(), |a, &v| a + v) / T::from_count(plane);
                p.iter_mut().for_each(|v| *v -= m);
                m
            })
            .collect();
        let codes = self.coder.encode(&self.filters, &centered)?;
        let mut rec = codes.reconstruct(&self.filters)?;
        if rec.shape() != x.shape() {
            return Err(shape_err("csc reconstruction output", x.shape(), rec.shape()));
        }
        for (p, m) in rec.as_mut_slice().chunks_mut(plane).zip(means) {
            p.iter_mut().for_each(|v| *v += m);
        }
        Ok(rec)
    }
}
