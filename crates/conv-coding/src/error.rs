//! The crate's error type.

/// Everything that can go wrong in `latent-conv-coding`: each variant says what and where.
#[derive(Debug, thiserror::Error)]
pub enum ConvCodingError {
    /// A parameter outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// The valid range.
        reason: String,
    },
    /// Operands whose shapes do not fit together (e.g. a filter larger than the image).
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// What disagrees.
        detail: String,
    },
    /// NaN or infinity in an input.
    #[error("non-finite value in {what} at flat index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat (storage-order) index of the first offending element.
        index: usize,
    },
    /// No data where some is needed.
    #[error("empty input: {0}")]
    Empty(&'static str),
    /// A numerical breakdown (an FFT plan rejecting a buffer, a diverging iterate).
    #[error("numerical failure in {op}: {detail}")]
    Numerical {
        /// The operation.
        op: &'static str,
        /// What happened.
        detail: String,
    },
    /// A saved model that cannot be read (corrupt, truncated, foreign or newer file).
    #[error("cannot load model: {0}")]
    Format(String),
    /// An I/O error with the path involved.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An error from the linear-algebra layer.
    #[error(transparent)]
    Linalg(#[from] latent_linalg::LinalgError),
    /// An error from the shared solvers (e.g. FISTA's line search finding no step).
    #[error(transparent)]
    Optim(#[from] latent_optim::OptimError),
}

/// `Result` with [`ConvCodingError`].
pub type Result<T> = std::result::Result<T, ConvCodingError>;

pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> ConvCodingError {
    ConvCodingError::InvalidParameter { name, value: value.to_string(), reason: reason.into() }
}

pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> ConvCodingError {
    ConvCodingError::Shape { op, detail: detail.into() }
}

pub(crate) fn finite<T: latent_linalg::Real>(what: &'static str, data: &[T]) -> Result<()> {
    match data.iter().position(|v| !v.finite()) {
        Some(index) => Err(ConvCodingError::NonFinite { what, index }),
        None => Ok(()),
    }
}

pub(crate) fn fft_err(op: &'static str, e: impl std::fmt::Display) -> ConvCodingError {
    ConvCodingError::Numerical { op, detail: e.to_string() }
}

/// A breakdown of the shared solver (a non-finite objective, a line search finding no step) as
/// [`ConvCodingError::Numerical`] of `op`; other errors pass through.
pub(crate) fn solver_err(op: &'static str) -> impl Fn(ConvCodingError) -> ConvCodingError {
    move |e| match e {
        ConvCodingError::Optim(
            ref o @ (latent_optim::OptimError::NonFiniteObjective { .. }
            | latent_optim::OptimError::LineSearchFailed { .. }),
        ) => ConvCodingError::Numerical { op, detail: o.to_string() },
        e => e,
    }
}

/// Check that a scalar parameter is finite and `>= 0`.
pub(crate) fn nonneg_param(name: &'static str, v: f64) -> Result<()> {
    if !(v >= 0.0) || !v.is_finite() {
        return Err(invalid(name, v, "must be finite and >= 0"));
    }
    Ok(())
}

/// Check that a scalar parameter is finite and `> 0`.
pub(crate) fn pos_param(name: &'static str, v: f64) -> Result<()> {
    if !(v > 0.0) || !v.is_finite() {
        return Err(invalid(name, v, "must be finite and > 0"));
    }
    Ok(())
}
