//! Training targets from instance masks: class maps (background / cell / border) and the
//! paper's weight map `w(x) = w_c(x) + w₀·exp(−(d₁(x) + d₂(x))² / 2σ²)` that makes the narrow
//! gaps between touching cells expensive to get wrong.

use crate::error::{Result, check_nonneg, check_pos, invalid, shape_err};
use serde::{Deserialize, Serialize};

/// Class of every pixel from an instance map (`0` background, `1..` cells), row-major `w × h`.
///
/// | `classes` | map |
/// |---|---|
/// | 2 | 0 background, 1 cell |
/// | 3 | 0 background, 1 cell interior, 2 cell border: a cell pixel with a 4-neighbour *inside the image* of another label (background or another cell) |
///
/// With three classes the interiors of touching cells are separated by border pixels, so
/// connected components of the interior class recover the instances (see
/// [`crate::metrics::instances_from_classes`]).
///
/// # Errors
/// [`crate::UnetError::InvalidParameter`] for `classes ∉ {2, 3}`,
/// [`crate::UnetError::ShapeMismatch`] when `instances.len() != w·h`.
pub fn class_map(instances: &[u32], w: usize, h: usize, classes: usize) -> Result<Vec<u8>> {
    if instances.len() != w * h {
        return Err(shape_err("class_map", format!("{w}x{h} = {} labels", w * h), instances.len()));
    }
    match classes {
        2 => Ok(instances.iter().map(|&l| u8::from(l != 0)).collect()),
        3 => {
            let mut out = vec![0u8; w * h];
            for y in 0..h {
                for x in 0..w {
                    let v = instances[y * w + x];
                    if v == 0 {
                        continue;
                    }
                    let differs = (x > 0 && instances[y * w + x - 1] != v)
                        || (x + 1 < w && instances[y * w + x + 1] != v)
                        || (y > 0 && instances[(y - 1) * w + x] != v)
                        || (y + 1 < h && instances[(y + 1) * w + x] != v);
                    out[y * w + x] = if differs { 2 } else { 1 };
                }
            }
            Ok(out)
        }
        c => Err(invalid("classes", c, "cell targets have 2 (background/cell) or 3 (with border) classes")),
    }
}

/// Settings of the weight map.
///
/// | name | default | meaning | range |
/// |---|---|---|---|
/// | `w0` | `10` | height of the separation term | finite, `>= 0` |
/// | `sigma` | `5` | width of the separation term, pixels | finite, `> 0` |
/// | `class_balance` | `true` | `w_c` balances class frequencies (`w_c(k) = P / (K'·#k)` over the `K'` classes present, so its mean is 1); otherwise `w_c ≡ 1` | — |
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightMapParams {
    /// Height of the separation term.
    pub w0: f64,
    /// Width (σ, pixels) of the separation term.
    pub sigma: f64,
    /// Balance class frequencies.
    pub class_balance: bool,
}

impl Default for WeightMapParams {
    fn default() -> Self {
        Self { w0: 10.0, sigma: 5.0, class_balance: true }
    }
}

impl WeightMapParams {
    /// Validate.
    ///
    /// # Errors
    /// [`crate::UnetError::InvalidParameter`] naming `w0` or `sigma`.
    pub fn validate(&self) -> Result<()> {
        check_nonneg("w0", self.w0)?;
        check_pos("sigma", self.sigma)
    }
}

/// Squared distance transform along one line (Felzenszwalb & Huttenlocher): `d[i] = min_j
/// (f[j] + (i − j)²)`.
fn edt_1d(f: &[f64], d: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    if n == 0 {
        return;
    }
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    let start = (0..n).find(|&q| f[q].is_finite());
    let Some(start) = start else {
        d.iter_mut().for_each(|x| *x = f64::INFINITY);
        return;
    };
    v[0] = start;
    for q in start + 1..n {
        if !f[q].is_finite() {
            continue;
        }
        loop {
            let r = v[k];
            let s = ((f[q] + (q * q) as f64) - (f[r] + (r * r) as f64)) / (2.0 * q as f64 - 2.0 * r as f64);
            if s <= z[k] && k > 0 {
                k -= 1;
                continue;
            }
            if s <= z[k] {
                // k == 0 and the new parabola dominates everywhere
                v[0] = q;
                z[1] = f64::INFINITY;
                break;
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f64::INFINITY;
            break;
        }
    }
    k = 0;
    for (q, dq) in d.iter_mut().enumerate() {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let r = v[k];
        let dd = q as f64 - r as f64;
        *dq = dd * dd + f[r];
    }
}

/// Exact Euclidean distance of every pixel of a `w × h` grid to the nearest `true` pixel.
fn distance_to(set: &[bool], w: usize, h: usize) -> Vec<f64> {
    let mut g = vec![0.0f64; w * h];
    let n = w.max(h);
    let (mut f, mut d, mut v, mut z) = (vec![0.0; n], vec![0.0; n], vec![0usize; n], vec![0.0; n + 1]);
    for x in 0..w {
        for y in 0..h {
            f[y] = if set[y * w + x] { 0.0 } else { f64::INFINITY };
        }
        edt_1d(&f[..h], &mut d[..h], &mut v, &mut z);
        for y in 0..h {
            g[y * w + x] = d[y];
        }
    }
    for y in 0..h {
        f[..w].copy_from_slice(&g[y * w..(y + 1) * w]);
        edt_1d(&f[..w], &mut d[..w], &mut v, &mut z);
        for x in 0..w {
            g[y * w + x] = d[x].sqrt();
        }
    }
    g
}

/// Distances `(d₁, d₂)` of every pixel to the nearest and second-nearest cell (0 inside a cell
/// for `d₁`); `+∞` where fewer than two cells lie within `radius` pixels.
///
/// Each cell's distance transform is computed in its bounding box grown by `radius`, so the
/// cost is proportional to the cells' areas, not to `cells × image`.
///
/// # Errors
/// [`crate::UnetError::ShapeMismatch`] when `instances.len() != w·h`.
pub fn nearest_two_distances(instances: &[u32], w: usize, h: usize, radius: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    if instances.len() != w * h {
        return Err(shape_err("nearest_two_distances", format!("{w}x{h} = {} labels", w * h), instances.len()));
    }
    // bounding boxes per label
    let mut boxes: std::collections::BTreeMap<u32, (usize, usize, usize, usize)> = Default::default();
    for y in 0..h {
        for x in 0..w {
            let l = instances[y * w + x];
            if l != 0 {
                let b = boxes.entry(l).or_insert((x, y, x, y));
                b.0 = b.0.min(x);
                b.1 = b.1.min(y);
                b.2 = b.2.max(x);
                b.3 = b.3.max(y);
            }
        }
    }
    let mut d1 = vec![f64::INFINITY; w * h];
    let mut d2 = vec![f64::INFINITY; w * h];
    for (&l, &(x0, y0, x1, y1)) in &boxes {
        let (wx0, wy0) = (x0.saturating_sub(radius), y0.saturating_sub(radius));
        let (wx1, wy1) = ((x1 + radius).min(w - 1), (y1 + radius).min(h - 1));
        let (ww, wh) = (wx1 - wx0 + 1, wy1 - wy0 + 1);
        let set: Vec<bool> = (0..ww * wh).map(|k| instances[(wy0 + k / ww) * w + wx0 + k % ww] == l).collect();
        let dist = distance_to(&set, ww, wh);
        for (k, &dk) in dist.iter().enumerate() {
            let i = (wy0 + k / ww) * w + wx0 + k % ww;
            if dk < d1[i] {
                d2[i] = d1[i];
                d1[i] = dk;
            } else if dk < d2[i] {
                d2[i] = dk;
            }
        }
    }
    Ok((d1, d2))
}

/// The weight map of Ronneberger et al. (2015), eq. (2), for a `w × h` instance map with class
/// map `classes` (see [`class_map`]): `w(x) = w_c(x) + w₀·exp(−(d₁(x) + d₂(x))² / 2σ²)` where
/// `d₁`, `d₂` are the distances to the nearest and second-nearest cell (`d₁ = 0` inside a cell,
/// so the term is large both in the gaps between cells and along their contact lines) and `w_c`
/// balances class frequencies. Terms below `w₀·e^{−12.5}` (cells more than 5σ apart) are
/// dropped.
///
/// # Errors
/// [`crate::UnetError::InvalidParameter`] for bad settings or `n_classes < 2`,
/// [`crate::UnetError::ShapeMismatch`] when a map does not hold `w·h` values.
///
/// # Example
/// ```
/// use latent_unet::weight_map::{WeightMapParams, class_map, weight_map};
/// // two 3×3 cells with a one-pixel gap at column 3
/// let (w, h) = (7, 3);
/// let inst: Vec<u32> = (0..w * h).map(|k| match k % w { 0..=2 => 1, 4..=6 => 2, _ => 0 }).collect();
/// let cls = class_map(&inst, w, h, 2)?;
/// let wm = weight_map(&inst, &cls, w, h, 2, &WeightMapParams::default())?;
/// assert!(wm[3] > wm[0] && wm[3] > 10.0);
/// # Ok::<(), latent_unet::UnetError>(())
/// ```
pub fn weight_map(
    instances: &[u32],
    classes: &[u8],
    w: usize,
    h: usize,
    n_classes: usize,
    p: &WeightMapParams,
) -> Result<Vec<f32>> {
    p.validate()?;
    if n_classes < 2 {
        return Err(invalid("n_classes", n_classes, "must be >= 2"));
    }
    if classes.len() != w * h {
        return Err(shape_err("weight_map", format!("{w}x{h} = {} classes", w * h), classes.len()));
    }
    if let Some(i) = classes.iter().position(|&c| c as usize >= n_classes) {
        return Err(invalid("classes", format!("{} at pixel {i}", classes[i]), format!("must be < {n_classes}")));
    }
    let mut wc = vec![1.0f64; n_classes];
    if p.class_balance {
        let mut counts = vec![0usize; n_classes];
        for &c in classes {
            counts[c as usize] += 1;
        }
        let present = counts.iter().filter(|&&c| c > 0).count().max(1);
        let total = classes.len() as f64;
        for (k, &c) in counts.iter().enumerate() {
            wc[k] = if c > 0 { total / (present as f64 * c as f64) } else { 1.0 };
        }
    }
    let radius = (5.0 * p.sigma).ceil() as usize + 1;
    let mut out: Vec<f32> = classes.iter().map(|&c| wc[c as usize] as f32).collect();
    if p.w0 > 0.0 && !out.is_empty() {
        let (d1, d2) = nearest_two_distances(instances, w, h, radius)?;
        let two_s2 = 2.0 * p.sigma * p.sigma;
        for ((o, a), b) in out.iter_mut().zip(&d1).zip(&d2) {
            let s = a + b;
            if s.is_finite() && s < 5.0 * p.sigma {
                *o += (p.w0 * (-(s * s) / two_s2).exp()) as f32;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_transform_is_exact_on_small_grids() {
        let (w, h) = (9, 7);
        let set: Vec<bool> = (0..w * h).map(|k| k == 3 * w + 4 || k == 0 || k == w * h - 1).collect();
        let d = distance_to(&set, w, h);
        for y in 0..h {
            for x in 0..w {
                let brute = (0..w * h)
                    .filter(|&k| set[k])
                    .map(|k| (((k % w) as f64 - x as f64).powi(2) + ((k / w) as f64 - y as f64).powi(2)).sqrt())
                    .fold(f64::INFINITY, f64::min);
                assert!((d[y * w + x] - brute).abs() < 1e-12, "({x}, {y}): {} vs {brute}", d[y * w + x]);
            }
        }
        assert!(distance_to(&[false; 6], 3, 2).iter().all(|v| v.is_infinite()));
    }

    #[test]
    fn three_class_map_marks_borders_inside_the_image_only() {
        // one 3×3 cell in the corner of a 4×4 image
        let inst: Vec<u32> = (0..16).map(|k| u32::from(k % 4 < 3 && k / 4 < 3)).collect();
        let c = class_map(&inst, 4, 4, 3).unwrap();
        assert_eq!(c[0], 1, "image-edge pixel with only in-image neighbours of the same cell is interior");
        assert_eq!(c[2], 2);
        assert_eq!(c[10], 2);
        assert_eq!(c[15], 0);
        assert!(class_map(&inst, 4, 4, 4).is_err());
        assert!(class_map(&inst, 5, 4, 2).is_err());
    }
}
