//! Evaluation of a detector on a labelled test set, and the MVTec AD folder layout.
//!
//! [`evaluate_mvtec`] runs any [`Detector`] over a category opened with
//! [`latent_datasets::mvtec::MvtecCategory::open`] — the real MVTec AD or the synthetic sets
//! written by [`latent_datasets::anomaly::AnomalySet::write_mvtec`] — and returns image AUROC,
//! pixel AUROC, AUPRO (FPR ≤ 0.3), F1-max for images and pixels, and the same per defect type.
//! Images are converted to gray by the loader; [`EvalParams::downscale`] shrinks large images
//! (MVTec AD's are 700–1024 pixels wide) by an integer factor before anything else.

use crate::detector::Detector;
use crate::error::{AnomalyError, Result, invalid, same_len};
use crate::metrics::{Connectivity, F1Max, aupro, auroc, f1_max, pixel_auroc};
use crate::reconstructor::Reconstructor;
use latent_datasets::GrayImage;
use latent_datasets::image::stack_images;
use latent_datasets::mvtec::MvtecCategory;
use latent_linalg::{Real, Tensor4};
use latent_optim::fit::{Checked, ParamGuard};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A labelled test set in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSet<T> {
    /// Images `(N, C, H, W)`.
    pub images: Tensor4<T>,
    /// Ground-truth masks `(N, H, W)` row-major (all `false` for normal images).
    pub masks: Vec<bool>,
    /// Defect type of every image (`"good"` for normal ones).
    pub defects: Vec<String>,
}

impl<T: Real> TestSet<T> {
    /// Check that the parts fit together.
    ///
    /// # Errors
    /// [`AnomalyError::LengthMismatch`] when masks or defect names do not match the images,
    /// [`AnomalyError::Empty`] for no images.
    pub fn validate(&self) -> Result<()> {
        let [n, _, h, w] = self.images.shape();
        if n == 0 || h == 0 || w == 0 {
            return Err(AnomalyError::Empty { what: "test images" });
        }
        same_len("test masks (N·H·W)", n * h * w, self.masks.len())?;
        same_len("test defect names", n, self.defects.len())
    }
    /// `true` for every anomalous image (defect ≠ `"good"`).
    pub fn anomalous(&self) -> Vec<bool> {
        self.defects.iter().map(|d| d != "good").collect()
    }
}

/// Evaluation settings.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `downscale` | `1` | integer shrink factor for images (box average) and masks (a pixel is anomalous when at least half of its block is) | `1..=64` |
/// | `fpr_limit` | `0.3` | upper FPR of AUPRO | `(0, 1]` |
/// | `connectivity` | `Eight` | ground-truth components for AUPRO | — |
/// | `batch_images` | `16` | images analysed per detector call | `>= 1` |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalParams {
    /// Shrink factor.
    pub downscale: usize,
    /// AUPRO integration limit.
    pub fpr_limit: f64,
    /// Connectivity of ground-truth components.
    pub connectivity: Connectivity,
    /// Images per detector call.
    pub batch_images: usize,
}

impl Default for EvalParams {
    fn default() -> Self {
        Self { downscale: 1, fpr_limit: 0.3, connectivity: Connectivity::Eight, batch_images: 16 }
    }
}

impl EvalParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    latent_optim::setters! {
        /// Set the shrink factor.
        downscale: usize,
        /// Set the AUPRO limit.
        fpr_limit: f64,
        /// Set the connectivity.
        connectivity: Connectivity,
        /// Set the images per detector call.
        batch_images: usize,
    }
}

impl ParamGuard for EvalParams {
    type Error = AnomalyError;

    /// # Errors
    /// [`AnomalyError::InvalidParameter`] naming the bad value.
    fn validate(&self) -> Result<()> {
        if self.downscale == 0 || self.downscale > 64 {
            return Err(invalid("downscale", self.downscale, "must be in 1..=64"));
        }
        if !(self.fpr_limit > 0.0 && self.fpr_limit <= 1.0) {
            return Err(invalid("fpr_limit", self.fpr_limit, "must be in (0, 1]"));
        }
        if self.batch_images == 0 {
            return Err(invalid("batch_images", 0, "must be >= 1"));
        }
        Ok(())
    }
}

/// Metrics of one defect type against the normal images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefectReport {
    /// Defect type.
    pub defect: String,
    /// Images of this type.
    pub count: usize,
    /// Image AUROC of these images against the normal ones.
    pub image_auroc: f64,
    /// Pixel AUROC over these images and the normal ones.
    pub pixel_auroc: f64,
    /// AUPRO over these images and the normal ones.
    pub aupro: f64,
}

/// All metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Normal test images.
    pub n_normal: usize,
    /// Anomalous test images.
    pub n_anomalous: usize,
    /// Image-level AUROC.
    pub image_auroc: f64,
    /// Pixel-level AUROC.
    pub pixel_auroc: f64,
    /// AUPRO up to `fpr_limit`, normalised.
    pub aupro: f64,
    /// Image-level F1-max and its threshold.
    pub image_f1: F1Max,
    /// Pixel-level F1-max and its threshold.
    pub pixel_f1: F1Max,
    /// Per defect type, in order of first appearance.
    pub per_defect: Vec<DefectReport>,
}

/// Maps, scores and metrics of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<T> {
    /// The metrics.
    pub report: EvalReport,
    /// Image scores, one per test image.
    pub scores: Vec<f64>,
    /// Anomaly maps `(N, 1, H, W)`.
    pub maps: Tensor4<T>,
    /// Reconstructions, shaped like the test images.
    pub reconstructions: Tensor4<T>,
}

/// Run `detector` over a labelled test set and compute every metric.
///
/// # Errors
/// [`AnomalyError::LengthMismatch`]/[`AnomalyError::Empty`] for an inconsistent test set,
/// [`AnomalyError::SingleClass`] when it lacks normal or anomalous images (or pixels), the
/// and the detector's errors.
pub fn evaluate<T: Real, R: Reconstructor<T>>(
    detector: &Detector<T, R>,
    test: &TestSet<T>,
    params: &Checked<EvalParams>,
) -> Result<Evaluation<T>> {
    test.validate()?;
    let [n, c, h, w] = test.images.shape();
    let d = c * h * w;
    let mut maps = Vec::with_capacity(n * h * w);
    let mut recs = Vec::with_capacity(n * d);
    let mut scores = Vec::with_capacity(n);
    for i0 in (0..n).step_by(params.batch_images) {
        let i1 = (i0 + params.batch_images).min(n);
        let b = Tensor4::from_vec([i1 - i0, c, h, w], test.images.as_slice()[i0 * d..i1 * d].to_vec())?;
        let a = detector.analyze(&b)?;
        maps.extend_from_slice(a.maps.as_slice());
        recs.extend_from_slice(a.reconstruction.as_slice());
        scores.extend(a.scores);
    }
    let anomalous = test.anomalous();
    let shape = [n, h, w];
    let image_auroc = auroc(&scores, &anomalous)?;
    let pixel_auroc_all = pixel_auroc(&maps, &test.masks, shape)?;
    let aupro_all = aupro(&maps, &test.masks, shape, params.fpr_limit, params.connectivity)?;
    let image_f1 = f1_max(&scores, &anomalous)?;
    let pixel_f1 = f1_max(&maps, &test.masks)?;
    let mut kinds: Vec<&str> = Vec::new();
    for dname in &test.defects {
        if dname != "good" && !kinds.contains(&dname.as_str()) {
            kinds.push(dname);
        }
    }
    let plane = h * w;
    let mut per_defect = Vec::new();
    for kind in kinds {
        let idx: Vec<usize> = (0..n).filter(|&i| test.defects[i] == "good" || test.defects[i] == kind).collect();
        let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
        let l: Vec<bool> = idx.iter().map(|&i| anomalous[i]).collect();
        let m: Vec<T> = idx.iter().flat_map(|&i| maps[i * plane..(i + 1) * plane].iter().copied()).collect();
        let g: Vec<bool> = idx.iter().flat_map(|&i| test.masks[i * plane..(i + 1) * plane].iter().copied()).collect();
        let sub = [idx.len(), h, w];
        per_defect.push(DefectReport {
            defect: kind.to_string(),
            count: l.iter().filter(|&&a| a).count(),
            image_auroc: auroc(&s, &l)?,
            pixel_auroc: pixel_auroc(&m, &g, sub)?,
            aupro: aupro(&m, &g, sub, params.fpr_limit, params.connectivity)?,
        });
    }
    let n_anomalous = anomalous.iter().filter(|&&a| a).count();
    Ok(Evaluation {
        report: EvalReport {
            n_normal: n - n_anomalous,
            n_anomalous,
            image_auroc,
            pixel_auroc: pixel_auroc_all,
            aupro: aupro_all,
            image_f1,
            pixel_f1,
            per_defect,
        },
        scores,
        maps: Tensor4::from_vec([n, 1, h, w], maps)?,
        reconstructions: Tensor4::from_vec([n, c, h, w], recs)?,
    })
}

/// Shrink a gray image by an integer factor (box average; the right and bottom remainders are
/// dropped).
///
/// # Errors
/// [`AnomalyError::InvalidParameter`] for a zero factor or an image smaller than it.
pub fn downscale_image(img: &GrayImage, f: usize) -> Result<GrayImage> {
    if f == 0 || img.width < f || img.height < f {
        return Err(invalid("downscale", f, format!("must be in 1..={}", img.width.min(img.height))));
    }
    if f == 1 {
        return Ok(img.clone());
    }
    let (w, h) = (img.width / f, img.height / f);
    let inv = 1.0 / (f * f) as f32;
    Ok(GrayImage::from_fn(w, h, |x, y| {
        let mut s = 0.0;
        for yy in y * f..(y + 1) * f {
            for xx in x * f..(x + 1) * f {
                s += img.data[yy * img.width + xx];
            }
        }
        s * inv
    }))
}

/// Shrink a mask by an integer factor: a pixel is anomalous when at least half of its `f × f`
/// block is.
///
/// # Errors
/// [`AnomalyError::LengthMismatch`] when `mask.len() != width·height`;
/// [`AnomalyError::InvalidParameter`] for a zero factor or a mask smaller than it.
pub fn downscale_mask(mask: &[bool], width: usize, height: usize, f: usize) -> Result<Vec<bool>> {
    let n = width
        .checked_mul(height)
        .ok_or_else(|| invalid("width·height", format!("{width}x{height}"), "overflows usize"))?;
    same_len("mask vs width·height", n, mask.len())?;
    if f == 0 || width < f || height < f {
        return Err(invalid("downscale", f, format!("must be in 1..={}", width.min(height))));
    }
    let (w, h) = (width / f, height / f);
    Ok((0..w * h)
        .map(|k| {
            let (x, y) = (k % w, k / w);
            let on = (y * f..(y + 1) * f)
                .flat_map(|yy| (x * f..(x + 1) * f).map(move |xx| (yy, xx)))
                .filter(|&(yy, xx)| mask[yy * width + xx])
                .count();
            2 * on >= f * f
        })
        .collect())
}

/// The training images of an MVTec AD category as `(N, 1, H, W)` (gray, shrunk by `downscale`).
///
/// # Errors
/// Loader errors ([`AnomalyError::Dataset`]), [`AnomalyError::InvalidParameter`] for a bad
/// factor or images of different sizes.
pub fn load_mvtec_train<T: Real>(category: &MvtecCategory, downscale: usize) -> Result<Tensor4<T>> {
    let imgs = (0..category.train.len())
        .map(|i| downscale_image(&category.load_train(i)?, downscale))
        .collect::<Result<Vec<_>>>()?;
    Ok(stack_images(&imgs)?)
}

/// The test images and masks of an MVTec AD category (gray, shrunk by `downscale`).
///
/// # Errors
/// As [`load_mvtec_train`].
pub fn load_mvtec_test<T: Real>(category: &MvtecCategory, downscale: usize) -> Result<TestSet<T>> {
    let mut imgs = Vec::with_capacity(category.test.len());
    let mut masks = Vec::new();
    let mut defects = Vec::with_capacity(category.test.len());
    for i in 0..category.test.len() {
        let s = category.load_test(i)?;
        let (w, h) = (s.image.width, s.image.height);
        imgs.push(downscale_image(&s.image, downscale)?);
        masks.extend(downscale_mask(&s.mask, w, h, downscale)?);
        defects.push(s.defect);
    }
    if imgs.is_empty() {
        return Err(AnomalyError::Empty { what: "test images" });
    }
    Ok(TestSet { images: stack_images(&imgs)?, masks, defects })
}

/// Load the test split of an MVTec AD category, run `detector` over it and compute every metric.
///
/// # Errors
/// As [`load_mvtec_test`] and [`evaluate`].
///
/// # Example
/// (with the default `sparse-coding` feature, for the patch dictionary)
#[cfg_attr(feature = "sparse-coding", doc = "```")]
#[cfg_attr(not(feature = "sparse-coding"), doc = "```ignore")]
/// use latent_anomaly::{Detector, DetectorParams, EvalParams, ParamGuard, evaluate_mvtec, load_mvtec_train};
/// use latent_anomaly::{PatchCoder, PatchDictionaryParams};
/// use latent_datasets::anomaly::{AnomalyConfig, generate_anomaly_set, load_texture};
/// use latent_datasets::mvtec::MvtecCategory;
/// let cfg = AnomalyConfig { crop: 32, n_train: 8, n_test_good: 4, n_test_per_defect: 2, ..Default::default() };
/// let set = generate_anomaly_set(&load_texture("gravel")?, "gravel", &cfg, 0)?;
/// let root = std::env::temp_dir().join(format!("latent_anomaly_doc_{}", std::process::id()));
/// set.write_mvtec(&root)?;
/// let cat = MvtecCategory::open(&root, "gravel")?;
/// let train = load_mvtec_train::<f32>(&cat, 1)?;
/// let dict = PatchDictionaryParams::new().atoms(32).coder(PatchCoder::Omp { k: 3 }).train_patches(2000).check()?.fit(&train)?;
/// let det = Detector::new(dict, DetectorParams::new().check()?);
/// let eval = evaluate_mvtec(&det, &cat, &EvalParams::new().check()?)?;
/// assert_eq!(eval.report.per_defect.len(), 6);
/// assert!(eval.report.pixel_auroc > 0.5);
/// # std::fs::remove_dir_all(&root).ok();
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn evaluate_mvtec<T: Real, R: Reconstructor<T>>(
    detector: &Detector<T, R>,
    category: &MvtecCategory,
    params: &Checked<EvalParams>,
) -> Result<Evaluation<T>> {
    let test = load_mvtec_test(category, params.downscale)?;
    evaluate(detector, &test, params)
}

/// `count` random `height × width` crops of the images `(N, C, H, W)` (all channels of a crop
/// come from the same place), seeded: training data for a model that is applied tile-wise.
///
/// # Errors
/// [`AnomalyError::Empty`], [`AnomalyError::InvalidParameter`] for a zero size or count, and
/// [`AnomalyError::ShapeMismatch`] when a crop is larger than the images.
///
/// # Example
/// ```
/// use latent_anomaly::random_crops;
/// use latent_linalg::Tensor4;
/// let x = Tensor4::<f32>::from_fn([2, 1, 8, 8], |[n, _, i, j]| (n * 64 + i * 8 + j) as f32)?;
/// let c = random_crops(&x, 4, 4, 10, 7)?;
/// assert_eq!(c.shape(), [10, 1, 4, 4]);
/// assert_eq!(c, random_crops(&x, 4, 4, 10, 7)?);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn random_crops<T: Real>(
    images: &Tensor4<T>,
    height: usize,
    width: usize,
    count: usize,
    seed: u64,
) -> Result<Tensor4<T>> {
    if images.is_empty() {
        return Err(AnomalyError::Empty { what: "images to crop" });
    }
    if height == 0 || width == 0 {
        return Err(invalid("crop size", format!("{height}x{width}"), "must be at least 1x1"));
    }
    if count == 0 {
        return Err(invalid("count", 0, "must be >= 1"));
    }
    let [n, c, h, w] = images.shape();
    if height > h || width > w {
        return Err(crate::error::shape_err(
            "random_crops",
            format!("images of at least {height}x{width}"),
            images.shape(),
        ));
    }
    let total = count
        .checked_mul(c * height * width)
        .filter(|&t| t <= 1 << 31)
        .ok_or_else(|| invalid("count", count, "the crops would not fit in memory"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let src = images.as_slice();
    let mut out = Vec::with_capacity(total);
    for _ in 0..count {
        let i = rng.random_range(0..n);
        let y0 = rng.random_range(0..=h - height);
        let x0 = rng.random_range(0..=w - width);
        for ch in 0..c {
            for y in 0..height {
                let o = ((i * c + ch) * h + y0 + y) * w + x0;
                out.extend_from_slice(&src[o..o + width]);
            }
        }
    }
    Ok(Tensor4::from_vec([count, c, height, width], out)?)
}
