//! Convolutional sparse coding by the shared FISTA of `latent-optim`.
//!
//! Minimises `f(s) + g(s)` with `f(s) = ½ Σ_p w_p (A s − x)_p²` and `g(s) = Σ_m λ_m‖s_m‖₁` (plus
//! `s ≥ 0`) with [`latent_optim::fista_linear`]. The gradient `Aᴴ(w ⊙ (A s − x))` is computed by
//! the [`ConvOperator`] in the DFT domain or in the spatial domain. The problem is a
//! [`LinearSmooth`], so the solver keeps `A y` for the extrapolated point without another
//! transform (`A y = A x⁺ + β(A x⁺ − A x)`): an iteration costs one adjoint and one synthesis
//! (plus one synthesis per backtracking step).

use crate::error::{ConvCodingError, Result, solver_err};
use crate::operator::{ConvOperator, OpWork};
use crate::params::{FistaParams, IterStat, SolveInfo};
use latent_linalg::fft::FftReal;
use latent_optim::{LinearSmooth, OptimError, ProxGradParams, fista_linear};
use rayon::prelude::*;
use std::cell::RefCell;

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

/// `Σ_m λ_m ‖s_m‖₁` over maps of `n` values.
fn l1<T: FftReal>(x: &[T], lam: &[T], n: usize) -> f64 {
    plane_sum(x, n, |k, pl| lam[k].as_f64() * pl.iter().map(|e| e.as_f64().abs()).sum::<f64>())
}

/// The data term `½ Σ w (A s − x)²` of one image as a [`LinearSmooth`]: the image of `s` is the
/// synthesis `A s` (`C × h·w`).
struct DataTerm<'a, T: FftReal> {
    op: &'a ConvOperator<T>,
    s: &'a [T],
    wts: Option<&'a [T]>,
    dim: usize,
    /// Operator scratch and the weighted residual (the solver's methods take `&self`).
    scratch: RefCell<(OpWork<T>, Vec<T>)>,
}

impl<T: FftReal> LinearSmooth<T> for DataTerm<'_, T> {
    type Image = Vec<T>;
    type Error = ConvCodingError;
    fn dim(&self) -> usize {
        self.dim
    }
    fn image(&self) -> Vec<T> {
        vec![T::zero(); self.s.len()]
    }
    fn apply(&self, x: &[T], ax: &mut Vec<T>) -> Result<()> {
        let mut sc = self.scratch.borrow_mut();
        self.op.apply_one(x, ax, &mut sc.0)
    }
    fn value(&self, _: &[T], ax: &Vec<T>) -> Result<f64> {
        Ok(data_value(ax, self.s, self.wts, self.op.geom.image_len()))
    }
    fn value_grad(&self, _: &[T], ax: &Vec<T>, grad: &mut [T]) -> Result<f64> {
        let mut sc = self.scratch.borrow_mut();
        let (work, res) = &mut *sc;
        let f = data_term(ax, self.s, self.wts, res, self.op.geom.image_len());
        self.op.adjoint_one(res, grad, work)?;
        Ok(f)
    }
    fn extrapolate(&self, beta: T, a: &Vec<T>, b: &Vec<T>, ay: &mut Vec<T>) {
        for ((o, &a), &b) in ay.iter_mut().zip(a).zip(b) {
            *o = a + beta * (a - b);
        }
    }
}

/// `g(s) = Σ_m λ_m ‖s_m‖₁` (plus the indicator of `s ≥ 0`) over maps of `n` values.
struct MapL1<'a, T> {
    lam: &'a [T],
    n: usize,
    nonneg: bool,
}

impl<T: FftReal> MapL1<'_, T> {
    /// Soft threshold at `thr` (clipped at 0 for non-negative codes).
    fn threshold(&self, o: &mut [T], thr: T) {
        let nonneg = self.nonneg;
        for v in o.iter_mut() {
            let z = *v;
            *v = if nonneg {
                (z - thr).max(T::zero())
            } else if z > thr {
                z - thr
            } else if z < -thr {
                z + thr
            } else {
                T::zero()
            };
        }
    }
}

impl<T: FftReal> latent_optim::Prox<T> for MapL1<'_, T> {
    fn prox(&self, x: &mut [T], step: T) -> latent_optim::Result<()> {
        if x.len() != self.lam.len() * self.n {
            return Err(OptimError::LengthMismatch {
                op: "MapL1::prox",
                what: "maps",
                expected: self.lam.len() * self.n,
                got: x.len(),
            });
        }
        x.par_chunks_mut(self.n).enumerate().for_each(|(k, o)| self.threshold(o, self.lam[k] * step));
        Ok(())
    }
    /// Separable: the fused FISTA pass thresholds each part with the λ of the maps it spans.
    fn prox_part(&self, offset: usize, part: &mut [T], step: T) -> Option<latent_optim::Result<()>> {
        let total = self.lam.len() * self.n;
        if offset + part.len() > total {
            return Some(Err(OptimError::LengthMismatch {
                op: "MapL1::prox_part",
                what: "maps",
                expected: total,
                got: offset + part.len(),
            }));
        }
        let mut i = 0;
        while i < part.len() {
            let k = (offset + i) / self.n;
            let end = ((k + 1) * self.n - offset).min(part.len());
            self.threshold(&mut part[i..end], self.lam[k] * step);
            i = end;
        }
        Some(Ok(()))
    }
    fn value(&self, x: &[T]) -> T {
        if x.len() != self.lam.len() * self.n {
            return T::lit(f64::NAN);
        }
        if self.nonneg && x.iter().any(|v| *v < T::zero()) {
            return T::lit(f64::INFINITY);
        }
        T::lit(l1(x, self.lam, self.n))
    }
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
    let x0 = match warm {
        Some(w) => w.to_vec(),
        None => vec![T::zero(); m * ml],
    };
    let f = DataTerm { op, s, wts, dim: m * ml, scratch: RefCell::new((op.work(), vec![T::zero(); s.len()])) };
    let reg = MapL1 { lam, n: ml, nonneg };
    let lip = p.lipschitz.unwrap_or_else(|| op.lipschitz()).max(1e-12);
    let params = ProxGradParams::new().max_iter(max_iter).tol(tol).restart(p.restart).slack(1e-12).max_backtracks(61);
    let params = if p.eta <= 1.0 { params.step(1.0 / lip) } else { params.backtracking(1.0 / lip, p.eta) };
    let mut steps: Vec<(f64, f64)> = Vec::new();
    let mut last_change = f64::INFINITY;
    let res = fista_linear(&f, &reg, &x0, &params, |st| {
        last_change = st.change;
        if history {
            steps.push((st.change, st.step));
        }
    });
    let res = res.map_err(solver_err("FISTA"))?;
    let rel_f = |k: usize| {
        let (prev, cur) = (res.history[k - 1], res.history[k]);
        if cur == prev { 0.0 } else { (cur - prev).abs() / cur.abs().max(prev.abs()).max(f64::MIN_POSITIVE) }
    };
    let last_rel_f = if res.iterations == 0 { f64::INFINITY } else { rel_f(res.iterations) };
    let hist: Vec<IterStat> = steps
        .iter()
        .enumerate()
        .map(|(i, &(change, step))| IterStat {
            objective: res.history[i + 1],
            primal_residual: change,
            dual_residual: rel_f(i + 1),
            rho: 1.0 / step,
        })
        .collect();
    let x = res.x;
    let mut ax = vec![T::zero(); s.len()];
    op.apply_one(&x, &mut ax, &mut f.scratch.borrow_mut().0)?;
    let dfid = data_value(&ax, s, wts, il);
    let reg_v = l1(&x, lam, ml);
    let nnz = x.iter().filter(|v| **v != T::zero()).count();
    let info = SolveInfo {
        iterations: res.iterations,
        stop: res.stop,
        objective: dfid + reg_v,
        data_fidelity: dfid,
        regularizer: reg_v,
        nnz_fraction: nnz as f64 / x.len().max(1) as f64,
        primal_residual: last_change,
        dual_residual: last_rel_f,
        rho: 1.0 / res.step,
        history: hist,
    };
    Ok((x, info))
}
