//! Where the repository's offline data lives.
//!
//! The data folder is `LATENT_DATA_DIR` when that environment variable is set (and non-empty),
//! otherwise the `data/` folder at the root of the workspace this crate was built from.
//! Nothing is ever fetched at run time.

use crate::error::{DatasetError, Result};
use std::path::{Path, PathBuf};

/// Name of the environment variable that overrides the data folder.
pub const DATA_DIR_ENV: &str = "LATENT_DATA_DIR";

/// Sub-folder of the small MNIST set used by tests (2,000 train / 1,000 test).
pub const MNIST_SMALL: &str = "mnist-2k-1k";
/// Sub-folder of the default MNIST set (10,000 train / 10,000 test).
pub const MNIST_DEFAULT: &str = "mnist-10k-10k";
/// Sub-folder of the default Fashion-MNIST set (10,000 train / 10,000 test).
pub const FASHION_MNIST_DEFAULT: &str = "fashion-mnist-10k-10k";
/// Sub-folder of the natural grayscale images and textures.
pub const NATURAL_GRAY: &str = "natural-gray";
/// Sub-folder of the cell segmentation data.
pub const CELLS: &str = "cells";

/// The layout the data folder is expected to have, for error messages.
pub const DATA_LAYOUT: &str = "data/{mnist-2k-1k,mnist-10k-10k,fashion-mnist-10k-10k}/\
{train-images-idx3-ubyte,train-labels-idx1-ubyte,t10k-images-idx3-ubyte,t10k-labels-idx1-ubyte}.gz, \
data/natural-gray/*.png, data/cells/dsb2018_{img,instances,mask,borders}.png \
(see data/README.md; set LATENT_DATA_DIR to use another folder)";

/// The repository's data folder.
///
/// `LATENT_DATA_DIR` if set and non-empty, else `<workspace>/data` (resolved at compile time
/// from this crate's manifest directory). The folder is not checked for existence here; use
/// [`data_file`] to resolve a file with a clear error.
///
/// # Example
/// ```
/// let dir = latent_datasets::data_dir();
/// assert!(dir.ends_with("data") || std::env::var_os("LATENT_DATA_DIR").is_some());
/// ```
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data")),
    }
}

/// A file (or folder) inside [`data_dir`], checked to exist.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `rel` | path relative to the data folder, e.g. `"cells/dsb2018_img.png"` |
///
/// # Errors
/// [`DatasetError::Missing`] naming the full expected path and the expected data layout.
///
/// # Example
/// ```
/// let p = latent_datasets::data_file("cells/dsb2018_img.png")?;
/// assert!(p.is_file());
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn data_file(rel: &str) -> Result<PathBuf> {
    let p = data_dir().join(rel);
    if p.exists() {
        Ok(p)
    } else {
        Err(DatasetError::Missing { path: p, expected: format!("expected layout: {DATA_LAYOUT}") })
    }
}

/// Check that `path` is an existing folder.
pub(crate) fn require_dir(path: &Path, what: &str) -> Result<()> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(DatasetError::Missing { path: path.to_path_buf(), expected: format!("a folder holding {what}") })
    }
}

/// Sorted listing of the regular files in `dir` whose extension (case-insensitive) is `ext`.
pub(crate) fn list_files_with_ext(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| crate::error::io_err(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| crate::error::io_err(dir, e))?;
        let p = entry.path();
        let is_file = entry.file_type().map_err(|e| crate::error::io_err(&p, e))?.is_file() || p.is_file();
        let matches = p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if is_file && matches {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
