//! Synthetic anomaly-detection data: defects (scratch, crack, hole, stain, missing patch,
//! contamination) painted onto real CC0 textures with exact pixel masks, written in the MVTec
//! AD folder layout so that the same loader ([`crate::mvtec`]) serves the real MVTec AD.
//!
//! Exactness: a defect is painted only inside its footprint, every painted value is rounded to
//! the 8-bit grid `k/255`, and the ground-truth mask is computed afterwards as exactly the
//! pixels whose value changed. Source crops are rounded to the 8-bit grid first, so masks stay
//! exact through an 8-bit PNG round trip.

use crate::dataset::rng_from_seed;
use crate::error::{Result, invalid, io_err};
use crate::image::{GrayImage, read_png, write_png_gray8, write_png_gray8_bytes};
use crate::paths::{NATURAL_GRAY, data_file};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The CC0 textures shipped in `data/natural-gray` (`skimage_<name>.png`, 512×512).
pub const TEXTURES: [&str; 3] = ["brick", "grass", "gravel"];

/// Load one of the [`TEXTURES`] from the repository's data folder.
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for an unknown name;
/// [`crate::DatasetError::Missing`] when there is no data folder (see [`crate::find_data_dir`])
/// or the texture is not in it; PNG errors.
///
/// # Example
/// ```
/// let t = latent_datasets::anomaly::load_texture("brick")?;
/// assert_eq!((t.width, t.height), (512, 512));
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn load_texture(name: &str) -> Result<GrayImage> {
    if !TEXTURES.contains(&name) {
        return Err(invalid("name", name, format!("known textures: {TEXTURES:?}")));
    }
    read_png(data_file(&format!("{NATURAL_GRAY}/skimage_{name}.png"))?)
}

/// Kind of a synthetic defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefectKind {
    /// A thin bright or dark curved line.
    Scratch,
    /// A dark, jagged, branching line.
    Crack,
    /// A dark elliptical hole with a soft rim.
    Hole,
    /// A large soft blob that darkens or brightens the texture.
    Stain,
    /// A rectangle whose texture is replaced by a flat gray level.
    MissingPatch,
    /// A cluster of small bright/dark specks.
    Contamination,
}

impl DefectKind {
    /// All kinds.
    pub const ALL: [DefectKind; 6] = [
        DefectKind::Scratch,
        DefectKind::Crack,
        DefectKind::Hole,
        DefectKind::Stain,
        DefectKind::MissingPatch,
        DefectKind::Contamination,
    ];

    /// Folder name in the MVTec layout (`scratch`, `crack`, `hole`, `stain`, `missing_patch`,
    /// `contamination`).
    pub fn name(self) -> &'static str {
        match self {
            DefectKind::Scratch => "scratch",
            DefectKind::Crack => "crack",
            DefectKind::Hole => "hole",
            DefectKind::Stain => "stain",
            DefectKind::MissingPatch => "missing_patch",
            DefectKind::Contamination => "contamination",
        }
    }

    /// The kind for a folder name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Per-pixel paint: `new = (1 − α)·old + α·target`, only where `α > 0`.
struct Canvas<'a> {
    img: &'a mut GrayImage,
}

impl Canvas<'_> {
    fn blend(&mut self, x: i64, y: i64, alpha: f64, target: f64) {
        if x < 0 || y < 0 || alpha <= 0.0 {
            return;
        }
        let (x, y) = (x as usize, y as usize);
        if let Some(old) = self.img.get(x, y) {
            let a = alpha.min(1.0);
            let v = (1.0 - a) * f64::from(old) + a * target;
            let q = f32::from(crate::image::to_u8(v as f32)) / 255.0;
            self.img.set(x, y, q);
        }
    }

    /// Anti-aliased thick segment from `p` to `q`.
    fn segment(&mut self, p: (f64, f64), q: (f64, f64), half_width: f64, target: f64) {
        let r = half_width + 1.0;
        let (x0, x1) = ((p.0.min(q.0) - r).floor() as i64, (p.0.max(q.0) + r).ceil() as i64);
        let (y0, y1) = ((p.1.min(q.1) - r).floor() as i64, (p.1.max(q.1) + r).ceil() as i64);
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let len2 = (dx * dx + dy * dy).max(1e-12);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = (((cx - p.0) * dx + (cy - p.1) * dy) / len2).clamp(0.0, 1.0);
                let d = ((cx - p.0 - t * dx).powi(2) + (cy - p.1 - t * dy).powi(2)).sqrt();
                self.blend(x, y, half_width + 0.5 - d, target);
            }
        }
    }

    /// Soft-edged ellipse.
    fn ellipse(&mut self, c: (f64, f64), a: f64, b: f64, theta: f64, soft: f64, target: f64, strength: f64) {
        let r = a.max(b) + soft + 1.0;
        let (cs, sn) = (theta.cos(), theta.sin());
        for y in (c.1 - r).floor() as i64..=(c.1 + r).ceil() as i64 {
            for x in (c.0 - r).floor() as i64..=(c.0 + r).ceil() as i64 {
                let (dx, dy) = (x as f64 + 0.5 - c.0, y as f64 + 0.5 - c.1);
                let u = (dx * cs + dy * sn) / a;
                let v = (-dx * sn + dy * cs) / b;
                let rho = (u * u + v * v).sqrt();
                // distance outside the boundary, in pixels (approx.)
                let out = (rho - 1.0) * a.min(b);
                let alpha = if soft > 0.0 {
                    (1.0 - out / soft).clamp(0.0, 1.0)
                } else if rho <= 1.0 {
                    1.0
                } else {
                    0.0
                };
                self.blend(x, y, strength * alpha, target);
            }
        }
    }
}

fn paint(img: &mut GrayImage, kind: DefectKind, rng: &mut ChaCha8Rng) {
    let (w, h) = (img.width as f64, img.height as f64);
    let s = w.min(h);
    let mean = f64::from(img.mean());
    let mut cv = Canvas { img };
    let centre = |rng: &mut ChaCha8Rng, margin: f64| {
        (
            rng.random_range(margin..(w - margin).max(margin + 1.0)),
            rng.random_range(margin..(h - margin).max(margin + 1.0)),
        )
    };
    match kind {
        DefectKind::Scratch => {
            let target = if rng.random::<bool>() { rng.random_range(0.85..1.0) } else { rng.random_range(0.0..0.12) };
            let len = rng.random_range(0.3..0.7) * s;
            let mut p = centre(rng, 0.15 * s);
            let mut ang = rng.random_range(0.0..std::f64::consts::TAU);
            let bend = rng.random_range(-0.04..0.04);
            let hw = rng.random_range(0.5..1.3);
            let steps = 12;
            for _ in 0..steps {
                let q = (p.0 + len / steps as f64 * ang.cos(), p.1 + len / steps as f64 * ang.sin());
                cv.segment(p, q, hw, target);
                p = q;
                ang += bend;
            }
        }
        DefectKind::Crack => {
            let target = rng.random_range(0.0..0.15);
            let mut stack = vec![(centre(rng, 0.2 * s), rng.random_range(0.0..std::f64::consts::TAU), 1.2f64, 0u32)];
            while let Some((mut p, mut ang, hw, depth)) = stack.pop() {
                let n = rng.random_range(8..20);
                for _ in 0..n {
                    ang += rng.random_range(-0.6..0.6);
                    let step = rng.random_range(2.0..5.0);
                    let q = (p.0 + step * ang.cos(), p.1 + step * ang.sin());
                    cv.segment(p, q, hw, target);
                    p = q;
                    if depth < 2 && rng.random::<f64>() < 0.12 {
                        stack.push((p, ang + rng.random_range(-1.2..1.2), (hw * 0.7).max(0.5), depth + 1));
                    }
                }
            }
        }
        DefectKind::Hole => {
            let a = rng.random_range(0.04..0.1) * s;
            let b = a * rng.random_range(0.6..1.0);
            let c = centre(rng, 0.15 * s);
            let th = rng.random_range(0.0..std::f64::consts::PI);
            cv.ellipse(c, a + 1.5, b + 1.5, th, 1.5, (mean * 0.5).min(0.3), 0.6);
            cv.ellipse(c, a, b, th, 1.0, rng.random_range(0.0..0.06), 1.0);
        }
        DefectKind::Stain => {
            let dark = rng.random::<bool>();
            let target = if dark {
                (mean - rng.random_range(0.25..0.4)).max(0.0)
            } else {
                (mean + rng.random_range(0.25..0.4)).min(1.0)
            };
            let c0 = centre(rng, 0.2 * s);
            let blobs = rng.random_range(2..5);
            for _ in 0..blobs {
                let c = (c0.0 + rng.random_range(-0.06..0.06) * s, c0.1 + rng.random_range(-0.06..0.06) * s);
                let a = rng.random_range(0.06..0.12) * s;
                let b = a * rng.random_range(0.5..1.0);
                cv.ellipse(c, a, b, rng.random_range(0.0..std::f64::consts::PI), 0.4 * a, target, 0.6);
            }
        }
        DefectKind::MissingPatch => {
            let pw = (rng.random_range(0.1..0.25) * w).round().max(2.0) as i64;
            let ph = (rng.random_range(0.1..0.25) * h).round().max(2.0) as i64;
            let x0 = rng.random_range(0..=(w as i64 - pw).max(0));
            let y0 = rng.random_range(0..=(h as i64 - ph).max(0));
            let level = if mean > 0.5 { rng.random_range(0.05..0.25) } else { rng.random_range(0.75..0.95) };
            for y in y0..y0 + ph {
                for x in x0..x0 + pw {
                    cv.blend(x, y, 1.0, level);
                }
            }
        }
        DefectKind::Contamination => {
            let c = centre(rng, 0.15 * s);
            let spread = rng.random_range(0.04..0.1) * s;
            let n = rng.random_range(6..16);
            for _ in 0..n {
                let p = (c.0 + rng.random_range(-spread..spread), c.1 + rng.random_range(-spread..spread));
                let r = rng.random_range(0.8..2.5);
                let target = if rng.random::<bool>() { rng.random_range(0.9..1.0) } else { rng.random_range(0.0..0.1) };
                cv.ellipse(
                    p,
                    r,
                    r * rng.random_range(0.6..1.0),
                    rng.random_range(0.0..std::f64::consts::PI),
                    0.7,
                    target,
                    1.0,
                );
            }
        }
    }
}

/// Paint one defect of `kind` onto a copy of `img` and return it with its exact mask
/// (`true` exactly where the pixel value changed). Retries a few times if a draw happens to
/// change nothing.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `img` | source image (at least 16×16) |
/// | `kind` | defect kind |
/// | `rng` | random source |
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for an image smaller than 16×16 or when no draw
/// changes any pixel (e.g. a constant image the defect's colour).
///
/// # Example
/// ```
/// use latent_datasets::{anomaly::{DefectKind, load_texture, paint_defect}, rng_from_seed};
/// let t = load_texture("grass")?.crop(0, 0, 128, 128)?;
/// let (d, mask) = paint_defect(&t, DefectKind::Scratch, &mut rng_from_seed(1))?;
/// for i in 0..t.data.len() {
///     assert_eq!(mask[i], d.data[i] != t.data[i]);
/// }
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn paint_defect(img: &GrayImage, kind: DefectKind, rng: &mut ChaCha8Rng) -> Result<(GrayImage, Vec<bool>)> {
    if img.width < 16 || img.height < 16 || !img.is_consistent() {
        return Err(invalid(
            "img",
            format!("{}x{}", img.width, img.height),
            "need a consistent image of at least 16x16",
        ));
    }
    for _ in 0..8 {
        let mut out = img.clone();
        paint(&mut out, kind, rng);
        let mask: Vec<bool> = out.data.iter().zip(&img.data).map(|(a, b)| a != b).collect();
        if mask.iter().any(|&m| m) {
            return Ok((out, mask));
        }
    }
    Err(invalid("img", kind.name(), "no defect draw changed any pixel"))
}

/// Settings of [`generate_anomaly_set`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyConfig {
    /// Square crop size in pixels (≥ 16).
    pub crop: usize,
    /// Number of defect-free training crops.
    pub n_train: usize,
    /// Number of defect-free test crops.
    pub n_test_good: usize,
    /// Number of test crops per defect kind.
    pub n_test_per_defect: usize,
    /// Defect kinds to generate.
    pub defects: Vec<DefectKind>,
}

impl Default for AnomalyConfig {
    /// 128×128 crops, 200 train, 40 good test, 20 per defect, all six kinds.
    fn default() -> Self {
        Self { crop: 128, n_train: 200, n_test_good: 40, n_test_per_defect: 20, defects: DefectKind::ALL.to_vec() }
    }
}

/// One test crop with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalySample {
    /// The crop (values on the 8-bit grid).
    pub image: GrayImage,
    /// `None` for a good crop.
    pub defect: Option<DefectKind>,
    /// Changed pixels (all `false` for a good crop).
    pub mask: Vec<bool>,
}

/// A synthetic anomaly data set for one texture ("category").
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalySet {
    /// Category name (folder name in the MVTec layout).
    pub category: String,
    /// Defect-free training crops.
    pub train: Vec<GrayImage>,
    /// Test crops: first the good ones, then each defect kind in `cfg.defects` order.
    pub test: Vec<AnomalySample>,
}

/// Cut crops from a texture and paint defects: training crops come from the top half of the
/// texture, test crops from the bottom half (so no test pixel was seen in training).
///
/// | parameter | meaning |
/// | --- | --- |
/// | `texture` | source texture, at least `crop` wide and `2·crop` high |
/// | `category` | name used for the MVTec folder (non-empty, no path separators) |
/// | `cfg` | sizes and defect kinds |
/// | `seed` | ChaCha8 seed |
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for a bad category name, a crop below 16 or a
/// texture too small.
///
/// # Example
/// ```
/// use latent_datasets::anomaly::{AnomalyConfig, generate_anomaly_set, load_texture};
/// let cfg = AnomalyConfig { crop: 64, n_train: 4, n_test_good: 2, n_test_per_defect: 1, ..Default::default() };
/// let set = generate_anomaly_set(&load_texture("gravel")?, "gravel", &cfg, 0)?;
/// assert_eq!((set.train.len(), set.test.len()), (4, 8));
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn generate_anomaly_set(texture: &GrayImage, category: &str, cfg: &AnomalyConfig, seed: u64) -> Result<AnomalySet> {
    check_category(category)?;
    let c = cfg.crop;
    if c < 16 {
        return Err(invalid("crop", c, "must be at least 16"));
    }
    if texture.width < c || texture.height / 2 < c || !texture.is_consistent() {
        return Err(invalid(
            "texture",
            format!("{}x{}", texture.width, texture.height),
            format!("need at least {c}x{} (train crops from the top half, test from the bottom)", 2 * c),
        ));
    }
    let half = texture.height / 2;
    let mut rng = rng_from_seed(seed);
    let crop = |rng: &mut ChaCha8Rng, top: bool| -> Result<GrayImage> {
        let x0 = rng.random_range(0..=texture.width - c);
        let y0 = if top { rng.random_range(0..=half - c) } else { rng.random_range(half..=texture.height - c) };
        let mut img = texture.crop(x0, y0, c, c)?;
        img.quantize_u8();
        Ok(img)
    };
    let train = (0..cfg.n_train).map(|_| crop(&mut rng, true)).collect::<Result<Vec<_>>>()?;
    let mut test = Vec::with_capacity(cfg.n_test_good + cfg.defects.len() * cfg.n_test_per_defect);
    for _ in 0..cfg.n_test_good {
        test.push(AnomalySample { image: crop(&mut rng, false)?, defect: None, mask: vec![false; c * c] });
    }
    for &kind in &cfg.defects {
        for _ in 0..cfg.n_test_per_defect {
            let base = crop(&mut rng, false)?;
            let (image, mask) = paint_defect(&base, kind, &mut rng)?;
            test.push(AnomalySample { image, defect: Some(kind), mask });
        }
    }
    Ok(AnomalySet { category: category.to_string(), train, test })
}

fn check_category(category: &str) -> Result<()> {
    if category.is_empty() || category.contains(['/', '\\']) || category == "." || category == ".." {
        return Err(invalid("category", category, "a non-empty folder name without path separators"));
    }
    Ok(())
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| io_err(p, e))
}

impl AnomalySet {
    /// Write in the MVTec AD layout under `root` and return `root/<category>`:
    /// `train/good/NNN.png`, `test/good/NNN.png`, `test/<defect>/NNN.png` and
    /// `ground_truth/<defect>/NNN_mask.png` (0/255), all 8-bit gray PNGs.
    ///
    /// # Errors
    /// [`crate::DatasetError::Io`] when a folder or file cannot be written.
    pub fn write_mvtec(&self, root: impl AsRef<Path>) -> Result<PathBuf> {
        check_category(&self.category)?;
        let base = root.as_ref().join(&self.category);
        let train_dir = base.join("train").join("good");
        mkdir(&train_dir)?;
        for (i, img) in self.train.iter().enumerate() {
            write_png_gray8(train_dir.join(format!("{i:03}.png")), img)?;
        }
        let mut counters: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for s in &self.test {
            let name = s.defect.map_or("good", DefectKind::name);
            let k = counters.entry(name).or_insert(0);
            let dir = base.join("test").join(name);
            mkdir(&dir)?;
            write_png_gray8(dir.join(format!("{k:03}.png")), &s.image)?;
            if s.defect.is_some() {
                let gt = base.join("ground_truth").join(name);
                mkdir(&gt)?;
                let bytes: Vec<u8> = s.mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
                write_png_gray8_bytes(gt.join(format!("{k:03}_mask.png")), s.image.width, s.image.height, &bytes)?;
            }
            *k += 1;
        }
        Ok(base)
    }
}
