//! Gray images, PNG reading/writing (through the `png` crate) and image folders.
//!
//! Reading converts every PNG colour type to one gray channel in `[0, 1]`:
//! gray (1/2/4/8/16-bit) is scaled by its maximum value; gray+alpha keeps the gray channel;
//! RGB/RGBA use Rec. 601 luma `0.299 R + 0.587 G + 0.114 B` (alpha ignored); palette images
//! are expanded first. Label maps (instance ids, masks) are read without scaling by
//! [`read_png_labels`].

use crate::error::{DatasetError, Result, format_err, invalid, io_err};
use latent_linalg::{Real, Tensor4};
use png::{BitDepth, ColorType, Transformations};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

/// Largest decoded PNG accepted, in bytes of raw pixel data (1 GiB). Smaller files are bounded
/// tighter: never more than their bytes could decompress to.
pub const MAX_PNG_BYTES: usize = 1 << 30;

/// A gray image: `data[y * width + x]`, values nominally in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major pixel values.
    pub data: Vec<f32>,
}

impl GrayImage {
    /// Wrap row-major pixel values.
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] when `data.len() != width·height`.
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Result<Self> {
        if width.checked_mul(height) != Some(data.len()) {
            return Err(invalid("data", data.len(), format!("a {width}x{height} image needs width*height values")));
        }
        Ok(Self { width, height, data })
    }

    /// An image filled with `value`.
    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Self { width, height, data: vec![value; width * height] }
    }

    /// An image from a function of `(x, y)`.
    pub fn from_fn(width: usize, height: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                data.push(f(x, y));
            }
        }
        Self { width, height, data }
    }

    /// An image from bytes (`value / 255`).
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] when `bytes.len() != width·height`.
    pub fn from_u8(width: usize, height: usize, bytes: &[u8]) -> Result<Self> {
        Self::new(width, height, bytes.iter().map(|&b| f32::from(b) / 255.0).collect())
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// `true` when the image has no pixels.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// `true` when `data` holds exactly `width·height` values (the fields are public, so an
    /// image can be built inconsistent; every function taking one checks this).
    pub fn is_consistent(&self) -> bool {
        self.width.checked_mul(self.height) == Some(self.data.len())
    }

    /// Pixel `(x, y)`, `None` outside the image.
    pub fn get(&self, x: usize, y: usize) -> Option<f32> {
        if x < self.width && y < self.height { self.data.get(y * self.width + x).copied() } else { None }
    }

    /// Set pixel `(x, y)`; returns `false` (and does nothing) outside the image.
    pub fn set(&mut self, x: usize, y: usize, v: f32) -> bool {
        if x < self.width
            && y < self.height
            && let Some(p) = self.data.get_mut(y * self.width + x)
        {
            *p = v;
            return true;
        }
        false
    }

    /// The `w × h` window whose top-left corner is `(x0, y0)`.
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] when the window is empty or leaves the image, or the
    /// image is inconsistent.
    pub fn crop(&self, x0: usize, y0: usize, w: usize, h: usize) -> Result<GrayImage> {
        if !self.is_consistent() {
            return Err(invalid("self.data", self.data.len(), "image data must hold width*height values"));
        }
        check_window(self.width, self.height, x0, y0, w, h)?;
        let mut data = Vec::with_capacity(w * h);
        for y in y0..y0 + h {
            data.extend_from_slice(&self.data[y * self.width + x0..y * self.width + x0 + w]);
        }
        Ok(GrayImage { width: w, height: h, data })
    }

    /// Mean pixel value (0 for an empty image).
    pub fn mean(&self) -> f32 {
        if self.data.is_empty() {
            0.0
        } else {
            (self.data.iter().map(|&v| f64::from(v)).sum::<f64>() / self.data.len() as f64) as f32
        }
    }

    /// Pixels as bytes: clamp to `[0,1]`, scale by 255, round (NaN becomes 0).
    pub fn to_u8(&self) -> Vec<u8> {
        self.data.iter().map(|&v| to_u8(v)).collect()
    }

    /// Round every pixel to the nearest of the 256 levels `k/255` (clamped to `[0,1]`), so the
    /// image survives an 8-bit PNG round trip exactly.
    pub fn quantize_u8(&mut self) {
        self.data.iter_mut().for_each(|v| *v = f32::from(to_u8(*v)) / 255.0);
    }

    /// The image as a `(1, 1, height, width)` tensor.
    ///
    /// # Errors
    /// Only if the size overflows.
    pub fn to_tensor4<T: Real>(&self) -> Result<Tensor4<T>> {
        Ok(Tensor4::from_vec(
            [1, 1, self.height, self.width],
            self.data.iter().map(|&v| T::lit(f64::from(v))).collect(),
        )?)
    }
}

/// Stack images of one size into an `(n, 1, height, width)` tensor.
///
/// # Errors
/// [`DatasetError::InvalidParameter`] for an empty list, an inconsistent image, or images of
/// different sizes.
///
/// # Example
/// ```
/// use latent_datasets::{GrayImage, image::stack_images};
/// let t = stack_images::<f32>(&[GrayImage::filled(4, 3, 0.5), GrayImage::filled(4, 3, 1.0)])?;
/// assert_eq!(t.shape(), [2, 1, 3, 4]);
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn stack_images<T: Real>(images: &[GrayImage]) -> Result<Tensor4<T>> {
    let first = images.first().ok_or_else(|| invalid("images", 0, "need at least one image"))?;
    let (w, h) = (first.width, first.height);
    let mut data = Vec::with_capacity(images.len() * first.data.len());
    for (i, img) in images.iter().enumerate() {
        if !img.is_consistent() || (img.width, img.height) != (w, h) {
            return Err(invalid(
                "images",
                i,
                format!("image {i} is {}x{}, expected a consistent {w}x{h}", img.width, img.height),
            ));
        }
        data.extend(img.data.iter().map(|&v| T::lit(f64::from(v))));
    }
    Ok(Tensor4::from_vec([images.len(), 1, h, w], data)?)
}

/// Clamp to `[0,1]`, scale to `0..=255` and round; NaN maps to 0.
pub fn to_u8(v: f32) -> u8 {
    if v.is_nan() { 0 } else { (v.clamp(0.0, 1.0) * 255.0).round() as u8 }
}

pub(crate) fn check_window(width: usize, height: usize, x0: usize, y0: usize, w: usize, h: usize) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(invalid("window", format!("{w}x{h}"), "window must be at least 1x1"));
    }
    if x0.checked_add(w).is_none_or(|e| e > width) || y0.checked_add(h).is_none_or(|e| e > height) {
        return Err(invalid(
            "window",
            format!("{w}x{h} at ({x0}, {y0})"),
            format!("window leaves the {width}x{height} image"),
        ));
    }
    Ok(())
}

/// An integer-valued image (instance ids, class labels, masks): `data[y * width + x]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major label values.
    pub data: Vec<u32>,
}

impl LabelImage {
    /// Wrap row-major label values.
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] when `data.len() != width·height`.
    pub fn new(width: usize, height: usize, data: Vec<u32>) -> Result<Self> {
        if width.checked_mul(height) != Some(data.len()) {
            return Err(invalid(
                "data",
                data.len(),
                format!("a {width}x{height} label image needs width*height values"),
            ));
        }
        Ok(Self { width, height, data })
    }

    /// An all-zero label image.
    pub fn zeros(width: usize, height: usize) -> Self {
        Self { width, height, data: vec![0; width * height] }
    }

    /// Label at `(x, y)`, `None` outside.
    pub fn get(&self, x: usize, y: usize) -> Option<u32> {
        if x < self.width && y < self.height { self.data.get(y * self.width + x).copied() } else { None }
    }

    /// Largest label (0 for an empty image).
    pub fn max_label(&self) -> u32 {
        self.data.iter().copied().max().unwrap_or(0)
    }

    /// The `w × h` window whose top-left corner is `(x0, y0)`.
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] when the window is empty or leaves the image, or the
    /// label image is inconsistent.
    pub fn crop(&self, x0: usize, y0: usize, w: usize, h: usize) -> Result<LabelImage> {
        if self.width.checked_mul(self.height) != Some(self.data.len()) {
            return Err(invalid("self.data", self.data.len(), "label data must hold width*height values"));
        }
        check_window(self.width, self.height, x0, y0, w, h)?;
        let mut data = Vec::with_capacity(w * h);
        for y in y0..y0 + h {
            data.extend_from_slice(&self.data[y * self.width + x0..y * self.width + x0 + w]);
        }
        Ok(LabelImage { width: w, height: h, data })
    }

    /// `true` where the label is non-zero.
    pub fn to_mask(&self) -> Vec<bool> {
        self.data.iter().map(|&v| v != 0).collect()
    }
}

fn decoding_err(path: &Path, e: png::DecodingError) -> DatasetError {
    match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DatasetError::Truncated { path: path.to_path_buf(), what: format!("PNG data ends early ({io})") }
        }
        png::DecodingError::IoError(io) => io_err(path, io),
        png::DecodingError::LimitsExceeded => format_err(path, "PNG exceeds the decoder's memory limit"),
        other => format_err(path, format!("PNG decoding failed: {other}")),
    }
}

fn encoding_err(path: &Path, e: png::EncodingError) -> DatasetError {
    match e {
        png::EncodingError::IoError(io) => io_err(path, io),
        other => format_err(path, format!("PNG encoding failed: {other}")),
    }
}

/// Decoded raw PNG samples: 8-bit samples as-is, 16-bit samples as `u16`.
struct RawPng {
    width: usize,
    height: usize,
    color: ColorType,
    depth: BitDepth,
    line_size: usize,
    bytes: Vec<u8>,
    palette: Option<Vec<u8>>,
}

/// Largest ratio of decoded output bytes to PNG file bytes: deflate expands at most 1032:1, and
/// the EXPAND transformation turns a 1-bit palette pixel into 32 bits of RGBA.
const MAX_EXPANSION: u64 = 1032 * 32;

/// The allocation bound for a PNG of `input_len` bytes: never more than the data could decode to.
fn png_limit(input_len: u64) -> usize {
    input_len.saturating_mul(MAX_EXPANSION).saturating_add(1 << 16).min(MAX_PNG_BYTES as u64) as usize
}

fn decode_raw<R: BufRead + Seek>(r: R, path: &Path, transform: Transformations, input_len: u64) -> Result<RawPng> {
    let limit = png_limit(input_len);
    let limits = png::Limits { bytes: limit.saturating_mul(2) };
    let mut dec = png::Decoder::new_with_limits(r, limits);
    dec.set_transformations(transform);
    let mut reader = dec.read_info().map_err(|e| decoding_err(path, e))?;
    let palette = reader.info().palette.as_ref().map(|p| p.to_vec());
    let size = reader.output_buffer_size().ok_or_else(|| DatasetError::TooLarge {
        path: path.to_path_buf(),
        claimed: u64::MAX,
        limit: limit as u64,
    })?;
    if size > limit {
        return Err(DatasetError::TooLarge { path: path.to_path_buf(), claimed: size as u64, limit: limit as u64 });
    }
    let mut bytes = vec![0u8; size];
    let out = reader.next_frame(&mut bytes).map_err(|e| decoding_err(path, e))?;
    bytes.truncate(out.line_size * out.height as usize);
    Ok(RawPng {
        width: out.width as usize,
        height: out.height as usize,
        color: out.color_type,
        depth: out.bit_depth,
        line_size: out.line_size,
        bytes,
        palette,
    })
}

fn open_buf(path: &Path) -> Result<(BufReader<File>, u64)> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let len = f.metadata().map_err(|e| io_err(path, e))?.len();
    Ok((BufReader::new(f), len))
}

/// Read a PNG as a gray image in `[0, 1]` (see the module docs for the colour conversion).
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be opened; [`DatasetError::Format`] or
/// [`DatasetError::Truncated`] for an invalid PNG; [`DatasetError::TooLarge`] for an image
/// over [`MAX_PNG_BYTES`] or larger than the file's bytes could decode to (a lying header).
///
/// # Example
/// ```
/// let p = latent_datasets::data_file("natural-gray/skimage_camera.png")?;
/// let img = latent_datasets::read_png(&p)?;
/// assert_eq!((img.width, img.height), (512, 512));
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn read_png(path: impl AsRef<Path>) -> Result<GrayImage> {
    let path = path.as_ref();
    let (r, len) = open_buf(path)?;
    gray_from_raw(decode_raw(r, path, Transformations::EXPAND, len)?)
}

/// Decode PNG bytes held in memory as a gray image. `name` is used in error messages.
///
/// # Errors
/// As [`read_png`], without [`DatasetError::Io`].
pub fn decode_png(bytes: &[u8], name: impl AsRef<Path>) -> Result<GrayImage> {
    gray_from_raw(decode_raw(std::io::Cursor::new(bytes), name.as_ref(), Transformations::EXPAND, bytes.len() as u64)?)
}

fn gray_from_raw(raw: RawPng) -> Result<GrayImage> {
    let channels = match raw.color {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        // EXPAND turns palette images into RGB(A); keep a defensive arm anyway.
        ColorType::Indexed => 1,
    };
    let sixteen = raw.depth == BitDepth::Sixteen;
    let bps = if sixteen { 2 } else { 1 };
    let scale = if sixteen { 65535.0 } else { 255.0 };
    let mut data = Vec::with_capacity(raw.width * raw.height);
    for y in 0..raw.height {
        let row = &raw.bytes[y * raw.line_size..(y + 1) * raw.line_size];
        for x in 0..raw.width {
            let s = |c: usize| -> f64 {
                let o = (x * channels + c) * bps;
                if sixteen { f64::from(u16::from_be_bytes([row[o], row[o + 1]])) } else { f64::from(row[o]) }
            };
            let v = match channels {
                1 | 2 => s(0),
                _ => 0.299 * s(0) + 0.587 * s(1) + 0.114 * s(2),
            };
            data.push((v / scale) as f32);
        }
    }
    Ok(GrayImage { width: raw.width, height: raw.height, data })
}

/// Read a PNG label map without scaling: gray samples (1/2/4/8/16-bit) or palette indices are
/// returned as integers (e.g. instance ids 0..=125, or 0/255 masks).
///
/// # Errors
/// As [`read_png`]; [`DatasetError::Unsupported`] for colour (RGB/alpha) images.
///
/// # Example
/// ```
/// let p = latent_datasets::data_file("cells/dsb2018_instances.png")?;
/// let labels = latent_datasets::read_png_labels(&p)?;
/// assert_eq!(labels.max_label(), 125);
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn read_png_labels(path: impl AsRef<Path>) -> Result<LabelImage> {
    let path = path.as_ref();
    let (r, len) = open_buf(path)?;
    let raw = decode_raw(r, path, Transformations::IDENTITY, len)?;
    labels_from_raw(raw, path)
}

fn labels_from_raw(raw: RawPng, path: &Path) -> Result<LabelImage> {
    if !matches!(raw.color, ColorType::Grayscale | ColorType::Indexed) {
        return Err(DatasetError::Unsupported {
            path: path.to_path_buf(),
            what: format!("label maps must be gray or palette PNGs, got {:?}", raw.color),
        });
    }
    let bits = raw.depth as usize;
    let mut data = Vec::with_capacity(raw.width * raw.height);
    for y in 0..raw.height {
        let row = &raw.bytes[y * raw.line_size..(y + 1) * raw.line_size];
        for x in 0..raw.width {
            let v = match bits {
                16 => u32::from(u16::from_be_bytes([row[2 * x], row[2 * x + 1]])),
                8 => u32::from(row[x]),
                b => {
                    let per = 8 / b;
                    let byte = row[x / per];
                    let shift = 8 - b * (x % per + 1);
                    u32::from((byte >> shift) & ((1u8 << b) - 1))
                }
            };
            data.push(v);
        }
    }
    if raw.color == ColorType::Indexed {
        let entries = raw.palette.as_ref().map_or(0, |p| p.len() / 3);
        if let Some(bad) = data.iter().find(|&&v| v as usize >= entries) {
            return Err(format_err(path, format!("palette index {bad} out of range ({entries} entries)")));
        }
    }
    Ok(LabelImage { width: raw.width, height: raw.height, data })
}

/// Width and height from a PNG header, without decoding the pixels.
///
/// # Errors
/// As [`read_png`].
pub fn png_size(path: impl AsRef<Path>) -> Result<(usize, usize)> {
    let path = path.as_ref();
    let mut dec = png::Decoder::new(open_buf(path)?.0);
    let info = dec.read_header_info().map_err(|e| decoding_err(path, e))?;
    let (w, h) = info.size();
    Ok((w as usize, h as usize))
}

fn write_png_raw(
    path: &Path,
    width: usize,
    height: usize,
    color: ColorType,
    depth: BitDepth,
    bytes: &[u8],
) -> Result<()> {
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(invalid("width/height", format!("{width}x{height}"), "PNG sizes are 1..=u32::MAX")),
    };
    let f = File::create(path).map_err(|e| io_err(path, e))?;
    let mut enc = png::Encoder::new(BufWriter::new(f), w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    let mut writer = enc.write_header().map_err(|e| encoding_err(path, e))?;
    writer.write_image_data(bytes).map_err(|e| encoding_err(path, e))?;
    writer.finish().map_err(|e| encoding_err(path, e))
}

/// Write a gray image as an 8-bit gray PNG (values clamped to `[0,1]` and rounded to `k/255`).
///
/// # Errors
/// [`DatasetError::Io`] when the file cannot be written; [`DatasetError::InvalidParameter`] for
/// an empty image or inconsistent sizes.
///
/// # Example
/// ```
/// use latent_datasets::{GrayImage, read_png, write_png_gray8};
/// let img = GrayImage::from_fn(4, 3, |x, y| (x + 4 * y) as f32 / 255.0);
/// let p = std::env::temp_dir().join(format!("latent_doc_gray_{}.png", std::process::id()));
/// write_png_gray8(&p, &img)?;
/// assert_eq!(read_png(&p)?, img);
/// # std::fs::remove_file(&p).ok();
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn write_png_gray8(path: impl AsRef<Path>, img: &GrayImage) -> Result<()> {
    if !img.is_consistent() {
        return Err(invalid("img.data", img.data.len(), "must hold width*height values"));
    }
    write_png_raw(path.as_ref(), img.width, img.height, ColorType::Grayscale, BitDepth::Eight, &img.to_u8())
}

/// Write raw bytes as an 8-bit gray PNG (masks, label maps with ids ≤ 255).
///
/// # Errors
/// [`DatasetError::InvalidParameter`] when `bytes.len() != width·height`; I/O errors.
pub fn write_png_gray8_bytes(path: impl AsRef<Path>, width: usize, height: usize, bytes: &[u8]) -> Result<()> {
    if width.checked_mul(height) != Some(bytes.len()) {
        return Err(invalid("bytes", bytes.len(), format!("a {width}x{height} image needs width*height bytes")));
    }
    write_png_raw(path.as_ref(), width, height, ColorType::Grayscale, BitDepth::Eight, bytes)
}

/// Write a label map as a 16-bit gray PNG (ids up to 65535).
///
/// # Errors
/// [`DatasetError::InvalidParameter`] for a label above 65535; I/O errors.
pub fn write_png_labels16(path: impl AsRef<Path>, labels: &LabelImage) -> Result<()> {
    if labels.width.checked_mul(labels.height) != Some(labels.data.len()) {
        return Err(invalid("labels.data", labels.data.len(), "must hold width*height values"));
    }
    let mut bytes = Vec::with_capacity(labels.data.len() * 2);
    for &v in &labels.data {
        let v = u16::try_from(v).map_err(|_| invalid("label", v, "16-bit PNG labels are at most 65535"))?;
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    write_png_raw(path.as_ref(), labels.width, labels.height, ColorType::Grayscale, BitDepth::Sixteen, &bytes)
}

/// Write interleaved RGB bytes (`3·width·height`, row-major) as an 8-bit RGB PNG (for figures).
///
/// # Errors
/// [`DatasetError::InvalidParameter`] when `rgb.len() != 3·width·height`; I/O errors.
pub fn write_png_rgb8(path: impl AsRef<Path>, width: usize, height: usize, rgb: &[u8]) -> Result<()> {
    if width.checked_mul(height).and_then(|n| n.checked_mul(3)) != Some(rgb.len()) {
        return Err(invalid("rgb", rgb.len(), format!("a {width}x{height} RGB image needs 3*width*height bytes")));
    }
    write_png_raw(path.as_ref(), width, height, ColorType::Rgb, BitDepth::Eight, rgb)
}

/// Sorted list of the `.png` files (case-insensitive extension) directly inside `dir`.
///
/// # Errors
/// [`DatasetError::Missing`] when `dir` is not a folder; [`DatasetError::Io`] when it cannot be
/// listed.
pub fn list_images(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    crate::paths::require_dir(dir, "PNG images")?;
    crate::paths::list_files_with_ext(dir, "png")
}

/// Read every `.png` directly inside `dir`, in sorted file-name order.
///
/// # Errors
/// As [`list_images`] and [`read_png`].
///
/// # Example
/// ```
/// let dir = latent_datasets::data_file("natural-gray")?;
/// let imgs = latent_datasets::load_image_folder(&dir)?;
/// assert!(imgs.len() >= 17);
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn load_image_folder(dir: impl AsRef<Path>) -> Result<Vec<(PathBuf, GrayImage)>> {
    list_images(dir)?
        .into_iter()
        .map(|p| {
            let img = read_png(&p)?;
            Ok((p, img))
        })
        .collect()
}

/// Write bytes to a file, flushing (shared helper).
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let f = File::create(path).map_err(|e| io_err(path, e))?;
    let mut w = BufWriter::new(f);
    w.write_all(bytes).and_then(|_| w.flush()).map_err(|e| io_err(path, e))
}
