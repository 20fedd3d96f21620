//! The crate's error type.

#[cfg(feature = "autoencoder")]
use latent_autoencoder::AutoencoderError;
use latent_datasets::DatasetError;
use latent_linalg::LinalgError;
#[cfg(feature = "sparse-coding")]
use latent_sparse_coding::SparseCodingError;

/// Everything that can go wrong in `latent-anomaly`. Each variant says what and where.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    /// A parameter or argument outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name (as in the builder).
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// The valid range.
        reason: String,
    },
    /// Two inputs that must have the same length do not.
    #[error("length mismatch in {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// Length of the reference input.
        expected: usize,
        /// Length of the other input.
        got: usize,
    },
    /// Inputs whose shapes do not fit together.
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
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which input holds the value.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// An empty input where at least one element is needed.
    #[error("empty input: {what}")]
    Empty {
        /// Which input is empty.
        what: &'static str,
    },
    /// Ground truth with a single class: the metric is undefined.
    #[error("{metric} needs both normal and anomalous ground truth, but all {count} labels are {}", if *anomalous { "anomalous" } else { "normal" })]
    SingleClass {
        /// The metric that was asked for.
        metric: &'static str,
        /// Number of labels.
        count: usize,
        /// The one class present (`true`: all anomalous).
        anomalous: bool,
    },
    /// A reconstructor defined outside this crate failed (see
    /// [`crate::Reconstructor`]): `source` is the model's own typed error, kept as the
    /// [`std::error::Error::source`] and recoverable with `downcast_ref`. Build it with
    /// [`AnomalyError::reconstructor`].
    #[error("reconstruction by {model} failed: {source}")]
    Reconstructor {
        /// Which model failed (a short name chosen by its implementation).
        model: &'static str,
        /// The model's own error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// An error from the autoencoder crate (models, training); with the `autoencoder` feature.
    #[cfg(feature = "autoencoder")]
    #[error(transparent)]
    Autoencoder(#[from] AutoencoderError),
    /// An error from the sparse-coding crate (dictionary learning, encoders); with the
    /// `sparse-coding` feature.
    #[cfg(feature = "sparse-coding")]
    #[error(transparent)]
    SparseCoding(#[from] SparseCodingError),
    /// An error from the convolutional-sparse-coding crate; with the `conv-coding` feature.
    #[cfg(feature = "conv-coding")]
    #[error(transparent)]
    ConvCoding(#[from] latent_conv_coding::ConvCodingError),
    /// An error from the datasets crate (MVTec layout, PNG files).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// An error from a `latent-linalg` kernel.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
}

impl AnomalyError {
    /// The failure of a reconstructor defined outside this crate: `source` (any error type, or a
    /// message) is kept as the error's source.
    ///
    /// # Example
    /// ```
    /// use latent_anomaly::AnomalyError;
    /// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "weights.bin");
    /// let e = AnomalyError::reconstructor("my model", io);
    /// let source = std::error::Error::source(&e).unwrap();
    /// assert_eq!(source.downcast_ref::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::NotFound);
    /// assert_eq!(e.to_string(), "reconstruction by my model failed: weights.bin");
    /// ```
    pub fn reconstructor(model: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AnomalyError::Reconstructor { model, source: source.into() }
    }
}

/// `Result` with [`AnomalyError`].
pub type Result<T> = std::result::Result<T, AnomalyError>;

/// `InvalidParameter` with the value printed.
pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> AnomalyError {
    AnomalyError::InvalidParameter { name, value: value.to_string(), reason: reason.into() }
}

/// `ShapeMismatch`.
pub(crate) fn shape_err(op: &'static str, expected: impl std::fmt::Debug, got: impl std::fmt::Debug) -> AnomalyError {
    AnomalyError::ShapeMismatch { op, expected: format!("{expected:?}"), got: format!("{got:?}") }
}

/// Error unless both lengths agree.
pub(crate) fn same_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got { Ok(()) } else { Err(AnomalyError::LengthMismatch { what, expected, got }) }
}

/// Error unless every value is finite.
pub(crate) fn check_finite<T: latent_linalg::Real>(what: &'static str, data: &[T]) -> Result<()> {
    match data.iter().position(|v| !v.finite()) {
        Some(index) => Err(AnomalyError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Error unless `v` is finite and `> 0`.
pub(crate) fn check_pos(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(invalid(name, v, "must be finite and > 0")) }
}

#[cfg(feature = "autoencoder")]
/// Convert an error of this crate into the autoencoder crate's error type, for the
/// [`latent_autoencoder::Trainable`] methods of [`crate::SsimAutoencoder`] (their signature is
/// fixed by `latent-autoencoder`). Errors with an exact counterpart (same fields) map to it; any
/// other is kept whole as [`AutoencoderError::Model`], so its variant survives
/// (`downcast_ref::<AnomalyError>`).
pub(crate) fn to_ae(model: &'static str, e: AnomalyError) -> AutoencoderError {
    match e {
        AnomalyError::Autoencoder(e) => e,
        AnomalyError::NonFinite { what, index } => AutoencoderError::NonFiniteInput { what, index },
        AnomalyError::Empty { what } => AutoencoderError::Empty { what },
        AnomalyError::ShapeMismatch { op, expected, got } => AutoencoderError::ShapeMismatch { op, expected, got },
        AnomalyError::Linalg(e) => AutoencoderError::Linalg(e),
        other => AutoencoderError::Model { model, source: Box::new(other) },
    }
}
