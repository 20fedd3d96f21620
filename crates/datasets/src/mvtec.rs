//! The MVTec AD folder layout, for the real data set and for the synthetic one written by
//! [`crate::anomaly::AnomalySet::write_mvtec`]:
//!
//! ```text
//! <root>/<category>/train/good/*.png
//! <root>/<category>/test/good/*.png                 (no masks)
//! <root>/<category>/test/<defect>/<name>.png
//! <root>/<category>/ground_truth/<defect>/<name>_mask.png
//! ```
//!
//! [`MvtecCategory::open`] scans the folders (sorted), pairs every defect image with its mask
//! and checks the pairing strictly: a defect image without a mask, a mask without an image,
//! masks for `good` images, and image/mask size mismatches (from the PNG headers) are typed
//! errors naming the file. Pixels are only decoded by the `load_*` methods.

use crate::dataset::Dataset;
use crate::error::{DatasetError, Result, format_err, io_err};
use crate::image::{GrayImage, list_images, png_size, read_png, read_png_labels};
use crate::paths::require_dir;
use std::path::{Path, PathBuf};

/// One test image of a category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MvtecTestEntry {
    /// The image file.
    pub image: PathBuf,
    /// Defect folder name (`"good"` for normal images).
    pub defect: String,
    /// The ground-truth mask (`None` for `good`).
    pub mask: Option<PathBuf>,
}

impl MvtecTestEntry {
    /// `true` for defect images.
    pub fn is_anomalous(&self) -> bool {
        self.defect != "good"
    }
}

/// A decoded test sample.
#[derive(Debug, Clone, PartialEq)]
pub struct MvtecTestSample {
    /// The image, converted to gray in `[0, 1]`.
    pub image: GrayImage,
    /// Defect folder name (`"good"` for normal images).
    pub defect: String,
    /// `true` for defect images.
    pub anomalous: bool,
    /// Per pixel: `true` where the mask is non-zero (all `false` for `good`).
    pub mask: Vec<bool>,
}

/// The files of one MVTec AD category, scanned and paired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MvtecCategory {
    /// `<root>/<category>`.
    pub dir: PathBuf,
    /// Category name.
    pub category: String,
    /// Training images (`train/good`), sorted.
    pub train: Vec<PathBuf>,
    /// Test images: `test/good` first, then the defect folders in sorted order.
    pub test: Vec<MvtecTestEntry>,
}

fn sorted_subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|er| io_err(dir, er))?;
        let p = e.path();
        if p.is_dir() {
            let name =
                e.file_name().to_str().map(str::to_string).ok_or_else(|| format_err(&p, "folder name is not UTF-8"))?;
            out.push((name, p));
        }
    }
    out.sort();
    Ok(out)
}

fn stem(p: &Path) -> Result<String> {
    p.file_stem().and_then(|s| s.to_str()).map(str::to_string).ok_or_else(|| format_err(p, "file name is not UTF-8"))
}

/// Category names under `root`: the sub-folders that hold `train/good`.
///
/// # Errors
/// [`DatasetError::Missing`] when `root` is not a folder; I/O errors.
pub fn list_categories(root: impl AsRef<Path>) -> Result<Vec<String>> {
    let root = root.as_ref();
    require_dir(root, "MVTec AD categories (<category>/train/good/*.png)")?;
    Ok(sorted_subdirs(root)?
        .into_iter()
        .filter(|(_, p)| p.join("train").join("good").is_dir())
        .map(|(n, _)| n)
        .collect())
}

impl MvtecCategory {
    /// Scan `<root>/<category>` and pair images with masks.
    ///
    /// # Errors
    /// [`DatasetError::Missing`] when `train/good` or `test` is absent or `train/good` is empty;
    /// [`DatasetError::MissingMask`] for a defect image without `<name>_mask.png`;
    /// [`DatasetError::OrphanMask`] for a mask without an image (or a mask folder without a
    /// test folder); [`DatasetError::Format`] for a mask file not named `*_mask.png` or masks
    /// for `good`; [`DatasetError::SizeMismatch`] naming a mask whose size differs from its
    /// image; PNG header errors.
    ///
    /// # Example
    /// ```
    /// use latent_datasets::anomaly::{AnomalyConfig, generate_anomaly_set, load_texture};
    /// use latent_datasets::mvtec::MvtecCategory;
    /// let cfg = AnomalyConfig { crop: 32, n_train: 3, n_test_good: 2, n_test_per_defect: 1, ..Default::default() };
    /// let set = generate_anomaly_set(&load_texture("brick")?, "brick", &cfg, 0)?;
    /// let root = std::env::temp_dir().join(format!("latent_doc_mvtec_{}", std::process::id()));
    /// set.write_mvtec(&root)?;
    /// let cat = MvtecCategory::open(&root, "brick")?;
    /// assert_eq!((cat.train.len(), cat.test.len()), (3, 8));
    /// let s = cat.load_test(2)?;
    /// assert!(s.anomalous && s.mask.iter().any(|&m| m));
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn open(root: impl AsRef<Path>, category: &str) -> Result<Self> {
        let dir = root.as_ref().join(category);
        let train_dir = dir.join("train").join("good");
        require_dir(&train_dir, "the defect-free training images (MVTec layout <category>/train/good/*.png)")?;
        let train = list_images(&train_dir)?;
        if train.is_empty() {
            return Err(DatasetError::Missing {
                path: train_dir,
                expected: "at least one training image *.png".into(),
            });
        }
        let test_dir = dir.join("test");
        require_dir(&test_dir, "the test images (MVTec layout <category>/test/<defect>/*.png)")?;
        let gt_dir = dir.join("ground_truth");
        let mut test = Vec::new();
        let mut defects = sorted_subdirs(&test_dir)?;
        // `good` first, then the defects in sorted order
        defects.sort_by_key(|(n, _)| (n != "good", n.clone()));
        for (defect, ddir) in &defects {
            for image in list_images(ddir)? {
                if defect == "good" {
                    test.push(MvtecTestEntry { image, defect: defect.clone(), mask: None });
                    continue;
                }
                let mask = gt_dir.join(defect).join(format!("{}_mask.png", stem(&image)?));
                if !mask.is_file() {
                    return Err(DatasetError::MissingMask { image, expected: mask });
                }
                let (iw, ih) = png_size(&image)?;
                let (mw, mh) = png_size(&mask)?;
                if (iw, ih) != (mw, mh) {
                    return Err(DatasetError::SizeMismatch {
                        path: mask,
                        expected_w: iw,
                        expected_h: ih,
                        actual_w: mw,
                        actual_h: mh,
                    });
                }
                test.push(MvtecTestEntry { image, defect: defect.clone(), mask: Some(mask) });
            }
        }
        if gt_dir.is_dir() {
            for (defect, mdir) in sorted_subdirs(&gt_dir)? {
                for mask in list_images(&mdir)? {
                    if defect == "good" {
                        return Err(format_err(&mask, "good test images have no ground-truth masks"));
                    }
                    let s = stem(&mask)?;
                    let Some(name) = s.strip_suffix("_mask") else {
                        return Err(format_err(&mask, "ground-truth masks must be named <image name>_mask.png"));
                    };
                    let expected_image = test_dir.join(&defect).join(format!("{name}.png"));
                    if !test.iter().any(|t| t.mask.as_deref() == Some(mask.as_path())) {
                        return Err(DatasetError::OrphanMask { mask, expected_image });
                    }
                }
            }
        }
        Ok(Self { dir, category: category.to_string(), train, test })
    }

    /// Decode training image `i` (gray, `[0,1]`).
    ///
    /// # Errors
    /// [`DatasetError::OutOfRange`]; PNG errors.
    pub fn load_train(&self, i: usize) -> Result<GrayImage> {
        let p = self.train.get(i).ok_or(DatasetError::OutOfRange { index: i, len: self.train.len() })?;
        read_png(p)
    }

    /// Decode test image `i` with its mask.
    ///
    /// # Errors
    /// [`DatasetError::OutOfRange`]; PNG errors; [`DatasetError::SizeMismatch`] when the decoded
    /// mask size differs from the image.
    pub fn load_test(&self, i: usize) -> Result<MvtecTestSample> {
        let e = self.test.get(i).ok_or(DatasetError::OutOfRange { index: i, len: self.test.len() })?;
        let image = read_png(&e.image)?;
        let mask = match &e.mask {
            None => vec![false; image.data.len()],
            Some(mp) => {
                let m = read_png_labels(mp)?;
                if (m.width, m.height) != (image.width, image.height) {
                    return Err(DatasetError::SizeMismatch {
                        path: mp.clone(),
                        expected_w: image.width,
                        expected_h: image.height,
                        actual_w: m.width,
                        actual_h: m.height,
                    });
                }
                m.data.iter().map(|&v| v != 0).collect()
            }
        };
        Ok(MvtecTestSample { image, defect: e.defect.clone(), anomalous: e.is_anomalous(), mask })
    }

    /// The defect folder names (without `good`), sorted.
    pub fn defect_kinds(&self) -> Vec<String> {
        let mut v: Vec<String> = self.test.iter().filter(|t| t.is_anomalous()).map(|t| t.defect.clone()).collect();
        v.dedup();
        v
    }

    /// The training images as a [`Dataset`] (decoded on `get`).
    pub fn train_set(&self) -> MvtecTrainSet<'_> {
        MvtecTrainSet(self)
    }
    /// The test images as a [`Dataset`] (decoded on `get`).
    pub fn test_set(&self) -> MvtecTestSet<'_> {
        MvtecTestSet(self)
    }
}

/// [`Dataset`] view of a category's training images.
#[derive(Debug, Clone, Copy)]
pub struct MvtecTrainSet<'a>(&'a MvtecCategory);

impl Dataset for MvtecTrainSet<'_> {
    type Item = GrayImage;
    fn len(&self) -> usize {
        self.0.train.len()
    }
    fn get(&self, i: usize) -> Result<GrayImage> {
        self.0.load_train(i)
    }
}

/// [`Dataset`] view of a category's test images.
#[derive(Debug, Clone, Copy)]
pub struct MvtecTestSet<'a>(&'a MvtecCategory);

impl Dataset for MvtecTestSet<'_> {
    type Item = MvtecTestSample;
    fn len(&self) -> usize {
        self.0.test.len()
    }
    fn get(&self, i: usize) -> Result<MvtecTestSample> {
        self.0.load_test(i)
    }
}
