//! Model files in the shared `latent_linalg::persist` container: magic, format version, payload
//! length, FNV-1a checksum, then the model serialised with serde + bincode 2
//! (`config::standard()`), written atomically (temporary file in the same directory, `fsync`,
//! rename).
//!
//! The magic names the scalar type (`LTAE-f32` or `LTAE-f64`), so an `f64` file never loads as
//! `f32`. Loading checks magic, version, the declared length against the actual byte count and
//! the checksum before decoding (nothing is allocated from an untrusted size), then validates
//! every layer's shapes and the model's input → code → output shapes. Every failure is a typed
//! error: [`AutoencoderError::Format`], [`AutoencoderError::UnsupportedVersion`],
//! [`AutoencoderError::UnknownLayer`] or [`AutoencoderError::Io`].
//!
//! A layer defined outside this crate ([`crate::custom::CustomLayer`]) is stored as its kind tag
//! and its own serialised payload; [`from_bytes_with`] and [`Autoencoder::load_with`] decode it
//! with the type a [`LayerRegistry`] names for the tag. Models of built-in layers only are
//! written exactly as before custom layers existed (format version 1 throughout).

use crate::custom::LayerRegistry;
use crate::error::{AutoencoderError, Result, format_err};
use crate::model::Autoencoder;
use latent_linalg::Real;
use latent_linalg::persist::{self, PersistError};
use std::path::Path;

/// Newest format version written and read by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Largest model file [`Autoencoder::load`] reads (2 GiB).
pub const MAX_FILE_LEN: u64 = 1 << 31;

/// The file magic for scalar type `T`.
pub fn magic<T: Real>() -> [u8; 8] {
    let mut m = *b"LTAE-f00";
    m[5..8].copy_from_slice(&T::NAME.as_bytes()[..3.min(T::NAME.len())]);
    m
}

impl From<PersistError> for AutoencoderError {
    fn from(e: PersistError) -> Self {
        match e {
            PersistError::Io { path, source } => AutoencoderError::Io { path, source },
            PersistError::Format { path, what } => {
                AutoencoderError::Format { detail: format!("{}: {what}", path.display()) }
            }
            PersistError::Version { found, supported, .. } => AutoencoderError::UnsupportedVersion { found, supported },
        }
    }
}

/// Serialise a model to bytes.
///
/// # Errors
/// [`AutoencoderError::Format`] when encoding fails.
pub fn to_bytes<T: Real>(model: &Autoencoder<T>) -> Result<Vec<u8>> {
    Ok(persist::to_bytes(magic::<T>(), FORMAT_VERSION, model)?)
}

/// Deserialise a model of built-in layers from bytes written by [`to_bytes`], with full
/// validation (for models with custom layers see [`from_bytes_with`]).
///
/// # Errors
/// [`AutoencoderError::Format`] for a wrong magic (including another scalar type), a truncated
/// or corrupt file or inconsistent shapes; [`AutoencoderError::UnsupportedVersion`] for a newer
/// version; [`AutoencoderError::UnknownLayer`] for a model holding a custom layer.
pub fn from_bytes<T: Real>(bytes: &[u8]) -> Result<Autoencoder<T>> {
    from_bytes_with(bytes, &LayerRegistry::new())
}

/// Deserialise a model from bytes written by [`to_bytes`], decoding its custom layers with the
/// types `registry` names, with full validation.
///
/// # Errors
/// As [`from_bytes`]; [`AutoencoderError::UnknownLayer`] naming the first custom layer kind the
/// registry does not know; [`AutoencoderError::Format`] when a custom layer's payload does not
/// decode or fails its [`validate`](crate::custom::CustomLayer::validate).
pub fn from_bytes_with<T: Real>(bytes: &[u8], registry: &LayerRegistry<T>) -> Result<Autoencoder<T>> {
    decode(bytes, registry, None)
}

/// Decode and validate; `file` (when the bytes come from one) is named in every
/// [`AutoencoderError::Format`] message instead of `<memory>`.
fn decode<T: Real>(bytes: &[u8], registry: &LayerRegistry<T>, file: Option<&Path>) -> Result<Autoencoder<T>> {
    let (_version, mut model): (u32, Autoencoder<T>) =
        persist::from_bytes(bytes, magic::<T>(), FORMAT_VERSION, file.unwrap_or(Path::new("<memory>")))?;
    model.resolve(registry).and_then(|()| model.validate()).map_err(|e| in_file(file, e))?;
    Ok(model)
}

/// Prefix a [`AutoencoderError::Format`] detail with the file it is about.
pub(crate) fn in_file(file: Option<&Path>, e: AutoencoderError) -> AutoencoderError {
    match (file, e) {
        (Some(path), AutoencoderError::Format { detail }) => format_err(format!("{}: {detail}", path.display())),
        (_, e) => e,
    }
}

/// Write `bytes` to `path` atomically (see `latent_linalg::persist::write_atomic`).
///
/// # Errors
/// [`AutoencoderError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(persist::write_atomic(path, bytes)?)
}

impl<T: Real> Autoencoder<T> {
    /// Serialise to bytes (see the [module docs](crate::io) for the format).
    ///
    /// # Errors
    /// [`AutoencoderError::Format`] when encoding fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_bytes(self)
    }

    /// Deserialise a model of built-in layers from bytes, with full validation.
    ///
    /// # Errors
    /// As [`from_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        from_bytes(bytes)
    }

    /// Deserialise from bytes, decoding custom layers with `registry`, with full validation.
    ///
    /// # Errors
    /// As [`from_bytes_with`].
    pub fn from_bytes_with(bytes: &[u8], registry: &LayerRegistry<T>) -> Result<Self> {
        from_bytes_with(bytes, registry)
    }

    /// Save to `path` atomically.
    ///
    /// # Errors
    /// [`AutoencoderError::Io`] or [`AutoencoderError::Format`].
    ///
    /// # Example
    /// ```
    /// use latent_autoencoder::{Autoencoder, ParamGuard, models::LinearAeParams};
    /// use latent_linalg::Tensor4;
    /// let model: Autoencoder<f64> = LinearAeParams::new(4, 2).check()?.build()?;
    /// let path = std::env::temp_dir().join(format!("latent-ae-doc-{}.bin", std::process::id()));
    /// model.save(&path)?;
    /// let back = latent_autoencoder::Autoencoder::<f64>::load(&path)?;
    /// let x = Tensor4::from_fn([3, 4, 1, 1], |[n, c, ..]| (n * 4 + c) as f64)?;
    /// assert_eq!(model.reconstruct(&x)?, back.reconstruct(&x)?);
    /// std::fs::remove_file(&path).ok();
    /// # Ok::<(), latent_autoencoder::AutoencoderError>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Load a model of built-in layers from `path` (for custom layers see
    /// [`Autoencoder::load_with`]).
    ///
    /// # Errors
    /// [`AutoencoderError::Io`] when the file cannot be read; otherwise as [`from_bytes`], with
    /// the file's path in every [`AutoencoderError::Format`] message.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(path, &LayerRegistry::new())
    }

    /// Load from `path`, decoding custom layers with the types `registry` names.
    ///
    /// # Errors
    /// [`AutoencoderError::Io`] when the file cannot be read; otherwise as [`from_bytes_with`],
    /// with the file's path in every [`AutoencoderError::Format`] message.
    pub fn load_with(path: impl AsRef<Path>, registry: &LayerRegistry<T>) -> Result<Self> {
        let path = path.as_ref();
        let meta =
            std::fs::metadata(path).map_err(|source| AutoencoderError::Io { path: path.to_path_buf(), source })?;
        if meta.len() > MAX_FILE_LEN {
            return Err(format_err(format!("{} is {} bytes, larger than any model file", path.display(), meta.len())));
        }
        let bytes = std::fs::read(path).map_err(|source| AutoencoderError::Io { path: path.to_path_buf(), source })?;
        decode(&bytes, registry, Some(path))
    }
}
