//! 3×3 stride-1 convolutions (zero padding 0 or 1) by *shifted* products on the `latent-linalg`
//! GEMM, without an im2col matrix.
//!
//! With the input zero-padded into planes of row length `Wp = W + 2p`, the input seen by kernel
//! tap `(u, v)` is the padded plane shifted by `u·Wp + v` — a contiguous strided view. The output
//! is accumulated in the same row length ("padded-width" layout, two unused columns per row) as
//! nine products `Y' += W_uv (O×C) · X_uv (C×P')`, which reread an input that stays in cache
//! instead of streaming a `9C × P` column matrix through memory. The backward passes are the same
//! trick: `dW_uv += dZ' · X_uvᵀ` and `dX = Σ W_uvᵀ · dZ''_uv` on the zero-padded output gradient.
//!
//! Images are processed in fixed groups in parallel; weight gradients are summed group by group
//! in a fixed order, so results do not depend on the number of threads.

use crate::error::{Result, shape_err};
use latent_linalg::conv::Conv2dSpec;
use latent_linalg::{MatMut, MatRef, Real, Tensor4, gemm_view};
use rayon::prelude::*;

/// Images per parallel work item (fixed: the summation order never depends on threads).
const GROUP: usize = 4;

/// A scratch vector with room for `n` elements, from `latent-linalg`'s per-thread buffer cache
/// (so the padded copies do not allocate and fault in fresh pages on every call).
fn take_buf<T: Real>(n: usize) -> Vec<T> {
    latent_linalg::buffers::take(n)
}

/// Give scratch vectors back to the cache.
fn give_bufs<T: Real>(bufs: impl IntoIterator<Item = Vec<T>>) {
    bufs.into_iter().for_each(latent_linalg::buffers::give);
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Dims {
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    p: usize,
}

impl Dims {
    fn hp(&self) -> usize {
        self.h + 2 * self.p
    }
    fn wp(&self) -> usize {
        self.w + 2 * self.p
    }
    fn ho(&self) -> usize {
        self.hp() - 2
    }
    fn wo(&self) -> usize {
        self.wp() - 2
    }
    /// Plane stride of the padded input (two spare zeros for the last shifted view).
    fn s_in(&self) -> usize {
        self.hp() * self.wp() + 2
    }
    /// Positions of the padded-width output layout.
    fn p_out(&self) -> usize {
        self.ho() * self.wp()
    }
    /// Row length of the output gradient padded by `2 − p` (= `W + 2`).
    fn wq(&self) -> usize {
        self.w + 2
    }
    /// Plane stride of the padded output gradient.
    fn s_q(&self) -> usize {
        (self.h + 2) * self.wq() + 2
    }
    /// Positions of the padded-width input-gradient layout.
    fn p_in(&self) -> usize {
        self.h * self.wq()
    }
}

fn dims<T: Real>(op: &'static str, x: [usize; 4], w: &Tensor4<T>, pad: usize) -> Result<Dims> {
    let [o, c, kh, kw] = w.shape();
    if (kh, kw) != (3, 3) || pad > 1 {
        return Err(shape_err(op, "a 3×3 kernel with padding 0 or 1", format!("{:?}, padding {pad}", w.shape())));
    }
    if x[1] != c {
        return Err(shape_err(op, format!("{c} input channels"), format!("{x:?}")));
    }
    if x[2] + 2 * pad < 3 || x[3] + 2 * pad < 3 {
        return Err(shape_err(op, "an input of at least 3×3 after padding", format!("{x:?}, padding {pad}")));
    }
    Ok(Dims { c, o, h: x[2], w: x[3], p: pad })
}

/// Copy `planes` planes of `h × w` into zeroed planes of row length `row` and stride `stride`,
/// starting at row/column `off`.
fn pad_into<T: Real>(
    src: &[T],
    planes: usize,
    h: usize,
    w: usize,
    off: usize,
    row: usize,
    stride: usize,
    dst: &mut Vec<T>,
) {
    dst.clear();
    dst.resize(planes * stride, T::zero());
    for k in 0..planes {
        for i in 0..h {
            let s = &src[(k * h + i) * w..(k * h + i + 1) * w];
            let d0 = k * stride + (i + off) * row + off;
            dst[d0..d0 + w].copy_from_slice(s);
        }
    }
}

/// `y = conv(x, w) + b` (cross-correlation, stride 1, zero padding `pad ∈ {0, 1}`).
///
/// # Errors
/// [`crate::UnetError::ShapeMismatch`] for a kernel that is not 3×3, a channel mismatch or an
/// input too small; errors of the GEMM.
pub fn conv3x3<T: Real>(x: &Tensor4<T>, w: &Tensor4<T>, bias: Option<&[T]>, pad: usize) -> Result<Tensor4<T>> {
    let d = dims("conv3x3", x.shape(), w, pad)?;
    if let Some(b) = bias
        && b.len() != d.o
    {
        return Err(shape_err("conv3x3 bias", d.o, b.len()));
    }
    if latent_linalg::conv::direct_kernels_active::<T>() {
        // the direct stride-1 kernels of latent-linalg (AVX-512 or AVX2) beat shifted products where they run
        return Ok(latent_linalg::conv::conv2d(x, w, bias, &Conv2dSpec::new(1, pad))?);
    }
    let n = x.n();
    let (il, ol) = (d.c * d.h * d.w, d.o * d.ho() * d.wo());
    let mut y = Tensor4::zeros([n, d.o, d.ho(), d.wo()])?;
    if n == 0 || ol == 0 {
        return Ok(y);
    }
    let wt = w.as_slice();
    let one_image = |xi: &[T], yi: &mut [T], xp: &mut Vec<T>, yp: &mut Vec<T>| -> Result<()> {
        let (wp, pp) = (d.wp(), d.p_out());
        pad_into(xi, d.c, d.h, d.w, d.p, wp, d.s_in(), xp);
        yp.clear();
        yp.resize(d.o * pp, T::zero());
        if let Some(b) = bias {
            for (row, &bo) in yp.chunks_mut(pp).zip(b) {
                row.iter_mut().for_each(|e| *e = bo);
            }
        }
        for s in 0..9 {
            let (u, v) = (s / 3, s % 3);
            let a = MatRef::new(&wt[s..], d.o, d.c, 9 * d.c, 9)?;
            let b = MatRef::new(&xp[u * wp + v..], d.c, pp, d.s_in(), 1)?;
            gemm_view(T::one(), a, b, T::one(), MatMut::row_major(yp, d.o, pp)?)?;
        }
        let (ho, wo) = (d.ho(), d.wo());
        for o in 0..d.o {
            for i in 0..ho {
                yi[(o * ho + i) * wo..(o * ho + i + 1) * wo]
                    .copy_from_slice(&yp[o * pp + i * wp..o * pp + i * wp + wo]);
            }
        }
        Ok(())
    };
    y.as_mut_slice().par_chunks_mut(GROUP * ol).zip(x.as_slice().par_chunks(GROUP * il)).try_for_each(
        |(yg, xg)| -> Result<()> {
            latent_linalg::product::serial(|| {
                let (mut xp, mut yp) = (take_buf::<T>(d.c * d.s_in()), take_buf::<T>(d.o * d.p_out()));
                let mut result = Ok(());
                for (yi, xi) in yg.chunks_mut(ol).zip(xg.chunks(il)) {
                    result = one_image(xi, yi, &mut xp, &mut yp);
                    if result.is_err() {
                        break;
                    }
                }
                give_bufs([xp, yp]);
                result
            })
        },
    )?;
    Ok(y)
}

/// Backward pass over the images of one group: weight and bias gradients added into `gw`, `gb`;
/// input gradients written into `dxg` when given. `bufs` are scratch vectors.
fn backward_group<T: Real>(
    d: &Dims,
    wt: &[T],
    xg: &[T],
    dzg: &[T],
    mut dxg: Option<&mut [T]>,
    gw: &mut [T],
    gb: &mut [T],
    bufs: &mut [Vec<T>; 4],
) -> Result<()> {
    let [xp, zp, zq, dxp] = bufs;
    let (il, ol) = (d.c * d.h * d.w, d.o * d.ho() * d.wo());
    let (wp, pp, ho, wo) = (d.wp(), d.p_out(), d.ho(), d.wo());
    for (k, (xi, dzi)) in xg.chunks(il).zip(dzg.chunks(ol)).enumerate() {
        // dz in the padded-width layout of the forward output (unused columns zero)
        pad_into(dzi, d.o, ho, wo, 0, wp, pp, zp);
        for (o, plane) in dzi.chunks(ho * wo).enumerate() {
            gb[o] += plane.iter().copied().sum::<T>();
        }
        pad_into(xi, d.c, d.h, d.w, d.p, wp, d.s_in(), xp);
        for s in 0..9 {
            let (u, v) = (s / 3, s % 3);
            let a = MatRef::row_major(zp, d.o, pp)?;
            let b = MatRef::new(&xp[u * wp + v..], pp, d.c, 1, d.s_in())?;
            gemm_view(T::one(), a, b, T::one(), MatMut::new(&mut gw[s..], d.o, d.c, 9 * d.c, 9)?)?;
        }
        if let Some(dxg) = dxg.as_deref_mut() {
            // dx[c, i, j] = Σ_{o, u', v'} w[o, c, 2 − u', 2 − v'] · dzq[o, i + u', j + v'] with dz
            // zero-padded by 2 − p
            let q = 2 - d.p;
            let (wq, pi) = (d.wq(), d.p_in());
            pad_into(dzi, d.o, ho, wo, q, wq, d.s_q(), zq);
            dxp.clear();
            dxp.resize(d.c * pi, T::zero());
            for s in 0..9 {
                let (u, v) = (s / 3, s % 3);
                let a = MatRef::new(&wt[8 - s..], d.c, d.o, 9, 9 * d.c)?;
                let b = MatRef::new(&zq[u * wq + v..], d.o, pi, d.s_q(), 1)?;
                gemm_view(T::one(), a, b, T::one(), MatMut::row_major(dxp, d.c, pi)?)?;
            }
            let dxi = &mut dxg[k * il..(k + 1) * il];
            for c in 0..d.c {
                for i in 0..d.h {
                    dxi[(c * d.h + i) * d.w..(c * d.h + i + 1) * d.w]
                        .copy_from_slice(&dxp[c * pi + i * wq..c * pi + i * wq + d.w]);
                }
            }
        }
    }
    Ok(())
}

/// Gradients of a 3×3 convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvGrads<T> {
    /// Input gradient (when asked for).
    pub dx: Option<Tensor4<T>>,
    /// Weight gradient, `(O, C, 3, 3)` flattened.
    pub weight: Vec<T>,
    /// Bias gradient, `O` values.
    pub bias: Vec<T>,
}

/// Backward pass of [`conv3x3`] given the gradient `dz` of its output: the weight gradient
/// `(O, C, 3, 3)` and bias gradient (`O` values), and the input gradient when `need_dx`.
///
/// # Errors
/// As [`conv3x3`], and a shape error when `dz` is not the forward output's shape.
pub fn conv3x3_backward<T: Real>(
    x: &Tensor4<T>,
    w: &Tensor4<T>,
    dz: &Tensor4<T>,
    pad: usize,
    need_dx: bool,
) -> Result<ConvGrads<T>> {
    let d = dims("conv3x3_backward", x.shape(), w, pad)?;
    let n = x.n();
    dz.expect_shape("conv3x3_backward (dz)", [n, d.o, d.ho(), d.wo()])?;
    if latent_linalg::conv::direct_kernels_active::<T>() {
        let spec = Conv2dSpec::new(1, pad);
        let (gw, gb) = latent_linalg::conv::conv2d_backward_weight(x, dz, (3, 3), &spec)?;
        let dx =
            if need_dx { Some(latent_linalg::conv::conv2d_backward_input(dz, w, (d.h, d.w), &spec)?) } else { None };
        return Ok(ConvGrads { dx, weight: gw.into_vec(), bias: gb });
    }
    let (il, ol) = (d.c * d.h * d.w, d.o * d.ho() * d.wo());
    let wl = w.len();
    let mut dx = if need_dx { Some(Tensor4::zeros(x.shape())?) } else { None };
    let wt = w.as_slice();
    // one group: its weight and bias gradients; its input gradients written into `dxg`
    let group = |xg: &[T], dzg: &[T], dxg: Option<&mut [T]>| -> Result<(Vec<T>, Vec<T>)> {
        let (mut gw, mut gb) = (vec![T::zero(); wl], vec![T::zero(); d.o]);
        let mut bufs = [
            take_buf::<T>(d.c * d.s_in()),
            take_buf::<T>(d.o * d.p_out()),
            take_buf::<T>(d.o * d.s_q()),
            take_buf::<T>(d.c * d.p_in()),
        ];
        let r = backward_group(&d, wt, xg, dzg, dxg, &mut gw, &mut gb, &mut bufs);
        give_bufs(bufs);
        r.map(|()| (gw, gb))
    };
    let parts: Vec<(Vec<T>, Vec<T>)> = match dx.as_mut() {
        Some(dx) => dx
            .as_mut_slice()
            .par_chunks_mut(GROUP * il)
            .zip(x.as_slice().par_chunks(GROUP * il))
            .zip(dz.as_slice().par_chunks(GROUP * ol))
            .map(|((dxg, xg), dzg)| latent_linalg::product::serial(|| group(xg, dzg, Some(dxg))))
            .collect::<Result<_>>()?,
        None => x
            .as_slice()
            .par_chunks(GROUP * il)
            .zip(dz.as_slice().par_chunks(GROUP * ol))
            .map(|(xg, dzg)| latent_linalg::product::serial(|| group(xg, dzg, None)))
            .collect::<Result<_>>()?,
    };
    let (mut gw, mut gb) = (vec![T::zero(); wl], vec![T::zero(); d.o]);
    for (pw, pb) in &parts {
        for (a, &b) in gw.iter_mut().zip(pw) {
            *a += b;
        }
        for (a, &b) in gb.iter_mut().zip(pb) {
            *a += b;
        }
    }
    Ok(ConvGrads { dx, weight: gw, bias: gb })
}

#[cfg(test)]
mod tests {
    use super::*;
    use latent_linalg::conv::{Conv2dSpec, conv2d, conv2d_backward_input, conv2d_backward_weight};
    use rand::{Rng, SeedableRng};

    fn rand_t(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Tensor4::from_fn(shape, |_| rng.random::<f64>() - 0.5).unwrap()
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn shifted_products_match_im2col_convolution() {
        for (n, c, o, h, w, pad) in [(5, 3, 4, 7, 6, 1), (6, 2, 5, 6, 9, 0), (1, 1, 2, 3, 3, 0), (9, 4, 3, 1, 2, 1)] {
            let x = rand_t([n, c, h, w], 1);
            let wt = rand_t([o, c, 3, 3], 2);
            let b: Vec<f64> = (0..o).map(|i| i as f64 * 0.3 - 0.2).collect();
            let spec = Conv2dSpec::new(1, pad);
            let want = conv2d(&x, &wt, Some(&b), &spec).unwrap();
            let got = conv3x3(&x, &wt, Some(&b), pad).unwrap();
            assert_eq!(got.shape(), want.shape());
            assert!(max_diff(got.as_slice(), want.as_slice()) < 1e-12);
            let dz = rand_t(want.shape(), 3);
            let ConvGrads { dx, weight: gw, bias: gb } = conv3x3_backward(&x, &wt, &dz, pad, true).unwrap();
            let dx_want = conv2d_backward_input(&dz, &wt, (h, w), &spec).unwrap();
            let (gw_want, gb_want) = conv2d_backward_weight(&x, &dz, (3, 3), &spec).unwrap();
            assert!(max_diff(dx.unwrap().as_slice(), dx_want.as_slice()) < 1e-12);
            assert!(max_diff(&gw, gw_want.as_slice()) < 1e-12);
            assert!(max_diff(&gb, &gb_want) < 1e-12);
            let g2 = conv3x3_backward(&x, &wt, &dz, pad, false).unwrap();
            assert!(g2.dx.is_none() && g2.weight == gw);
        }
        assert!(conv3x3(&rand_t([1, 2, 4, 4], 0), &rand_t([3, 2, 2, 2], 0), None, 1).is_err());
        assert!(conv3x3(&rand_t([1, 2, 2, 2], 0), &rand_t([3, 2, 3, 3], 0), None, 0).is_err());
    }
}
