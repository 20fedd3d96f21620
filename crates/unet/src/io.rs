//! Model files in the shared `latent_linalg::persist` container: magic (`LTUN-f32` or
//! `LTUN-f64`, so a file never loads as the other scalar type), format version, payload length,
//! FNV-1a checksum, then the network (architecture and weights) serialised with serde + bincode,
//! written atomically. Loading checks all of these before decoding, then validates that the
//! layers have exactly the shapes the stored architecture prescribes.

use crate::error::{Result, UnetError};
use crate::model::UNet;
use crate::params::UnetParams;
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

/// Trainable values of the network `p.check()?.build()` builds (without allocating it);
/// `None` on overflow.
fn param_count(p: &UnetParams) -> Option<usize> {
    let conv = |i: usize, o: usize, k: usize| i.checked_mul(o)?.checked_mul(k * k);
    // two 3×3 convolutions; each with a bias, or (batch norm) without one but with γ and β
    let block = |i: usize, o: usize| {
        let extra = if p.batch_norm { 4 } else { 2 };
        conv(i, o, 3)?.checked_add(conv(o, o, 3)?)?.checked_add(o.checked_mul(extra)?)
    };
    let ch = |l: usize| {
        if l < usize::BITS as usize { p.base_channels.checked_mul(1usize.checked_shl(l as u32)?) } else { None }
    };
    let d = p.depth.checked_sub(1)?;
    let mut total = 0usize;
    let mut cin = p.in_channels;
    for l in 0..d {
        total = total.checked_add(block(cin, ch(l)?)?)?;
        cin = ch(l)?;
    }
    total = total.checked_add(block(cin, ch(d)?)?)?;
    for l in 0..d {
        let (hi, lo) = (ch(l + 1)?, ch(l)?);
        let din = if p.skips { lo.checked_mul(2)? } else { lo };
        total = total.checked_add(conv(hi, lo, 2)?.checked_add(lo)?)?.checked_add(block(din, lo)?)?;
    }
    total.checked_add(conv(ch(0)?, p.classes, 1)?.checked_add(p.classes)?)
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
        Self::decode(bytes, None)
    }

    /// Decode and validate; `file` (when the bytes come from one) is named in every
    /// [`UnetError::Format`] message instead of `<memory>`.
    fn decode(bytes: &[u8], file: Option<&Path>) -> Result<Self> {
        Self::decode_unnamed(bytes, file.unwrap_or(Path::new("<memory>"))).map_err(|e| match (file, e) {
            (Some(path), UnetError::Format { detail }) if !detail.starts_with(&*path.to_string_lossy()) => {
                UnetError::Format { detail: format!("{}: {detail}", path.display()) }
            }
            (_, e) => e,
        })
    }

    fn decode_unnamed(bytes: &[u8], origin: &Path) -> Result<Self> {
        let (_v, model): (u32, UNet<T>) = persist::from_bytes(bytes, magic::<T>(), FORMAT_VERSION, origin)?;
        // Validation builds a reference network of the stored architecture: refuse architectures
        // whose weights could not even fit in the file before allocating one.
        let needed = param_count(model.params()).and_then(|n| n.checked_mul(std::mem::size_of::<T>()));
        match needed {
            Some(b) if b <= bytes.len() => {}
            _ => {
                return Err(UnetError::Format {
                    detail: format!(
                        "the stored architecture {:?} needs more weights than the {}-byte file holds",
                        model.params(),
                        bytes.len()
                    ),
                });
            }
        }
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
    /// use latent_unet::{ParamGuard, UNet, UnetParams};
    /// let net = UnetParams::new().depth(2).base_channels(4).seed(3).check()?.build::<UNet<f32>>()?;
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
    /// [`UnetError::Io`] when the file cannot be read; otherwise as [`UNet::from_bytes`], with
    /// the file's path in every [`UnetError::Format`] message.
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
        Self::decode(&bytes, Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_optim::fit::ParamGuard;

    #[test]
    fn the_parameter_count_matches_the_network() {
        for depth in 1..=4 {
            for base in [1, 3, 8] {
                for (skips, batch_norm) in [(true, false), (false, true), (true, true)] {
                    let p = UnetParams::new()
                        .depth(depth)
                        .base_channels(base)
                        .in_channels(2)
                        .classes(3)
                        .skips(skips)
                        .batch_norm(batch_norm)
                        .check()
                        .unwrap();
                    let mut net = p.build::<UNet<f32>>().unwrap();
                    assert_eq!(param_count(p.get()), Some(net.num_params()), "{:?}", p.get());
                }
            }
        }
    }

    /// Regression (hostile model file): a valid container whose stored architecture asks for a
    /// huge network (here ~2·10¹⁰ weights, or an overflowing channel count) around a tiny one's
    /// weights made loading build that network before comparing; now it is a format error.
    #[test]
    fn a_huge_stored_architecture_is_refused_before_allocating() {
        let net = UnetParams::new().depth(2).base_channels(2).check().unwrap().build::<UNet<f32>>().unwrap();
        let file = net.to_bytes().unwrap();
        let payload = &file[28..];
        // bincode varints: in_channels, classes, depth, base_channels are the payload's first bytes
        assert_eq!(&payload[..4], &[1, 2, 2, 2]);
        let wrap = |payload: Vec<u8>| {
            let mut f = file[..12].to_vec();
            f.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            f.extend_from_slice(&persist::fnv1a64(&payload).to_le_bytes());
            f.extend_from_slice(&payload);
            f
        };
        let huge_depth = [&[1u8, 2, 8, 0xfb, 0x00, 0x02][..], &payload[4..]].concat(); // depth 8, 512 channels
        let huge_input = [&[0xfd][..], &(1u64 << 62).to_le_bytes(), &payload[1..]].concat(); // 2^62 inputs
        for bad in [huge_depth, huge_input] {
            match UNet::<f32>::from_bytes(&wrap(bad)) {
                Err(UnetError::Format { detail }) => assert!(detail.contains("needs more weights"), "{detail}"),
                other => panic!("expected a format error, got {other:?}"),
            }
        }
        assert!(UNet::<f32>::from_bytes(&wrap(payload.to_vec())).is_ok());
    }
}
