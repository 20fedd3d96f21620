//! Where the offline data lives, resolved at run time.
//!
//! The data folder is, in this order:
//!
//! 1. the folder named by the `LATENT_DATA_DIR` environment variable, when it is set and
//!    non-empty (it must then exist: a wrong value is an error, never silently replaced);
//! 2. the `data/` folder of the latent repository this crate was built from, when it is there
//!    at run time (recognised by its `MANIFEST.json`) — the case of the workspace itself and of
//!    a project that depends on a clone of latent by path.
//!
//! A crate downloaded from a registry has no repository around it: point `LATENT_DATA_DIR` at a
//! copy of the repository's `data/` folder (or at any folder with the same layout, see
//! [`DATA_LAYOUT`]). When neither place holds a data folder, [`find_data_dir`], [`data_file`]
//! and every loader that reads the shipped data (`Mnist::load_small`, `load_default`,
//! `CellSample::load_dsb2018`, `anomaly::load_texture`) return [`DatasetError::Missing`]
//! naming every place looked at and how to set `LATENT_DATA_DIR`; nothing panics and nothing is
//! ever fetched. Loaders that take a path (`Mnist::from_dir`, `read_png`, ...) do not look
//! anywhere else.

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

/// The `data/` folder of the repository this crate was compiled in (it may not exist at run
/// time, e.g. for a crate unpacked from a registry).
fn repository_data_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `<repository>/crates/datasets` → `<repository>/data`, spelled without `..`
    manifest.parent().and_then(Path::parent).map_or_else(|| manifest.join("../../data"), |repo| repo.join("data"))
}

/// Whether `dir` is latent's data folder (it carries the data manifest).
fn is_repository_data(dir: &Path) -> bool {
    dir.join("MANIFEST.json").is_file()
}

/// The data folder (see the [module docs](self) for where it is looked for).
///
/// | source | used when |
/// |---|---|
/// | `LATENT_DATA_DIR` | set and non-empty; it must be an existing folder |
/// | `<latent repository>/data` | present at run time (holds `MANIFEST.json`) |
///
/// # Errors
/// [`DatasetError::Missing`] when `LATENT_DATA_DIR` names no folder, or when it is unset and
/// there is no repository data folder: the message lists every place looked at and says how to
/// set `LATENT_DATA_DIR`.
///
/// # Example
/// ```
/// match latent_datasets::find_data_dir() {
///     Ok(dir) => assert!(dir.is_dir()),
///     // e.g. outside a latent checkout without LATENT_DATA_DIR
///     Err(e) => assert!(e.to_string().contains("LATENT_DATA_DIR")),
/// }
/// ```
pub fn find_data_dir() -> Result<PathBuf> {
    let repo = repository_data_dir();
    match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => {
            let dir = PathBuf::from(v);
            if dir.is_dir() {
                Ok(dir)
            } else {
                Err(DatasetError::Missing {
                    expected: format!(
                        "{DATA_DIR_ENV} is set to {}, which is not a folder (looked only there: the variable \
                         overrides the repository's data folder); set {DATA_DIR_ENV} to a folder laid out as {DATA_LAYOUT}, \
                         or unset it to use the data/ folder of a latent checkout",
                        dir.display()
                    ),
                    path: dir,
                })
            }
        }
        _ if is_repository_data(&repo) => Ok(repo),
        _ => Err(DatasetError::Missing {
            expected: format!(
                "no data folder found; looked in (1) the environment variable {DATA_DIR_ENV}: not set, \
                 (2) the data/ folder of the latent repository this crate was built from, {}: not there \
                 (a crate from a registry has none). Point {DATA_DIR_ENV} at a copy of the repository's \
                 data/ folder, e.g. `export {DATA_DIR_ENV}=/path/to/latent/data`; expected layout: {DATA_LAYOUT}",
                repo.display()
            ),
            path: repo,
        }),
    }
}

/// The data folder, or where it would be: [`find_data_dir`] when it finds one, else the value
/// of `LATENT_DATA_DIR` (when set) or the repository's `data/` path, which then does not exist.
/// Loaders built on it report a missing file under that path; prefer [`find_data_dir`] or
/// [`data_file`], whose errors say where they looked and how to set `LATENT_DATA_DIR`.
///
/// # Example
/// ```
/// let dir = latent_datasets::data_dir();
/// assert!(dir.ends_with("data") || std::env::var_os("LATENT_DATA_DIR").is_some());
/// ```
pub fn data_dir() -> PathBuf {
    find_data_dir().unwrap_or_else(|_| match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => repository_data_dir(),
    })
}

/// A file (or folder) inside the data folder ([`find_data_dir`]), checked to exist.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `rel` | path relative to the data folder, e.g. `"cells/dsb2018_img.png"` |
///
/// # Errors
/// [`DatasetError::Missing`]: from [`find_data_dir`] when there is no data folder (naming every
/// place looked at), else naming the full expected path, the data folder in use and the
/// expected layout.
///
/// # Example
/// ```
/// let p = latent_datasets::data_file("cells/dsb2018_img.png")?;
/// assert!(p.is_file());
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn data_file(rel: &str) -> Result<PathBuf> {
    let dir = find_data_dir()?;
    let p = dir.join(rel);
    if p.exists() {
        Ok(p)
    } else {
        let from = match std::env::var_os(DATA_DIR_ENV) {
            Some(v) if !v.is_empty() => format!("from {DATA_DIR_ENV}"),
            _ => format!("the repository's; set {DATA_DIR_ENV} to use another"),
        };
        Err(DatasetError::Missing {
            path: p,
            expected: format!("data folder {} ({from}); expected layout: {DATA_LAYOUT}", dir.display()),
        })
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
