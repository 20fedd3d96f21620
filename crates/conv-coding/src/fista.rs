//! FISTA with Beck–Teboulle backtracking for convolutional sparse coding.
//!
//! Minimises `f(s) + g(s)` with `f(s) = ½ Σ_p w_p (A s − x)_p²` and `g(s) = Σ_m λ_m‖s_m‖₁` (plus
//! `s ≥ 0`). The gradient `Aᴴ(w ⊙ (A s − x))` is computed by the [`ConvOperator`] in the DFT domain
//! or in the spatial domain. Linearity keeps `A y` for the extrapolated point without another
//! transform (`A y = A x⁺ + β(A x⁺ − A x)`), so an iteration costs one adjoint and one synthesis
//! (plus one synthesis per backtracking step).

use crate::error::{ConvCodingError, Result};
use crate::operator::ConvOperator;
use crate::params::{FistaParams, IterStat, SolveInfo, StopReason};
use latent_linalg::fft::FftReal;
use rayon::prelude::*;

/// Sum of a per-plane function over planes of `n` values, in plane order.
fn plane_sum<T: FftReal>(a: &[T], n: usize, f: impl Fn(usize, &[T]) -> f64 + Sync + Send) -> f64 {
    a.par_chunks(n).enumerate().map(|(k, p)| f(k, p)).collect::<Vec<f64>>().iter().sum()
}

fn sq<T: FftReal>(v: T) -> f64 {
    v.as_f64() * v.as_f64()
}

/// `½ Σ w (a − s)²` and the weighted residual `w ⊙ (a − s)` into `res`.
fn data_term<T: FftReal>(a: &[T], s: &[T], wts: Option<&[T]>, res: &mut [T], n: usize) -> f64 {
    let parts: Vec<f64> = res
        .par_chunks_mut(n)
        .zip(a.par_chunks(n))
        .zip(s.par_chunks(n))
        .enumerate()
        .map(|(k, ((r, a), s))| {
            let mut acc = 0.0;
            match wts {
                Some(w) => {
                    for (((rv, &av), &sv), &wv) in r.iter_mut().zip(a).zip(s).zip(&w[k * n..(k + 1) * n]) {
                        let e = av - sv;
                        acc += wv.as_f64() * sq(e);
                        *rv = wv * e;
                    }
                }
                None => {
                    for ((rv, &av), &sv) in r.iter_mut().zip(a).zip(s) {
                        let e = av - sv;
                        acc += sq(e);
                        *rv = e;
                    }
                }
            }
            acc
        })
        .collect();
    0.5 * parts.iter().sum::<f64>()
}

fn data_value<T: FftReal>(a: &[T], s: &[T], wts: Option<&[T]>, n: usize) -> f64 {
    0.5 * plane_sum(a, n, |k, p| {
        let sp = &s[k * n..(k + 1) * n];
        match wts {
            Some(w) => p.iter().zip(sp).zip(&w[k * n..(k + 1) * n]).map(|((&x, &y), &z)| z.as_f64() * sq(x - y)).sum(),
            None => p.iter().zip(sp).map(|(&x, &y)| sq(x - y)).sum(),
        }
    })
}

/// FISTA on one image. `s` and `wts` are `C × h·w`; maps are `M × mh·mw`.
pub(crate) fn solve<T: FftReal>(
    op: &ConvOperator<T>,
    s: &[T],
    wts: Option<&[T]>,
    lam: &[T],
    nonneg: bool,
    p: &FistaParams,
    max_iter: usize,
    tol: f64,
    warm: Option<&[T]>,
    history: bool,
) -> Result<(Vec<T>, SolveInfo)> {
    let g = op.geom;
    let (ml, il) = (g.map_len(), g.image_len());
    let m = lam.len();
    let mut work = op.work();
    let mut x = match warm {
        Some(w) => w.to_vec(),
        None => vec![T::zero(); m * ml],
    };
    let mut ax = vec![T::zero(); s.len()];
    op.apply_one(&x, &mut ax, &mut work)?;
    let reg = |v: &[T]| plane_sum(v, ml, |k, pl| lam[k].as_f64() * pl.iter().map(|e| e.as_f64().abs()).sum::<f64>());
    let mut big_f = data_value(&ax, s, wts, il) + reg(&x);
    let mut y = x.clone();
    let mut ay = ax.clone();
    let mut res = vec![T::zero(); s.len()];
    let mut grad = vec![T::zero(); m * ml];
    let mut xn = vec![T::zero(); m * ml];
    let mut axn = vec![T::zero(); s.len()];
    let mut lip = p.lipschitz.unwrap_or_else(|| op.lipschitz()).max(1e-12);
    let mut t = 1.0f64;
    let mut hist = Vec::new();
    let (mut stop, mut iters) = (StopReason::MaxIterations, max_iter);
    let (mut rel_x, mut rel_f) = (f64::INFINITY, f64::INFINITY);
    for it in 0..max_iter {
        let f_y = data_term(&ay, s, wts, &mut res, il);
        op.adjoint_one(&res, &mut grad, &mut work)?;
        let mut backtracks = 0;
        let f_n = loop {
            let step = T::lit(1.0 / lip);
            let parts: Vec<(f64, f64)> = xn
                .par_chunks_mut(ml)
                .zip(y.par_chunks(ml))
                .zip(grad.par_chunks(ml))
                .enumerate()
                .map(|(k, ((o, yv), gv))| {
                    let thr = lam[k] * step;
                    let (mut lin, mut d2) = (0.0, 0.0);
                    for ((ov, &yy), &gg) in o.iter_mut().zip(yv).zip(gv) {
                        let z = yy - step * gg;
                        let v = if nonneg {
                            (z - thr).max(T::zero())
                        } else if z > thr {
                            z - thr
                        } else if z < -thr {
                            z + thr
                        } else {
                            T::zero()
                        };
                        *ov = v;
                        let d = v - yy;
                        lin += (gg * d).as_f64();
                        d2 += sq(d);
                    }
                    (lin, d2)
                })
                .collect();
            let (lin, d2) = parts.iter().fold((0.0, 0.0), |(a, b), (c, d)| (a + c, b + d));
            op.apply_one(&xn, &mut axn, &mut work)?;
            let f_n = data_value(&axn, s, wts, il);
            let q = f_y + lin + 0.5 * lip * d2;
            if p.eta <= 1.0 || f_n <= q + 1e-12 * q.abs().max(f_y.abs()) {
                break f_n;
            }
            backtracks += 1;
            if backtracks > 60 {
                return Err(ConvCodingError::Numerical {
                    op: "FISTA",
                    detail: format!("backtracking did not find a step after 60 reductions (L = {lip:e})"),
                });
            }
            lip *= p.eta;
        };
        let f_new = f_n + reg(&xn);
        if !f_new.is_finite() {
            return Err(ConvCodingError::Numerical {
                op: "FISTA",
                detail: format!("objective became {f_new} at iteration {}", it + 1),
            });
        }
        let dx2 = plane_sum(&xn, ml, |k, pl| pl.iter().zip(&x[k * ml..(k + 1) * ml]).map(|(&a, &b)| sq(a - b)).sum());
        let xn2 = plane_sum(&xn, ml, |_, pl| pl.iter().map(|&a| sq(a)).sum());
        rel_x = if dx2 == 0.0 { 0.0 } else { (dx2 / xn2.max(f64::MIN_POSITIVE)).sqrt() };
        rel_f = if f_new == big_f {
            0.0
        } else {
            (f_new - big_f).abs() / f_new.abs().max(big_f.abs()).max(f64::MIN_POSITIVE)
        };
        if p.restart && f_new > big_f {
            t = 1.0;
            y.copy_from_slice(&xn);
            ay.copy_from_slice(&axn);
        } else {
            let tn = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
            let beta = T::lit((t - 1.0) / tn);
            t = tn;
            y.par_chunks_mut(ml).zip(xn.par_chunks(ml)).zip(x.par_chunks(ml)).for_each(|((yv, a), b)| {
                for ((o, &a), &b) in yv.iter_mut().zip(a).zip(b) {
                    *o = a + beta * (a - b);
                }
            });
            for ((o, &a), &b) in ay.iter_mut().zip(&axn).zip(&ax) {
                *o = a + beta * (a - b);
            }
        }
        std::mem::swap(&mut x, &mut xn);
        std::mem::swap(&mut ax, &mut axn);
        big_f = f_new;
        if history {
            hist.push(IterStat { objective: f_new, primal_residual: rel_x, dual_residual: rel_f, rho: lip });
        }
        if tol > 0.0 && rel_x < tol {
            stop = StopReason::Converged;
            iters = it + 1;
            break;
        }
    }
    let dfid = data_value(&ax, s, wts, il);
    let reg_v = reg(&x);
    let nnz = x.iter().filter(|v| **v != T::zero()).count();
    let info = SolveInfo {
        iterations: iters,
        stop,
        objective: dfid + reg_v,
        data_fidelity: dfid,
        regularizer: reg_v,
        nnz_fraction: nnz as f64 / x.len().max(1) as f64,
        primal_residual: rel_x,
        dual_residual: rel_f,
        rho: lip,
        history: hist,
    };
    Ok((x, info))
}
