//! The crate's error type.

/// Everything that can go wrong in `latent-linalg`: each variant says what and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinalgError {
    /// Two operands whose shapes do not fit together.
    #[error("shape mismatch in {op}: {detail}")]
    ShapeMismatch {
        /// The operation that was called.
        op: &'static str,
        /// The shapes that disagree.
        detail: String,
    },
    /// An operand with no elements where at least one is needed.
    #[error("empty input in {op}: {what}")]
    Empty {
        /// The operation that was called.
        op: &'static str,
        /// Which operand is empty.
        what: &'static str,
    },
    /// A NaN or infinity where the kernel needs finite numbers.
    #[error("non-finite value in {op}: {what} at flat index {index}")]
    NonFinite {
        /// The operation that was called.
        op: &'static str,
        /// Which operand holds the value.
        what: &'static str,
        /// Flat (storage-order) index of the first offending element.
        index: usize,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter {name} = {value} in {op}: {reason}")]
    InvalidParameter {
        /// The operation that was called.
        op: &'static str,
        /// Parameter name.
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What the valid range is.
        reason: &'static str,
    },
}

/// `Result` with [`LinalgError`].
pub type Result<T> = std::result::Result<T, LinalgError>;

pub(crate) fn mismatch(op: &'static str, detail: String) -> LinalgError {
    LinalgError::ShapeMismatch { op, detail }
}
