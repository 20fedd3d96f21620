//! The crate's error type.

use latent_autoencoder::AutoencoderError;
use latent_datasets::DatasetError;
use latent_linalg::LinalgError;
use latent_linalg::persist::PersistError;
use latent_optim::OptimError;
use std::path::PathBuf;

/// Everything that can go wrong in `latent-unet`. Each variant names what and where.
#[derive(Debug, thiserror::Error)]
pub enum UnetError {
    /// A hyperparameter or argument outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name (as in the builder).
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// The valid range.
        reason: String,
    },
    /// An input whose spatial size the network cannot process (pooling needs even sizes, the
    /// unpadded convolutions need room); `valid` lists the nearest sizes that work.
    #[error(
        "input size {size} ({axis}) does not fit a depth-{depth} U-Net with {padding} convolutions; valid sizes near it: {valid}"
    )]
    InputSize {
        /// `"height"`, `"width"` or `"tile"`.
        axis: &'static str,
        /// The rejected size.
        size: usize,
        /// Depth of the network (number of resolution levels).
        depth: usize,
        /// `"same"` or `"valid"`.
        padding: &'static str,
        /// The nearest valid sizes, printed.
        valid: String,
    },
    /// Operands whose shapes do not fit together.
    #[error("shape mismatch in {op}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// The operation that was called.
        op: &'static str,
        /// What was needed.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A NaN or infinity where finite numbers are needed.
    #[error("non-finite value in {what} at flat index {index}")]
    NonFinite {
        /// Which operand holds the value.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// An empty input where at least one element is needed.
    #[error("empty input: {what}")]
    Empty {
        /// Which operand is empty.
        what: &'static str,
    },
    /// A method called in the wrong state (e.g. `backward` before a training `forward`).
    #[error("invalid state in {op}: {detail}")]
    State {
        /// The operation that was called.
        op: &'static str,
        /// What is missing.
        detail: String,
    },
    /// Training diverged (the loss or a parameter became NaN or infinite).
    #[error("training diverged at step {step}: {what} = {value}")]
    Diverged {
        /// Optimizer step (0-based).
        step: usize,
        /// What became non-finite.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A file-system error.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A model file that is not one, is truncated or corrupt, or is inconsistent.
    #[error("bad model file: {detail}")]
    Format {
        /// What is wrong.
        detail: String,
    },
    /// A model file written by a newer (or unknown) format version.
    #[error("unsupported model file version {found} (this build reads versions up to {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// An error from a `latent-autoencoder` layer.
    #[error(transparent)]
    Autoencoder(#[from] AutoencoderError),
    /// An error from a `latent-linalg` kernel.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// An error from `latent-optim`.
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// An error from `latent-datasets` (loading or augmenting cell images).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// `Result` with [`UnetError`].
pub type Result<T> = std::result::Result<T, UnetError>;

impl From<PersistError> for UnetError {
    fn from(e: PersistError) -> Self {
        match e {
            PersistError::Io { path, source } => UnetError::Io { path, source },
            PersistError::Format { path, what } => UnetError::Format { detail: format!("{}: {what}", path.display()) },
            PersistError::Version { found, supported, .. } => UnetError::UnsupportedVersion { found, supported },
        }
    }
}

/// `InvalidParameter` with the value printed.
pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> UnetError {
    UnetError::InvalidParameter { name, value: value.to_string(), reason: reason.into() }
}

/// `ShapeMismatch`.
pub(crate) fn shape_err(op: &'static str, expected: impl std::fmt::Display, got: impl std::fmt::Display) -> UnetError {
    UnetError::ShapeMismatch { op, expected: expected.to_string(), got: got.to_string() }
}

/// Error unless every value is finite.
pub(crate) fn check_finite<T: latent_linalg::Real>(what: &'static str, data: &[T]) -> Result<()> {
    match data.iter().position(|v| !v.finite()) {
        Some(index) => Err(UnetError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Error unless `v` is finite and `> 0`.
pub(crate) fn check_pos(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(invalid(name, v, "must be finite and > 0")) }
}

/// Error unless `v` is finite and `>= 0`.
pub(crate) fn check_nonneg(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(invalid(name, v, "must be finite and >= 0")) }
}
