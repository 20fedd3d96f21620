//! The crate's error type.

use latent_linalg::LinalgError;

/// Everything that can go wrong in `latent-optim`. Every variant names the operation (`op`) and
/// the offending operand or parameter, so a message points at the cause.
///
/// NaN or infinite *inputs* are reported through the shared `latent-linalg` check, as
/// `OptimError::Linalg(LinalgError::NonFinite { op, what, index })`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A hyperparameter or argument outside its valid range.
    #[error("invalid parameter {name} = {value} in {op}: {reason}")]
    InvalidParameter {
        /// The operation or builder that rejected it.
        op: &'static str,
        /// Parameter name.
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// The valid range.
        reason: &'static str,
    },
    /// Two operands whose lengths do not fit together.
    #[error("length mismatch in {op}: {what} has length {got}, expected {expected}")]
    LengthMismatch {
        /// The operation that was called.
        op: &'static str,
        /// Which operand has the wrong length.
        what: &'static str,
        /// The length that was needed.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// An operand with no elements where at least one is needed.
    #[error("empty input in {op}: {what}")]
    Empty {
        /// The operation that was called.
        op: &'static str,
        /// Which operand is empty.
        what: &'static str,
    },
    /// The objective (or a function under test) returned NaN or infinity.
    #[error("non-finite objective in {op} at iteration {iteration}: {value}")]
    NonFiniteObjective {
        /// The operation that was running.
        op: &'static str,
        /// Iteration (or evaluation) at which it happened.
        iteration: usize,
        /// The value returned.
        value: f64,
    },
    /// Backtracking could not find a step satisfying the sufficient-decrease condition.
    #[error(
        "line search failed in {op} at iteration {iteration}: step shrank to {step:e} after {backtracks} reductions"
    )]
    LineSearchFailed {
        /// The solver that was running.
        op: &'static str,
        /// Iteration at which the search gave up.
        iteration: usize,
        /// The last step tried.
        step: f64,
        /// Number of reductions tried in this iteration.
        backtracks: usize,
    },
    /// A group structure that is not a set of disjoint, non-empty index lists, or that does not
    /// fit the vector it is applied to.
    #[error("invalid groups in {op}: {detail}")]
    InvalidGroups {
        /// The operation that was called.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An error from a `latent-linalg` kernel.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// A collective operation of data-parallel learning failed, or the ranks disagree.
    #[error(transparent)]
    Collective(#[from] crate::collective::CommError),
}

/// `Result` with [`OptimError`].
pub type Result<T> = std::result::Result<T, OptimError>;

/// `InvalidParameter` with the value printed.
pub(crate) fn invalid(
    op: &'static str,
    name: &'static str,
    value: impl std::fmt::Display,
    reason: &'static str,
) -> OptimError {
    OptimError::InvalidParameter { op, name, value: value.to_string(), reason }
}

/// Error unless `got == expected`.
pub(crate) fn check_len(op: &'static str, what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got == expected { Ok(()) } else { Err(OptimError::LengthMismatch { op, what, expected, got }) }
}

/// Error unless `v` is finite and `>= 0`.
pub(crate) fn check_nonneg(op: &'static str, name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(invalid(op, name, v, "must be finite and >= 0")) }
}

/// Error unless `v` is finite and `> 0`.
pub(crate) fn check_pos(op: &'static str, name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(invalid(op, name, v, "must be finite and > 0")) }
}
