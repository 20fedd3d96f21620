//! The one fit pattern every algorithm crate of latent follows (after linfa's `ParamGuard`/`Fit`):
//!
//! ```text
//! XParams::new(..).setting(..)   builder: plain values, nothing checked yet
//!     .check()?                  ParamGuard::check → Checked<XParams>, or a typed error naming the bad value
//!     .fit(&data)?               Checked::fit → the fitted model with its diagnostics
//! ```
//!
//! [`ParamGuard`] validates a parameter set; [`Checked`] is the proof that it did (there is no
//! other way to build one), and [`Fit`] says what a checked parameter set fits to which data.
//! Stateful learners (online learning, warm restarts) are built from a [`Checked`] set with
//! `From<Checked<XParams>>` instead of being fitted in one call.
//!
//! # Example
//! A parameter set defined outside latent, fitted the way every latent model is:
//! ```
//! use latent_optim::fit::{Checked, Fit, ParamGuard};
//!
//! #[derive(Debug, Clone)]
//! struct MeanParams { shrink: f64 }
//!
//! impl ParamGuard for MeanParams {
//!     type Error = String;
//!     fn validate(&self) -> Result<(), String> {
//!         if (0.0..=1.0).contains(&self.shrink) { Ok(()) } else { Err(format!("shrink = {} is not in [0, 1]", self.shrink)) }
//!     }
//! }
//!
//! impl Fit<[f64]> for MeanParams {
//!     type Fitted = f64;
//!     fn fit_checked(p: &Checked<Self>, data: &[f64]) -> Result<f64, String> {
//!         if data.is_empty() { return Err("empty data".into()); }
//!         Ok((1.0 - p.shrink) * data.iter().sum::<f64>() / data.len() as f64)
//!     }
//! }
//!
//! let mean = MeanParams { shrink: 0.5 }.check()?.fit(&[1.0, 2.0, 3.0][..])?;
//! assert_eq!(mean, 1.0);
//! assert!(MeanParams { shrink: 2.0 }.check().is_err());
//! # Ok::<(), String>(())
//! ```

/// Parameters that passed their [`ParamGuard::check`]: the only input a model's `fit` (and a
/// learner's `From`) accepts. Read the parameters through `Deref`; the only way to build one is
/// [`ParamGuard::check`], so holding one proves the values were validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<P>(P);

impl<P> Checked<P> {
    /// The validated parameters.
    pub fn get(&self) -> &P {
        &self.0
    }

    /// Give up the wrapper (to change a setting and check again).
    pub fn into_inner(self) -> P {
        self.0
    }

    /// Fit the model these parameters describe to `data` (see [`Fit`]).
    ///
    /// # Errors
    /// The model's own error for data it cannot fit (wrong shape, NaN/Inf, empty data, ...).
    pub fn fit<D: ?Sized>(&self, data: &D) -> Result<P::Fitted, P::Error>
    where
        P: Fit<D>,
    {
        P::fit_checked(self, data)
    }

    /// Build the (untrained) model these parameters describe (see [`Build`]); its type is
    /// usually inferred: `let model: Autoencoder<f32> = params.check()?.build()?`.
    ///
    /// # Errors
    /// The model's own error when it cannot be built (e.g. an architecture whose shapes do not
    /// chain for the given input size).
    pub fn build<M>(&self) -> Result<M, P::Error>
    where
        P: Build<M>,
    {
        P::build_checked(self)
    }
}

impl<P> std::ops::Deref for Checked<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}

/// A parameter set that validates itself. Implement [`ParamGuard::validate`]; callers use the
/// provided [`ParamGuard::check`].
pub trait ParamGuard: Sized {
    /// The crate's error type (an invalid value is reported as its `InvalidParameter` variant,
    /// naming the parameter, the value and the valid range).
    type Error;

    /// Check every value; the error names the first bad one.
    ///
    /// # Errors
    /// The first invalid parameter.
    fn validate(&self) -> Result<(), Self::Error>;

    /// Validate and wrap.
    ///
    /// # Errors
    /// As [`ParamGuard::validate`].
    fn check(self) -> Result<Checked<Self>, Self::Error> {
        self.validate()?;
        Ok(Checked(self))
    }

    /// Validate a borrowed set and wrap a copy of it.
    ///
    /// # Errors
    /// As [`ParamGuard::validate`].
    fn check_ref(&self) -> Result<Checked<Self>, Self::Error>
    where
        Self: Clone,
    {
        self.validate()?;
        Ok(Checked(self.clone()))
    }
}

/// What a checked parameter set fits to data of type `D`. Implemented by the parameter type;
/// called as [`Checked::fit`].
pub trait Fit<D: ?Sized>: ParamGuard {
    /// The fitted model (with its diagnostics: objective history, iterations, stop reason).
    type Fitted;

    /// Fit to `data`.
    ///
    /// # Errors
    /// The model's error for data it cannot fit.
    fn fit_checked(params: &Checked<Self>, data: &D) -> Result<Self::Fitted, Self::Error>;
}

/// Builder setters for a parameter struct with public fields: `setters! { /// doc\n name: Type, .. }`
/// inside an `impl` block expands to `pub fn name(mut self, v: Type) -> Self`, one per field, so
/// every latent builder reads `XParams::new(..).name(value)`.
///
/// ```
/// #[derive(Debug, Default)]
/// pub struct P { pub epochs: usize, pub seed: u64 }
/// impl P {
///     latent_optim::setters! {
///         /// Passes over the data.
///         epochs: usize,
///         /// Seed.
///         seed: u64,
///     }
/// }
/// assert_eq!(P::default().epochs(3).seed(7).epochs, 3);
/// ```
#[macro_export]
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident : $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, v: $ty) -> Self {
                self.$name = v;
                self
            }
        )*
    };
}

/// What a checked parameter set builds without data: a network with fresh (seeded) weights,
/// which a trainer then fits. Implemented by the parameter type; called as [`Checked::build`].
pub trait Build<M>: ParamGuard {
    /// Build the model.
    ///
    /// # Errors
    /// The model's error when it cannot be built.
    fn build_checked(params: &Checked<Self>) -> Result<M, Self::Error>;
}

/// Why a learning loop (dictionary learning, network training) stopped: the one stop reason of
/// every learner in latent. Solvers of a single problem report [`crate::StopReason`] instead.
///
/// Files store the variant index: new variants go last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LearnStop {
    /// The relative objective decrease fell below the tolerance.
    Converged,
    /// The iteration or epoch cap (or the end of the data) was reached.
    MaxIterations,
    /// A callback asked to stop.
    Callback,
    /// The monitored (validation) loss did not improve for `patience` epochs.
    EarlyStopping,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct P(i32);

    impl ParamGuard for P {
        type Error = String;
        fn validate(&self) -> Result<(), String> {
            if self.0 >= 0 { Ok(()) } else { Err(format!("value {} < 0", self.0)) }
        }
    }

    impl Fit<[i32]> for P {
        type Fitted = i32;
        fn fit_checked(p: &Checked<Self>, data: &[i32]) -> Result<i32, String> {
            Ok(p.get().0 + data.iter().sum::<i32>())
        }
    }

    #[test]
    fn check_validates_and_fit_forwards() {
        let c = P(2).check().unwrap();
        assert_eq!(*c.get(), P(2));
        assert_eq!(c.fit(&[1, 2][..]).unwrap(), 5);
        assert_eq!(c.into_inner(), P(2));
        assert_eq!(P(-1).check().unwrap_err(), "value -1 < 0");
        assert_eq!(P(-3).check_ref().unwrap_err(), "value -3 < 0");
        assert_eq!(P(3).check_ref().unwrap().get().0, 3);
        let built: Vec<i32> = P(2).check().unwrap().build().unwrap();
        assert_eq!(built, vec![0, 0]);
    }

    impl Build<Vec<i32>> for P {
        fn build_checked(p: &Checked<Self>) -> Result<Vec<i32>, String> {
            Ok(vec![0; p.get().0 as usize])
        }
    }
}
