//! The crate's error type.

use latent_linalg::LinalgError;
use latent_optim::OptimError;
use std::path::PathBuf;

/// Everything that can go wrong in `latent-autoencoder`. Each variant names what and where.
#[derive(Debug, thiserror::Error)]
pub enum AutoencoderError {
    /// A hyperparameter or argument outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name (as in the builder).
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// The valid range.
        reason: &'static str,
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
    /// A NaN or infinity in data where finite numbers are needed.
    #[error("non-finite value in {what} at flat index {index}")]
    NonFiniteInput {
        /// Which operand holds the value.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// An empty data set or batch where at least one sample is needed.
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
    /// Training diverged: the loss (or a gradient or a parameter) became NaN or infinite.
    /// The model file at `last_good_checkpoint` (when checkpointing was on and one was written)
    /// holds the last finite state.
    #[error("training diverged at epoch {epoch}, step {step}: {what} = {value}{}", match last_good_checkpoint {
        Some(p) => format!(" (last good checkpoint: {})", p.display()),
        None => String::from(" (no checkpoint written yet)"),
    })]
    Diverged {
        /// Epoch (1-based) in which it happened.
        epoch: usize,
        /// Optimizer step (0-based, counted over the whole run) at which it happened.
        step: usize,
        /// What became non-finite (`"loss"`, `"gradient"`, `"parameters"`, `"validation loss"`).
        what: &'static str,
        /// The offending value (NaN or ±∞).
        value: f64,
        /// The last checkpoint written before the divergence, if any.
        last_good_checkpoint: Option<PathBuf>,
    },
    /// A file-system error.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A model file that is not one, is truncated or corrupt, or does not fit this build.
    #[error("bad model file: {detail}")]
    Format {
        /// What is wrong.
        detail: String,
    },
    /// A model file holding a custom layer whose kind the [`crate::LayerRegistry`] passed to the
    /// loader does not know (or a custom layer used before it was resolved).
    #[error("unknown custom layer kind {kind:?}: register its type in the LayerRegistry passed to load_with")]
    UnknownLayer {
        /// The kind tag found in the file.
        kind: String,
    },
    /// A model file written by a newer (or unknown) format version.
    #[error("unsupported model file version {found} (this build reads versions up to {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// An error from a `latent-linalg` kernel.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// An error from `latent-optim`.
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// The error of a model type defined in another crate (a [`crate::Trainable`] implemented
    /// outside `latent-autoencoder`), kept whole: reachable through [`std::error::Error::source`]
    /// and recoverable with `downcast_ref`.
    ///
    /// # Example
    /// ```
    /// use latent_autoencoder::AutoencoderError;
    /// let e = AutoencoderError::Model { model: "my model", source: "weights missing".into() };
    /// assert_eq!(e.to_string(), "my model failed: weights missing");
    /// ```
    #[error("{model} failed: {source}")]
    Model {
        /// Which model failed (a short name chosen by its implementation).
        model: &'static str,
        /// The model's own error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// A failed collective of data-parallel training (or ranks that disagree), as
/// [`AutoencoderError::Optim`] wrapping [`OptimError::Collective`].
impl From<latent_optim::collective::CommError> for AutoencoderError {
    fn from(e: latent_optim::collective::CommError) -> Self {
        AutoencoderError::Optim(OptimError::Collective(e))
    }
}

/// `Result` with [`AutoencoderError`].
pub type Result<T> = std::result::Result<T, AutoencoderError>;

/// `InvalidParameter` with the value printed.
pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: &'static str) -> AutoencoderError {
    AutoencoderError::InvalidParameter { name, value: value.to_string(), reason }
}

/// `ShapeMismatch`.
pub(crate) fn shape_err(
    op: &'static str,
    expected: impl std::fmt::Debug,
    got: impl std::fmt::Debug,
) -> AutoencoderError {
    AutoencoderError::ShapeMismatch { op, expected: format!("{expected:?}"), got: format!("{got:?}") }
}

/// `Format`.
pub(crate) fn format_err(detail: impl Into<String>) -> AutoencoderError {
    AutoencoderError::Format { detail: detail.into() }
}

/// Error unless every value is finite.
pub(crate) fn check_finite_data<T: latent_linalg::Real>(what: &'static str, data: &[T]) -> Result<()> {
    match data.iter().position(|v| !v.finite()) {
        Some(index) => Err(AutoencoderError::NonFiniteInput { what, index }),
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

/// Error unless `v` is in `[0, 1]`.
pub(crate) fn check_unit(name: &'static str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) { Ok(()) } else { Err(invalid(name, v, "must be in [0, 1]")) }
}
