//! MNIST and Fashion-MNIST from the four standard IDX files, and one-class splits.
//!
//! Images are exposed as `f32` in `[0, 1]` (byte / 255) in an `n × (h·w)` **row-major** buffer:
//! sample `i` is the slice `images[i*h*w .. (i+1)*h*w]`, itself row-major (`y*w + x`).
//! [`ImageSet::to_dmatrix_cols`] gives the usual "one sample per column" matrix.

use crate::dataset::Dataset;
use crate::error::{DatasetError, Result, invalid};
use crate::idx::{IdxData, read_idx};
use crate::image::GrayImage;
use crate::paths::{FASHION_MNIST_DEFAULT, MNIST_DEFAULT, MNIST_SMALL, data_file, require_dir};
use latent_linalg::{DMatrix, Real, Tensor4};
use std::path::{Path, PathBuf};

/// Standard file name of the training images.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Standard file name of the training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Standard file name of the test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Standard file name of the test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Fashion-MNIST class names, indexed by label.
pub const FASHION_CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Labelled gray images of one size: `n × (h·w)` row-major `f32` in `[0,1]`, and `u8` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    height: usize,
    width: usize,
    images: Vec<f32>,
    labels: Vec<u8>,
}

impl ImageSet {
    /// Build from a row-major buffer and labels.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `height`, `width` | image size, both ≥ 1 |
    /// | `images` | `labels.len() × height·width` values, sample-major |
    /// | `labels` | one label per image |
    ///
    /// # Errors
    /// [`DatasetError::InvalidParameter`] when the sizes do not fit together.
    pub fn new(height: usize, width: usize, images: Vec<f32>, labels: Vec<u8>) -> Result<Self> {
        if height == 0 || width == 0 {
            return Err(invalid("height/width", format!("{height}x{width}"), "image size must be at least 1x1"));
        }
        let need = height.checked_mul(width).and_then(|d| d.checked_mul(labels.len()));
        if need != Some(images.len()) {
            return Err(invalid(
                "images",
                images.len(),
                format!("{} labels of {height}x{width} images need {:?} values", labels.len(), need),
            ));
        }
        Ok(Self { height, width, images, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// `true` when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Image height (rows).
    pub fn height(&self) -> usize {
        self.height
    }
    /// Image width (columns).
    pub fn width(&self) -> usize {
        self.width
    }
    /// Values per image (`height·width`, 784 for MNIST).
    pub fn dim(&self) -> usize {
        self.height * self.width
    }
    /// The `n × dim` row-major buffer.
    pub fn images(&self) -> &[f32] {
        &self.images
    }
    /// The labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
    /// Image `i` (row-major), `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let d = self.dim();
        (i < self.len()).then(|| &self.images[i * d..(i + 1) * d])
    }
    /// Label of image `i`, `None` past the end.
    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels.get(i).copied()
    }
    /// Image `i` as a [`GrayImage`], `None` past the end.
    pub fn gray_image(&self, i: usize) -> Option<GrayImage> {
        let px = self.image(i)?.to_vec();
        GrayImage::new(self.width, self.height, px).ok()
    }

    /// The images as a `dim × n` matrix, one sample per column.
    ///
    /// # Example
    /// ```
    /// let m = latent_datasets::Mnist::load_small()?;
    /// let x = m.test.to_dmatrix_cols::<f32>();
    /// assert_eq!(x.shape(), (784, 1000));
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn to_dmatrix_cols<T: Real>(&self) -> DMatrix<T> {
        DMatrix::from_iterator(self.dim(), self.len(), self.images.iter().map(|&v| T::lit(f64::from(v))))
    }

    /// The chosen images as a `dim × indices.len()` matrix, one sample per column.
    ///
    /// # Errors
    /// [`DatasetError::OutOfRange`] for an index past the end.
    pub fn to_dmatrix_cols_of<T: Real>(&self, indices: &[usize]) -> Result<DMatrix<T>> {
        self.check_indices(indices)?;
        let d = self.dim();
        Ok(DMatrix::from_iterator(
            d,
            indices.len(),
            indices.iter().flat_map(|&i| self.images[i * d..(i + 1) * d].iter().map(|&v| T::lit(f64::from(v)))),
        ))
    }

    /// All images as an `(n, 1, height, width)` tensor, the input layout of the networks
    /// (`latent-autoencoder`, `latent-unet`); [`ImageSet::to_dmatrix_cols`] is the same data with
    /// one image per column, the layout of sparse coding, and
    /// `latent_linalg::Tensor4::from_columns` / `to_columns` convert between the two.
    ///
    /// # Errors
    /// [`DatasetError::Linalg`] only if the shape overflows (never for a loaded set).
    ///
    /// # Example
    /// ```
    /// let m = latent_datasets::Mnist::load_small()?;
    /// let x = m.test.to_tensor4_all::<f32>()?;
    /// assert_eq!(x.shape(), [1000, 1, 28, 28]);
    /// assert_eq!(x.to_columns(), m.test.to_dmatrix_cols::<f32>());
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn to_tensor4_all<T: Real>(&self) -> Result<Tensor4<T>> {
        let v: Vec<T> = self.images.iter().map(|&v| T::lit(f64::from(v))).collect();
        Ok(Tensor4::from_vec([self.len(), 1, self.height, self.width], v)?)
    }

    /// The chosen images as an `(indices.len(), 1, height, width)` tensor (all of them:
    /// [`ImageSet::to_tensor4_all`]).
    ///
    /// # Errors
    /// [`DatasetError::OutOfRange`] for an index past the end.
    pub fn to_tensor4<T: Real>(&self, indices: &[usize]) -> Result<Tensor4<T>> {
        self.check_indices(indices)?;
        let d = self.dim();
        let v: Vec<T> = indices
            .iter()
            .flat_map(|&i| self.images[i * d..(i + 1) * d].iter().map(|&v| T::lit(f64::from(v))))
            .collect();
        Ok(Tensor4::from_vec([indices.len(), 1, self.height, self.width], v)?)
    }

    /// A new set holding the chosen images (in the given order).
    ///
    /// # Errors
    /// [`DatasetError::OutOfRange`] for an index past the end.
    pub fn subset(&self, indices: &[usize]) -> Result<ImageSet> {
        self.check_indices(indices)?;
        let d = self.dim();
        let images = indices.iter().flat_map(|&i| self.images[i * d..(i + 1) * d].iter().copied()).collect();
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Ok(ImageSet { height: self.height, width: self.width, images, labels })
    }

    /// The first `n` images (all of them when `n ≥ len`).
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            height: self.height,
            width: self.width,
            images: self.images[..n * self.dim()].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The images whose label satisfies `keep`, in order.
    pub fn filter_labels(&self, keep: impl Fn(u8) -> bool) -> ImageSet {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| keep(self.labels[i])).collect();
        // Indices come from 0..len, so `subset` cannot fail.
        self.subset(&idx).unwrap_or_else(|_| self.take(0))
    }

    /// Count of images per label value (index = label).
    pub fn label_counts(&self) -> Vec<usize> {
        let max = self.labels.iter().copied().max().map_or(0, usize::from);
        let mut c = vec![0; if self.is_empty() { 0 } else { max + 1 }];
        self.labels.iter().for_each(|&l| c[usize::from(l)] += 1);
        c
    }

    fn check_indices(&self, indices: &[usize]) -> Result<()> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(&index) => Err(DatasetError::OutOfRange { index, len: self.len() }),
            None => Ok(()),
        }
    }
}

impl Dataset for ImageSet {
    /// `(image (row-major, [0,1]), label)`.
    type Item = (Vec<f32>, u8);
    fn len(&self) -> usize {
        ImageSet::len(self)
    }
    fn get(&self, i: usize) -> Result<Self::Item> {
        match (self.image(i), self.label(i)) {
            (Some(x), Some(y)) => Ok((x.to_vec(), y)),
            _ => Err(DatasetError::OutOfRange { index: i, len: ImageSet::len(self) }),
        }
    }
}

/// Resolve `dir/name` or `dir/name.gz` (the uncompressed file wins when both exist).
///
/// # Errors
/// [`DatasetError::Missing`] when neither exists, naming both and the four files of the format.
pub fn resolve_idx_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DatasetError::Missing {
        path: gz,
        expected: format!(
            "{name} or {name}.gz in {}; an MNIST-format folder holds {TRAIN_IMAGES}, {TRAIN_LABELS}, \
             {TEST_IMAGES}, {TEST_LABELS} (each optionally .gz)",
            dir.display()
        ),
    })
}

/// Load one split from an IDX image file (`u8`, dims `n × h × w`) and an IDX label file
/// (`u8`, dims `n`).
///
/// # Errors
/// Any IDX read error; [`DatasetError::Mismatch`] when an element type or rank is wrong or the
/// image and label counts differ (naming the label file and both counts).
pub fn load_idx_split(images: &Path, labels: &Path) -> Result<ImageSet> {
    let (idims, idata) = read_idx(images)?.into_parts();
    let px = match idata {
        IdxData::U8(v) if idims.len() == 3 => v,
        d => {
            return Err(DatasetError::Mismatch {
                path: images.to_path_buf(),
                what: format!(
                    "expected u8 images with 3 dims (n, rows, cols), got {:?} with dims {idims:?}",
                    d.elem_type()
                ),
            });
        }
    };
    let (ldims, ldata) = read_idx(labels)?.into_parts();
    let lab = match ldata {
        IdxData::U8(v) if ldims.len() == 1 => v,
        d => {
            return Err(DatasetError::Mismatch {
                path: labels.to_path_buf(),
                what: format!("expected u8 labels with 1 dim (n), got {:?} with dims {ldims:?}", d.elem_type()),
            });
        }
    };
    if idims[0] != ldims[0] {
        return Err(DatasetError::Mismatch {
            path: labels.to_path_buf(),
            what: format!("{} labels but {} images in {}", ldims[0], idims[0], images.display()),
        });
    }
    if idims[1] == 0 || idims[2] == 0 {
        return Err(DatasetError::Format { path: images.to_path_buf(), what: format!("zero-sized images {idims:?}") });
    }
    let images = px.into_iter().map(|b| f32::from(b) / 255.0).collect();
    Ok(ImageSet { height: idims[1], width: idims[2], images, labels: lab })
}

fn load_pair(dir: &Path) -> Result<(ImageSet, ImageSet)> {
    require_dir(dir, "the four MNIST-format IDX files")?;
    let train = load_idx_split(&resolve_idx_file(dir, TRAIN_IMAGES)?, &resolve_idx_file(dir, TRAIN_LABELS)?)?;
    let test = load_idx_split(&resolve_idx_file(dir, TEST_IMAGES)?, &resolve_idx_file(dir, TEST_LABELS)?)?;
    if (train.height, train.width) != (test.height, test.width) {
        return Err(DatasetError::SizeMismatch {
            path: resolve_idx_file(dir, TEST_IMAGES)?,
            expected_w: train.width,
            expected_h: train.height,
            actual_w: test.width,
            actual_h: test.height,
        });
    }
    Ok((train, test))
}

/// A one-class anomaly-detection split: train on one class, test on everything.
#[derive(Debug, Clone, PartialEq)]
pub struct OneClassSplit {
    /// The class treated as normal.
    pub normal_class: u8,
    /// Training images of the normal class only (labels kept).
    pub train: ImageSet,
    /// All test images (original labels kept).
    pub test: ImageSet,
    /// Per test image: `true` when anomalous (label ≠ `normal_class`).
    pub test_anomalous: Vec<bool>,
}

/// Build a one-class split from a train and a test set.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `train`, `test` | labelled sets |
/// | `normal_class` | the class `k` treated as normal |
///
/// # Errors
/// [`DatasetError::InvalidParameter`] when no training image has label `normal_class`.
pub fn one_class_split(train: &ImageSet, test: &ImageSet, normal_class: u8) -> Result<OneClassSplit> {
    let tr = train.filter_labels(|l| l == normal_class);
    if tr.is_empty() {
        return Err(invalid("normal_class", normal_class, "no training image has this label"));
    }
    let test_anomalous = test.labels().iter().map(|&l| l != normal_class).collect();
    Ok(OneClassSplit { normal_class, train: tr, test: test.clone(), test_anomalous })
}

macro_rules! mnist_like {
    ($(#[$doc:meta])* $name:ident, $default:expr, $dirname:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            /// Training split.
            pub train: ImageSet,
            /// Test split.
            pub test: ImageSet,
        }

        impl $name {
            #[doc = concat!("Load ", $what, " from any folder holding the four standard files")]
            /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
            /// `t10k-labels-idx1-ubyte`, each optionally gzip-compressed with a `.gz` suffix) —
            /// the full 60k/10k release works the same way.
            ///
            /// # Errors
            /// [`DatasetError::Missing`] naming the absent file and the expected layout; any IDX
            /// error; [`DatasetError::Mismatch`] for image/label count or type mismatches.
            pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
                let (train, test) = load_pair(dir.as_ref())?;
                Ok(Self { train, test })
            }

            #[doc = concat!("Load the default ", $what, " set (`", $dirname, "` in the data folder, see [`crate::find_data_dir`]: `LATENT_DATA_DIR`, else the repository's `data/`).")]
            ///
            /// # Errors
            /// [`DatasetError::Missing`] when there is no data folder (naming every place looked
            /// at and how to set `LATENT_DATA_DIR`) or it lacks the set; otherwise as
            /// [`Self::from_dir`].
            pub fn load_default() -> Result<Self> {
                Self::from_dir(data_file($default)?)
            }

            /// One-class split: train on class `k`'s training images, test on all test images
            /// with anomaly label `class != k`.
            ///
            /// # Errors
            /// [`DatasetError::InvalidParameter`] when class `k` has no training image.
            pub fn one_class(&self, k: u8) -> Result<OneClassSplit> {
                one_class_split(&self.train, &self.test, k)
            }
        }
    };
}

mnist_like!(
    /// MNIST handwritten digits (labels 0–9).
    ///
    /// # Example
    /// ```
    /// let m = latent_datasets::Mnist::load_small()?;
    /// assert_eq!(&m.test.labels()[..5], &[7, 2, 1, 0, 4]);
    /// assert_eq!(m.train.dim(), 784);
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    Mnist,
    MNIST_DEFAULT,
    "mnist-10k-10k",
    "MNIST"
);

mnist_like!(
    /// Fashion-MNIST (Zalando) clothing images (labels 0–9, see [`FASHION_CLASS_NAMES`]).
    ///
    /// # Example
    /// ```
    /// let f = latent_datasets::FashionMnist::load_default()?;
    /// assert_eq!(f.test.len(), 10_000);
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    FashionMnist,
    FASHION_MNIST_DEFAULT,
    "fashion-mnist-10k-10k",
    "Fashion-MNIST"
);

impl Mnist {
    /// Load the small MNIST set used by tests (`mnist-2k-1k` in the data folder, see
    /// [`crate::find_data_dir`]: first 2,000 training and first 1,000 test images).
    ///
    /// # Errors
    /// [`DatasetError::Missing`] when there is no data folder (naming every place looked at and
    /// how to set `LATENT_DATA_DIR`) or it lacks the set; otherwise as [`Mnist::from_dir`].
    pub fn load_small() -> Result<Self> {
        Self::from_dir(data_file(MNIST_SMALL)?)
    }
}
