//! Pooling, upsampling, channel concatenation and center cropping, each with its backward pass
//! (the exact adjoint for the linear ones).

use crate::error::{LinalgError, Result, mismatch};
use crate::real::Real;
use crate::tensor::Tensor4;
use rayon::prelude::*;

fn pool_out(op: &'static str, h: usize, w: usize, k: (usize, usize), s: (usize, usize)) -> Result<(usize, usize)> {
    if k.0 == 0 || k.1 == 0 || s.0 == 0 || s.1 == 0 {
        return Err(LinalgError::InvalidParameter {
            op,
            name: "kernel/stride",
            value: format!("{k:?}/{s:?}"),
            reason: "must be >= 1",
        });
    }
    if h < k.0 || w < k.1 {
        return Err(mismatch(op, format!("window {}x{} is larger than the input {h}x{w}", k.0, k.1)));
    }
    Ok(((h - k.0) / s.0 + 1, (w - k.1) / s.1 + 1))
}

/// Max pooling (floor mode, no padding). Returns the output and, per output element, the flat
/// index within its input plane (`h·W + w`) of the maximum (the first one on ties), which
/// [`max_pool2d_backward`] needs. A NaN in a window propagates to the output.
///
/// # Errors
/// [`LinalgError::InvalidParameter`] for zero window/stride, [`LinalgError::ShapeMismatch`] when
/// the window exceeds the input.
pub fn max_pool2d<T: Real>(x: &Tensor4<T>, k: (usize, usize), s: (usize, usize)) -> Result<(Tensor4<T>, Vec<u32>)> {
    let [n, c, h, w] = x.shape();
    let (ho, wo) = pool_out("max_pool2d", h, w, k, s)?;
    if h * w > u32::MAX as usize {
        return Err(mismatch("max_pool2d", format!("plane {h}x{w} too large for 32-bit argmax")));
    }
    let mut y = Tensor4::zeros([n, c, ho, wo])?;
    let mut arg = vec![0u32; n * c * ho * wo];
    let planes_in = x.as_slice().par_chunks(h * w.max(1));
    y.as_mut_slice()
        .par_chunks_mut((ho * wo).max(1))
        .zip(arg.par_chunks_mut((ho * wo).max(1)))
        .zip(planes_in)
        .for_each(|((yp, ap), xp)| {
            if k == (2, 2) && s == (2, 2) {
                max_pool_2x2(xp, w, wo, yp, ap);
                return;
            }
            for i in 0..ho {
                for j in 0..wo {
                    let mut best = T::zero();
                    let mut bi = usize::MAX;
                    for u in 0..k.0 {
                        for v in 0..k.1 {
                            let idx = (i * s.0 + u) * w + j * s.1 + v;
                            let val = xp[idx];
                            if bi == usize::MAX || val > best || (val.isnan() && !best.isnan()) {
                                best = val;
                                bi = idx;
                            }
                        }
                    }
                    yp[i * wo + j] = best;
                    ap[i * wo + j] = bi as u32;
                }
            }
        });
    Ok((y, arg))
}

/// [`max_pool2d`] of one plane (row length `w`) with a 2×2 window and stride 2 into `yp`/`ap`
/// (`wo` outputs per row): the same comparisons in the same order as the general loop (the first
/// of equal maxima wins, a NaN wins over numbers), without its index arithmetic.
fn max_pool_2x2<T: Real>(xp: &[T], w: usize, wo: usize, yp: &mut [T], ap: &mut [u32]) {
    #[inline(always)]
    fn better<T: Real>(v: T, best: T) -> bool {
        v > best || (v.isnan() && !best.isnan())
    }
    if wo == 0 {
        return;
    }
    for (i, (yr, ar)) in yp.chunks_exact_mut(wo).zip(ap.chunks_exact_mut(wo)).enumerate() {
        let top = 2 * i * w;
        let (r0, r1) = (&xp[top..top + 2 * wo], &xp[top + w..top + w + 2 * wo]);
        for (j, (((y, a), p0), p1)) in
            yr.iter_mut().zip(ar.iter_mut()).zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)).enumerate()
        {
            let base = (top + 2 * j) as u32;
            let (mut best, mut bi) = (p0[0], base);
            if better(p0[1], best) {
                (best, bi) = (p0[1], base + 1);
            }
            if better(p1[0], best) {
                (best, bi) = (p1[0], base + w as u32);
            }
            if better(p1[1], best) {
                (best, bi) = (p1[1], base + w as u32 + 1);
            }
            *y = best;
            *a = bi;
        }
    }
}

/// Backward pass of [`max_pool2d`]: route each output gradient to its argmax.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy`, `argmax` and `input_shape` disagree.
pub fn max_pool2d_backward<T: Real>(dy: &Tensor4<T>, argmax: &[u32], input_shape: [usize; 4]) -> Result<Tensor4<T>> {
    let [n, c, h, w] = input_shape;
    if dy.n() != n || dy.c() != c || argmax.len() != dy.len() {
        return Err(mismatch(
            "max_pool2d_backward",
            format!("dy {:?}, argmax of {} elements, input {input_shape:?}", dy.shape(), argmax.len()),
        ));
    }
    let mut dx = Tensor4::zeros(input_shape)?;
    let po = (dy.h() * dy.w()).max(1);
    for ((dxp, dyp), ap) in
        dx.as_mut_slice().chunks_mut((h * w).max(1)).zip(dy.as_slice().chunks(po)).zip(argmax.chunks(po))
    {
        for (&g, &a) in dyp.iter().zip(ap) {
            let a = a as usize;
            if a >= dxp.len() {
                return Err(mismatch("max_pool2d_backward", format!("argmax {a} outside the {h}x{w} plane")));
            }
            dxp[a] += g;
        }
    }
    Ok(dx)
}

/// Average pooling (floor mode, no padding).
///
/// # Errors
/// As [`max_pool2d`].
pub fn avg_pool2d<T: Real>(x: &Tensor4<T>, k: (usize, usize), s: (usize, usize)) -> Result<Tensor4<T>> {
    let [n, c, h, w] = x.shape();
    let (ho, wo) = pool_out("avg_pool2d", h, w, k, s)?;
    let inv = T::one() / T::from_count(k.0 * k.1);
    let mut y = Tensor4::zeros([n, c, ho, wo])?;
    y.as_mut_slice().par_chunks_mut((ho * wo).max(1)).zip(x.as_slice().par_chunks((h * w).max(1))).for_each(
        |(yp, xp)| {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = T::zero();
                    for u in 0..k.0 {
                        for v in 0..k.1 {
                            acc += xp[(i * s.0 + u) * w + j * s.1 + v];
                        }
                    }
                    yp[i * wo + j] = acc * inv;
                }
            }
        },
    );
    Ok(y)
}

/// Backward pass (adjoint) of [`avg_pool2d`].
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy` is not the forward output's shape.
pub fn avg_pool2d_backward<T: Real>(
    dy: &Tensor4<T>,
    input_shape: [usize; 4],
    k: (usize, usize),
    s: (usize, usize),
) -> Result<Tensor4<T>> {
    let [n, c, h, w] = input_shape;
    let (ho, wo) = pool_out("avg_pool2d_backward", h, w, k, s)?;
    dy.expect_shape("avg_pool2d_backward (dy)", [n, c, ho, wo])?;
    let inv = T::one() / T::from_count(k.0 * k.1);
    let mut dx = Tensor4::zeros(input_shape)?;
    dx.as_mut_slice().par_chunks_mut((h * w).max(1)).zip(dy.as_slice().par_chunks((ho * wo).max(1))).for_each(
        |(xp, yp)| {
            for i in 0..ho {
                for j in 0..wo {
                    let g = yp[i * wo + j] * inv;
                    for u in 0..k.0 {
                        for v in 0..k.1 {
                            xp[(i * s.0 + u) * w + j * s.1 + v] += g;
                        }
                    }
                }
            }
        },
    );
    Ok(dx)
}

fn check_factor(op: &'static str, f: (usize, usize)) -> Result<()> {
    if f.0 == 0 || f.1 == 0 {
        return Err(LinalgError::InvalidParameter {
            op,
            name: "factor",
            value: format!("{f:?}"),
            reason: "must be >= 1",
        });
    }
    Ok(())
}

/// Nearest-neighbour upsampling by integer factors.
///
/// # Errors
/// [`LinalgError::InvalidParameter`] for a zero factor.
pub fn upsample_nearest<T: Real>(x: &Tensor4<T>, f: (usize, usize)) -> Result<Tensor4<T>> {
    check_factor("upsample_nearest", f)?;
    let [n, c, h, w] = x.shape();
    let (ho, wo) = (h * f.0, w * f.1);
    let mut y = Tensor4::zeros([n, c, ho, wo])?;
    y.as_mut_slice().par_chunks_mut((ho * wo).max(1)).zip(x.as_slice().par_chunks((h * w).max(1))).for_each(
        |(yp, xp)| {
            for i in 0..ho {
                for j in 0..wo {
                    yp[i * wo + j] = xp[(i / f.0) * w + j / f.1];
                }
            }
        },
    );
    Ok(y)
}

/// Backward pass (adjoint) of [`upsample_nearest`]: sum over each block.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy` is not divisible by the factors.
pub fn upsample_nearest_backward<T: Real>(dy: &Tensor4<T>, f: (usize, usize)) -> Result<Tensor4<T>> {
    check_factor("upsample_nearest_backward", f)?;
    let [n, c, ho, wo] = dy.shape();
    if ho % f.0 != 0 || wo % f.1 != 0 {
        return Err(mismatch(
            "upsample_nearest_backward",
            format!("dy {:?} not divisible by factor {f:?}", dy.shape()),
        ));
    }
    let (h, w) = (ho / f.0, wo / f.1);
    let mut dx = Tensor4::zeros([n, c, h, w])?;
    dx.as_mut_slice().par_chunks_mut((h * w).max(1)).zip(dy.as_slice().par_chunks((ho * wo).max(1))).for_each(
        |(xp, yp)| {
            for i in 0..ho {
                for j in 0..wo {
                    xp[(i / f.0) * w + j / f.1] += yp[i * wo + j];
                }
            }
        },
    );
    Ok(dx)
}

/// Source positions and weights of bilinear interpolation along one axis (PyTorch's
/// `align_corners = false`): output `i` reads `(1−t)·x[lo] + t·x[hi]`.
fn bilinear_taps(n_in: usize, n_out: usize) -> Vec<(usize, usize, f64)> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|i| {
            let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
            let lo = (src.floor() as usize).min(n_in - 1);
            let hi = (lo + 1).min(n_in - 1);
            (lo, hi, src - lo as f64)
        })
        .collect()
}

/// Bilinear upsampling to `(h_out, w_out)` with half-pixel centres (PyTorch
/// `interpolate(mode="bilinear", align_corners=False)`).
///
/// # Errors
/// [`LinalgError::Empty`] for an empty input or output size.
pub fn upsample_bilinear<T: Real>(x: &Tensor4<T>, out: (usize, usize)) -> Result<Tensor4<T>> {
    let [n, c, h, w] = x.shape();
    if h == 0 || w == 0 || out.0 == 0 || out.1 == 0 {
        return Err(LinalgError::Empty { op: "upsample_bilinear", what: "input or output size" });
    }
    let (ty, tx) = (bilinear_taps(h, out.0), bilinear_taps(w, out.1));
    let mut y = Tensor4::zeros([n, c, out.0, out.1])?;
    y.as_mut_slice().par_chunks_mut(out.0 * out.1).zip(x.as_slice().par_chunks(h * w)).for_each(|(yp, xp)| {
        for (i, &(y0, y1, a)) in ty.iter().enumerate() {
            let a = T::lit(a);
            for (j, &(x0, x1, b)) in tx.iter().enumerate() {
                let b = T::lit(b);
                let top = xp[y0 * w + x0] * (T::one() - b) + xp[y0 * w + x1] * b;
                let bot = xp[y1 * w + x0] * (T::one() - b) + xp[y1 * w + x1] * b;
                yp[i * out.1 + j] = top * (T::one() - a) + bot * a;
            }
        }
    });
    Ok(y)
}

/// Backward pass (adjoint) of [`upsample_bilinear`].
///
/// # Errors
/// [`LinalgError::Empty`] for empty sizes.
pub fn upsample_bilinear_backward<T: Real>(dy: &Tensor4<T>, input_hw: (usize, usize)) -> Result<Tensor4<T>> {
    let [n, c, ho, wo] = dy.shape();
    let (h, w) = input_hw;
    if h == 0 || w == 0 || ho == 0 || wo == 0 {
        return Err(LinalgError::Empty { op: "upsample_bilinear_backward", what: "input or output size" });
    }
    let (ty, tx) = (bilinear_taps(h, ho), bilinear_taps(w, wo));
    let mut dx = Tensor4::zeros([n, c, h, w])?;
    dx.as_mut_slice().par_chunks_mut(h * w).zip(dy.as_slice().par_chunks(ho * wo)).for_each(|(xp, yp)| {
        for (i, &(y0, y1, a)) in ty.iter().enumerate() {
            let a = T::lit(a);
            for (j, &(x0, x1, b)) in tx.iter().enumerate() {
                let b = T::lit(b);
                let g = yp[i * wo + j];
                xp[y0 * w + x0] += g * (T::one() - a) * (T::one() - b);
                xp[y0 * w + x1] += g * (T::one() - a) * b;
                xp[y1 * w + x0] += g * a * (T::one() - b);
                xp[y1 * w + x1] += g * a * b;
            }
        }
    });
    Ok(dx)
}

/// Concatenate along channels: `(N, Ca, H, W) ‖ (N, Cb, H, W) → (N, Ca + Cb, H, W)`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when N, H or W differ.
pub fn concat_channels<T: Real>(a: &Tensor4<T>, b: &Tensor4<T>) -> Result<Tensor4<T>> {
    let ([n, ca, h, w], [nb, cb, hb, wb]) = (a.shape(), b.shape());
    if n != nb || h != hb || w != wb {
        return Err(mismatch(
            "concat_channels",
            format!("{:?} and {:?} differ outside the channel axis", a.shape(), b.shape()),
        ));
    }
    let mut y = crate::buffers::take(a.len() + b.len());
    for i in 0..n {
        y.extend_from_slice(a.sample(i).unwrap_or(&[]));
        y.extend_from_slice(b.sample(i).unwrap_or(&[]));
    }
    Tensor4::from_vec([n, ca + cb, h, w], y)
}

/// Split channels (the adjoint of [`concat_channels`]): the first `ca` channels and the rest.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `ca` exceeds the channel count.
pub fn split_channels<T: Real>(y: &Tensor4<T>, ca: usize) -> Result<(Tensor4<T>, Tensor4<T>)> {
    let [n, c, h, w] = y.shape();
    if ca > c {
        return Err(mismatch("split_channels", format!("cannot take {ca} channels from {:?}", y.shape())));
    }
    let (la, lb) = (ca * h * w, (c - ca) * h * w);
    let mut a = crate::buffers::take(n * la);
    let mut b = crate::buffers::take(n * lb);
    for s in y.as_slice().chunks((la + lb).max(1)).take(n) {
        a.extend_from_slice(&s[..la]);
        b.extend_from_slice(&s[la..]);
    }
    if la + lb == 0 {
        return Ok((Tensor4::zeros([n, ca, h, w])?, Tensor4::zeros([n, c - ca, h, w])?));
    }
    Ok((Tensor4::from_vec([n, ca, h, w], a)?, Tensor4::from_vec([n, c - ca, h, w], b)?))
}

/// Offsets of a centered `(ho, wo)` window in an `(h, w)` plane (U-Net skip cropping).
fn crop_offsets(op: &'static str, h: usize, w: usize, ho: usize, wo: usize) -> Result<(usize, usize)> {
    if ho > h || wo > w {
        return Err(mismatch(op, format!("cannot crop {h}x{w} to the larger {ho}x{wo}")));
    }
    Ok(((h - ho) / 2, (w - wo) / 2))
}

/// Center crop every plane to `(ho, wo)`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when the target is larger than the input.
pub fn center_crop<T: Real>(x: &Tensor4<T>, out: (usize, usize)) -> Result<Tensor4<T>> {
    let [n, c, h, w] = x.shape();
    let (oy, ox) = crop_offsets("center_crop", h, w, out.0, out.1)?;
    let mut y = crate::buffers::take(n * c * out.0 * out.1);
    for p in x.as_slice().chunks((h * w).max(1)).take(n * c) {
        for i in 0..out.0 {
            y.extend_from_slice(&p[(oy + i) * w + ox..(oy + i) * w + ox + out.1]);
        }
    }
    Tensor4::from_vec([n, c, out.0, out.1], y)
}

/// Adjoint of [`center_crop`]: place `dy` centered in zeros of size `input_hw`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `dy` is larger than `input_hw`.
pub fn center_crop_backward<T: Real>(dy: &Tensor4<T>, input_hw: (usize, usize)) -> Result<Tensor4<T>> {
    let [n, c, ho, wo] = dy.shape();
    let (h, w) = input_hw;
    let (oy, ox) = crop_offsets("center_crop_backward", h, w, ho, wo)?;
    let mut dx = Tensor4::zeros([n, c, h, w])?;
    for (xp, yp) in dx.as_mut_slice().chunks_mut((h * w).max(1)).zip(dy.as_slice().chunks((ho * wo).max(1))).take(n * c)
    {
        for i in 0..ho {
            xp[(oy + i) * w + ox..(oy + i) * w + ox + wo].copy_from_slice(&yp[i * wo..(i + 1) * wo]);
        }
    }
    Ok(dx)
}
