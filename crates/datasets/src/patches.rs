//! Natural-image patches: extraction (random or on a grid), per-patch normalisation, ZCA
//! whitening, and the 1/f whitening filter of Olshausen & Field.
//!
//! A [`PatchSet`] stores `n` patches of `ph × pw` pixels as an `n × (ph·pw)` **row-major**
//! buffer: patch `i` is `data[i*ph*pw .. (i+1)*ph*pw]`, itself row-major (`dy*pw + dx`).
//! [`PatchSet::to_dmatrix_cols`] gives the "one patch per column" matrix used by dictionary
//! learning.

use crate::dataset::rng_from_seed;
use crate::error::{Result, invalid};
use crate::image::GrayImage;
use latent_linalg::nalgebra::SymmetricEigen;
use latent_linalg::{DMatrix, MatMut, MatRef, Real, gemm_view};
use rand::Rng;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Patches of one size in an `n × (ph·pw)` row-major buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchSet {
    ph: usize,
    pw: usize,
    data: Vec<f32>,
}

impl PatchSet {
    /// Wrap a row-major buffer of patches.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `ph`, `pw` | patch height and width, both ≥ 1 |
    /// | `data` | a multiple of `ph·pw` values |
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] for a zero size or a length that is not a
    /// multiple of `ph·pw`.
    pub fn new(ph: usize, pw: usize, data: Vec<f32>) -> Result<Self> {
        let d = ph
            .checked_mul(pw)
            .filter(|&d| d > 0)
            .ok_or_else(|| invalid("ph/pw", format!("{ph}x{pw}"), "patch size must be at least 1x1"))?;
        if !data.len().is_multiple_of(d) {
            return Err(invalid("data", data.len(), format!("must be a multiple of the patch size {ph}x{pw}")));
        }
        Ok(Self { ph, pw, data })
    }

    /// Number of patches.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim()
    }
    /// `true` when there are no patches.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Patch height.
    pub fn patch_h(&self) -> usize {
        self.ph
    }
    /// Patch width.
    pub fn patch_w(&self) -> usize {
        self.pw
    }
    /// Values per patch (`ph·pw`).
    pub fn dim(&self) -> usize {
        self.ph * self.pw
    }
    /// The `n × dim` row-major buffer.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// The buffer, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// Give up the buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
    /// Patch `i`, `None` past the end.
    pub fn patch(&self, i: usize) -> Option<&[f32]> {
        let d = self.dim();
        (i < self.len()).then(|| &self.data[i * d..(i + 1) * d])
    }
    /// Patch `i` as a small image, `None` past the end.
    pub fn patch_image(&self, i: usize) -> Option<GrayImage> {
        Some(GrayImage { width: self.pw, height: self.ph, data: self.patch(i)?.to_vec() })
    }

    /// The patches as a `dim × n` matrix, one patch per column.
    pub fn to_dmatrix_cols<T: Real>(&self) -> DMatrix<T> {
        DMatrix::from_iterator(self.dim(), self.len(), self.data.iter().map(|&v| T::lit(f64::from(v))))
    }

    /// Patches from a `dim × n` matrix (one patch per column, `dim = ph·pw`).
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when `m.nrows() != ph·pw` or the size is zero.
    pub fn from_dmatrix_cols<T: Real>(m: &DMatrix<T>, ph: usize, pw: usize) -> Result<Self> {
        if ph.checked_mul(pw) != Some(m.nrows()) {
            return Err(invalid("m.nrows()", m.nrows(), format!("must equal the patch size {ph}*{pw}")));
        }
        Self::new(ph, pw, m.iter().map(|v| v.as_f64() as f32).collect())
    }

    /// Subtract each patch's mean (the DC component); returns the removed means.
    pub fn remove_mean(&mut self) -> Vec<f32> {
        let d = self.dim();
        self.data
            .chunks_exact_mut(d)
            .map(|p| {
                let m = (p.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64) as f32;
                p.iter_mut().for_each(|v| *v -= m);
                m
            })
            .collect()
    }

    /// Contrast normalisation: each patch becomes `(x − mean) / sqrt(var + eps)`.
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] unless `eps` is finite and `> 0`.
    pub fn contrast_normalize(&mut self, eps: f32) -> Result<()> {
        if !(eps.is_finite() && eps > 0.0) {
            return Err(invalid("eps", eps, "must be finite and > 0"));
        }
        let d = self.dim();
        for p in self.data.chunks_exact_mut(d) {
            let m = p.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
            let var = p.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / d as f64;
            let s = 1.0 / (var + f64::from(eps)).sqrt();
            p.iter_mut().for_each(|v| *v = ((f64::from(*v) - m) * s) as f32);
        }
        Ok(())
    }

    /// Append the patches of `other`.
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when the patch sizes differ.
    pub fn extend(&mut self, other: &PatchSet) -> Result<()> {
        if (self.ph, self.pw) != (other.ph, other.pw) {
            return Err(invalid(
                "other",
                format!("{}x{}", other.ph, other.pw),
                format!("patch size must be {}x{}", self.ph, self.pw),
            ));
        }
        self.data.extend_from_slice(&other.data);
        Ok(())
    }
}

fn check_patch_fits(images: &[GrayImage], ph: usize, pw: usize) -> Result<()> {
    if ph == 0 || pw == 0 {
        return Err(invalid("ph/pw", format!("{ph}x{pw}"), "patch size must be at least 1x1"));
    }
    if images.is_empty() {
        return Err(invalid("images", 0, "need at least one image"));
    }
    for (i, img) in images.iter().enumerate() {
        if !img.is_consistent() {
            return Err(invalid("images", i, "image data length is not width*height"));
        }
        if img.width < pw || img.height < ph {
            return Err(invalid(
                "ph/pw",
                format!("{ph}x{pw}"),
                format!("patch is larger than image {i} ({}x{})", img.width, img.height),
            ));
        }
    }
    Ok(())
}

/// `count` patches at uniformly random positions: each patch picks an image uniformly, then a
/// top-left corner uniformly among the positions where it fits.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `images` | source images (each at least `pw × ph`) |
/// | `ph`, `pw` | patch height and width |
/// | `count` | number of patches |
/// | `seed` | ChaCha8 seed |
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for an empty image list, a zero patch size or a
/// patch larger than some image.
///
/// # Example
/// ```
/// use latent_datasets::{data_file, read_png, patches::extract_random_patches};
/// let img = read_png(data_file("natural-gray/skimage_camera.png")?)?;
/// let p = extract_random_patches(&[img], 8, 8, 1000, 42)?;
/// assert_eq!((p.len(), p.dim()), (1000, 64));
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn extract_random_patches(images: &[GrayImage], ph: usize, pw: usize, count: usize, seed: u64) -> Result<PatchSet> {
    check_patch_fits(images, ph, pw)?;
    let mut rng = rng_from_seed(seed);
    let mut data = Vec::with_capacity(count.saturating_mul(ph * pw).min(1 << 28));
    for _ in 0..count {
        let img = &images[rng.random_range(0..images.len())];
        let x0 = rng.random_range(0..=img.width - pw);
        let y0 = rng.random_range(0..=img.height - ph);
        for y in y0..y0 + ph {
            data.extend_from_slice(&img.data[y * img.width + x0..y * img.width + x0 + pw]);
        }
    }
    Ok(PatchSet { ph, pw, data })
}

fn grid_positions(len: usize, p: usize, stride: usize) -> Vec<usize> {
    (0..=len - p).step_by(stride).collect()
}

/// Every patch on a grid with the given stride (top-left corners `0, stride, 2·stride, …` while
/// the patch fits), image after image, row by row.
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for `stride == 0`, an empty image list, a zero
/// patch size or a patch larger than some image.
pub fn extract_grid_patches(images: &[GrayImage], ph: usize, pw: usize, stride: usize) -> Result<PatchSet> {
    if stride == 0 {
        return Err(invalid("stride", 0, "must be at least 1"));
    }
    check_patch_fits(images, ph, pw)?;
    let mut data = Vec::new();
    for img in images {
        for &y0 in &grid_positions(img.height, ph, stride) {
            for &x0 in &grid_positions(img.width, pw, stride) {
                for y in y0..y0 + ph {
                    data.extend_from_slice(&img.data[y * img.width + x0..y * img.width + x0 + pw]);
                }
            }
        }
    }
    Ok(PatchSet { ph, pw, data })
}

/// Rebuild an image from its grid patches (the inverse of [`extract_grid_patches`] on one
/// image), averaging overlaps. Pixels no patch covers (right/bottom margins when the stride
/// does not divide the size) are 0.
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] when the patch count does not match the grid.
pub fn reconstruct_from_grid(patches: &PatchSet, width: usize, height: usize, stride: usize) -> Result<GrayImage> {
    let (ph, pw) = (patches.ph, patches.pw);
    if stride == 0 || width < pw || height < ph {
        return Err(invalid(
            "width/height/stride",
            format!("{width}x{height}/{stride}"),
            "the patches must fit the image and stride ≥ 1",
        ));
    }
    let ys = grid_positions(height, ph, stride);
    let xs = grid_positions(width, pw, stride);
    if ys.len() * xs.len() != patches.len() {
        return Err(invalid(
            "patches",
            patches.len(),
            format!("a {width}x{height} grid with stride {stride} has {} patches", ys.len() * xs.len()),
        ));
    }
    let mut acc = vec![0f64; width * height];
    let mut cnt = vec![0u32; width * height];
    let mut k = 0;
    for &y0 in &ys {
        for &x0 in &xs {
            let p = &patches.data[k * ph * pw..(k + 1) * ph * pw];
            for dy in 0..ph {
                for dx in 0..pw {
                    let o = (y0 + dy) * width + x0 + dx;
                    acc[o] += f64::from(p[dy * pw + dx]);
                    cnt[o] += 1;
                }
            }
            k += 1;
        }
    }
    let data = acc.iter().zip(&cnt).map(|(&a, &c)| if c == 0 { 0.0 } else { (a / f64::from(c)) as f32 }).collect();
    Ok(GrayImage { width, height, data })
}

/// A fitted ZCA whitening transform `x ↦ W (x − μ)` with `W = U diag(1/√(λ+eps)) Uᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Zca {
    mean: Vec<f64>,
    w: DMatrix<f64>,
    eigenvalues: Vec<f64>,
}

impl Zca {
    /// Fit on patches: mean `μ` and covariance `C = (1/n) Σ (x−μ)(x−μ)ᵀ`, eigen-decomposed.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `patches` | at least 2 patches |
    /// | `eps` | regulariser added to the eigenvalues (`> 0`, e.g. 1e-2 for pixel values in `[0, 1]`) |
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] for fewer than 2 patches, a bad `eps` or
    /// non-finite patch values.
    ///
    /// # Example
    /// ```
    /// use latent_datasets::{data_file, read_png, patches::{Zca, extract_random_patches}};
    /// let img = read_png(data_file("natural-gray/skimage_camera.png")?)?;
    /// let mut p = extract_random_patches(&[img], 6, 6, 2000, 1)?;
    /// let zca = Zca::fit(&p, 1e-3)?;
    /// zca.apply(&mut p)?;
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn fit(patches: &PatchSet, eps: f64) -> Result<Zca> {
        if !(eps.is_finite() && eps > 0.0) {
            return Err(invalid("eps", eps, "must be finite and > 0"));
        }
        let (n, d) = (patches.len(), patches.dim());
        if n < 2 {
            return Err(invalid("patches", n, "ZCA needs at least 2 patches"));
        }
        if let Some(i) = patches.data.iter().position(|v| !v.is_finite()) {
            return Err(invalid("patches", format!("non-finite value at {i}"), "patch values must be finite"));
        }
        let mut mean = vec![0f64; d];
        for p in patches.data.chunks_exact(d) {
            mean.iter_mut().zip(p).for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let xc = centered(patches, &mean);
        let mut cov = DMatrix::<f64>::zeros(d, d);
        let x = MatRef::row_major(&xc, n, d)?;
        gemm_view(1.0 / n as f64, x.t(), x, 0.0, MatMut::from_dmatrix(&mut cov))?;
        let cov = (&cov + cov.transpose()) * 0.5;
        let eig = SymmetricEigen::new(cov);
        let scale = DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / (l.max(0.0) + eps).sqrt()));
        let w = &eig.eigenvectors * scale * eig.eigenvectors.transpose();
        Ok(Zca { mean, w, eigenvalues: eig.eigenvalues.iter().copied().collect() })
    }

    /// Whiten patches in place.
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when the patch dimension differs from the fit.
    pub fn apply(&self, patches: &mut PatchSet) -> Result<()> {
        let d = self.mean.len();
        if patches.dim() != d {
            return Err(invalid("patches", patches.dim(), format!("ZCA was fitted on {d}-pixel patches")));
        }
        let n = patches.len();
        let xc = centered(patches, &self.mean);
        let mut y = vec![0f64; n * d];
        // rows: Y = Xc · Wᵀ = Xc · W (W is symmetric)
        gemm_view(
            1.0,
            MatRef::row_major(&xc, n, d)?,
            MatRef::from_dmatrix(&self.w),
            0.0,
            MatMut::row_major(&mut y, n, d)?,
        )?;
        patches.data.iter_mut().zip(&y).for_each(|(o, &v)| *o = v as f32);
        Ok(())
    }

    /// The whitening matrix `W` (`dim × dim`, symmetric).
    pub fn matrix(&self) -> &DMatrix<f64> {
        &self.w
    }
    /// The fitted mean patch.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
    /// Eigenvalues of the fitted covariance (unsorted, as returned by the eigensolver).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }
}

fn centered(p: &PatchSet, mean: &[f64]) -> Vec<f64> {
    let d = mean.len();
    let mut xc = Vec::with_capacity(p.data.len());
    for row in p.data.chunks_exact(d) {
        xc.extend(row.iter().zip(mean).map(|(&v, &m)| f64::from(v) - m));
    }
    xc
}

/// `f0` of the Olshausen & Field whitening filter in cycles per pixel: 0.4 (their
/// `f_0 = 0.4·N` cycles per image on `N × N` images).
pub const OLSHAUSEN_FIELD_F0: f64 = 0.4;

/// Whiten an image with the Olshausen & Field filter `R(f) = f·exp(−(f/f0)⁴)`, applied in the
/// 2-D Fourier domain (radial frequency `f = √(fx² + fy²)` in cycles per pixel, so the Nyquist
/// frequency is 0.5). The filter flattens the 1/f amplitude spectrum of natural images, removes
/// the mean (R(0) = 0) and rolls off the highest frequencies. The result has zero mean and is
/// not restricted to `[0, 1]`.
///
/// | parameter | meaning |
/// | --- | --- |
/// | `img` | a non-empty image (any size; the DFT is not padded) |
/// | `f0` | roll-off frequency in cycles per pixel, `> 0` ([`OLSHAUSEN_FIELD_F0`] = 0.4; 0.2 is "0.4 × Nyquist") |
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for an empty image or a bad `f0`.
///
/// # Example
/// ```
/// use latent_datasets::{data_file, read_png, patches::{OLSHAUSEN_FIELD_F0, whiten_1f}};
/// let img = read_png(data_file("natural-gray/skimage_camera.png")?)?;
/// let w = whiten_1f(&img, OLSHAUSEN_FIELD_F0)?;
/// assert!(w.mean().abs() < 1e-4);
/// # Ok::<(), latent_datasets::DatasetError>(())
/// ```
pub fn whiten_1f(img: &GrayImage, f0: f64) -> Result<GrayImage> {
    if img.is_empty() || !img.is_consistent() {
        return Err(invalid("img", format!("{}x{}", img.width, img.height), "need a non-empty, consistent image"));
    }
    if !(f0.is_finite() && f0 > 0.0) {
        return Err(invalid("f0", f0, "must be finite and > 0 (cycles per pixel)"));
    }
    let (w, h) = (img.width, img.height);
    let mut buf: Vec<Complex<f64>> = img.data.iter().map(|&v| Complex::new(f64::from(v), 0.0)).collect();
    fft2(&mut buf, w, h, false);
    let freq = |k: usize, n: usize| -> f64 {
        let k = if k <= n / 2 { k as f64 } else { k as f64 - n as f64 };
        k / n as f64
    };
    for ky in 0..h {
        let fy = freq(ky, h);
        for kx in 0..w {
            let fx = freq(kx, w);
            let f = (fx * fx + fy * fy).sqrt();
            buf[ky * w + kx] *= f * (-(f / f0).powi(4)).exp();
        }
    }
    fft2(&mut buf, w, h, true);
    let norm = (w * h) as f64;
    Ok(GrayImage { width: w, height: h, data: buf.iter().map(|c| (c.re / norm) as f32).collect() })
}

/// Scale a set of images jointly so their mean per-image variance equals `target_var`
/// (Olshausen & Field use 0.1 after whitening).
///
/// # Errors
/// [`crate::DatasetError::InvalidParameter`] for a bad `target_var` or images with zero variance.
pub fn normalize_variance(images: &mut [GrayImage], target_var: f64) -> Result<()> {
    if !(target_var.is_finite() && target_var > 0.0) {
        return Err(invalid("target_var", target_var, "must be finite and > 0"));
    }
    let vars: Vec<f64> = images
        .iter()
        .filter(|i| !i.is_empty())
        .map(|i| {
            let m = f64::from(i.mean());
            i.data.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / i.data.len() as f64
        })
        .collect();
    let mv = vars.iter().sum::<f64>() / vars.len().max(1) as f64;
    if !(mv.is_finite() && mv > 0.0) {
        return Err(invalid("images", mv, "mean variance must be finite and > 0"));
    }
    let s = (target_var / mv).sqrt() as f32;
    images.iter_mut().for_each(|i| i.data.iter_mut().for_each(|v| *v *= s));
    Ok(())
}

/// In-place 2-D DFT of a row-major `h × w` buffer (unnormalised both ways).
fn fft2(buf: &mut [Complex<f64>], w: usize, h: usize, inverse: bool) {
    let mut planner = FftPlanner::<f64>::new();
    let (row, col) = if inverse {
        (planner.plan_fft_inverse(w), planner.plan_fft_inverse(h))
    } else {
        (planner.plan_fft_forward(w), planner.plan_fft_forward(h))
    };
    for r in buf.chunks_exact_mut(w) {
        row.process(r);
    }
    let mut column = vec![Complex::new(0.0, 0.0); h];
    for x in 0..w {
        for y in 0..h {
            column[y] = buf[y * w + x];
        }
        col.process(&mut column);
        for y in 0..h {
            buf[y * w + x] = column[y];
        }
    }
}
