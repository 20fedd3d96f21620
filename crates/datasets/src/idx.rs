//! IDX files (the MNIST container): reader and writer for every IDX element type.
//!
//! Layout: two zero bytes, a type code, the number of dimensions `d`, then `d` big-endian `u32`
//! sizes, then the elements in row-major order, big-endian. Type codes: `0x08` u8, `0x09` i8,
//! `0x0B` i16, `0x0C` i32, `0x0D` f32, `0x0E` f64.
//!
//! Reading is strict and safe on hostile input: a gzip stream is recognised by its magic bytes
//! `1f 8b` and decompressed incrementally; the payload size claimed by the header is checked
//! against a limit (and, for an uncompressed file, against the file's actual size) *before*
//! anything is allocated; short payloads, trailing bytes and corrupt gzip are typed errors.

use crate::error::{DatasetError, Result, format_err, invalid, io_err};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Default limit on the payload an IDX header may claim: 4 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// Element type of an IDX file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdxType {
    /// Unsigned byte (code `0x08`).
    U8,
    /// Signed byte (code `0x09`).
    I8,
    /// Big-endian `i16` (code `0x0B`).
    I16,
    /// Big-endian `i32` (code `0x0C`).
    I32,
    /// Big-endian `f32` (code `0x0D`).
    F32,
    /// Big-endian `f64` (code `0x0E`).
    F64,
}

impl IdxType {
    /// All element types.
    pub const ALL: [IdxType; 6] = [IdxType::U8, IdxType::I8, IdxType::I16, IdxType::I32, IdxType::F32, IdxType::F64];

    /// The type code stored in the third magic byte.
    pub fn code(self) -> u8 {
        match self {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0B,
            IdxType::I32 => 0x0C,
            IdxType::F32 => 0x0D,
            IdxType::F64 => 0x0E,
        }
    }

    /// The type for a code, `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

/// The elements of an IDX array, one variant per element type.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// `u8` elements.
    U8(Vec<u8>),
    /// `i8` elements.
    I8(Vec<i8>),
    /// `i16` elements.
    I16(Vec<i16>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
}

impl IdxData {
    /// The element type.
    pub fn elem_type(&self) -> IdxType {
        match self {
            IdxData::U8(_) => IdxType::U8,
            IdxData::I8(_) => IdxType::I8,
            IdxData::I16(_) => IdxType::I16,
            IdxData::I32(_) => IdxType::I32,
            IdxData::F32(_) => IdxType::F32,
            IdxData::F64(_) => IdxType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            IdxData::U8(v) => v.len(),
            IdxData::I8(v) => v.len(),
            IdxData::I16(v) => v.len(),
            IdxData::I32(v) => v.len(),
            IdxData::F32(v) => v.len(),
            IdxData::F64(v) => v.len(),
        }
    }

    /// `true` when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All elements converted to `f64` (exact for every IDX type).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            IdxData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            IdxData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            IdxData::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            IdxData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            IdxData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            IdxData::F64(v) => v.clone(),
        }
    }

    fn write_be(&self, out: &mut Vec<u8>) {
        match self {
            IdxData::U8(v) => out.extend_from_slice(v),
            IdxData::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
            IdxData::I16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            IdxData::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            IdxData::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            IdxData::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
        }
    }

    fn from_be(t: IdxType, bytes: Vec<u8>) -> Self {
        match t {
            IdxType::U8 => IdxData::U8(bytes),
            IdxType::I8 => IdxData::I8(bytes.into_iter().map(|b| b as i8).collect()),
            IdxType::I16 => IdxData::I16(bytes.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()),
            IdxType::I32 => {
                IdxData::I32(bytes.chunks_exact(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            IdxType::F32 => {
                IdxData::F32(bytes.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            IdxType::F64 => IdxData::F64(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
        }
    }
}

/// An n-dimensional IDX array: its dimensions and row-major elements.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: IdxData,
}

impl IdxArray {
    /// Wrap elements with their dimensions.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `dims` | 1 to 255 sizes, each at most `u32::MAX` |
    /// | `data` | row-major elements, exactly the product of `dims` of them |
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] for an empty/oversized `dims` or a wrong element count.
    pub fn new(dims: Vec<usize>, data: IdxData) -> Result<Self> {
        if dims.is_empty() || dims.len() > 255 {
            return Err(invalid("dims", format!("{dims:?}"), "an IDX array has 1 to 255 dimensions"));
        }
        if let Some(d) = dims.iter().find(|&&d| u32::try_from(d).is_err()) {
            return Err(invalid("dims", d, "each IDX dimension must fit in a u32"));
        }
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(invalid(
                "data",
                data.len(),
                format!("dims {dims:?} need {} elements", n.map_or("too many".into(), |n| n.to_string())),
            ));
        }
        Ok(Self { dims, data })
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The elements.
    pub fn data(&self) -> &IdxData {
        &self.data
    }

    /// Give up the dimensions and elements.
    pub fn into_parts(self) -> (Vec<usize>, IdxData) {
        (self.dims, self.data)
    }

    /// The element type.
    pub fn elem_type(&self) -> IdxType {
        self.data.elem_type()
    }

    /// Encode as IDX bytes (uncompressed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 4 * self.dims.len() + self.data.len() * self.elem_type().size());
        out.extend_from_slice(&[0, 0, self.elem_type().code(), self.dims.len() as u8]);
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        self.data.write_be(&mut out);
        out
    }
}

/// Read an IDX file (plain or gzip-compressed, detected by magic bytes) with the default limit
/// [`DEFAULT_MAX_BYTES`].
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be read; [`DatasetError::Format`] for a bad magic,
/// unknown type code, zero dimensions or trailing bytes; [`DatasetError::TooLarge`] when the
/// header claims more than the limit; [`DatasetError::Truncated`] when the payload is shorter
/// than the header claims; [`DatasetError::Compression`] for corrupt gzip.
///
/// # Example
/// ```
/// let p = latent_datasets::data_file("mnist-2k-1k/t10k-labels-idx1-ubyte.gz")?;
/// let a = latent_datasets::idx::read_idx(&p)?;
/// assert_eq!(a.dims(), &[1000]);
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    read_idx_with_limit(path, DEFAULT_MAX_BYTES)
}

/// [`read_idx`] with an explicit limit on the claimed payload size in bytes.
///
/// # Errors
/// As [`read_idx`].
pub fn read_idx_with_limit(path: impl AsRef<Path>, max_bytes: u64) -> Result<IdxArray> {
    let path = path.as_ref();
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = f.metadata().map_err(|e| io_err(path, e))?.len();
    let mut head = [0u8; 2];
    let got = read_up_to(&mut f, &mut head).map_err(|e| io_err(path, e))?;
    let f = BufReader::new(std::io::Cursor::new(head[..got].to_vec()).chain(f));
    if got == 2 && head == [0x1f, 0x8b] {
        decode(MultiGzDecoder::new(f), None, true, path, max_bytes)
    } else {
        decode(f, Some(file_len), false, path, max_bytes)
    }
}

/// Decode IDX bytes held in memory (plain or gzip). `name` is used in error messages.
///
/// # Errors
/// As [`read_idx`], without [`DatasetError::Io`].
pub fn read_idx_bytes(bytes: &[u8], name: impl AsRef<Path>, max_bytes: u64) -> Result<IdxArray> {
    let name = name.as_ref();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        decode(MultiGzDecoder::new(bytes), None, true, name, max_bytes)
    } else {
        decode(bytes, Some(bytes.len() as u64), false, name, max_bytes)
    }
}

/// Write an IDX file, optionally gzip-compressed.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `path` | destination (created or truncated) |
/// | `array` | the array to write |
/// | `gzip` | compress with gzip (conventionally with a `.gz` suffix) |
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be written.
///
/// # Example
/// ```
/// use latent_datasets::idx::{IdxArray, IdxData, read_idx, write_idx};
/// let a = IdxArray::new(vec![2, 3], IdxData::I16(vec![1, -2, 3, -4, 5, -6]))?;
/// let p = std::env::temp_dir().join(format!("latent_doc_{}.idx.gz", std::process::id()));
/// write_idx(&p, &a, true)?;
/// assert_eq!(read_idx(&p)?, a);
/// # std::fs::remove_file(&p).ok();
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn write_idx(path: impl AsRef<Path>, array: &IdxArray, gzip: bool) -> Result<()> {
    let path = path.as_ref();
    let f = File::create(path).map_err(|e| io_err(path, e))?;
    let bytes = array.to_bytes();
    let res = if gzip {
        let mut enc = flate2::write::GzEncoder::new(BufWriter::new(f), flate2::Compression::default());
        enc.write_all(&bytes).and_then(|_| enc.finish()).and_then(|mut w| w.flush())
    } else {
        let mut w = BufWriter::new(f);
        w.write_all(&bytes).and_then(|_| w.flush())
    };
    res.map_err(|e| io_err(path, e))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Map a read error: for gzip streams decoder errors are corruption (or truncation).
fn stream_err(e: std::io::Error, gz: bool, path: &Path) -> DatasetError {
    if gz {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            DatasetError::Truncated { path: path.to_path_buf(), what: format!("gzip stream ends early ({e})") }
        } else {
            DatasetError::Compression { path: path.to_path_buf(), what: e.to_string() }
        }
    } else {
        io_err(path, e)
    }
}

/// Read exactly `buf.len()` bytes or report what the header part is missing.
fn read_header_part(r: &mut impl Read, buf: &mut [u8], gz: bool, path: &Path, what: &str) -> Result<()> {
    let n = read_up_to(r, buf).map_err(|e| stream_err(e, gz, path))?;
    if n < buf.len() {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            what: format!("{what}: need {} bytes, data ends after {n}", buf.len()),
        });
    }
    Ok(())
}

fn decode(mut r: impl Read, total_len: Option<u64>, gz: bool, path: &Path, max_bytes: u64) -> Result<IdxArray> {
    let mut magic = [0u8; 4];
    read_header_part(&mut r, &mut magic, gz, path, "IDX magic number")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format_err(
            path,
            format!(
                "bad IDX magic {:02x} {:02x} {:02x} {:02x}: expected 00 00 <type code> <ndims>",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    let ty = IdxType::from_code(magic[2]).ok_or_else(|| {
        format_err(
            path,
            format!("unknown IDX type code 0x{:02x} (known: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64)", magic[2]),
        )
    })?;
    let nd = usize::from(magic[3]);
    if nd == 0 {
        return Err(format_err(path, "IDX header declares zero dimensions"));
    }
    let mut dbuf = vec![0u8; 4 * nd];
    read_header_part(&mut r, &mut dbuf, gz, path, "IDX dimension sizes")?;
    let dims: Vec<u64> =
        dbuf.chunks_exact(4).map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect();
    let claimed = dims.iter().try_fold(ty.size() as u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
    if claimed > max_bytes || usize::try_from(claimed).is_err() {
        return Err(DatasetError::TooLarge { path: path.to_path_buf(), claimed, limit: max_bytes });
    }
    let header_len = 4 + 4 * nd as u64;
    if let Some(total) = total_len {
        let avail = total.saturating_sub(header_len);
        if avail < claimed {
            return Err(DatasetError::Truncated {
                path: path.to_path_buf(),
                what: format!("dims {dims:?} of {ty:?} need {claimed} payload bytes, file holds {avail}"),
            });
        }
        if avail > claimed {
            return Err(format_err(
                path,
                format!(
                    "dims {dims:?} of {ty:?} need {claimed} payload bytes, file holds {avail} ({} trailing)",
                    avail - claimed
                ),
            ));
        }
    }
    // `claimed` is bounded by `max_bytes`; grow the buffer as data actually arrives.
    let mut payload = Vec::with_capacity(claimed.min(1 << 24) as usize);
    (&mut r).take(claimed).read_to_end(&mut payload).map_err(|e| stream_err(e, gz, path))?;
    if (payload.len() as u64) < claimed {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            what: format!("dims {dims:?} of {ty:?} need {claimed} payload bytes, data ends after {}", payload.len()),
        });
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut r, &mut extra).map_err(|e| stream_err(e, gz, path))? > 0 {
        return Err(format_err(path, format!("trailing bytes after the {claimed}-byte payload of dims {dims:?}")));
    }
    let dims: Vec<usize> = dims.into_iter().map(|d| d as usize).collect();
    Ok(IdxArray { dims, data: IdxData::from_be(ty, payload) })
}
