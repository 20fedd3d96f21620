//! Evaluation metrics with anomalib's definitions, computed exactly (no binning).
//!
//! | function | definition |
//! |---|---|
//! | [`auroc`] | area under the ROC curve = Mann–Whitney `U / (P·N)`: the probability that a random anomalous sample scores higher than a random normal one, ties counted ½ |
//! | [`roc_curve`] | `(FPR, TPR)` at every distinct score used as threshold (`score ≥ t` is anomalous), from `(0, 0)` to `(1, 1)` |
//! | [`f1_max`] | the largest `F1 = 2PR/(P + R)` over all thresholds, with the threshold that reaches it |
//! | [`aupro`] | area under the per-region-overlap curve up to a false-positive rate (0.3 by default), divided by that limit |
//! | [`pro_curve`] | `(FPR, PRO)` at every distinct pixel score |
//! | [`quantile`] | the `q`-quantile with linear interpolation (NumPy's default) |
//!
//! **PRO** (Bergmann et al. 2020/2021, the MVTec AD evaluation script, anomalib's `AUPRO`):
//! the ground-truth masks are split into connected components (8-connected by default); at a
//! threshold `t` the overlap of a component `C` is `|{p ∈ C : score(p) ≥ t}| / |C|`, and PRO is
//! the mean overlap over all components of all images. The false-positive rate is measured over
//! all normal pixels (mask 0) of all images. The curve `FPR ↦ PRO` is integrated with the
//! trapezoidal rule from 0 to `fpr_limit` (interpolating linearly at the limit) and divided by
//! `fpr_limit`, so a perfect detector scores 1 and a random one `fpr_limit / 2`.
//!
//! Every function validates its input: equal lengths, no NaN/Inf scores, both classes present
//! where the metric needs them; a violation is a typed [`AnomalyError`], never a panic.

use crate::error::{AnomalyError, Result, check_finite, invalid, same_len};
use latent_linalg::Real;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Counts of both classes after validation.
fn validate<T: Real>(metric: &'static str, scores: &[T], labels: &[bool]) -> Result<(usize, usize)> {
    same_len(metric, scores.len(), labels.len())?;
    if scores.is_empty() {
        return Err(AnomalyError::Empty { what: "scores" });
    }
    check_finite("scores", scores)?;
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    Ok((pos, neg))
}

fn both_classes(metric: &'static str, pos: usize, neg: usize) -> Result<()> {
    if pos == 0 || neg == 0 {
        return Err(AnomalyError::SingleClass { metric, count: pos + neg, anomalous: neg == 0 });
    }
    Ok(())
}

/// `(score, label)` pairs sorted by score, descending (ties adjacent; their internal order does
/// not affect any result because tied scores are always processed as one group).
fn sorted_desc<T: Real>(scores: &[T], labels: &[bool]) -> Vec<(f64, bool)> {
    let mut v: Vec<(f64, bool)> = scores.iter().map(|s| s.as_f64()).zip(labels.iter().copied()).collect();
    v.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    v
}

/// Ranges of equal scores in a sorted vector.
fn tie_groups<K: Copy>(v: &[(f64, K)]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= v.len() {
            return None;
        }
        let s = v[i].0;
        let mut j = i + 1;
        while j < v.len() && v[j].0 == s {
            j += 1;
        }
        let r = i..j;
        i = j;
        Some(r)
    })
}

/// Exact area under the ROC curve: the Mann–Whitney statistic `U / (P·N)` with ties counted ½,
/// equal to the trapezoidal area under the exact ROC curve ([`roc_curve`]). Higher scores mean
/// "more anomalous"; `labels[i]` is `true` for anomalous samples.
///
/// # Errors
/// [`AnomalyError::LengthMismatch`], [`AnomalyError::Empty`], [`AnomalyError::NonFinite`] for
/// NaN/Inf scores, [`AnomalyError::SingleClass`] when only one class is present.
///
/// # Example
/// ```
/// use latent_anomaly::metrics::auroc;
/// // 3 of the 4 (anomalous, normal) pairs are ordered correctly, one is tied: (3 + ½) / 4.
/// let a = auroc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false])?;
/// assert_eq!(a, 0.875);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn auroc<T: Real>(scores: &[T], labels: &[bool]) -> Result<f64> {
    let (pos, neg) = validate("auroc", scores, labels)?;
    both_classes("auroc", pos, neg)?;
    let v = sorted_desc(scores, labels);
    // sweep from the top: every positive beats the negatives below it
    let mut u = 0.0f64;
    let mut neg_above = 0usize;
    for g in tie_groups(&v) {
        let gp = v[g.clone()].iter().filter(|e| e.1).count();
        let gn = g.len() - gp;
        // positives in the group beat the negatives strictly below: neg − neg_above − gn; tie ½·gn
        let below = neg - neg_above - gn;
        u += gp as f64 * (below as f64 + 0.5 * gn as f64);
        neg_above += gn;
    }
    Ok(u / (pos as f64 * neg as f64))
}

/// A ROC curve: one point per distinct threshold, from `(0, 0)` (nothing flagged) to `(1, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False-positive rates, non-decreasing.
    pub fpr: Vec<f64>,
    /// True-positive rates, non-decreasing.
    pub tpr: Vec<f64>,
    /// Threshold of each point (`score ≥ t` is anomalous); `+∞` for the first point.
    pub thresholds: Vec<f64>,
}

impl RocCurve {
    /// Trapezoidal area under the curve (equals [`auroc`]).
    pub fn area(&self) -> f64 {
        trapezoid(&self.fpr, &self.tpr)
    }
}

fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2).zip(y.windows(2)).map(|(a, b)| (a[1] - a[0]) * 0.5 * (b[0] + b[1])).sum()
}

/// The exact ROC curve.
///
/// # Errors
/// As [`auroc`].
///
/// # Example
/// ```
/// use latent_anomaly::metrics::roc_curve;
/// let roc = roc_curve(&[0.9f64, 0.4, 0.6, 0.1], &[true, true, false, false])?;
/// assert_eq!(roc.fpr, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
/// assert_eq!(roc.tpr, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
/// assert_eq!(roc.area(), 0.75);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn roc_curve<T: Real>(scores: &[T], labels: &[bool]) -> Result<RocCurve> {
    let (pos, neg) = validate("roc_curve", scores, labels)?;
    both_classes("roc_curve", pos, neg)?;
    let v = sorted_desc(scores, labels);
    let mut roc = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
    let (mut tp, mut fp) = (0usize, 0usize);
    for g in tie_groups(&v) {
        let gp = v[g.clone()].iter().filter(|e| e.1).count();
        tp += gp;
        fp += g.len() - gp;
        roc.fpr.push(fp as f64 / neg as f64);
        roc.tpr.push(tp as f64 / pos as f64);
        roc.thresholds.push(v[g.start].0);
    }
    Ok(roc)
}

/// The best F1 score over all thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct F1Max {
    /// The largest F1.
    pub f1: f64,
    /// The threshold that reaches it (`score ≥ threshold` is anomalous; the largest such
    /// threshold when several tie).
    pub threshold: f64,
    /// Precision at that threshold.
    pub precision: f64,
    /// Recall at that threshold.
    pub recall: f64,
}

/// The largest F1 score `2·precision·recall / (precision + recall)` over every threshold
/// (anomalib's `F1Max`), and the threshold that reaches it.
///
/// # Errors
/// [`AnomalyError::LengthMismatch`], [`AnomalyError::Empty`], [`AnomalyError::NonFinite`];
/// [`AnomalyError::SingleClass`] when no label is anomalous (F1 is undefined without positives).
///
/// # Example
/// ```
/// use latent_anomaly::metrics::f1_max;
/// let f = f1_max(&[0.9f32, 0.8, 0.3, 0.2], &[true, false, true, false])?;
/// // threshold 0.3: precision 2/3, recall 1 → F1 0.8
/// assert!((f.f1 - 0.8).abs() < 1e-12);
/// assert_eq!(f.threshold, 0.30000001192092896);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn f1_max<T: Real>(scores: &[T], labels: &[bool]) -> Result<F1Max> {
    let (pos, neg) = validate("f1_max", scores, labels)?;
    if pos == 0 {
        return Err(AnomalyError::SingleClass { metric: "f1_max", count: neg, anomalous: false });
    }
    let v = sorted_desc(scores, labels);
    let mut best = F1Max { f1: -1.0, threshold: f64::INFINITY, precision: 0.0, recall: 0.0 };
    let (mut tp, mut fp) = (0usize, 0usize);
    for g in tie_groups(&v) {
        let gp = v[g.clone()].iter().filter(|e| e.1).count();
        tp += gp;
        fp += g.len() - gp;
        let f1 = 2.0 * tp as f64 / (tp + fp + pos) as f64;
        if f1 > best.f1 {
            best = F1Max {
                f1,
                threshold: v[g.start].0,
                precision: tp as f64 / (tp + fp) as f64,
                recall: tp as f64 / pos as f64,
            };
        }
    }
    Ok(best)
}

/// The `q`-quantile of `values` with linear interpolation between order statistics (NumPy's
/// default, "type 7"): a threshold from held-out normal scores, e.g. `q = 0.99` flags about 1 %
/// of normal samples.
///
/// # Errors
/// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], [`AnomalyError::InvalidParameter`] for
/// `q` outside `[0, 1]`.
///
/// # Example
/// ```
/// use latent_anomaly::metrics::quantile;
/// assert_eq!(quantile(&[4.0f64, 1.0, 3.0, 2.0], 0.5)?, 2.5);
/// assert_eq!(quantile(&[4.0f64, 1.0, 3.0, 2.0], 1.0)?, 4.0);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn quantile<T: Real>(values: &[T], q: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&q) {
        return Err(invalid("q", q, "must be in [0, 1]"));
    }
    if values.is_empty() {
        return Err(AnomalyError::Empty { what: "values" });
    }
    check_finite("values", values)?;
    let mut v: Vec<f64> = values.iter().map(|x| x.as_f64()).collect();
    v.sort_unstable_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(v.len() - 1);
    Ok(v[lo] + frac * (v[hi] - v[lo]))
}

/// Pixel neighbourhood for connected components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Connectivity {
    /// Edge neighbours only.
    Four,
    /// Edge and corner neighbours (the MVTec AD evaluation script's `np.ones((3, 3))`).
    #[default]
    Eight,
}

/// Label the connected components of a `height × width` boolean mask (row-major). Returns the
/// label of every pixel (`0` for background, components numbered `1..=count` in raster order of
/// their first pixel) and the number of components.
///
/// # Errors
/// [`AnomalyError::LengthMismatch`] when `mask.len() != width·height`.
///
/// # Example
/// ```
/// use latent_anomaly::metrics::{Connectivity, connected_components};
/// let m = [true, false, false,
///          false, true, false,
///          false, false, true];
/// assert_eq!(connected_components(&m, 3, 3, Connectivity::Eight)?.1, 1);
/// assert_eq!(connected_components(&m, 3, 3, Connectivity::Four)?.1, 3);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn connected_components(
    mask: &[bool],
    width: usize,
    height: usize,
    conn: Connectivity,
) -> Result<(Vec<u32>, usize)> {
    let n = width
        .checked_mul(height)
        .ok_or_else(|| invalid("width·height", format!("{width}x{height}"), "overflows usize"))?;
    same_len("connected_components mask", n, mask.len())?;
    let mut labels = vec![0u32; n];
    let mut count = 0u32;
    let mut stack = Vec::new();
    let offsets: &[(isize, isize)] = match conn {
        Connectivity::Four => &[(-1, 0), (1, 0), (0, -1), (0, 1)],
        Connectivity::Eight => &[(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)],
    };
    for start in 0..n {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        count += 1;
        labels[start] = count;
        stack.push(start);
        while let Some(p) = stack.pop() {
            let (y, x) = ((p / width) as isize, (p % width) as isize);
            for &(dy, dx) in offsets {
                let (yy, xx) = (y + dy, x + dx);
                if yy < 0 || xx < 0 || yy >= height as isize || xx >= width as isize {
                    continue;
                }
                let q = yy as usize * width + xx as usize;
                if mask[q] && labels[q] == 0 {
                    labels[q] = count;
                    stack.push(q);
                }
            }
        }
    }
    Ok((labels, count as usize))
}

/// The per-region-overlap curve: one point per distinct pixel score, from `(0, 0)` to `(1, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProCurve {
    /// False-positive rate over all normal pixels, non-decreasing.
    pub fpr: Vec<f64>,
    /// Mean overlap over all ground-truth components, non-decreasing.
    pub pro: Vec<f64>,
    /// Threshold of each point (`score ≥ t` is anomalous); `+∞` for the first point.
    pub thresholds: Vec<f64>,
    /// Number of ground-truth components.
    pub regions: usize,
}

impl ProCurve {
    /// Area under the curve from `FPR = 0` to `fpr_limit` (linear interpolation at the limit),
    /// divided by `fpr_limit`.
    ///
    /// # Errors
    /// [`AnomalyError::InvalidParameter`] for `fpr_limit` outside `(0, 1]`.
    pub fn normalized_area(&self, fpr_limit: f64) -> Result<f64> {
        if !(fpr_limit > 0.0 && fpr_limit <= 1.0) {
            return Err(invalid("fpr_limit", fpr_limit, "must be in (0, 1]"));
        }
        let mut area = 0.0;
        for i in 1..self.fpr.len() {
            let (x0, x1, y0, y1) = (self.fpr[i - 1], self.fpr[i], self.pro[i - 1], self.pro[i]);
            if x0 >= fpr_limit {
                break;
            }
            if x1 <= fpr_limit {
                area += (x1 - x0) * 0.5 * (y0 + y1);
            } else {
                let yl = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0);
                area += (fpr_limit - x0) * 0.5 * (y0 + yl);
                break;
            }
        }
        Ok(area / fpr_limit)
    }
}

/// Validate a stack of `N` score maps and masks of `height × width` pixels each.
fn check_maps<T: Real>(maps: &[T], masks: &[bool], shape: [usize; 3]) -> Result<usize> {
    let [n, h, w] = shape;
    let total = n
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or_else(|| invalid("shape", format!("{shape:?}"), "overflows usize"))?;
    same_len("score maps vs shape (N·H·W)", total, maps.len())?;
    same_len("masks vs score maps", maps.len(), masks.len())?;
    if total == 0 {
        return Err(AnomalyError::Empty { what: "score maps" });
    }
    check_finite("score maps", maps)?;
    Ok(total)
}

/// The exact per-region-overlap curve of `N` score maps against their ground-truth masks (both
/// `(N, H, W)` row-major, `shape = [N, H, W]`).
///
/// # Errors
/// [`AnomalyError::LengthMismatch`] when the lengths do not match `shape`,
/// [`AnomalyError::Empty`], [`AnomalyError::NonFinite`], [`AnomalyError::SingleClass`] when no
/// pixel is anomalous or none is normal.
pub fn pro_curve<T: Real>(maps: &[T], masks: &[bool], shape: [usize; 3], conn: Connectivity) -> Result<ProCurve> {
    let total = check_maps(maps, masks, shape)?;
    let [n, h, w] = shape;
    let plane = h * w;
    // global region ids (u32::MAX: normal pixel) and region sizes
    let mut region = vec![u32::MAX; total];
    let mut sizes: Vec<usize> = Vec::new();
    for i in 0..n {
        let m = &masks[i * plane..(i + 1) * plane];
        let (lab, count) = connected_components(m, w, h, conn)?;
        let base = sizes.len();
        sizes.resize(base + count, 0);
        for (p, &l) in lab.iter().enumerate() {
            if l > 0 {
                let id = base + l as usize - 1;
                region[i * plane + p] = u32::try_from(id).map_err(|_| invalid("regions", id, "more than u32::MAX"))?;
                sizes[id] += 1;
            }
        }
    }
    let neg = region.iter().filter(|&&r| r == u32::MAX).count();
    let pos = total - neg;
    if pos == 0 || neg == 0 {
        return Err(AnomalyError::SingleClass { metric: "aupro", count: total, anomalous: neg == 0 });
    }
    let regions = sizes.len();
    let inv: Vec<f64> = sizes.iter().map(|&s| 1.0 / s as f64).collect();
    let mut v: Vec<(f64, u32)> = maps.iter().map(|s| s.as_f64()).zip(region).collect();
    v.par_sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut curve = ProCurve { fpr: vec![0.0], pro: vec![0.0], thresholds: vec![f64::INFINITY], regions };
    let (mut fp, mut sum) = (0usize, 0.0f64);
    for g in tie_groups(&v) {
        for &(_, r) in &v[g.clone()] {
            if r == u32::MAX {
                fp += 1;
            } else {
                sum += inv[r as usize];
            }
        }
        curve.fpr.push(fp as f64 / neg as f64);
        curve.pro.push((sum / regions as f64).clamp(0.0, 1.0));
        curve.thresholds.push(v[g.start].0);
    }
    // the last point holds every pixel: exactly (1, 1)
    if let (Some(f), Some(p)) = (curve.fpr.last_mut(), curve.pro.last_mut()) {
        *f = 1.0;
        *p = 1.0;
    }
    Ok(curve)
}

/// Area under the per-region-overlap curve up to `fpr_limit` (anomalib's `AUPRO`, default limit
/// 0.3), divided by `fpr_limit`. `maps` and `masks` are `(N, H, W)` row-major with
/// `shape = [N, H, W]`.
///
/// # Errors
/// As [`pro_curve`], and [`AnomalyError::InvalidParameter`] for `fpr_limit` outside `(0, 1]`.
///
/// # Example
/// ```
/// use latent_anomaly::metrics::{Connectivity, aupro};
/// // one 1×4 image: a 2-pixel defect scored above the two normal pixels → perfect.
/// let a = aupro(&[0.9f64, 0.8, 0.1, 0.2], &[true, true, false, false], [1, 1, 4], 0.3, Connectivity::Eight)?;
/// assert_eq!(a, 1.0);
/// # Ok::<(), latent_anomaly::AnomalyError>(())
/// ```
pub fn aupro<T: Real>(
    maps: &[T],
    masks: &[bool],
    shape: [usize; 3],
    fpr_limit: f64,
    conn: Connectivity,
) -> Result<f64> {
    if !(fpr_limit > 0.0 && fpr_limit <= 1.0) {
        return Err(invalid("fpr_limit", fpr_limit, "must be in (0, 1]"));
    }
    pro_curve(maps, masks, shape, conn)?.normalized_area(fpr_limit)
}

/// Pixel-level AUROC over `(N, H, W)` maps and masks (every pixel is one sample).
///
/// # Errors
/// As [`auroc`], and [`AnomalyError::LengthMismatch`] when the lengths do not match `shape`.
pub fn pixel_auroc<T: Real>(maps: &[T], masks: &[bool], shape: [usize; 3]) -> Result<f64> {
    check_maps(maps, masks, shape)?;
    auroc(maps, masks)
}
