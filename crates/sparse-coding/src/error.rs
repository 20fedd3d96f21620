//! The crate's error type.

/// Everything that can go wrong in `latent-sparse-coding`.
#[derive(Debug, thiserror::Error)]
pub enum SparseCodingError {
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
    /// Operands whose dimensions do not fit together.
    #[error("dimension mismatch in {op}: {detail}")]
    Dimension {
        /// The operation.
        op: &'static str,
        /// What disagrees.
        detail: String,
    },
    /// NaN or infinity in the input.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// No data where some is needed.
    #[error("empty input: {0}")]
    Empty(&'static str),
    /// A numerical breakdown (e.g. a singular active set).
    #[error("numerical failure in {op}: {detail}")]
    Numerical {
        /// The operation.
        op: &'static str,
        /// What happened.
        detail: String,
    },
    /// A saved model that cannot be read.
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
    /// A collective of data-parallel learning failed, or the ranks disagree (see
    /// [`OnlineLearner::fit_distributed`](crate::OnlineLearner::fit_distributed)).
    #[error(transparent)]
    Collective(#[from] latent_optim::collective::CommError),
}

/// `Result` with [`SparseCodingError`].
pub type Result<T> = std::result::Result<T, SparseCodingError>;

pub(crate) fn invalid(
    name: &'static str,
    value: impl std::fmt::Display,
    reason: impl Into<String>,
) -> SparseCodingError {
    SparseCodingError::InvalidParameter { name, value: value.to_string(), reason: reason.into() }
}

pub(crate) fn dim(op: &'static str, detail: String) -> SparseCodingError {
    SparseCodingError::Dimension { op, detail }
}

pub(crate) fn finite<T: latent_linalg::Real>(what: &'static str, data: &[T]) -> Result<()> {
    match data.iter().position(|v| !v.finite()) {
        Some(index) => Err(SparseCodingError::NonFinite { what, index }),
        None => Ok(()),
    }
}
