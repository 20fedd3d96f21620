//! NumPy `.npy` files: strict reader and writer for `f32`, `f64` and `u8` arrays.
//!
//! Supported: format versions 1.0, 2.0 and 3.0; dtypes `<f4`/`>f4`, `<f8`/`>f8` and `|u1`
//! (also spelled `u1`, `<u1`, `>u1`, `=u1`); C and Fortran order; any number of dimensions
//! (including 0-d scalars). The header is a Python dict literal with exactly the keys `descr`,
//! `fortran_order` and `shape`; it is parsed by a small strict tokenizer, and anything else
//! (unknown keys, structured dtypes, bad tuples) is a typed error naming the file.
//!
//! The writer emits version 1.0 (2.0 only if the header would not fit), little-endian, with
//! the header padded so the data starts at a multiple of 64 bytes, as NumPy does.

use crate::error::{DatasetError, Result, format_err, invalid, io_err};
use latent_linalg::{DMatrix, Real};
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element type of a `.npy` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NpyDtype {
    /// `|u1`.
    U8,
    /// `<f4`.
    F32,
    /// `<f8`.
    F64,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDtype::U8 => 1,
            NpyDtype::F32 => 4,
            NpyDtype::F64 => 8,
        }
    }
    /// The `descr` string the writer emits.
    pub fn descr(self) -> &'static str {
        match self {
            NpyDtype::U8 => "|u1",
            NpyDtype::F32 => "<f4",
            NpyDtype::F64 => "<f8",
        }
    }
}

/// The elements of a `.npy` array, in the array's storage order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `u8` elements.
    U8(Vec<u8>),
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
}

impl NpyData {
    /// The element type.
    pub fn dtype(&self) -> NpyDtype {
        match self {
            NpyData::U8(_) => NpyDtype::U8,
            NpyData::F32(_) => NpyDtype::F32,
            NpyData::F64(_) => NpyDtype::F64,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::U8(v) => v.len(),
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
        }
    }
    /// `true` when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `k` of the storage as `f64`.
    fn at(&self, k: usize) -> f64 {
        match self {
            NpyData::U8(v) => f64::from(v[k]),
            NpyData::F32(v) => f64::from(v[k]),
            NpyData::F64(v) => v[k],
        }
    }
    fn permuted(&self, perm: &[usize]) -> NpyData {
        match self {
            NpyData::U8(v) => NpyData::U8(perm.iter().map(|&k| v[k]).collect()),
            NpyData::F32(v) => NpyData::F32(perm.iter().map(|&k| v[k]).collect()),
            NpyData::F64(v) => NpyData::F64(perm.iter().map(|&k| v[k]).collect()),
        }
    }
}

/// An n-dimensional `.npy` array: shape, storage order and elements.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    shape: Vec<usize>,
    fortran_order: bool,
    data: NpyData,
}

fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

impl NpyArray {
    /// Wrap elements.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `shape` | dimensions (empty for a scalar) |
    /// | `fortran_order` | `false`: C order (last index fastest); `true`: first index fastest |
    /// | `data` | exactly the product of `shape` elements, in that order |
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] when the element count does not match the shape.
    pub fn new(shape: Vec<usize>, fortran_order: bool, data: NpyData) -> Result<Self> {
        if numel(&shape) != Some(data.len()) {
            return Err(invalid("data", data.len(), format!("shape {shape:?} needs {:?} elements", numel(&shape))));
        }
        Ok(Self { shape, fortran_order, data })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// `true` when the storage is in Fortran (column-major) order.
    pub fn fortran_order(&self) -> bool {
        self.fortran_order
    }
    /// The elements in storage order.
    pub fn data(&self) -> &NpyData {
        &self.data
    }
    /// The element type.
    pub fn dtype(&self) -> NpyDtype {
        self.data.dtype()
    }
    /// Give up shape, order and elements.
    pub fn into_parts(self) -> (Vec<usize>, bool, NpyData) {
        (self.shape, self.fortran_order, self.data)
    }

    /// Element at a multi-index, as `f64`; `None` when the index has the wrong rank or is out
    /// of range.
    pub fn get_f64(&self, index: &[usize]) -> Option<f64> {
        if index.len() != self.shape.len() || index.iter().zip(&self.shape).any(|(&i, &d)| i >= d) {
            return None;
        }
        let mut k = 0usize;
        if self.fortran_order {
            for (&i, &d) in index.iter().zip(&self.shape).rev() {
                k = k * d + i;
            }
        } else {
            for (&i, &d) in index.iter().zip(&self.shape) {
                k = k * d + i;
            }
        }
        Some(self.data.at(k))
    }

    /// The same array in C order (a no-op for C-ordered arrays).
    pub fn to_c_order(&self) -> NpyArray {
        if !self.fortran_order || self.shape.len() < 2 {
            return NpyArray { shape: self.shape.clone(), fortran_order: false, data: self.data.clone() };
        }
        // perm[c_index] = fortran storage index
        let n = self.data.len();
        let nd = self.shape.len();
        let mut fstride = vec![1usize; nd];
        for a in 1..nd {
            fstride[a] = fstride[a - 1] * self.shape[a - 1];
        }
        let mut perm = Vec::with_capacity(n);
        let mut idx = vec![0usize; nd];
        for _ in 0..n {
            perm.push(idx.iter().zip(&fstride).map(|(i, s)| i * s).sum());
            for a in (0..nd).rev() {
                idx[a] += 1;
                if idx[a] < self.shape[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        NpyArray { shape: self.shape.clone(), fortran_order: false, data: self.data.permuted(&perm) }
    }

    /// All elements as `f64` in C order.
    pub fn to_f64_vec_c_order(&self) -> Vec<f64> {
        let c = self.to_c_order();
        (0..c.data.len()).map(|k| c.data.at(k)).collect()
    }

    /// The array as a matrix, respecting the storage order: shape `(r, c)` gives an `r × c`
    /// matrix with `m[(i, j)] = a[i, j]`; shape `(n,)` gives an `n × 1` column; a 0-d scalar a
    /// `1 × 1` matrix. `u8` values are converted as-is (0..=255, not scaled).
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] for arrays with more than 2 dimensions.
    ///
    /// # Example
    /// ```
    /// use latent_datasets::npy::NpyArray;
    /// use latent_datasets::DMatrix;
    /// let m = DMatrix::<f32>::from_row_slice(2, 3, &[1., 2., 3., 4., 5., 6.]);
    /// let a = NpyArray::from_dmatrix(&m, false);
    /// assert_eq!(a.shape(), &[2, 3]);
    /// assert_eq!(a.to_dmatrix::<f32>()?, m);
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn to_dmatrix<T: Real>(&self) -> Result<DMatrix<T>> {
        let (r, c) = match self.shape[..] {
            [] => (1, 1),
            [n] => (n, 1),
            [r, c] => (r, c),
            _ => {
                return Err(invalid(
                    "shape",
                    format!("{:?}", self.shape),
                    "to_dmatrix needs an array with at most 2 dims",
                ));
            }
        };
        let d = &self.data;
        Ok(if self.fortran_order || c == 1 {
            DMatrix::from_iterator(r, c, (0..r * c).map(|k| T::lit(d.at(k))))
        } else {
            DMatrix::from_fn(r, c, |i, j| T::lit(d.at(i * c + j)))
        })
    }

    /// A 2-D array from a matrix: `f32` data for `T = f32`, `f64` otherwise.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `m` | the matrix; shape `(nrows, ncols)` |
    /// | `fortran_order` | store column-major (NumPy reads both orders) |
    pub fn from_dmatrix<T: Real>(m: &DMatrix<T>, fortran_order: bool) -> NpyArray {
        let (r, c) = m.shape();
        let vals: Vec<f64> = if fortran_order {
            m.iter().map(|v| v.as_f64()).collect()
        } else {
            (0..r).flat_map(|i| (0..c).map(move |j| (i, j))).map(|(i, j)| m[(i, j)].as_f64()).collect()
        };
        let data = if T::NAME == "f32" {
            NpyData::F32(vals.into_iter().map(|v| v as f32).collect())
        } else {
            NpyData::F64(vals)
        };
        NpyArray { shape: vec![r, c], fortran_order, data }
    }

    /// Encode as `.npy` bytes (version 1.0, or 2.0 for a header over 65535 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = match self.shape.len() {
            0 => "()".to_string(),
            1 => format!("({},)", self.shape[0]),
            _ => format!("({})", self.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
        };
        let dict = format!(
            "{{'descr': '{}', 'fortran_order': {}, 'shape': {shape}, }}",
            self.dtype().descr(),
            if self.fortran_order { "True" } else { "False" }
        );
        let (version, len_bytes) =
            if dict.len() + 1 + 10 <= usize::from(u16::MAX) { (1u8, 2usize) } else { (2u8, 4usize) };
        let pre = MAGIC.len() + 2 + len_bytes;
        let total = (pre + dict.len() + 1).div_ceil(64) * 64;
        let hlen = total - pre;
        let mut out = Vec::with_capacity(total + self.data.len() * self.dtype().size());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[version, 0]);
        if len_bytes == 2 {
            out.extend_from_slice(&(hlen as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(hlen as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.resize(total - 1, b' ');
        out.push(b'\n');
        match &self.data {
            NpyData::U8(v) => out.extend_from_slice(v),
            NpyData::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            NpyData::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        out
    }
}

/// Read a `.npy` file.
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be read; [`DatasetError::Format`] for a bad magic,
/// version or header; [`DatasetError::Unsupported`] for other dtypes; [`DatasetError::Truncated`]
/// when the data is shorter than the shape needs; [`DatasetError::Format`] for trailing bytes.
///
/// # Example
/// ```
/// use latent_datasets::npy::{NpyArray, NpyData, read_npy, write_npy};
/// let a = NpyArray::new(vec![2, 2], false, NpyData::F64(vec![1.0, 2.0, 3.0, 4.0]))?;
/// let p = std::env::temp_dir().join(format!("latent_doc_{}.npy", std::process::id()));
/// write_npy(&p, &a)?;
/// assert_eq!(read_npy(&p)?, a);
/// # std::fs::remove_file(&p).ok();
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    // The allocation is sized by the real file, never by the header.
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    read_npy_bytes(&bytes, path)
}

/// Write a `.npy` file (see [`NpyArray::to_bytes`]).
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be written.
pub fn write_npy(path: impl AsRef<Path>, array: &NpyArray) -> Result<()> {
    crate::image::write_bytes(path.as_ref(), &array.to_bytes())
}

/// Decode `.npy` bytes held in memory. `name` is used in error messages.
///
/// # Errors
/// As [`read_npy`], without [`DatasetError::Io`].
pub fn read_npy_bytes(bytes: &[u8], name: impl AsRef<Path>) -> Result<NpyArray> {
    let path = name.as_ref();
    if bytes.len() < 10 {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            what: format!("{} bytes, shorter than an npy preamble", bytes.len()),
        });
    }
    if &bytes[..6] != MAGIC {
        return Err(format_err(path, format!("bad npy magic {:02x?}: expected \\x93NUMPY", &bytes[..6])));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, pre): (usize, usize) = match (major, minor) {
        (1, 0) => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        (2, 0) | (3, 0) => {
            if bytes.len() < 12 {
                return Err(DatasetError::Truncated { path: path.to_path_buf(), what: "npy v2/v3 preamble".into() });
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => {
            return Err(format_err(
                path,
                format!("unsupported npy format version {major}.{minor} (known: 1.0, 2.0, 3.0)"),
            ));
        }
    };
    let data_start = pre.checked_add(hlen).filter(|&e| e <= bytes.len()).ok_or_else(|| DatasetError::Truncated {
        path: path.to_path_buf(),
        what: format!("header claims {hlen} bytes, file has {} after the preamble", bytes.len() - pre),
    })?;
    let hbytes = &bytes[pre..data_start];
    let header: String = if major == 3 {
        std::str::from_utf8(hbytes)
            .map_err(|e| format_err(path, format!("npy v3 header is not UTF-8: {e}")))?
            .to_string()
    } else {
        // latin-1: every byte is a char
        hbytes.iter().map(|&b| char::from(b)).collect()
    };
    let h = parse_header(&header)
        .map_err(|what| format_err(path, format!("npy header {:?}: {what}", header.trim_end())))?;
    let dtype = match h.descr.as_str() {
        "<f4" => Some((NpyDtype::F32, false)),
        ">f4" => Some((NpyDtype::F32, true)),
        "<f8" => Some((NpyDtype::F64, false)),
        ">f8" => Some((NpyDtype::F64, true)),
        "|u1" | "u1" | "<u1" | ">u1" | "=u1" => Some((NpyDtype::U8, false)),
        _ => None,
    };
    let Some((dtype, big_endian)) = dtype else {
        return Err(DatasetError::Unsupported {
            path: path.to_path_buf(),
            what: format!("dtype {:?} (supported: <f4, <f8, |u1 and big-endian >f4, >f8)", h.descr),
        });
    };
    let claimed = h.shape.iter().try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d as u64)).unwrap_or(u64::MAX);
    let avail = (bytes.len() - data_start) as u64;
    if claimed > avail {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            what: format!("shape {:?} of {:?} needs {claimed} data bytes, file holds {avail}", h.shape, dtype),
        });
    }
    if claimed < avail {
        return Err(format_err(
            path,
            format!(
                "shape {:?} of {:?} needs {claimed} data bytes, file holds {avail} ({} trailing)",
                h.shape,
                dtype,
                avail - claimed
            ),
        ));
    }
    let raw = &bytes[data_start..];
    let data = match dtype {
        NpyDtype::U8 => NpyData::U8(raw.to_vec()),
        NpyDtype::F32 => NpyData::F32(
            raw.chunks_exact(4)
                .map(|c| {
                    let a = [c[0], c[1], c[2], c[3]];
                    if big_endian { f32::from_be_bytes(a) } else { f32::from_le_bytes(a) }
                })
                .collect(),
        ),
        NpyDtype::F64 => NpyData::F64(
            raw.chunks_exact(8)
                .map(|c| {
                    let a = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                    if big_endian { f64::from_be_bytes(a) } else { f64::from_le_bytes(a) }
                })
                .collect(),
        ),
    };
    Ok(NpyArray { shape: h.shape, fortran_order: h.fortran_order, data })
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Colon,
    Comma,
    Str(String),
    Int(usize),
    True,
    False,
    Other(char),
}

fn tokenize(s: &str) -> std::result::Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '{' | '}' | '(' | ')' | ':' | ',' => {
                out.push(match c {
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ':' => Tok::Colon,
                    _ => Tok::Comma,
                });
                i += 1;
            }
            '\'' | '"' => {
                let end = cs[i + 1..].iter().position(|&d| d == c).ok_or("unterminated string")?;
                let body: String = cs[i + 1..i + 1 + end].iter().collect();
                if body.contains('\\') {
                    return Err("escape sequences are not allowed in header strings".into());
                }
                out.push(Tok::Str(body));
                i += end + 2;
            }
            '0'..='9' => {
                let start = i;
                while i < cs.len() && cs[i].is_ascii_digit() {
                    i += 1;
                }
                let digits: String = cs[start..i].iter().collect();
                let v = digits.parse::<usize>().map_err(|_| format!("dimension {digits} does not fit in usize"))?;
                // Python 2 long suffix, as written by old NumPy versions.
                if i < cs.len() && cs[i] == 'L' {
                    i += 1;
                }
                out.push(Tok::Int(v));
            }
            _ if c.is_ascii_alphabetic() => {
                let start = i;
                while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                    i += 1;
                }
                let w: String = cs[start..i].iter().collect();
                out.push(match w.as_str() {
                    "True" => Tok::True,
                    "False" => Tok::False,
                    _ => return Err(format!("unexpected name {w}")),
                });
            }
            _ => {
                out.push(Tok::Other(c));
                i += 1;
            }
        }
    }
    Ok(out)
}

fn parse_header(s: &str) -> std::result::Result<Header, String> {
    if !s.ends_with('\n') {
        return Err("header must end with a newline".into());
    }
    let toks = tokenize(s)?;
    let mut p = 0usize;
    let mut next = |what: &str| -> std::result::Result<&Tok, String> {
        let t = toks.get(p).ok_or_else(|| format!("unexpected end, expected {what}"))?;
        p += 1;
        Ok(t)
    };
    if next("'{'")? != &Tok::LBrace {
        return Err("expected '{' at start".into());
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        let key = match next("a key or '}'")? {
            Tok::RBrace => break,
            Tok::Str(k) => k.clone(),
            t => return Err(format!("expected a quoted key, found {t:?}")),
        };
        if next("':'")? != &Tok::Colon {
            return Err(format!("expected ':' after key {key:?}"));
        }
        match key.as_str() {
            "descr" => {
                let v = match next("a dtype string")? {
                    Tok::Str(v) => v.clone(),
                    Tok::Other('[') => return Err("structured dtypes are not supported".into()),
                    t => return Err(format!("descr must be a string, found {t:?}")),
                };
                if descr.replace(v).is_some() {
                    return Err("duplicate key 'descr'".into());
                }
            }
            "fortran_order" => {
                let v = match next("True or False")? {
                    Tok::True => true,
                    Tok::False => false,
                    t => return Err(format!("fortran_order must be True or False, found {t:?}")),
                };
                if fortran.replace(v).is_some() {
                    return Err("duplicate key 'fortran_order'".into());
                }
            }
            "shape" => {
                if next("'('")? != &Tok::LParen {
                    return Err("shape must be a tuple".into());
                }
                let mut dims = Vec::new();
                loop {
                    match next("a dimension or ')'")? {
                        Tok::RParen => break,
                        Tok::Int(d) => {
                            dims.push(*d);
                            match next("',' or ')'")? {
                                Tok::Comma => {}
                                Tok::RParen => {
                                    if dims.len() == 1 {
                                        return Err("a 1-tuple needs a trailing comma: (n,)".into());
                                    }
                                    break;
                                }
                                t => return Err(format!("expected ',' or ')' in shape, found {t:?}")),
                            }
                        }
                        t => return Err(format!("shape entries must be non-negative integers, found {t:?}")),
                    }
                }
                if shape.replace(dims).is_some() {
                    return Err("duplicate key 'shape'".into());
                }
            }
            k => return Err(format!("unknown key {k:?} (allowed: descr, fortran_order, shape)")),
        }
        match next("',' or '}'")? {
            Tok::Comma => {}
            Tok::RBrace => break,
            t => return Err(format!("expected ',' or '}}' after a value, found {t:?}")),
        }
    }
    if p != toks.len() {
        return Err("trailing characters after the dict".into());
    }
    Ok(Header {
        descr: descr.ok_or("missing key 'descr'")?,
        fortran_order: fortran.ok_or("missing key 'fortran_order'")?,
        shape: shape.ok_or("missing key 'shape'")?,
    })
}
