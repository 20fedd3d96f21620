//! The crate's error type: every variant names the file (or parameter) and what is wrong.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading, writing or generating data.
///
/// File-related variants carry the path of the offending file. Data read from memory
/// (e.g. [`crate::idx::read_idx_bytes`]) is reported under the name the caller passed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The operating system refused to open, read, write or list a path.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An expected file or folder is not there.
    #[error("missing {path}: {expected}")]
    Missing {
        /// The path that was looked for.
        path: PathBuf,
        /// What should be there, and the expected layout.
        expected: String,
    },
    /// The bytes do not follow the file format (bad magic, bad header, bad value, ...).
    #[error("invalid format in {path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The file ends before the amount of data its header announces.
    #[error("truncated {path}: {what}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        what: String,
    },
    /// A compressed stream is corrupt (bad deflate data, bad checksum, early end).
    #[error("corrupt compressed stream in {path}: {what}")]
    Compression {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        what: String,
    },
    /// A header claims more data than the reader allows (never allocated).
    #[error("{path}: header claims {claimed} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Bytes the header claims (saturated at `u64::MAX`).
        claimed: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A valid file whose element type or layout this crate does not handle.
    #[error("unsupported content in {path}: {what}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported, and what is.
        what: String,
    },
    /// Two files (or a file and an expectation) disagree: counts, shapes, element types.
    #[error("mismatch in {path}: {what}")]
    Mismatch {
        /// The file (the second of a pair).
        path: PathBuf,
        /// What disagrees.
        what: String,
    },
    /// An image and its mask (or two images that must match) differ in size.
    #[error("size mismatch in {path}: expected {expected_w}x{expected_h}, got {actual_w}x{actual_h}")]
    SizeMismatch {
        /// The file with the unexpected size.
        path: PathBuf,
        /// Expected width.
        expected_w: usize,
        /// Expected height.
        expected_h: usize,
        /// Actual width.
        actual_w: usize,
        /// Actual height.
        actual_h: usize,
    },
    /// An MVTec-style defect image without its ground-truth mask.
    #[error("missing ground-truth mask for {image}: expected {expected}")]
    MissingMask {
        /// The test image.
        image: PathBuf,
        /// The mask path that should exist.
        expected: PathBuf,
    },
    /// An MVTec-style ground-truth mask without a matching test image.
    #[error("orphan ground-truth mask {mask}: no test image {expected_image}")]
    OrphanMask {
        /// The mask.
        mask: PathBuf,
        /// The test image it should belong to.
        expected_image: PathBuf,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The rejected value, printed.
        value: String,
        /// What the valid range is.
        reason: String,
    },
    /// An index past the end of a data set.
    #[error("index {index} out of range for a data set of length {len}")]
    OutOfRange {
        /// The requested index.
        index: usize,
        /// The data set's length.
        len: usize,
    },
    /// A linear-algebra error (e.g. a shape that does not fit a matrix).
    #[error(transparent)]
    Linalg(#[from] latent_linalg::LinalgError),
}

/// `Result` with [`DatasetError`].
pub type Result<T> = std::result::Result<T, DatasetError>;

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> DatasetError {
    DatasetError::Io { path: path.to_path_buf(), source }
}

pub(crate) fn format_err(path: &Path, what: impl Into<String>) -> DatasetError {
    DatasetError::Format { path: path.to_path_buf(), what: what.into() }
}

pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> DatasetError {
    DatasetError::InvalidParameter { name, value: value.to_string(), reason: reason.into() }
}
