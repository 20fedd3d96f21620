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

use crate::buffers::Scratch;
use crate::conv_direct::{self, Direct};
use crate::conv_fft::{self, cast, cast_mut};
use crate::conv_strided::{self, Strided};
use crate::error::{LinalgError, Result, mismatch};
use crate::product::{MatMut, MatRef, gemm_view, serial};
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

/// Which kernel a convolution runs on.
///
/// The default, [`KernelChoice::Auto`], lets linalg decide by shape, element type and CPU:
/// convolutions of `f32` with kernels larger than 1×1 or strides larger than 1 run on the direct
/// AVX-512 kernels where the CPU has AVX-512F, else on the direct AVX2 + FMA kernels where it has
/// those (both within the cap of [`crate::simd::max_isa`], e.g. `LATENT_ISA=avx2`): stride 1 as
/// shifted sums of the padded image, larger strides through a polyphase split of it (see
/// `conv_strided.rs`), and every other convolution on im2col + GEMM. The other choices force one
/// path, for tests and benchmarks that compare them; a forced direct kernel still applies only
/// where it can (`f32`; stride 1 with a kernel larger than 1×1 and, for the input gradient,
/// padding smaller than the kernel; strided passes whose register blocks of 8 channels would be
/// mostly empty, i.e. a forward with fewer than 6 outputs or an input gradient with fewer than 6
/// input channels, keep im2col + GEMM), other calls take im2col + GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KernelChoice {
    /// Chosen by shape, type and CPU (the default).
    #[default]
    Auto,
    /// im2col + GEMM (the reference path; available everywhere).
    Gemm,
    /// The direct kernels with AVX-512F (16 lanes).
    DirectAvx512,
    /// The direct kernels with AVX2 + FMA (8 lanes), also on CPUs that have AVX-512F.
    DirectAvx2,
    /// 2-D FFTs of the padded planes (stride-1 convolutions of `f32` or `f64`; other strides
    /// take im2col + GEMM). Faster than the other paths only for large kernels, and it rounds
    /// differently, so [`KernelChoice::Auto`] never picks it: ask for it where it pays. Measured
    /// with the `conv_kernels` example on `(2, 4, 64, 64)` inputs, 4 outputs, forward + both
    /// gradients: it beats im2col + GEMM from 7×7 kernels and the direct AVX-512 kernels from
    /// 15×15 (2.5 against 3.2 ms; at 31×31 8.6 against 16.7 ms).
    Fft,
}

impl KernelChoice {
    /// `true` when this choice can run here for element type `T`: always for
    /// [`KernelChoice::Auto`] and [`KernelChoice::Gemm`]; for a direct kernel when `T` is `f32`
    /// and its instruction set is usable (on the CPU and within [`crate::simd::max_isa`]).
    pub fn available<T: Real>(self) -> bool {
        match self {
            KernelChoice::Auto | KernelChoice::Gemm => true,
            KernelChoice::DirectAvx512 => conv_direct::supports::<T>(conv_direct::Isa::Avx512),
            KernelChoice::DirectAvx2 => conv_direct::supports::<T>(conv_direct::Isa::Avx2),
            KernelChoice::Fft => conv_fft::supports::<T>(),
        }
    }

    /// The path this choice selects for `T` (where the shape allows it).
    fn resolve<T: Real>(self, op: &'static str) -> Result<Path> {
        let forced = match self {
            KernelChoice::Auto => return Ok(conv_direct::best::<T>().map_or(Path::Gemm, Path::Direct)),
            KernelChoice::Gemm => return Ok(Path::Gemm),
            KernelChoice::Fft if conv_fft::supports::<T>() => return Ok(Path::Fft),
            KernelChoice::Fft => {
                return Err(LinalgError::InvalidParameter {
                    op,
                    name: "kernel",
                    value: format!("Fft for {}", T::NAME),
                    reason: "the FFT path runs on f32 and f64",
                });
            }
            KernelChoice::DirectAvx512 => conv_direct::Isa::Avx512,
            KernelChoice::DirectAvx2 => conv_direct::Isa::Avx2,
        };
        if conv_direct::supports::<T>(forced) {
            Ok(Path::Direct(forced))
        } else {
            Err(LinalgError::InvalidParameter {
                op,
                name: "kernel",
                value: format!("{self:?} for {}", T::NAME),
                reason: "the direct kernels need f32 and a CPU with their instruction set (see KernelChoice::available)",
            })
        }
    }
}

/// The kernel family of one call, resolved from a [`KernelChoice`] for the element type and CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Gemm,
    Direct(conv_direct::Isa),
    Fft,
}

/// Options of a convolution call: which kernel it runs on (see [`KernelChoice`]). The free
/// functions of this module ([`conv2d`], ...) use the default; the methods of the same names on
/// `ConvOptions` take it explicitly, so a test or benchmark can force one path for one call
/// without touching any process-wide state.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `kernel` | [`KernelChoice::Auto`] | the kernel to run on |
///
/// # Example
/// ```
/// use latent_linalg::Tensor4;
/// use latent_linalg::conv::{Conv2dSpec, ConvOptions, KernelChoice, conv2d};
/// let x = Tensor4::<f32>::from_fn([2, 3, 9, 9], |[n, c, i, j]| (n + c * i + j) as f32 * 0.1)?;
/// let w = Tensor4::<f32>::from_fn([4, 3, 3, 3], |[o, c, u, v]| (o + c + u * v) as f32 * 0.05)?;
/// let spec = Conv2dSpec::new(1, 1);
/// let reference = ConvOptions::new(KernelChoice::Gemm).conv2d(&x, &w, None, &spec)?;
/// let auto = conv2d(&x, &w, None, &spec)?;
/// assert!(reference.as_slice().iter().zip(auto.as_slice()).all(|(a, b)| (a - b).abs() < 1e-4));
/// // a direct kernel the CPU lacks is an error, not a silent fallback
/// let avx512 = ConvOptions::new(KernelChoice::DirectAvx512);
/// assert_eq!(avx512.conv2d(&x, &w, None, &spec).is_ok(), KernelChoice::DirectAvx512.available::<f32>());
/// # Ok::<(), latent_linalg::LinalgError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvOptions {
    /// The kernel to run on.
    pub kernel: KernelChoice,
}

/// A stride-1 convolution in the conv view: image `(c, h, w)`, kernel `(o, c, kh, kw)`, padding;
/// the geometry both the direct and the FFT kernels work on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stride1 {
    pub c: usize,
    pub o: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl Stride1 {
    pub(crate) fn hp(&self) -> usize {
        self.h + 2 * self.ph
    }
    pub(crate) fn wp(&self) -> usize {
        self.w + 2 * self.pw
    }
    pub(crate) fn ho(&self) -> usize {
        self.hp() + 1 - self.kh
    }
    pub(crate) fn wo(&self) -> usize {
        self.wp() + 1 - self.kw
    }
    pub(crate) fn taps(&self) -> usize {
        self.kh * self.kw
    }
}

/// Geometry of one convolution: the "image side" (c, h, w) and the "output side" (o, ho, wo),
/// and the kernel family this call runs on where the shape allows it.
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
    path: Path,
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
    /// The direct-kernel view of a stride-1, non-pointwise convolution, when this call runs the
    /// direct kernels (see [`crate::conv_direct`]).
    fn direct(&self) -> Option<Direct> {
        let Path::Direct(isa) = self.path else { return None };
        (self.sh == 1 && self.sw == 1 && !self.is_pointwise()).then_some(Direct { g: self.stride1(), isa })
    }
    /// The polyphase view of a strided convolution (stride > 1 in either direction), when this
    /// call runs the direct kernels (see [`crate::conv_strided`]).
    fn strided(&self) -> Option<Strided> {
        let Path::Direct(isa) = self.path else { return None };
        (self.sh > 1 || self.sw > 1).then_some(Strided {
            c: self.c,
            o: self.o,
            h: self.h,
            w: self.w,
            kh: self.kh,
            kw: self.kw,
            sh: self.sh,
            sw: self.sw,
            ph: self.ph,
            pw: self.pw,
            ho: self.ho,
            wo: self.wo,
            isa,
        })
    }
    /// The FFT view of a stride-1 convolution, when this call runs on the FFT path.
    fn fft(&self) -> Option<conv_fft::Dims> {
        (self.path == Path::Fft && self.sh == 1 && self.sw == 1).then(|| self.stride1())
    }
    /// The stride-1 view of this geometry (meaningful when both strides are 1).
    fn stride1(&self) -> Stride1 {
        Stride1 { c: self.c, o: self.o, h: self.h, w: self.w, kh: self.kh, kw: self.kw, ph: self.ph, pw: self.pw }
    }
    /// This geometry with the kernel choice of `opts` resolved for `T`.
    fn with<T: Real>(mut self, op: &'static str, opts: &ConvOptions) -> Result<Self> {
        self.path = opts.kernel.resolve::<T>(op)?;
        Ok(self)
    }
}

/// Images per parallel work item (fixed, so the summation order never depends on threads).
pub(crate) const GROUP: usize = 4;

/// Valid output columns `j0..j1` of kernel column `v`: `0 <= j·sw + v − pw < w`.
fn valid_cols(g: &Geom, v: usize) -> (usize, usize) {
    let j0 = if g.pw > v { (g.pw - v).div_ceil(g.sw) } else { 0 };
    let j1 = if g.w + g.pw > v { ((g.w + g.pw - v - 1) / g.sw + 1).min(g.wo) } else { 0 };
    (j0, j1)
}

/// Row `(c, u, v)` of one image's column matrix (`P` values): `dst[i·wo + j] =
/// x_c[i·sh + u − ph, j·sw + v − pw]`, zero outside the image. `xc` is channel `c` (`h × w`).
fn im2col_row<T: Real>(g: &Geom, xc: &[T], u: usize, v: usize, dst: &mut [T]) {
    let (j0, j1) = valid_cols(g, v);
    for (i, d) in dst.chunks_exact_mut(g.wo).enumerate() {
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
            for (e, &a) in d[j0..j1].iter_mut().zip(src[x0..].iter().step_by(g.sw)) {
                *e = a;
            }
        }
    }
}

/// The adjoint of [`im2col_row`], accumulating: `x_c[i·sh + u − ph, j·sw + v − pw] += src[i·wo + j]`.
fn col2im_row<T: Real>(g: &Geom, src: &[T], u: usize, v: usize, xc: &mut [T]) {
    let (j0, j1) = valid_cols(g, v);
    if j0 >= j1 {
        return;
    }
    for (i, s) in src.chunks_exact(g.wo).enumerate() {
        let iy = (i * g.sh + u) as isize - g.ph as isize;
        if iy < 0 || iy >= g.h as isize {
            continue;
        }
        let dst = &mut xc[iy as usize * g.w..(iy as usize + 1) * g.w];
        let x0 = j0 * g.sw + v - g.pw;
        if g.sw == 1 {
            for (e, &a) in dst[x0..x0 + (j1 - j0)].iter_mut().zip(&s[j0..j1]) {
                *e += a;
            }
        } else {
            for (e, &a) in dst[x0..].iter_mut().step_by(g.sw).zip(&s[j0..j1]) {
                *e += a;
            }
        }
    }
}

/// How a call unfolds images into column matrices: row by row from the image (stride 1 and
/// outputs at least [`TABLE_MAX_WO`] wide: long contiguous copies), or through a gather table on
/// a zero-padded copy of the image (strided or narrow outputs: one branch-free loop per row
/// instead of many short, bounds-checked pieces).
enum Unfold {
    Rows,
    /// `tab[(u·kw + v)·P + i·wo + j] = (i·sh + u)·wp + j·sw + v` into the padded `hp × wp` plane.
    Table {
        tab: Vec<u32>,
        hp: usize,
        wp: usize,
    },
}

/// Narrowest output for which stride-1 unfolding copies rows instead of using a table.
const TABLE_MAX_WO: usize = 16;

impl Unfold {
    fn new(g: &Geom) -> Self {
        let (hp, wp) = (g.h + 2 * g.ph, g.w + 2 * g.pw);
        let table_len = g.kh * g.kw * g.p();
        if (g.sw == 1 && g.wo >= TABLE_MAX_WO) || hp.saturating_mul(wp) > u32::MAX as usize || table_len > 1 << 22 {
            return Unfold::Rows;
        }
        let mut tab = Vec::with_capacity(table_len);
        for u in 0..g.kh {
            for v in 0..g.kw {
                for i in 0..g.ho {
                    for j in 0..g.wo {
                        tab.push(((i * g.sh + u) * wp + j * g.sw + v) as u32);
                    }
                }
            }
        }
        Unfold::Table { tab, hp, wp }
    }

    /// Unfold one image `(c, h, w)` into `cols` (`K × P`, row-major).
    fn im2col<T: Real>(&self, g: &Geom, x: &[T], cols: &mut [T], pad: &mut Scratch<T>) {
        let (hw, kk, p) = (g.h * g.w, g.kh * g.kw, g.p());
        let Unfold::Table { tab, hp, wp } = self else {
            for (r, dst) in cols.chunks_exact_mut(p).enumerate() {
                let c = r / kk;
                im2col_row(g, &x[c * hw..(c + 1) * hw], (r % kk) / g.kw, r % g.kw, dst);
            }
            return;
        };
        let plane = hp * wp;
        let xp = pad.resized(g.c * plane);
        for (xc, pc) in x.chunks_exact(hw).zip(xp.chunks_exact_mut(plane)) {
            for (r, prow) in pc.chunks_exact_mut(*wp).enumerate() {
                if r < g.ph || r >= g.ph + g.h {
                    prow.iter_mut().for_each(|e| *e = T::zero());
                } else {
                    prow[..g.pw].iter_mut().for_each(|e| *e = T::zero());
                    prow[g.pw + g.w..].iter_mut().for_each(|e| *e = T::zero());
                    prow[g.pw..g.pw + g.w].copy_from_slice(&xc[(r - g.ph) * g.w..(r - g.ph + 1) * g.w]);
                }
            }
        }
        for (pc, cc) in xp.chunks_exact(plane).zip(cols.chunks_exact_mut(kk * p)) {
            for (t, dst) in tab.chunks_exact(p).zip(cc.chunks_exact_mut(p)) {
                for (d, &ix) in dst.iter_mut().zip(t) {
                    *d = pc[ix as usize];
                }
            }
        }
    }

    /// Fold `cols` (`K × P`) back into one image, overwriting `x`.
    fn col2im<T: Real>(&self, g: &Geom, cols: &[T], x: &mut [T], pad: &mut Scratch<T>) {
        let (hw, kk, p) = (g.h * g.w, g.kh * g.kw, g.p());
        let Unfold::Table { tab, hp, wp } = self else {
            x.iter_mut().for_each(|e| *e = T::zero());
            for (r, src) in cols.chunks_exact(p).enumerate() {
                let c = r / kk;
                col2im_row(g, src, (r % kk) / g.kw, r % g.kw, &mut x[c * hw..(c + 1) * hw]);
            }
            return;
        };
        let plane = hp * wp;
        let xp = pad.resized(plane);
        for (xc, cc) in x.chunks_exact_mut(hw).zip(cols.chunks_exact(kk * p)) {
            xp.iter_mut().for_each(|e| *e = T::zero());
            for (t, src) in tab.chunks_exact(p).zip(cc.chunks_exact(p)) {
                for (&ix, &a) in t.iter().zip(src) {
                    xp[ix as usize] += a;
                }
            }
            for (r, row) in xc.chunks_exact_mut(g.w).enumerate() {
                row.copy_from_slice(&xp[(r + g.ph) * wp + g.pw..(r + g.ph) * wp + g.pw + g.w]);
            }
        }
    }
}

/// Per-thread scratch of the unfolding kernels: the column matrix and the padded image.
#[derive(Default)]
struct Bufs<T: Real> {
    cols: Scratch<T>,
    pad: Scratch<T>,
}

/// `y_n (O × P) = W (O × K) · cols_n (K × P)` (+ bias) for every image.
///
/// Returns the output `(n, O, Ho, Wo)` as a flat vector: the direct kernels write every element
/// into storage that is not zeroed first; the other paths start from zeros.
fn fwd_core<T: Real>(g: &Geom, n: usize, x: &[T], wmat: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
    let len = elems("conv output", n, g.out_len())?;
    if let Some(d) = g.direct() {
        let b = bias.map(conv_direct::as_f32);
        if let (Some(xf), Some(wf), Some(Some(_)) | None) = (conv_direct::as_f32(x), conv_direct::as_f32(wmat), b)
            && let Some(y) = conv_direct::vec_as::<T>(conv_direct::forward(&d, n, xf, wf, b.flatten()))
        {
            return Ok(y);
        }
    }
    if let Some(st) = g.strided().filter(conv_strided::forward_fits) {
        let b = bias.map(conv_direct::as_f32);
        if let (Some(xf), Some(wf), Some(Some(_)) | None) = (conv_direct::as_f32(x), conv_direct::as_f32(wmat), b)
            && let Some(y) = conv_direct::vec_as::<T>(conv_strided::forward(&st, n, xf, wf, b.flatten()))
        {
            return Ok(y);
        }
    }
    let mut y = crate::buffers::zeros::<T>(len);
    fwd_core_into(g, n, x, wmat, bias, &mut y)?;
    Ok(y)
}

/// `n · per` elements, or an error naming `what` when the count overflows.
fn elems(what: &str, n: usize, per: usize) -> Result<usize> {
    n.checked_mul(per).ok_or_else(|| mismatch("conv", format!("{what} of {n} × {per} elements overflows usize")))
}

/// [`fwd_core`] on the FFT and GEMM paths, into zeros.
fn fwd_core_into<T: Real>(g: &Geom, n: usize, x: &[T], wmat: &[T], bias: Option<&[T]>, y: &mut [T]) -> Result<()> {
    if let Some(d) = g.fft() {
        if let (Some(xf), Some(wf), Some(yf)) = (cast::<T, f32>(x), cast::<T, f32>(wmat), cast_mut::<T, f32>(&mut *y)) {
            return conv_fft::forward(&d, xf, wf, bias.and_then(cast::<T, f32>), yf);
        }
        if let (Some(xf), Some(wf), Some(yf)) = (cast::<T, f64>(x), cast::<T, f64>(wmat), cast_mut::<T, f64>(&mut *y)) {
            return conv_fft::forward(&d, xf, wf, bias.and_then(cast::<T, f64>), yf);
        }
    }
    let (k, p, il, ol) = (g.k(), g.p(), g.in_len(), g.out_len());
    let unfold = Unfold::new(g);
    let one_image = |xi: &[T], yi: &mut [T], b: &mut Bufs<T>| -> Result<()> {
        let colsref = if g.is_pointwise() {
            xi
        } else {
            let cols = b.cols.resized(k * p);
            unfold.im2col(g, xi, cols, &mut b.pad);
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
        crate::product::keep_warm();
        y.par_chunks_mut(ol)
            .zip(x.par_chunks(il))
            .try_for_each_init(Bufs::default, |b, (yi, xi)| serial(|| one_image(xi, yi, b)))
    } else {
        let mut b = Bufs::default();
        for (yi, xi) in y.chunks_mut(ol).zip(x.chunks(il)) {
            one_image(xi, yi, &mut b)?;
        }
        Ok(())
    }
}

/// `dx_n = col2im(Wᵀ (K × O) · dy_n (O × P))` for every image, returned as a flat `(n, C, H, W)`
/// vector (the direct kernels write every element into storage that is not zeroed first).
fn bwd_input_core<T: Real>(g: &Geom, n: usize, dy: &[T], wmat: &[T]) -> Result<Vec<T>> {
    let len = elems("conv input gradient", n, g.in_len())?;
    if let (Some(d), Some(df), Some(wf)) =
        (g.direct().filter(conv_direct::input_grad_supported), conv_direct::as_f32(dy), conv_direct::as_f32(wmat))
        && let Some(dx) = conv_direct::vec_as::<T>(conv_direct::backward_input(&d, n, df, wf))
    {
        return Ok(dx);
    }
    if let (Some(st), Some(df), Some(wf)) =
        (g.strided().filter(conv_strided::input_grad_fits), conv_direct::as_f32(dy), conv_direct::as_f32(wmat))
        && let Some(dx) = conv_direct::vec_as::<T>(conv_strided::backward_input(&st, n, df, wf))
    {
        return Ok(dx);
    }
    let mut dx = crate::buffers::zeros::<T>(len);
    bwd_input_core_into(g, n, dy, wmat, &mut dx)?;
    Ok(dx)
}

/// [`bwd_input_core`] on the FFT and GEMM paths (and direct geometries whose padding the direct
/// input gradient does not take), into zeros.
fn bwd_input_core_into<T: Real>(g: &Geom, n: usize, dy: &[T], wmat: &[T], dx: &mut [T]) -> Result<()> {
    if let Some(d) = g.fft() {
        if let (Some(df), Some(wf), Some(xf)) = (cast::<T, f32>(dy), cast::<T, f32>(wmat), cast_mut::<T, f32>(&mut *dx))
        {
            return conv_fft::backward_input(&d, df, wf, xf);
        }
        if let (Some(df), Some(wf), Some(xf)) = (cast::<T, f64>(dy), cast::<T, f64>(wmat), cast_mut::<T, f64>(&mut *dx))
        {
            return conv_fft::backward_input(&d, df, wf, xf);
        }
    }
    let (k, p, il, ol) = (g.k(), g.p(), g.in_len(), g.out_len());
    let unfold = Unfold::new(g);
    let one_image = |dyi: &[T], dxi: &mut [T], b: &mut Bufs<T>| -> Result<()> {
        let wt = MatRef::row_major(wmat, g.o, k)?.t();
        let dym = MatRef::row_major(dyi, g.o, p)?;
        if g.is_pointwise() {
            return gemm_view(T::one(), wt, dym, T::zero(), MatMut::row_major(dxi, k, p)?);
        }
        let cols = b.cols.resized(k * p);
        gemm_view(T::one(), wt, dym, T::zero(), MatMut::row_major(cols, k, p)?)?;
        unfold.col2im(g, cols, dxi, &mut b.pad);
        Ok(())
    };
    if n >= 2 {
        crate::product::keep_warm();
        dx.par_chunks_mut(il)
            .zip(dy.par_chunks(ol))
            .try_for_each_init(Bufs::default, |b, (dxi, dyi)| serial(|| one_image(dyi, dxi, b)))
    } else {
        let mut b = Bufs::default();
        for (dxi, dyi) in dx.chunks_mut(il).zip(dy.chunks(ol)) {
            one_image(dyi, dxi, &mut b)?;
        }
        Ok(())
    }
}

/// `dW (O × K) = Σ_n dy_n (O × P) · cols_nᵀ (P × K)`, and `db[o] = Σ_n Σ_p dy_n[o, p]`.
fn bwd_weight_core<T: Real>(
    g: &Geom,
    n: usize,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    mut db: Option<&mut [T]>,
) -> Result<()> {
    if let Some(d) = g.fft() {
        let done = if let (Some(xf), Some(df), Some(wf)) =
            (cast::<T, f32>(x), cast::<T, f32>(dy), cast_mut::<T, f32>(&mut *dw))
        {
            conv_fft::backward_weight(&d, n, xf, df, wf).map(|()| true)
        } else if let (Some(xf), Some(df), Some(wf)) =
            (cast::<T, f64>(x), cast::<T, f64>(dy), cast_mut::<T, f64>(&mut *dw))
        {
            conv_fft::backward_weight(&d, n, xf, df, wf).map(|()| true)
        } else {
            Ok(false)
        };
        if done? {
            if let Some(db) = db {
                bias_grad(g, n, dy, db);
            }
            return Ok(());
        }
    }
    let (k, p, il, ol) = (g.k(), g.p(), g.in_len(), g.out_len());
    if let (Some(d), Some(xf), Some(df)) = (g.direct(), conv_direct::as_f32(x), conv_direct::as_f32(dy))
        && let Some(wf) = conv_direct::as_f32_mut(dw)
        // no bias gradient wanted, or one of dw's type (always, as T is f32 here)
        && let Some(bf) = db.as_deref_mut().map_or(Some(None), |b| conv_direct::as_f32_mut(b).map(Some))
    {
        conv_direct::backward_weight(&d, n, xf, df, wf, bf);
        return Ok(());
    }
    if let (Some(st), Some(xf), Some(df)) = (g.strided(), conv_direct::as_f32(x), conv_direct::as_f32(dy))
        && let Some(wf) = conv_direct::as_f32_mut(dw)
        && let Some(bf) = db.as_deref_mut().map_or(Some(None), |b| conv_direct::as_f32_mut(b).map(Some))
    {
        conv_strided::backward_weight(&st, n, xf, df, wf, bf);
        return Ok(());
    }
    let groups = n.div_ceil(GROUP);
    let unfold = Unfold::new(g);
    let group_work = |gi: usize, b: &mut Bufs<T>| -> Result<Vec<T>> {
        let mut part = vec![T::zero(); g.o * k];
        for i in gi * GROUP..((gi + 1) * GROUP).min(n) {
            let xi = &x[i * il..(i + 1) * il];
            let dyi = &dy[i * ol..(i + 1) * ol];
            let colsref = if g.is_pointwise() {
                xi
            } else {
                let cols = b.cols.resized(k * p);
                unfold.im2col(g, xi, cols, &mut b.pad);
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
        crate::product::keep_warm();
        (0..groups)
            .into_par_iter()
            .map_init(Bufs::default, |b, gi| serial(|| group_work(gi, b)))
            .collect::<Result<_>>()?
    } else {
        let mut b = Bufs::default();
        (0..groups).map(|gi| group_work(gi, &mut b)).collect::<Result<_>>()?
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
            s += crate::ops::sum_lanes(&dy[i * ol + o * p..i * ol + (o + 1) * p]);
        }
        *d = s;
    }
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

fn conv2d_impl<T: Real>(
    opts: &ConvOptions,
    x: &Tensor4<T>,
    w: &Tensor4<T>,
    bias: Option<&[T]>,
    spec: &Conv2dSpec,
) -> Result<Tensor4<T>> {
    let g = conv_geom("conv2d", x.shape(), w, spec)?.with::<T>("conv2d", opts)?;
    check_bias("conv2d", bias, g.o)?;
    let n = x.n();
    Tensor4::from_vec([n, g.o, g.ho, g.wo], fwd_core(&g, n, x.as_slice(), w.as_slice(), bias)?)
}

fn conv2d_backward_input_impl<T: Real>(
    opts: &ConvOptions,
    dy: &Tensor4<T>,
    w: &Tensor4<T>,
    input_hw: (usize, usize),
    spec: &Conv2dSpec,
) -> Result<Tensor4<T>> {
    let n = dy.n();
    let g = conv_geom("conv2d_backward_input", [n, w.shape()[1], input_hw.0, input_hw.1], w, spec)?
        .with::<T>("conv2d_backward_input", opts)?;
    dy.expect_shape("conv2d_backward_input (dy)", [n, g.o, g.ho, g.wo])?;
    Tensor4::from_vec([n, g.c, g.h, g.w], bwd_input_core(&g, n, dy.as_slice(), w.as_slice())?)
}

fn conv2d_backward_weight_impl<T: Real>(
    opts: &ConvOptions,
    x: &Tensor4<T>,
    dy: &Tensor4<T>,
    kernel: (usize, usize),
    spec: &Conv2dSpec,
) -> Result<(Tensor4<T>, Vec<T>)> {
    let o = dy.c();
    let wshape = [o, x.c(), kernel.0, kernel.1];
    let g = geom_from_shapes("conv2d_backward_weight", x.shape(), wshape, spec)?
        .with::<T>("conv2d_backward_weight", opts)?;
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
    Ok(Geom {
        c,
        h,
        w: wd,
        o,
        kh,
        kw,
        sh: spec.stride.0,
        sw: spec.stride.1,
        ph: spec.pad.0,
        pw: spec.pad.1,
        ho,
        wo,
        path: Path::Gemm,
    })
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
        path: Path::Gemm,
    };
    let (ho, wo) = spec.output_size(oh, ow, kh, kw)?;
    debug_assert_eq!((ho, wo), (h, wd));
    Ok(g)
}

fn conv_transpose2d_impl<T: Real>(
    opts: &ConvOptions,
    x: &Tensor4<T>,
    w: &Tensor4<T>,
    bias: Option<&[T]>,
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
) -> Result<Tensor4<T>> {
    let g = convt_geom("conv_transpose2d", x.shape(), w.shape(), spec, output_padding)?
        .with::<T>("conv_transpose2d", opts)?;
    check_bias("conv_transpose2d", bias, g.c)?;
    let n = x.n();
    let mut y = Tensor4::from_vec([n, g.c, g.h, g.w], bwd_input_core(&g, n, x.as_slice(), w.as_slice())?)?;
    if let Some(b) = bias {
        let hw = g.h * g.w;
        for (i, plane) in y.as_mut_slice().chunks_mut(hw).enumerate() {
            let bi = b[i % g.c];
            plane.iter_mut().for_each(|e| *e += bi);
        }
    }
    Ok(y)
}

fn conv_transpose2d_backward_input_impl<T: Real>(
    opts: &ConvOptions,
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
    )?
    .with::<T>("conv_transpose2d_backward_input", opts)?;
    dy.expect_shape("conv_transpose2d_backward_input (dy)", [n, g.c, g.h, g.w])?;
    Tensor4::from_vec([n, g.o, g.ho, g.wo], fwd_core(&g, n, dy.as_slice(), w.as_slice(), None)?)
}

fn conv_transpose2d_backward_weight_impl<T: Real>(
    opts: &ConvOptions,
    x: &Tensor4<T>,
    dy: &Tensor4<T>,
    kernel: (usize, usize),
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
) -> Result<(Tensor4<T>, Vec<T>)> {
    let wshape = [x.c(), dy.c(), kernel.0, kernel.1];
    let g = convt_geom("conv_transpose2d_backward_weight", x.shape(), wshape, spec, output_padding)?
        .with::<T>("conv_transpose2d_backward_weight", opts)?;
    let n = x.n();
    dy.expect_shape("conv_transpose2d_backward_weight (dy)", [n, g.c, g.h, g.w])?;
    let mut dw = Tensor4::zeros(wshape)?;
    // In the conv view the "image" is dy and the "output" is x.
    bwd_weight_core(&g, n, dy.as_slice(), x.as_slice(), dw.as_mut_slice(), None)?;
    let hw = g.h * g.w;
    let mut db = vec![T::zero(); g.c];
    for (i, plane) in dy.as_slice().chunks(hw).enumerate() {
        db[i % g.c] += crate::ops::sum_lanes(plane);
    }
    Ok((dw, db))
}

fn conv_transpose2d_backward_impl<T: Real>(
    opts: &ConvOptions,
    x: &Tensor4<T>,
    w: &Tensor4<T>,
    dy: &Tensor4<T>,
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
    need_dx: bool,
) -> Result<(Option<Tensor4<T>>, Tensor4<T>)> {
    let op = "conv_transpose2d_backward";
    let wshape = w.shape();
    let g = convt_geom(op, x.shape(), wshape, spec, output_padding)?.with::<T>(op, opts)?;
    let n = x.n();
    dy.expect_shape(op, [n, g.c, g.h, g.w])?;
    let mut dw = Tensor4::zeros(wshape)?;
    if g.direct().is_some() || g.strided().is_some() || g.fft().is_some() || g.is_pointwise() || n == 0 {
        let dx = if need_dx {
            Some(Tensor4::from_vec([n, g.o, g.ho, g.wo], fwd_core(&g, n, dy.as_slice(), w.as_slice(), None)?)?)
        } else {
            None
        };
        bwd_weight_core(&g, n, dy.as_slice(), x.as_slice(), dw.as_mut_slice(), None)?;
        return Ok((dx, dw));
    }
    // conv view: the "image" is dy (il per sample), the "output" is x (ol per sample)
    let (k, p, il, ol) = (g.k(), g.p(), g.in_len(), g.out_len());
    let (xs, dys, wmat) = (x.as_slice(), dy.as_slice(), w.as_slice());
    let unfold = Unfold::new(&g);
    let work = |gi: usize, mut dxg: Option<&mut [T]>, b: &mut Bufs<T>| -> Result<Vec<T>> {
        let mut part = crate::buffers::zeros(g.o * k);
        for (j, i) in (gi * GROUP..((gi + 1) * GROUP).min(n)).enumerate() {
            let cols = b.cols.resized(k * p);
            unfold.im2col(&g, &dys[i * il..(i + 1) * il], cols, &mut b.pad);
            gemm_view(
                T::one(),
                MatRef::row_major(&xs[i * ol..(i + 1) * ol], g.o, p)?,
                MatRef::row_major(cols, k, p)?.t(),
                T::one(),
                MatMut::row_major(&mut part, g.o, k)?,
            )?;
            if let Some(dxg) = dxg.as_deref_mut() {
                let dxi = &mut dxg[j * ol..(j + 1) * ol];
                dxi.iter_mut().for_each(|e| *e = T::zero());
                gemm_view(
                    T::one(),
                    MatRef::row_major(wmat, g.o, k)?,
                    MatRef::row_major(cols, k, p)?,
                    T::one(),
                    MatMut::row_major(dxi, g.o, p)?,
                )?;
            }
        }
        Ok(part)
    };
    let mut dx = if need_dx { Some(Tensor4::zeros([n, g.o, g.ho, g.wo])?) } else { None };
    crate::product::keep_warm();
    let parts: Vec<Vec<T>> = match dx.as_mut() {
        Some(dx) => dx
            .as_mut_slice()
            .par_chunks_mut(GROUP * ol)
            .enumerate()
            .map_init(Bufs::default, |b, (gi, dxg)| serial(|| work(gi, Some(dxg), b)))
            .collect::<Result<_>>()?,
        None => (0..n.div_ceil(GROUP))
            .into_par_iter()
            .map_init(Bufs::default, |b, gi| serial(|| work(gi, None, b)))
            .collect::<Result<_>>()?,
    };
    let dws = dw.as_mut_slice();
    for part in parts {
        for (a, &b) in dws.iter_mut().zip(&part) {
            *a += b;
        }
        crate::buffers::give(part);
    }
    Ok((dx, dw))
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
    conv2d_impl(&ConvOptions::default(), x, w, bias, spec)
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
    conv2d_backward_input_impl(&ConvOptions::default(), dy, w, input_hw, spec)
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
    conv2d_backward_weight_impl(&ConvOptions::default(), x, dy, kernel, spec)
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
    conv_transpose2d_impl(&ConvOptions::default(), x, w, bias, spec, output_padding)
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
    conv_transpose2d_backward_input_impl(&ConvOptions::default(), dy, w, input_hw, spec, output_padding)
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
    conv_transpose2d_backward_weight_impl(&ConvOptions::default(), x, dy, kernel, spec, output_padding)
}

/// Both gradients of [`conv_transpose2d`] in one pass: the input gradient (when `need_dx`) and
/// the weight gradient `(C_in, C_out, kh, kw)`. The two share the unfolding of `dy`, which is
/// done once per image instead of twice; results are bit-identical to
/// [`conv_transpose2d_backward_input`] and the weight part of
/// [`conv_transpose2d_backward_weight`]. (The bias gradient is the per-channel sum of `dy`.)
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `x`, `w` and `dy` do not fit together.
///
/// # Example
/// ```
/// use latent_linalg::{Tensor4, conv::{Conv2dSpec, conv_transpose2d_backward, conv_transpose2d_backward_input}};
/// let x = Tensor4::<f32>::from_fn([2, 3, 4, 4], |i| (i[1] + i[2] * i[3]) as f32).unwrap();
/// let w = Tensor4::<f32>::full([3, 2, 4, 4], 0.5).unwrap();
/// let spec = Conv2dSpec::new(2, 1);
/// let dy = Tensor4::<f32>::full([2, 2, 8, 8], 1.0).unwrap();
/// let (dx, dw) = conv_transpose2d_backward(&x, &w, &dy, &spec, (0, 0), true).unwrap();
/// assert_eq!(dx.unwrap(), conv_transpose2d_backward_input(&dy, &w, (4, 4), &spec, (0, 0)).unwrap());
/// assert_eq!(dw.shape(), [3, 2, 4, 4]);
/// ```
pub fn conv_transpose2d_backward<T: Real>(
    x: &Tensor4<T>,
    w: &Tensor4<T>,
    dy: &Tensor4<T>,
    spec: &Conv2dSpec,
    output_padding: (usize, usize),
    need_dx: bool,
) -> Result<(Option<Tensor4<T>>, Tensor4<T>)> {
    conv_transpose2d_backward_impl(&ConvOptions::default(), x, w, dy, spec, output_padding, need_dx)
}

impl ConvOptions {
    /// Options with the given kernel choice.
    pub fn new(kernel: KernelChoice) -> Self {
        Self { kernel }
    }

    /// [`conv2d`] on the kernel these options choose.
    ///
    /// # Errors
    /// As [`conv2d`], and [`LinalgError::InvalidParameter`] for a forced kernel that cannot run
    /// here (see [`KernelChoice::available`]).
    pub fn conv2d<T: Real>(
        &self,
        x: &Tensor4<T>,
        w: &Tensor4<T>,
        bias: Option<&[T]>,
        spec: &Conv2dSpec,
    ) -> Result<Tensor4<T>> {
        conv2d_impl(self, x, w, bias, spec)
    }

    /// [`conv2d_backward_input`] on the kernel these options choose.
    ///
    /// # Errors
    /// As [`conv2d_backward_input`], and [`LinalgError::InvalidParameter`] for a forced kernel that cannot run
    /// here (see [`KernelChoice::available`]).
    pub fn conv2d_backward_input<T: Real>(
        &self,
        dy: &Tensor4<T>,
        w: &Tensor4<T>,
        input_hw: (usize, usize),
        spec: &Conv2dSpec,
    ) -> Result<Tensor4<T>> {
        conv2d_backward_input_impl(self, dy, w, input_hw, spec)
    }

    /// [`conv2d_backward_weight`] on the kernel these options choose.
    ///
    /// # Errors
    /// As [`conv2d_backward_weight`], and [`LinalgError::InvalidParameter`] for a forced kernel that cannot run
    /// here (see [`KernelChoice::available`]).
    pub fn conv2d_backward_weight<T: Real>(
        &self,
        x: &Tensor4<T>,
        dy: &Tensor4<T>,
        kernel: (usize, usize),
        spec: &Conv2dSpec,
    ) -> Result<(Tensor4<T>, Vec<T>)> {
        conv2d_backward_weight_impl(self, x, dy, kernel, spec)
    }

    /// [`conv_transpose2d`] on the kernel these options choose.
    ///
    /// # Errors
    /// As [`conv_transpose2d`], and [`LinalgError::InvalidParameter`] for a forced kernel that cannot run
    /// here (see [`KernelChoice::available`]).
    pub fn conv_transpose2d<T: Real>(
        &self,
        x: &Tensor4<T>,
        w: &Tensor4<T>,
        bias: Option<&[T]>,
        spec: &Conv2dSpec,
        output_padding: (usize, usize),
    ) -> Result<Tensor4<T>> {
        conv_transpose2d_impl(self, x, w, bias, spec, output_padding)
    }

    /// [`conv_transpose2d_backward_input`] on the kernel these options choose.
    ///
    /// # Errors
    /// As [`conv_transpose2d_backward_input`], and [`LinalgError::InvalidParameter`] for a forced kernel that cannot run
    /// here (see [`KernelChoice::available`]).
    pub fn conv_transpose2d_backward_input<T: Real>(
        &self,
        dy: &Tensor4<T>,
        w: &Tensor4<T>,
        input_hw: (usize, usize),
        spec: &Conv2dSpec,
        output_padding: (usize, usize),
    ) -> Result<Tensor4<T>> {
        conv_transpose2d_backward_input_impl(self, dy, w, input_hw, spec, output_padding)
    }

    /// [`conv_transpose2d_backward_weight`] on the kernel these options choose.
    ///
    /// # Errors
    /// As [`conv_transpose2d_backward_weight`], and [`LinalgError::InvalidParameter`] for a forced kernel that cannot run
    /// here (see [`KernelChoice::available`]).
    pub fn conv_transpose2d_backward_weight<T: Real>(
        &self,
        x: &Tensor4<T>,
        dy: &Tensor4<T>,
        kernel: (usize, usize),
        spec: &Conv2dSpec,
        output_padding: (usize, usize),
    ) -> Result<(Tensor4<T>, Vec<T>)> {
        conv_transpose2d_backward_weight_impl(self, x, dy, kernel, spec, output_padding)
    }

    /// [`conv_transpose2d_backward`] on the kernel these options choose.
    ///
    /// # Errors
    /// As [`conv_transpose2d_backward`], and [`LinalgError::InvalidParameter`] for a forced kernel that cannot run
    /// here (see [`KernelChoice::available`]).
    pub fn conv_transpose2d_backward<T: Real>(
        &self,
        x: &Tensor4<T>,
        w: &Tensor4<T>,
        dy: &Tensor4<T>,
        spec: &Conv2dSpec,
        output_padding: (usize, usize),
        need_dx: bool,
    ) -> Result<(Option<Tensor4<T>>, Tensor4<T>)> {
        conv_transpose2d_backward_impl(self, x, w, dy, spec, output_padding, need_dx)
    }
}
