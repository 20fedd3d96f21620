//! The one seam every detector in this crate is built on: a [`Reconstructor`] maps a batch of
//! images `x` to reconstructions `x̂` of the same shape.
//!
//! Implementations shipped with the crate:
//!
//! | model | crate | failures come back as |
//! |---|---|---|
//! | [`latent_autoencoder::Autoencoder`], [`latent_autoencoder::Composed`] | `latent-autoencoder` | [`AnomalyError::Autoencoder`](crate::AnomalyError::Autoencoder) |
//! | [`crate::SsimAutoencoder`] | this crate | [`AnomalyError::ShapeMismatch`](crate::AnomalyError::ShapeMismatch), [`AnomalyError::NonFinite`](crate::AnomalyError::NonFinite), [`AnomalyError::Autoencoder`](crate::AnomalyError::Autoencoder) |
//! | [`crate::PatchDictionary`] | this crate (sparse coding) | this crate's variants, [`AnomalyError::SparseCoding`](crate::AnomalyError::SparseCoding) |
//! | [`crate::CscReconstructor`] | this crate (convolutional sparse coding) | this crate's variants, [`AnomalyError::ConvCoding`](crate::AnomalyError::ConvCoding) |
//! | `&R`, `Box<R>` for any reconstructor `R` | — | as `R` |
//!
//! A model defined anywhere else implements the one required method and reports its own
//! failures with [`AnomalyError::reconstructor`](crate::AnomalyError::reconstructor), which keeps the model's typed error as the
//! [`std::error::Error::source`] (downcastable), not as a string.
//!
//! # Why one error type and not an associated one
//! The detector, the evaluation and the validation functions need one error type anyway, and a
//! fixed one keeps the trait object-safe with no extra parameter: detectors over
//! `Box<dyn Reconstructor<f32>>` (a model chosen at run time, an ensemble of different models)
//! work as they are. Nothing is lost for a model with its own error type: it is boxed as the
//! source of [`AnomalyError::Reconstructor`](crate::AnomalyError::Reconstructor) and comes back out with `downcast_ref`.
//!
//! # Example: a model defined outside the crate
//! ```
//! use latent_anomaly::{AnomalyError, Detector, DetectorParams, ParamGuard, Reconstructor, Result};
//! use latent_linalg::Tensor4;
//!
//! /// The model's own error type.
//! #[derive(Debug, thiserror::Error)]
//! #[error("rows must be at least {0} wide")]
//! struct TooNarrow(usize);
//!
//! /// Reconstructs every row by its mean (exact on images with constant rows).
//! struct RowMean;
//! impl Reconstructor<f64> for RowMean {
//!     fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
//!         let w = x.w();
//!         if w < 2 {
//!             return Err(AnomalyError::reconstructor("row mean", TooNarrow(2)));
//!         }
//!         let mut y = x.clone();
//!         for row in y.as_mut_slice().chunks_mut(w) {
//!             let m = row.iter().sum::<f64>() / w as f64;
//!             row.iter_mut().for_each(|v| *v = m);
//!         }
//!         Ok(y)
//!     }
//! }
//! let x = Tensor4::from_fn([2, 1, 4, 4], |[n, _, i, _]| (n + i) as f64)?;
//! assert_eq!(RowMean.reconstruction_errors(&x)?, vec![0.0, 0.0]);
//! let det = Detector::new(RowMean, DetectorParams::new().check()?);
//! let e = det.analyze(&Tensor4::zeros([1, 1, 4, 1])?).unwrap_err();
//! let AnomalyError::Reconstructor { model, source } = &e else { panic!("{e}") };
//! assert_eq!(*model, "row mean");
//! assert!(source.downcast_ref::<TooNarrow>().is_some());
//! # Ok::<(), AnomalyError>(())
//! ```

#[cfg(feature = "autoencoder")]
mod autoencoder;

use crate::error::{Result, shape_err};
use latent_linalg::{Real, Tensor4};

/// Anything that reconstructs a batch `x ↦ x̂` (autoencoders, sparse coding, a user's own model):
/// what anomaly detection needs. One required method.
pub trait Reconstructor<T: Real> {
    /// Reconstruction of a batch `(N, C, H, W)`, same shape as `x` (a reconstruction with the
    /// same number of elements is reshaped by the [`crate::Detector`]).
    ///
    /// # Errors
    /// A typed error when the batch does not fit the model; a model with its own error type
    /// returns [`crate::AnomalyError::reconstructor`] of it.
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>>;

    /// Per-sample mean squared reconstruction error `‖xₙ − x̂ₙ‖² / D` (accumulated in `f64`).
    ///
    /// # Errors
    /// As [`Reconstructor::reconstruct`], and [`crate::AnomalyError::ShapeMismatch`] when the
    /// reconstruction does not have the input's size.
    fn reconstruction_errors(&self, x: &Tensor4<T>) -> Result<Vec<T>> {
        let xh = self.reconstruct(x)?;
        if xh.len() != x.len() {
            return Err(shape_err("reconstruction_errors", x.shape(), xh.shape()));
        }
        Ok(x.per_sample_mse(&xh)?)
    }
}

impl<T: Real, R: Reconstructor<T> + ?Sized> Reconstructor<T> for &R {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        (**self).reconstruct(x)
    }
    fn reconstruction_errors(&self, x: &Tensor4<T>) -> Result<Vec<T>> {
        (**self).reconstruction_errors(x)
    }
}

impl<T: Real, R: Reconstructor<T> + ?Sized> Reconstructor<T> for Box<R> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        (**self).reconstruct(x)
    }
    fn reconstruction_errors(&self, x: &Tensor4<T>) -> Result<Vec<T>> {
        (**self).reconstruction_errors(x)
    }
}

/// An ensemble of reconstructors whose reconstruction is the mean of its members'
/// reconstructions (summed in member order, then divided: deterministic). Typical use: the same
/// architecture trained with several seeds, whose mean restoration varies less than any one.
///
/// | parameter | meaning | range |
/// |---|---|---|
/// | `members` | the reconstructors | at least one |
///
/// # Example
/// ```
/// use latent_anomaly::{MeanEnsemble, Reconstructor, Result};
/// use latent_linalg::Tensor4;
/// struct Scale(f64);
/// impl Reconstructor<f64> for Scale {
///     fn reconstruct(&self, x: &Tensor4<f64>) -> Result<Tensor4<f64>> {
///         let mut y = x.clone();
///         y.as_mut_slice().iter_mut().for_each(|v| *v *= self.0);
///         Ok(y)
///     }
/// }
/// let e = MeanEnsemble::new(vec![Scale(1.0), Scale(3.0)])?;
/// let x = Tensor4::from_fn([1, 1, 2, 2], |_| 1.0)?;
/// assert_eq!(e.reconstruct(&x)?.as_slice(), &[2.0; 4]);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MeanEnsemble<R> {
    members: Vec<R>,
}

impl<R> MeanEnsemble<R> {
    /// An ensemble of `members`.
    ///
    /// # Errors
    /// [`crate::AnomalyError::Empty`] for no members.
    pub fn new(members: Vec<R>) -> Result<Self> {
        if members.is_empty() {
            return Err(crate::AnomalyError::Empty { what: "ensemble members" });
        }
        Ok(Self { members })
    }

    /// The members, in order.
    pub fn members(&self) -> &[R] {
        &self.members
    }
}

impl<T: Real, R: Reconstructor<T>> Reconstructor<T> for MeanEnsemble<R> {
    fn reconstruct(&self, x: &Tensor4<T>) -> Result<Tensor4<T>> {
        let mut acc = self.members[0].reconstruct(x)?;
        for m in &self.members[1..] {
            let y = m.reconstruct(x)?;
            if y.len() != acc.len() {
                return Err(shape_err("MeanEnsemble::reconstruct", acc.shape(), y.shape()));
            }
            acc.as_mut_slice().iter_mut().zip(y.as_slice()).for_each(|(a, &b)| *a += b);
        }
        let k = T::from_usize(self.members.len()).expect("member count fits the scalar type");
        acc.as_mut_slice().iter_mut().for_each(|a| *a /= k);
        Ok(acc)
    }
}
