//! Versioned, checksummed, atomically written model files — the one container format every
//! latent model and code file uses.
//!
//! Layout (little-endian): `magic (8 bytes) | version (u32) | payload length (u64) |
//! FNV-1a-64 checksum of the payload (u64) | payload (bincode 2, standard config)`.
//! The declared length is checked against the file length and the checksum before anything is
//! decoded. Inside the payload, serde sizes sequences (`Vec<T>`) cautiously (it preallocates at
//! most about 1 MiB and grows with the elements actually read), so a hostile element count costs
//! no more than the bytes present. bincode's own limit is a compile-time constant (2⁴⁰ bytes
//! here) and cannot follow each file's length, and bincode allocates a `String`'s buffer from its
//! declared length before reading it: payload types must therefore hold no strings (no model or
//! state file of latent does; the fuzz targets `model_files`, `unet_model`, `conv_coding_files`
//! and `training_state` guard this). Writes go to a temporary file in the same directory, are fsynced, and renamed over
//! the target, so a crash leaves either the old file or the new one.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};

const HEADER: usize = 8 + 4 + 8 + 8;

/// What can go wrong reading or writing a model file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a valid file of the expected kind.
    #[error("{path}: {what}")]
    Format {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A file written by a newer (or unknown) format version.
    #[error("{path}: format version {found} is newer than the newest this build reads ({supported})")]
    Version {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Newest version supported.
        supported: u32,
    },
}

/// FNV-1a 64-bit hash.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Serialize `value` into the container format.
///
/// # Errors
/// [`PersistError::Format`] when serialization fails.
pub fn to_bytes<T: Serialize>(magic: [u8; 8], version: u32, value: &T) -> Result<Vec<u8>, PersistError> {
    let payload = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| PersistError::Format { path: "<memory>".into(), what: format!("cannot serialize: {e}") })?;
    Ok(wrap_payload(magic, version, &payload))
}

/// The container around an already encoded payload: header (magic, version, length, checksum)
/// followed by the payload. Fuzz targets use it to feed arbitrary payloads past the header checks.
pub fn wrap_payload(magic: [u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Parse the container format, checking magic, version (≤ `newest`), length and checksum before
/// decoding. Returns the file's version and the value.
///
/// # Errors
/// [`PersistError::Format`] for a wrong magic, truncated or oversized file, checksum mismatch or
/// undecodable payload; [`PersistError::Version`] for a newer version.
pub fn from_bytes<T: DeserializeOwned>(
    bytes: &[u8],
    magic: [u8; 8],
    newest: u32,
    path: &Path,
) -> Result<(u32, T), PersistError> {
    let fmt = |what: String| PersistError::Format { path: path.to_path_buf(), what };
    if bytes.len() < HEADER {
        return Err(fmt(format!("file is {} bytes, shorter than the {HEADER}-byte header", bytes.len())));
    }
    if bytes[..8] != magic {
        return Err(fmt(format!(
            "wrong magic {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes[..8]),
            String::from_utf8_lossy(&magic)
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version == 0 {
        return Err(fmt("format version 0 is not valid".into()));
    }
    if version > newest {
        return Err(PersistError::Version { path: path.to_path_buf(), found: version, supported: newest });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
    let sum = u64::from_le_bytes(bytes[20..28].try_into().unwrap_or_default());
    let payload = &bytes[HEADER..];
    if len != payload.len() as u64 {
        return Err(fmt(format!("header declares a {len}-byte payload but {} bytes follow", payload.len())));
    }
    if fnv1a64(payload) != sum {
        return Err(fmt("checksum mismatch: the file is corrupt".into()));
    }
    let cfg = bincode::config::standard().with_limit::<{ 1 << 40 }>();
    let (value, used): (T, usize) =
        bincode::serde::decode_from_slice(payload, cfg).map_err(|e| fmt(format!("cannot decode payload: {e}")))?;
    if used != payload.len() {
        return Err(fmt(format!("{} trailing bytes after the payload", payload.len() - used)));
    }
    Ok((version, value))
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory.
///
/// # Errors
/// [`PersistError::Io`] naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let io = |source| PersistError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        path.file_name().ok_or_else(|| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name")))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            // directory fsync makes the rename durable; not every platform supports it
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Serialize and write atomically.
///
/// # Errors
/// As [`to_bytes`] and [`write_atomic`].
pub fn save<T: Serialize>(path: &Path, magic: [u8; 8], version: u32, value: &T) -> Result<(), PersistError> {
    write_atomic(path, &to_bytes(magic, version, value)?)
}

/// Read and parse a file written by [`save`].
///
/// # Errors
/// As [`from_bytes`], and [`PersistError::Io`] when the file cannot be read.
pub fn load<T: DeserializeOwned>(path: &Path, magic: [u8; 8], newest: u32) -> Result<(u32, T), PersistError> {
    let bytes = std::fs::read(path).map_err(|source| PersistError::Io { path: path.to_path_buf(), source })?;
    from_bytes(&bytes, magic, newest, path)
}
