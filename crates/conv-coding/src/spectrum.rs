//! The dictionary in the DFT domain and the per-frequency linear solves of the ADMM x-step.
//!
//! For one frequency `f` let `A_f` be the `C × M` matrix `A_f[c, m] = D̂_{m,c}(f)` (channel `c` of
//! filter `m`). The x-step of ADMM solves `(A_fᴴ A_f + ρ I) x̂ = b̂` at every frequency. With the
//! Woodbury identity, `x̂ = (b̂ − A_fᴴ (ρ I_C + A_f A_fᴴ)⁻¹ A_f b̂) / ρ`: an `M`-vector update plus a
//! `C × C` Hermitian solve. For a single channel (`C = 1`) this is exactly the Sherman–Morrison
//! solve of Wohlberg (2016): `A_f` is a row `aᵀ`, `A_f A_fᴴ = ‖a‖²`, and
//! `x̂ = (b̂ − ā (aᵀ b̂) / (ρ + ‖a‖²)) / ρ` — `O(M)` work per frequency.
//! The solve also returns `ẑ = A_f x̂` (the reconstruction's spectrum), which is `(ρ I + A Aᴴ)⁻¹ A b̂`.

use crate::error::Result;
use crate::filters::Filters;
use crate::spectral::{Spectral, cz};
use latent_linalg::fft::FftReal;
use rayon::prelude::*;
use rustfft::num_complex::Complex;

/// Frequencies per parallel block of the solve (fixed, so reductions do not depend on threads).
pub(crate) const FBLOCK: usize = 128;

/// Filter spectra on a plan's domain.
pub(crate) struct DictSpectrum<T: FftReal> {
    /// Filters.
    pub m: usize,
    /// Channels.
    pub c: usize,
    /// Coefficients per plane.
    pub f: usize,
    /// `D̂[(m·C + c)·F + f]`.
    pub d: Vec<Complex<T>>,
    /// `C = 1`: `Σ_m |D̂_m(f)|²`; otherwise the `C × C` Gram `A Aᴴ` per frequency, `[f][c][c']`.
    pub gram: Vec<Complex<T>>,
    /// Upper bound of `max_f λ_max(A_fᴴ A_f)`: the Lipschitz constant of the data term's
    /// gradient on this domain (exact for one channel).
    pub lipschitz: f64,
}

impl<T: FftReal> DictSpectrum<T> {
    /// Transform the filters (zero-padded at the origin) on `plan`'s domain.
    pub fn new(plan: &Spectral<T>, filters: &Filters<T>) -> Result<Self> {
        let (m, c, kh, kw) = (filters.count(), filters.channels(), filters.kh(), filters.kw());
        let f = plan.len();
        let mut d = vec![cz(); m * c * f];
        let taps = kh * kw;
        d.par_chunks_mut(f).enumerate().try_for_each_init(
            || plan.work(),
            |work, (k, out)| plan.kernel(work, &filters.as_slice()[k * taps..(k + 1) * taps], kh, kw, out),
        )?;
        Ok(Self::finish(m, c, f, d))
    }

    /// Transform `m` full planes of `plan`'s size (e.g. the maps of one image, as a single-channel
    /// "dictionary" for the dictionary update).
    pub fn from_planes(plan: &Spectral<T>, planes: &[T], m: usize) -> Result<Self> {
        let f = plan.len();
        let n = plan.h * plan.w;
        let mut d = vec![cz(); m * f];
        d.par_chunks_mut(f)
            .zip(planes.par_chunks(n))
            .try_for_each_init(|| plan.work(), |work, (out, p)| plan.forward_plane(work, p, out))?;
        Ok(Self::finish(m, 1, f, d))
    }

    fn finish(m: usize, c: usize, f: usize, d: Vec<Complex<T>>) -> Self {
        let gram = if c == 1 {
            let mut g = vec![cz::<T>(); f];
            for mm in 0..m {
                for (gi, di) in g.iter_mut().zip(&d[mm * f..(mm + 1) * f]) {
                    gi.re += di.norm_sqr();
                }
            }
            g
        } else {
            let mut g = vec![cz::<T>(); f * c * c];
            for (fi, gf) in g.chunks_mut(c * c).enumerate() {
                for mm in 0..m {
                    for a in 0..c {
                        let da = d[(mm * c + a) * f + fi];
                        for b in 0..c {
                            gf[a * c + b] += da * d[(mm * c + b) * f + fi].conj();
                        }
                    }
                }
            }
            g
        };
        let lipschitz = if c == 1 {
            gram.iter().fold(0.0f64, |a, v| a.max(v.re.as_f64()))
        } else {
            // trace bound of the C × C Gram
            gram.chunks(c * c).fold(0.0f64, |a, g| a.max((0..c).map(|k| g[k * c + k].re.as_f64()).sum::<f64>()))
        };
        Self { m, c, f, d, gram, lipschitz }
    }

    #[inline]
    pub fn filt(&self, m: usize, c: usize) -> &[Complex<T>] {
        &self.d[(m * self.c + c) * self.f..(m * self.c + c + 1) * self.f]
    }
}

/// The right-hand side of the x-step, formed inside the solve.
pub(crate) enum Rhs<'a, T: FftReal> {
    /// Standard ADMM: `b̂_m = Σ_c conj(D̂_{m,c}) ŝ_c + ρ·B̂_m` with `ŝ` the image spectra (C × F) and
    /// the buffer holding `B̂ = FFT(y − u)`.
    Data { s: &'a [Complex<T>] },
    /// Mask-decoupled ADMM: `b̂_m = Σ_c conj(D̂_{m,c}) v̂_c + B̂_m` with `v̂` given per channel (C × F)
    /// (called with ρ = 1).
    Adjoint { v: &'a [Complex<T>] },
}

/// Split a map-major `(M × F)` buffer into per-block lists of per-map slices.
pub(crate) fn blocks<X>(buf: &mut [X], f: usize) -> Vec<Vec<&mut [X]>> {
    let nb = f.div_ceil(FBLOCK);
    let mut out: Vec<Vec<&mut [X]>> = (0..nb).map(|_| Vec::new()).collect();
    for plane in buf.chunks_mut(f) {
        for (k, ch) in plane.chunks_mut(FBLOCK).enumerate() {
            out[k].push(ch);
        }
    }
    out
}

/// Solve `(A_fᴴA_f + ρI) x̂ = b̂` at every frequency, in place in `b` (map-major M × F, holding
/// `B̂` on entry, see [`Rhs`]). Writes `ẑ = A x̂` (C × F) into `z` when given, and returns
/// `Σ_f weight_f |ẑ_c(f) − ŝ_c(f)|²` summed over channels when `s` is given (the unnormalised
/// Parseval sum of the data term at `x̂`). Blocks of [`FBLOCK`] frequencies run in parallel; each
/// block's `M` slices stay in cache between the two passes.
pub(crate) fn xsolve<T: FftReal>(
    ds: &DictSpectrum<T>,
    plan: &Spectral<T>,
    b: &mut [Complex<T>],
    rhs: Rhs<'_, T>,
    rho: T,
    z: Option<&mut [Complex<T>]>,
    s: Option<&[Complex<T>]>,
) -> f64 {
    let (c, f) = (ds.c, ds.f);
    let bblocks = blocks(b, f);
    let zblocks: Vec<Option<Vec<&mut [Complex<T>]>>> = match z {
        Some(z) => blocks(z, f).into_iter().map(Some).collect(),
        None => (0..f.div_ceil(FBLOCK)).map(|_| None).collect(),
    };
    let (rhs_v, scale_b) = match rhs {
        Rhs::Data { s } => (s, rho),
        Rhs::Adjoint { v } => (v, T::one()),
    };
    let parts: Vec<f64> = bblocks
        .into_par_iter()
        .zip(zblocks)
        .enumerate()
        .map(|(k, (mut bb, zb))| {
            let f0 = k * FBLOCK;
            let n = bb[0].len();
            let mut zz = [cz::<T>(); FBLOCK];
            let mut zmulti = if c > 1 { vec![cz::<T>(); c * n] } else { Vec::new() };
            let inv_rho = T::one() / rho;
            if c == 1 {
                let v = &rhs_v[f0..f0 + n];
                let z1 = &mut zz[..n];
                // b̂ = conj(D̂) v̂ + ρ' B̂ and a = Σ_m D̂ b̂
                for (mm, bm) in bb.iter_mut().enumerate() {
                    let d = &ds.filt(mm, 0)[f0..f0 + n];
                    for (((x, &dv), &vv), a) in bm.iter_mut().zip(d).zip(v).zip(z1.iter_mut()) {
                        let bi = dv.conj() * vv + *x * scale_b;
                        *x = bi;
                        *a += dv * bi;
                    }
                }
                for (a, g) in z1.iter_mut().zip(&ds.gram[f0..f0 + n]) {
                    *a *= T::one() / (rho + g.re);
                }
                for (mm, bm) in bb.iter_mut().enumerate() {
                    let d = &ds.filt(mm, 0)[f0..f0 + n];
                    for ((x, &dv), &zv) in bm.iter_mut().zip(d).zip(z1.iter()) {
                        *x = (*x - dv.conj() * zv) * inv_rho;
                    }
                }
            } else {
                let zc = &mut zmulti;
                for (mm, bm) in bb.iter_mut().enumerate() {
                    bm.iter_mut().for_each(|x| *x *= scale_b);
                    for ch in 0..c {
                        let d = &ds.filt(mm, ch)[f0..f0 + n];
                        let vc = &rhs_v[ch * f + f0..ch * f + f0 + n];
                        for ((x, &dv), &vv) in bm.iter_mut().zip(d).zip(vc) {
                            *x += dv.conj() * vv;
                        }
                    }
                    for ch in 0..c {
                        let d = &ds.filt(mm, ch)[f0..f0 + n];
                        for ((a, &dv), &x) in zc[ch * n..(ch + 1) * n].iter_mut().zip(d).zip(bm.iter()) {
                            *a += dv * x;
                        }
                    }
                }
                let mut mat = vec![cz::<T>(); c * c];
                let mut rhsv = vec![cz::<T>(); c];
                for i in 0..n {
                    let g = &ds.gram[(f0 + i) * c * c..(f0 + i + 1) * c * c];
                    mat.copy_from_slice(g);
                    for kk in 0..c {
                        mat[kk * c + kk].re += rho;
                        rhsv[kk] = zc[kk * n + i];
                    }
                    solve_hpd(&mut mat, &mut rhsv, c);
                    for kk in 0..c {
                        zc[kk * n + i] = rhsv[kk];
                    }
                }
                for (mm, bm) in bb.iter_mut().enumerate() {
                    for ch in 0..c {
                        let d = &ds.filt(mm, ch)[f0..f0 + n];
                        for ((x, &dv), &zv) in bm.iter_mut().zip(d).zip(&zc[ch * n..(ch + 1) * n]) {
                            *x -= dv.conj() * zv;
                        }
                    }
                    bm.iter_mut().for_each(|x| *x *= inv_rho);
                }
            }
            let zall: &[Complex<T>] = if c == 1 { &zz[..n] } else { &zmulti };
            let mut part = 0.0;
            if let Some(s) = s {
                for ch in 0..c {
                    let sc = &s[ch * f + f0..ch * f + f0 + n];
                    let zc = &zall[ch * n..(ch + 1) * n];
                    // walk the block column by column (f = column·h + row)
                    let mut i = 0;
                    while i < n {
                        let col = (f0 + i) / plan.h;
                        let end = ((col + 1) * plan.h - f0).min(n);
                        let acc: f64 =
                            zc[i..end].iter().zip(&sc[i..end]).map(|(zv, sv)| (*zv - *sv).norm_sqr().as_f64()).sum();
                        part += plan.col_weight(col).as_f64() * acc;
                        i = end;
                    }
                }
            }
            if let Some(mut zb) = zb {
                for ch in 0..c {
                    zb[ch].copy_from_slice(&zall[ch * n..(ch + 1) * n]);
                }
            }
            part
        })
        .collect();
    parts.iter().sum()
}

/// Solve the Hermitian positive definite `c × c` system `mat · x = rhs` in place (Cholesky).
fn solve_hpd<T: FftReal>(mat: &mut [Complex<T>], rhs: &mut [Complex<T>], c: usize) {
    // L Lᴴ factorisation into the lower triangle
    for j in 0..c {
        let mut d = mat[j * c + j].re;
        for k in 0..j {
            d -= mat[j * c + k].norm_sqr();
        }
        let d = d.max(T::EPS).sqrt();
        mat[j * c + j] = Complex::new(d, T::zero());
        for i in j + 1..c {
            let mut s = mat[i * c + j];
            for k in 0..j {
                s -= mat[i * c + k] * mat[j * c + k].conj();
            }
            mat[i * c + j] = s * (T::one() / d);
        }
    }
    // forward: L y = rhs
    for i in 0..c {
        let mut s = rhs[i];
        for k in 0..i {
            s -= mat[i * c + k] * rhs[k];
        }
        rhs[i] = s * (T::one() / mat[i * c + i].re);
    }
    // backward: Lᴴ x = y
    for i in (0..c).rev() {
        let mut s = rhs[i];
        for k in i + 1..c {
            s -= mat[k * c + i].conj() * rhs[k];
        }
        rhs[i] = s * (T::one() / mat[i * c + i].re);
    }
}

/// `D̂ᴴ ŝ` for every filter: `Σ_c conj(D̂_{m,c}) ŝ_c`, map-major (M × F).
pub(crate) fn adjoint_spectrum<T: FftReal>(ds: &DictSpectrum<T>, s: &[Complex<T>], out: &mut [Complex<T>]) {
    let (c, f) = (ds.c, ds.f);
    out.par_chunks_mut(f).enumerate().for_each(|(mm, o)| {
        o.iter_mut().for_each(|v| *v = cz());
        for ch in 0..c {
            for ((v, d), &x) in o.iter_mut().zip(ds.filt(mm, ch)).zip(&s[ch * f..(ch + 1) * f]) {
                *v += d.conj() * x;
            }
        }
    });
}

/// `Σ_m D̂_{m,c} x̂_m` per channel (C × F).
pub(crate) fn forward_spectrum<T: FftReal>(ds: &DictSpectrum<T>, x: &[Complex<T>], out: &mut [Complex<T>]) {
    let (m, f) = (ds.m, ds.f);
    out.par_chunks_mut(f).enumerate().for_each(|(ch, o)| {
        o.iter_mut().for_each(|v| *v = cz());
        for mm in 0..m {
            for ((v, d), &xv) in o.iter_mut().zip(ds.filt(mm, ch)).zip(&x[mm * f..(mm + 1) * f]) {
                *v += *d * xv;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpd_solve() {
        // [[4, 1+i], [1−i, 3]] x = [1, 2i]
        let mut m =
            vec![Complex::new(4.0, 0.0), Complex::new(1.0, 1.0), Complex::new(1.0, -1.0), Complex::new(3.0, 0.0)];
        let orig = m.clone();
        let mut r = vec![Complex::new(1.0, 0.0), Complex::new(0.0, 2.0)];
        let rhs = r.clone();
        solve_hpd(&mut m, &mut r, 2);
        for i in 0..2 {
            let v = orig[i * 2] * r[0] + orig[i * 2 + 1] * r[1];
            assert!((v - rhs[i]).norm() < 1e-12);
        }
    }
}
