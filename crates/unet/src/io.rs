//! Model files in the shared `latent_linalg::persist` container: magic (`LTUN-f32` or
//! `LTUN-f64`, so a file never loads as the other scalar type), format version, payload length,
//! FNV-1a checksum, then the network (architecture and weights) serialised with serde + bincode,
//! written atomically. Loading checks all of these before decoding, then validates that the
//! layers have exactly the shapes the stored architecture prescribes.

use crate::error::{Result, UnetError};
use crate::model::UNet;
use latent_linalg::Real;
use latent_linalg::persist;
use std::path::Path;

/// Newest format version written and read by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Largest model file [`UNet::load`] reads (2 GiB).
pub const MAX_FILE_LEN: u64 = 1 << 31;

/// The file magic for scalar type `T`.
pub fn magic<T: Real>() -> [u8; 8] {
    let mut m = *b"LTUN-f00";
    m[5..8].copy_from_slice(&T::NAME.as_bytes()[..3.min(T::NAME.len())]);
    m
}

impl<T: Real> UNet<T> {
    /// Serialise to bytes (see the [module docs](crate::io)).
    ///
    /// # Errors
    /// [`UnetError::Format`] when encoding fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(persist::to_bytes(magic::<T>(), FORMAT_VERSION, self)?)
    }

    /// Deserialise from bytes written by [`UNet::to_bytes`], with full validation.
    ///
    /// # Errors
    /// [`UnetError::Format`] for a wrong magic (including the other scalar type), a truncated or
    /// corrupt file or inconsistent layers; [`UnetError::UnsupportedVersion`] for a newer version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (_v, model): (u32, UNet<T>) =
            persist::from_bytes(bytes, magic::<T>(), FORMAT_VERSION, Path::new("<memory>"))?;
        model.validate()?;
        Ok(model)
    }

    /// Save to `path` atomically.
    ///
    /// # Errors
    /// [`UnetError::Io`] or [`UnetError::Format`].
    ///
    /// # Example
    /// ```
    /// use latent_linalg::Tensor4;
    /// use latent_unet::{UNet, UnetParams};
    /// let net = UNet::<f32>::new(&UnetParams::new().depth(2).base_channels(4).seed(3).check()?)?;
    /// let path = std::env::temp_dir().join(format!("latent-unet-doc-{}.bin", std::process::id()));
    /// net.save(&path)?;
    /// let back = UNet::<f32>::load(&path)?;
    /// let x = Tensor4::from_fn([1, 1, 16, 16], |[_, _, i, j]| (i * j % 7) as f32)?;
    /// assert_eq!(net.predict(&x)?, back.predict(&x)?);
    /// std::fs::remove_file(&path).ok();
    /// # Ok::<(), latent_unet::UnetError>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        Ok(persist::write_atomic(path.as_ref(), &self.to_bytes()?)?)
    }

    /// Load from `path`.
    ///
    /// # Errors
    /// [`UnetError::Io`] when the file cannot be read; otherwise as [`UNet::from_bytes`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| UnetError::Io { path: path.to_path_buf(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_FILE_LEN {
            return Err(UnetError::Format {
                detail: format!("{} is {} bytes, larger than any model file", path.display(), meta.len()),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(&bytes)
    }
}
