//! 2-D convolution (cross-correlation, as in PyTorch) and transposed convolution, forward and
//! both backward passes, by im2col + GEMM.
//!
//! Layouts: input `(N, C_in, H, W)`, convolution weight `(C_out, C_in, kh, kw)`, transposed
//! convolution weight `(C_in, C_out, kh, kw)` (PyTorch's conventions), bias length `C_out`.
//! `y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, i·s_h + u − p_h, j·s_w + v − p_w]`
//! with zeros outside the image.
//!
//! Parallelism is across images in fixed-size groups, and weight gradients are summed group by
//! group in a fixed order, so results are bit-identical for any number of rayon threads.

use crate::conv_direct::{self, Direct};
use crate::error::{LinalgError, Result, mismatch};
use crate::product::{MatMut, MatRef, gemm_view};
use crate::real::Real;
use crate::tensor::Tensor4;
use rayon::prelude::*;

/// Stride and zero padding of a 2-D convolution.
///
/// | field | default | meaning | range |
/// |---|---|---|---|
/// | `stride` | (1, 1) | step between output positions (rows, cols) | ≥ 1 |
/// | `pad` | (0, 0) | zeros added on each side (rows, cols) | ≥ 0 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conv2dSpec {
    /// (row, column) stride.
    pub stride: (usize, usize),
    /// (row, column) zero padding on each side.
    pub pad: (usize, usize),
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Self { stride: (1, 1), pad: (0, 0) }
    }
}

impl Conv2dSpec {
    /// Stride `s` and padding `p` in both directions.
    pub fn new(s: usize, p: usize) -> Self {
        Self { stride: (s, s), pad: (p, p) }
    }

    /// Output size of a convolution with a `kh × kw` kernel on an `h × w` input.
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] for a zero stride, [`LinalgError::ShapeMismatch`] when
    /// the (padded) input is smaller than the kernel.
    pub fn output_size(&self, h: usize, w: usize, kh: usize, kw: usize) -> Result<(usize, usize)> {
        if self.stride.0 == 0 || self.stride.1 == 0 {
            return Err(LinalgError::InvalidParameter {
                op: "conv2d",
                name: "stride",
                value: format!("{:?}", self.stride),
                reason: "must be >= 1",
            });
        }
        if kh == 0 || kw == 0 {
            return Err(LinalgError::Empty { op: "conv2d", what: "kernel" });
        }
        let (hp, wp) = (h + 2 * self.pad.0, w + 2 * self.pad.1);
        if hp < kh || wp < kw {
            return Err(mismatch(
                "conv2d",
                format!(
                    "kernel {kh}x{kw} is larger than the padded input {hp}x{wp} (input {h}x{w}, pad {:?})",
                    self.pad
                ),
            ));
        }
        Ok(((hp - kh) / self.stride.0 + 1, (wp - kw) / self.stride.1 + 1))
    }
}

/// Geometry of one convolution: the "image side" (c, h, w) and the "output side" (o, ho, wo).
#[derive(Debug, Clone, Copy)]
struct Geom {
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    ho: usize,
    wo: usize,
}

impl Geom {
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    fn out_len(&self) -> usize {
        self.o * self.ho * self.wo
    }
    /// 1×1 kernel, stride 1, no padding: the input already is the column matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    /// The direct-kernel view of a stride-1, non-pointwise convolution of `T`, when the CPU runs
    /// the direct kernels (see [`crate::conv_direct`]).
    fn direct<T: Real>(&self) -> Option<Direct> {
        (self.sh == 1 && self.sw == 1 && !self.is_pointwise() && direct_kernels_active::<T>()).then_some(Direct {
            c: self.c,
            o: self.o,
            h: self.h,
            w: self.w,
            kh: self.kh,
            kw: self.kw,
            ph: self.ph,
            pw: self.pw,
        })
    }
}

/// Whether the direct kernels may be used (tests switch them off to compare both paths).
static DIRECT_ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn direct_enabled() -> bool {
    DIRECT_ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Run the direct kernels with AVX2 + FMA even on CPUs with AVX-512F (for tests that compare
/// both instruction sets). Returns the previous setting.
#[doc(hidden)]
pub fn force_avx2_direct_kernels(on: bool) -> bool {
    conv_direct::set_avx2_only(on)
}

/// `true` when stride-1 convolutions of `T` with kernels larger than 1×1 run on the direct
/// kernels here (`f32` on a CPU with AVX-512F or AVX2 + FMA, unless switched off by
/// [`set_direct_kernels`]); otherwise they run on im2col + GEMM.
pub fn direct_kernels_active<T: Real>() -> bool {
    direct_enabled() && conv_direct::available::<T>()
}

/// Allow or forbid the direct stride-1 kernels (on by default; they run only for `f32` on CPUs
/// with AVX-512F or AVX2 + FMA). With `false`, every convolution takes the im2col + GEMM path, which is what
/// the direct kernels are tested against. Returns the previous setting.
#[doc(hidden)]
pub fn set_direct_kernels(enabled: bool) -> bool {
    DIRECT_ENABLED.swap(enabled, std::sync::atomic::Ordering::Relaxed)
}

/// Images per parallel work item (fixed, so the summation order never depends on threads).
pub(crate) const GROUP: usize = 4;

/// Unfold one image `(c, h, w)` into `cols` (`K × P`, row-major).
fn im2col<T: Real>(g: &Geom, x: &[T], cols: &mut [T]) {
    let p = g.p();
    for c in 0..g.c {
        let xc = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for u in 0..g.kh {
            for v in 0..g.kw {
                let row = ((c * g.kh + u) * g.kw + v) * p;
                let dst = &mut cols[row..row + p];
                // valid output columns: 0 <= j*sw + v - pw < w
                let j0 = if g.pw > v { (g.pw - v).div_ceil(g.sw) } else { 0 };
                let j1 = if g.w + g.pw > v { ((g.w + g.pw - v - 1) / g.sw + 1).min(g.wo) } else { 0 };
                for i in 0..g.ho {
                    let d = &mut dst[i * g.wo..(i + 1) * g.wo];
                    let iy = (i * g.sh + u) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.h as isize || j0 >= j1 {
                        d.iter_mut().for_each(|e| *e = T::zero());
                        continue;
                    }
                    let src = &xc[iy as usize * g.w..(iy as usize + 1) * g.w];
                    d[..j0].iter_mut().for_each(|e| *e = T::zero());
                    d[j1..].iter_mut().for_each(|e| *e = T::zero());
                    let x0 = j0 * g.sw + v - g.pw;
                    if g.sw == 1 {
                        d[j0..j1].copy_from_slice(&src[x0..x0 + (j1 - j0)]);
                    } else {
                        for (k, e) in d[j0..j1].iter_mut().enumerate() {
                            *e = src[x0 + k * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// Fold `cols` (`K × P`) back into one image, accumulating (`x += col2im(cols)`).
fn col2im<T: Real>(g: &Geom, cols: &[T], x: &mut [T]) {
    let p = g.p();
    for c in 0..g.c {
        let xc = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for u in 0..g.kh {
            for v in 0..g.kw {
                let row = ((c * g.kh + u) * g.kw + v) * p;
                let src = &cols[row..row + p];
                let j0 = if g.pw > v { (g.pw - v).div_ceil(g.sw) } else { 0 };
                let j1 = if g.w + g.pw > v { ((g.w + g.pw - v - 1) / g.sw + 1).min(g.wo) } else { 0 };
                if j0 >= j1 {
                    continue;
                }
                for i in 0..g.ho {
                    let iy = (i * g.sh + u) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let dst = &mut xc[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let s = &src[i * g.wo..(i + 1) * g.wo];
                    let x0 = j0 * g.sw + v - g.pw;
                    if g.sw == 1 {
                        for (e, &a) in dst[x0..x0 + (j1 - j0)].iter_mut().zip(&s[j0..j1]) {
                            *e += a;
                        }
                    } else {
                        for (k, &a) in s[j0..j1].iter().enumerate() {
                            dst[x0 + k * g.sw] += a;
                        }
                    }
                }
            }
        }
    }
}

/// `y_n (O × P) = W (O × K) · cols_n (K × P)` (+ bias) for every image.
fn fwd_core<T: Real>(g: &Geom, n: usize, x: &[T], wmat: &[T], bias: Option<&[T]>, y: &mut [T]) -> Result<()> {
    if let Some(d) = g.direct::<T>() {
        let b = bias.map(conv_direct::as_f32);
        if let (Some(xf), Some(wf), Some(yf), Some(Some(_)) | None) =
            (conv_direct::as_f32(x), conv_direct::as_f32(wmat), conv_direct::as_f32_mut(y), b)
        {
            conv_direct::forward(&d, n, xf, wf, b.flatten(), yf);
            return Ok(());
        }
    }
    let (k, p, il, ol) = (g.k(), g.p(), g.in_len(), g.out_len());
    let one_image = |xi: &[T], yi: &mut [T], cols: &mut Vec<T>| -> Result<()> {
        let colsref = if g.is_pointwise() {
            xi
        } else {
            cols.resize(k * p, T::zero());
            im2col(g, xi, cols);
            &cols[..]
        };
        match bias {
            Some(b) => {
                for (o, row) in yi.chunks_mut(p).enumerate() {
                    row.iter_mut().for_each(|e| *e = b[o]);
                }
            }
            None => yi.iter_mut().for_each(|e| *e = T::zero()),
        }
        let beta = T::one();
        gemm_view(
            T::one(),
            MatRef::row_major(wmat, g.o, k)?,
            MatRef::row_major(colsref, k, p)?,
            beta,
            MatMut::row_major(yi, g.o, p)?,
        )
    };
    if n >= 2 {
        y.par_chunks_mut(ol).zip(x.par_chunks(il)).try_for_each_init(Vec::new, |cols, (yi, xi)| one_image(xi, yi, cols))
    } else {
        let mut cols = Vec::new();
        for (yi, xi) in y.chunks_mut(ol).zip(x.chunks(il)) {
            one_image(xi, yi, &mut cols)?;
        }
        Ok(())
    }
}

/// `dx_n += col2im(Wᵀ (K × O) · dy_n (O × P))` for every image (dx is overwritten).
fn bwd_input_core<T: Real>(g: &Geom, n: usize, dy: &[T], wmat: &[T], dx: &mut [T]) -> Result<()> {
    if let (Some(d), Some(df), Some(wf)) =
        (g.direct::<T>().filter(conv_direct::input_grad_supported), conv_direct::as_f32(dy), conv_direct::as_f32(wmat))
        && let Some(xf) = conv_direct::as_f32_mut(dx)
    {
        conv_direct::backward_input(&d, n, df, wf, xf);
        return Ok(());
    }
    let (k, p, il, ol) = (g.k(), g.p(), g.in_len(), g.out_len());
    let one_image = |dyi: &[T], dxi: &mut [T], cols: &mut Vec<T>| -> Result<()> {
        let wt = MatRef::row_major(wmat, g.o, k)?.t();
        let dym = MatRef::row_major(dyi, g.o, p)?;
        if g.is_pointwise() {
            return gemm_view(T::one(), wt, dym, T::zero(), MatMut::row_major(dxi, k, p)?);
        }
        cols.resize(k * p, T::zero());
        gemm_view(T::one(), wt, dym, T::zero(), MatMut::row_major(cols, k, p)?)?;
        dxi.iter_mut().for_each(|e| *e = T::zero());
        col2im(g, cols, dxi);
        Ok(())
    };
    if n >= 2 {
        dx.par_chunks_mut(il)
            .zip(dy.par_chunks(ol))
            .try_for_each_init(Vec::new, |cols, (dxi, dyi)| one_image(dyi, dxi, cols))
    } else {
        let mut cols = Vec::new();
        for (dxi, dyi) in dx.chunks_mut(il).zip(dy.chunks(ol)) {
            one_image(dyi, dxi, &mut cols)?;
        }
        Ok(())
    }
}

/// `dW (O × K) = Σ_n dy_n (O × P) · cols_nᵀ (P × K)`, and `db[o] = Σ_n Σ_p dy_n[o, p]`.
fn bwd_weight_core<T: Real>(g: &Geom, n: usize, x: &[T], dy: &[T], dw: &mut [T], db: Option<&mut [T]>) -> Result<()> {
    let (k, p, il, ol) = (g.k(), g.p(), g.in_len(), g.out_len());
    let direct = match (g.direct::<T>(), conv_direct::as_f32(x), conv_direct::as_f32(dy)) {
        (Some(d), Some(xf), Some(df)) => {
            conv_direct::as_f32_mut(dw).map(|wf| conv_direct::backward_weight(&d, n, xf, df, wf))
        }
        _ => None,
    };
    if direct.is_some() {
        if let Some(db) = db {
            bias_grad(g, n, dy, db);
        }
        return Ok(());
    }
    let groups = n.div_ceil(GROUP);
    let group_work = |gi: usize, cols: &mut Vec<T>| -> Result<Vec<T>> {
        let mut part = vec![T::zero(); g.o * k];
        for i in gi * GROUP..((gi + 1) * GROUP).min(n) {
            let xi = &x[i * il..(i + 1) * il];
            let dyi = &dy[i * ol..(i + 1) * ol];
            let colsref = if g.is_pointwise() {
                xi
            } else {
                cols.resize(k * p, T::zero());
                im2col(g, xi, cols);
                &cols[..]
            };
            gemm_view(
                T::one(),
                MatRef::row_major(dyi, g.o, p)?,
                MatRef::row_major(colsref, k, p)?.t(),
                T::one(),
                MatMut::row_major(&mut part, g.o, k)?,
            )?;
        }
        Ok(part)
    };
    let parts: Vec<Vec<T>> = if groups >= 2 {
        (0..groups).into_par_iter().map_init(Vec::new, |cols, gi| group_work(gi, cols)).collect::<Result<_>>()?
    } else {
        let mut cols = Vec::new();
        (0..groups).map(|gi| group_work(gi, &mut cols)).collect::<Result<_>>()?
    };
    dw.iter_mut().for_each(|e| *e = T::zero());
    for part in &parts {
        for (a, &b) in dw.iter_mut().zip(part) {
            *a += b;
        }
    }
    if let Some(db) = db {
        bias_grad(g, n, dy, db);
    }
    Ok(())
}

/// `db[o] = Σ_n Σ_p dy_n[o, p]`.
fn bias_grad<T: Real>(g: &Geom, n: usize, dy: &[T], db: &mut [T]) {
    let (p, ol) = (g.p(), g.out_len());
    for (o, d) in db.iter_mut().enumerate() {
        let mut s = T::zero();
        for i in 0..n {
            s += sum_lanes(&dy[i * ol + o * p..i * ol + (o + 1) * p]);
        }
        *d = s;
    }
}

/// Sum of a slice in 16 interleaved partial sums (vectorises; fixed order, so deterministic).
fn sum_lanes<T: Real>(v: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &b) in acc.iter_mut().zip(c) {
            *a += b;
        }
    }
    let mut s = rest.iter().copied().fold(T::zero(), |a, b| a + b);
    for a in acc {
        s += a;
    }
    s
}

fn conv_geom<T: Real>(op: &'static str, x: [usize; 4], w: &Tensor4<T>, spec: &Conv2dSpec) -> Result<Geom> {
    geom_from_shapes(op, x, w.shape(), spec)
}

fn check_bias<T: Real>(op: &'static str, bias: Option<&[T]>, o: usize) -> Result<()> {
    match bias {
        Some(b) if b.len() != o => Err(mismatch(op, format!("bias has {} elements, expected {o}", b.len()))),
        _ => Ok(()),
    }
}

/// Convolution forward: `x (N, C, H, W)`, `w (O, C, kh, kw)`, optional bias `(O)` →
/// `y (N, O, H_out, W_out)`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when the channel counts or bias length disagree or the kernel
/// exceeds the padded input; [`LinalgError::InvalidParameter`] for a zero stride.
///
/// # Example
/// ```
/// use latent_linalg::{Tensor4, conv::{Conv2dSpec, conv2d}};
/// let x = Tensor4::<f32>::full([1, 1, 4, 4], 1.0).unwrap();
/// let w = Tensor4::<f32>::full([2, 1, 3, 3], 1.0).unwrap();
/// let y = conv2d(&x, &w, None, &Conv2dSpec::new(1, 1)).unwrap();
/// assert_eq!(y.shape(), [1, 2, 4, 4]);
/// assert_eq!(y.get([0, 0, 1, 1]), Some(9.0));
/// assert_eq!(y.get([0, 0, 0, 0]), Some(4.0));
/// ```
pub fn conv2d<T: Real>(x: &Tensor4<T>, w: &Tensor4<T>, bias: Option<&[T]>, spec: &Conv2dSpec) -> Result<Tensor4<T>> {
    let g = conv_geom("conv2d", x.shape(), w, spec)?;
    check_bias("conv2d", bias, g.o)?;
    let n = x.n();
    let mut y = Tensor4::zeros([n, g.o, g.ho, g.wo])?;
    fwd_core(&g, n, x.as_slice(), w.as_slice(), bias, y.as_mut_slice())?;
    Ok(y)
}

/// Gradient of [`conv2d`] with respect to its input, given `dy` and the input's `(H, W)`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy` does not have the forward output's shape.
pub fn conv2d_backward_input<T: Real>(
    dy: &Tensor4<T>,
    w: &Tensor4<T>,
    input_hw: (usize, usize),
    spec: &Conv2dSpec,
) -> Result<Tensor4<T>> {
    let n = dy.n();
    let g = conv_geom("conv2d_backward_input", [n, w.shape()[1], input_hw.0, input_hw.1], w, spec)?;
    dy.expect_shape("conv2d_backward_input (dy)", [n, g.o, g.ho, g.wo])?;
    let mut dx = Tensor4::zeros([n, g.c, g.h, g.w])?;
    bwd_input_core(&g, n, dy.as_slice(), w.as_slice(), dx.as_mut_slice())?;
    Ok(dx)
}

/// Gradients of [`conv2d`] with respect to the weight `(O, C, kh, kw)` and the bias `(O)`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy` does not have the forward output's shape.
pub fn conv2d_backward_weight<T: Real>(
    x: &Tensor4<T>,
    dy: &Tensor4<T>,
    kernel: (usize, usize),
    spec: &Conv2dSpec,
) -> Result<(Tensor4<T>, Vec<T>)> {
    let o = dy.c();
    let wshape = [o, x.c(), kernel.0, kernel.1];
    let g = geom_from_shapes("conv2d_backward_weight", x.shape(), wshape, spec)?;
    dy.expect_shape("conv2d_backward_weight (dy)", [x.n(), g.o, g.ho, g.wo])?;
    let mut dw = Tensor4::zeros(wshape)?;
    let mut db = vec![T::zero(); o];
    bwd_weight_core(&g, x.n(), x.as_slice(), dy.as_slice(), dw.as_mut_slice(), Some(&mut db))?;
    Ok((dw, db))
}

fn geom_from_shapes(op: &'static str, x: [usize; 4], w: [usize; 4], spec: &Conv2dSpec) -> Result<Geom> {
    let [_, c, h, wd] = x;
    let [o, wc, kh, kw] = w;
    if wc != c {
        return Err(mismatch(op, format!("input has {c} channels but the weight {w:?} expects {wc}")));
    }
    if c == 0 || o == 0 {
        return Err(LinalgError::Empty { op, what: "channels" });
    }
    let (ho, wo) = spec.output_size(h, wd, kh, kw)?;
    Ok(Geom { c, h, w: wd, o, kh, kw, sh: spec.stride.0, sw: spec.stride.1, ph: spec.pad.0, pw: spec.pad.1, ho, wo })
}

/// Output size of [`conv_transpose2d`]: `(H − 1)·s − 2p + k + output_padding`.
///
/// # Errors
/// [`LinalgError::InvalidParameter`] for a zero stride or an output padding not smaller than the
/// stride; [`LinalgError::ShapeMismatch`] when the result would be empty.
pub fn conv_transpose2d_output_size(
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
) -> Result<(usize, usize)> {
    let (sh, sw) = spec.stride;
    if sh == 0 || sw == 0 || output_padding.0 >= sh || output_padding.1 >= sw {
        return Err(LinalgError::InvalidParameter {
            op: "conv_transpose2d",
            name: "stride/output_padding",
            value: format!("{:?}/{output_padding:?}", spec.stride),
            reason: "stride must be >= 1 and output_padding < stride",
        });
    }
    if h == 0 || w == 0 {
        return Err(LinalgError::Empty { op: "conv_transpose2d", what: "input" });
    }
    let oh = ((h - 1) * sh + kh + output_padding.0).checked_sub(2 * spec.pad.0);
    let ow = ((w - 1) * sw + kw + output_padding.1).checked_sub(2 * spec.pad.1);
    match (oh, ow) {
        (Some(a), Some(b)) if a > 0 && b > 0 => Ok((a, b)),
        _ => Err(mismatch("conv_transpose2d", format!("padding {:?} leaves no output for a {h}x{w} input", spec.pad))),
    }
}

/// The convolution whose input-gradient a transposed convolution is.
fn convt_geom(
    op: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    spec: &Conv2dSpec,
    op_pad: (usize, usize),
) -> Result<Geom> {
    let [_, cin, h, wd] = x;
    let [wcin, cout, kh, kw] = w;
    if wcin != cin {
        return Err(mismatch(op, format!("input has {cin} channels but the weight {w:?} expects {wcin}")));
    }
    if cin == 0 || cout == 0 {
        return Err(LinalgError::Empty { op, what: "channels" });
    }
    let (oh, ow) = conv_transpose2d_output_size(h, wd, kh, kw, spec, op_pad)?;
    // conv view: image side = transposed output (cout, oh, ow); output side = transposed input.
    let g = Geom {
        c: cout,
        h: oh,
        w: ow,
        o: cin,
        kh,
        kw,
        sh: spec.stride.0,
        sw: spec.stride.1,
        ph: spec.pad.0,
        pw: spec.pad.1,
        ho: h,
        wo: wd,
    };
    let (ho, wo) = spec.output_size(oh, ow, kh, kw)?;
    debug_assert_eq!((ho, wo), (h, wd));
    Ok(g)
}

/// Transposed convolution forward: `x (N, C_in, H, W)`, `w (C_in, C_out, kh, kw)`, optional bias
/// `(C_out)` → `y (N, C_out, (H−1)s − 2p + kh + op, …)`; the adjoint of [`conv2d`] plus bias.
///
/// # Errors
/// As [`conv_transpose2d_output_size`], and [`LinalgError::ShapeMismatch`] for channel/bias mismatches.
pub fn conv_transpose2d<T: Real>(
    x: &Tensor4<T>,
    w: &Tensor4<T>,
    bias: Option<&[T]>,
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
) -> Result<Tensor4<T>> {
    let g = convt_geom("conv_transpose2d", x.shape(), w.shape(), spec, output_padding)?;
    check_bias("conv_transpose2d", bias, g.c)?;
    let n = x.n();
    let mut y = Tensor4::zeros([n, g.c, g.h, g.w])?;
    bwd_input_core(&g, n, x.as_slice(), w.as_slice(), y.as_mut_slice())?;
    if let Some(b) = bias {
        let hw = g.h * g.w;
        for (i, plane) in y.as_mut_slice().chunks_mut(hw).enumerate() {
            let bi = b[i % g.c];
            plane.iter_mut().for_each(|e| *e += bi);
        }
    }
    Ok(y)
}

/// Gradient of [`conv_transpose2d`] with respect to its input.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy` does not have the forward output's shape.
pub fn conv_transpose2d_backward_input<T: Real>(
    dy: &Tensor4<T>,
    w: &Tensor4<T>,
    input_hw: (usize, usize),
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
) -> Result<Tensor4<T>> {
    let n = dy.n();
    let g = convt_geom(
        "conv_transpose2d_backward_input",
        [n, w.shape()[0], input_hw.0, input_hw.1],
        w.shape(),
        spec,
        output_padding,
    )?;
    dy.expect_shape("conv_transpose2d_backward_input (dy)", [n, g.c, g.h, g.w])?;
    let mut dx = Tensor4::zeros([n, g.o, g.ho, g.wo])?;
    fwd_core(&g, n, dy.as_slice(), w.as_slice(), None, dx.as_mut_slice())?;
    Ok(dx)
}

/// Gradients of [`conv_transpose2d`] with respect to the weight `(C_in, C_out, kh, kw)` and bias `(C_out)`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy` does not have the forward output's shape.
pub fn conv_transpose2d_backward_weight<T: Real>(
    x: &Tensor4<T>,
    dy: &Tensor4<T>,
    kernel: (usize, usize),
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
) -> Result<(Tensor4<T>, Vec<T>)> {
    let wshape = [x.c(), dy.c(), kernel.0, kernel.1];
    let g = convt_geom("conv_transpose2d_backward_weight", x.shape(), wshape, spec, output_padding)?;
    let n = x.n();
    dy.expect_shape("conv_transpose2d_backward_weight (dy)", [n, g.c, g.h, g.w])?;
    let mut dw = Tensor4::zeros(wshape)?;
    // In the conv view the "image" is dy and the "output" is x.
    bwd_weight_core(&g, n, dy.as_slice(), x.as_slice(), dw.as_mut_slice(), None)?;
    let hw = g.h * g.w;
    let mut db = vec![T::zero(); g.c];
    for (i, plane) in dy.as_slice().chunks(hw).enumerate() {
        db[i % g.c] += sum_lanes(plane);
    }
    Ok((dw, db))
}
