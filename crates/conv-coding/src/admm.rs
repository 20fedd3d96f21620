//! ADMM for convolutional basis pursuit denoising (Wohlberg 2016).
//!
//! **Standard form** (periodic boundary, no mask): `min ½‖Σ_m d_m * x_m − s‖² + Σ_m λ_m‖y_m‖₁`
//! subject to `x = y`. Per iteration: `x̂ = (D̂ᴴD̂ + ρI)⁻¹(D̂ᴴŝ + ρ·FFT(y − u))` (Sherman–Morrison per
//! frequency), over-relaxation `x_r = αx + (1 − α)y`, `y = soft(x_r + u, λ/ρ)`, `u ← u + x_r − y`.
//!
//! **Mask decoupling** (a data-term mask `w`, and the zero-padded boundary as a mask on a padded
//! domain — Heide et al. 2015, Wohlberg 2016 "Boundary handling for convolutional sparse
//! representations"): `min ½ Σ w (q − s)² + Σ_m λ_m‖y_m‖₁` s.t. `Dx − q = 0`, `x − y = 0`. The
//! x-step is `(DᴴD + I)x = Dᴴ(q − u₀) + (y − u₁)` — the same Sherman–Morrison solve with ρ = 1 —
//! and the q-step is the pointwise `q = (w s + ρ v)/(w + ρ)`. Where `w = 0` the image value never
//! enters the iteration (nor the residual normalisation), so missing pixels are truly ignored.
//!
//! Both keep all state in the spatial domain and run two transforms of every map per iteration;
//! the element-wise updates are fused into the inverse transform's row loop, and the residual
//! norms are accumulated per map and summed in map order, so results do not depend on the number
//! of threads.

use crate::error::Result;
use crate::geometry::Geometry;
use crate::params::{AdmmParams, AutoRho, IterStat, StopReason};
use crate::spectral::{Spectral, Work, cz};
use crate::spectrum::{DictSpectrum, Rhs, forward_spectrum, xsolve};
use latent_linalg::fft::FftReal;
use latent_optim::Criterion;
use rayon::prelude::*;
use rustfft::num_complex::Complex;

/// What every ADMM variant needs to know about the problem.
pub(crate) struct Ctx<'a, T: FftReal> {
    pub plan: &'a Spectral<T>,
    pub ds: &'a DictSpectrum<T>,
    pub geom: Geometry,
    /// Per-map λ_m.
    pub lam: &'a [T],
    pub nonneg: bool,
}

/// Resolved ADMM settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub rho0: f64,
    pub relax: f64,
    pub auto: Option<AutoRho>,
    pub xi: f64,
    pub tol: f64,
}

impl Settings {
    pub fn new(p: &AdmmParams, lambda: f64, tol: f64) -> Self {
        let auto = p.auto_rho;
        Self {
            rho0: p.rho_for(lambda),
            relax: p.relax,
            auto,
            xi: auto.map(|a| a.target_for(lambda)).unwrap_or(1.0),
            tol,
        }
    }
}

/// The ℓ1 (or non-negative ℓ1) proximal map, written with selects so loops over it vectorise.
#[inline(always)]
fn prox<T: FftReal>(v: T, thr: T, nonneg: bool) -> T {
    let z = T::zero();
    let p = v - thr;
    let pos = if p > z { p } else { z };
    if nonneg {
        pos
    } else {
        let n = v + thr;
        pos + if n < z { n } else { z }
    }
}

/// Lanes of the vectorised per-row reductions (fixed, so sums do not depend on threads).
const LANES: usize = 8;

/// The standard ADMM's fused update of one row: relaxation, y- and u-updates, and the six
/// residual sums `‖x − y⁺‖², ‖y⁺ − y‖², ‖x‖², ‖y⁺‖², ‖u⁺‖², ‖x‖₁`.
#[inline(always)]
fn update_row<T: FftReal>(x: &[T], y: &mut [T], u: &mut [T], alpha: T, beta: T, thr: T, nonneg: bool) -> [f64; 6] {
    let mut a = [[T::zero(); LANES]; 6];
    let full = x.len() / LANES * LANES;
    let one = |l: usize, x: T, yv: &mut T, uv: &mut T, a: &mut [[T; LANES]; 6]| {
        let ax = alpha * x + beta * *yv;
        let v = ax + *uv;
        let yn = prox(v, thr, nonneg);
        let un = v - yn;
        let (dr, dy) = (x - yn, yn - *yv);
        a[0][l] += dr * dr;
        a[1][l] += dy * dy;
        a[2][l] += x * x;
        a[3][l] += yn * yn;
        a[4][l] += un * un;
        a[5][l] += x.abs();
        *yv = yn;
        *uv = un;
    };
    for ((xc, yc), uc) in
        x[..full].chunks_exact(LANES).zip(y[..full].chunks_exact_mut(LANES)).zip(u[..full].chunks_exact_mut(LANES))
    {
        for l in 0..LANES {
            one(l, xc[l], &mut yc[l], &mut uc[l], &mut a);
        }
    }
    for i in full..x.len() {
        one(0, x[i], &mut y[i], &mut u[i], &mut a);
    }
    let mut out = [0.0f64; 6];
    for (o, lanes) in out.iter_mut().zip(&a) {
        let s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
        *o = s.as_f64();
    }
    out
}

/// Residual bookkeeping shared by both variants.
struct Rsd {
    /// ‖primal residual‖²
    r2: f64,
    /// ‖y − y_prev‖²
    dy2: f64,
    /// ‖Ax‖²
    ax2: f64,
    /// ‖By‖²
    by2: f64,
    /// ‖u‖² (scaled dual)
    u2: f64,
}

/// Penalty update and stopping test after an iteration; returns (r, s, converged, multiplier).
fn balance(st: &Rsd, rho: f64, k: usize, set: &Settings) -> (f64, f64, bool, f64) {
    let mut rn = st.ax2.max(st.by2).sqrt();
    if rn == 0.0 {
        rn = 1.0;
    }
    let mut sn = rho * st.u2.sqrt();
    if sn == 0.0 {
        sn = 1.0;
    }
    let r = st.r2.sqrt() / rn;
    let s = rho * st.dy2.sqrt() / sn;
    let converged = r < set.tol && s < set.tol;
    let mult = match &set.auto {
        Some(a) if k != 0 && (k + 1).is_multiple_of(a.period) => a.factor(r, s, set.xi),
        _ => 1.0,
    };
    (r, s, converged, mult)
}

// ---------------------------------------------------------------------------------------------
// standard form

/// State of the standard ADMM for one image.
pub(crate) struct AdmmState<T: FftReal> {
    /// Sparse maps y (M × N).
    pub y: Vec<T>,
    /// Scaled dual u (M × N).
    pub u: Vec<T>,
    pub rho: f64,
    /// Pending rescaling of u (after a ρ change).
    uscale: f64,
    /// ŝ (C × F).
    sf: Vec<Complex<T>>,
    buf: Vec<Complex<T>>,
    /// Iterations run.
    pub k: usize,
}

impl<T: FftReal> AdmmState<T> {
    /// Start from zero maps (or `warm`, M × N) for the image `s` (C × N).
    pub fn new(ctx: &Ctx<'_, T>, s: &[T], warm: Option<&[T]>, set: &Settings) -> Result<Self> {
        let (m, c, f) = (ctx.ds.m, ctx.ds.c, ctx.ds.f);
        let n = ctx.geom.dom_len();
        let mut sf = vec![cz(); c * f];
        sf.par_chunks_mut(f)
            .zip(s.par_chunks(n))
            .try_for_each_init(|| ctx.plan.work(), |wk, (o, p)| ctx.plan.forward_plane(wk, p, o))?;
        let y = match warm {
            Some(w) => w.to_vec(),
            None => vec![T::zero(); m * n],
        };
        // with a warm start, u = λ/ρ·sign(y) satisfies the dual optimality condition
        let rho = set.rho0;
        let u = y
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let l = ctx.lam[i / n].as_f64() / rho;
                T::lit(if v > T::zero() {
                    l
                } else if v < T::zero() {
                    -l
                } else {
                    0.0
                })
            })
            .collect();
        Ok(Self { y, u, rho, uscale: 1.0, sf, buf: vec![cz(); m * f], k: 0 })
    }

    /// One iteration. Returns its diagnostics and whether the residuals are below tolerance.
    pub fn step(&mut self, ctx: &Ctx<'_, T>, set: &Settings) -> Result<(IterStat, bool)> {
        let plan = ctx.plan;
        let (f, w) = (ctx.ds.f, plan.w);
        let n = ctx.geom.dom_len();
        let sc = T::lit(self.uscale);
        let rescale = self.uscale != 1.0;
        // FFT(y − u), rescaling u on the way after a ρ change
        self.buf.par_chunks_mut(f).zip(self.y.par_chunks(n)).zip(self.u.par_chunks_mut(n)).try_for_each_init(
            || plan.work(),
            |wk: &mut Work<T>, ((out, y), u)| {
                plan.forward(
                    wk,
                    |i, row| {
                        let (yr, ur) = (&y[i * w..(i + 1) * w], &mut u[i * w..(i + 1) * w]);
                        if rescale {
                            for ((r, &yv), uv) in row.iter_mut().zip(yr).zip(ur.iter_mut()) {
                                *uv *= sc;
                                *r = yv - *uv;
                            }
                        } else {
                            for ((r, &yv), &uv) in row.iter_mut().zip(yr).zip(ur.iter()) {
                                *r = yv - uv;
                            }
                        }
                    },
                    out,
                )
            },
        )?;
        self.uscale = 1.0;
        let rho = T::lit(self.rho);
        let dfid2 = xsolve(ctx.ds, plan, &mut self.buf, Rhs::Data { s: &self.sf }, rho, None, Some(&self.sf));
        // inverse FFT fused with the relaxation, the y- and u-updates and the residual norms
        let alpha = T::lit(set.relax);
        let beta = T::one() - alpha;
        let nonneg = ctx.nonneg;
        let stats: Vec<[f64; 6]> = self
            .buf
            .par_chunks_mut(f)
            .zip(self.y.par_chunks_mut(n))
            .zip(self.u.par_chunks_mut(n))
            .enumerate()
            .map_init(
                || plan.work(),
                |wk: &mut Work<T>, (m, ((spec, y), u))| -> Result<[f64; 6]> {
                    let thr = ctx.lam[m] / rho;
                    let mut acc = [0.0f64; 6];
                    plan.inverse(wk, spec, |i, row| {
                        let (yr, ur) = (&mut y[i * w..(i + 1) * w], &mut u[i * w..(i + 1) * w]);
                        let a = update_row(row, yr, ur, alpha, beta, thr, nonneg);
                        for (s, v) in acc.iter_mut().zip(a) {
                            *s += v;
                        }
                    })?;
                    acc[5] *= ctx.lam[m].as_f64();
                    Ok(acc)
                },
            )
            .collect::<Result<_>>()?;
        let mut tot = [0.0f64; 6];
        for s in &stats {
            for (t, v) in tot.iter_mut().zip(s) {
                *t += v;
            }
        }
        let rs = Rsd { r2: tot[0], dy2: tot[1], ax2: tot[2], by2: tot[3], u2: tot[4] };
        let rho_used = self.rho;
        let (r, s, converged, mult) = balance(&rs, self.rho, self.k, set);
        if mult != 1.0 {
            self.rho *= mult;
            self.uscale = 1.0 / mult;
        }
        self.k += 1;
        let dfid = 0.5 * dfid2 / (plan.h * plan.w) as f64;
        Ok((IterStat { objective: dfid + tot[5], primal_residual: r, dual_residual: s, rho: rho_used }, converged))
    }

    /// `(½‖Σ d*y − s‖², Σ_m λ_m‖y_m‖₁, nnz)` at the sparse maps y.
    pub fn objective(&self, ctx: &Ctx<'_, T>) -> Result<(f64, f64, usize)> {
        let (f, n) = (ctx.ds.f, ctx.geom.dom_len());
        let mut yf = vec![cz(); ctx.ds.m * f];
        yf.par_chunks_mut(f)
            .zip(self.y.par_chunks(n))
            .try_for_each_init(|| ctx.plan.work(), |wk, (o, p)| ctx.plan.forward_plane(wk, p, o))?;
        let mut z = vec![cz(); ctx.ds.c * f];
        forward_spectrum(ctx.ds, &yf, &mut z);
        z.iter_mut().zip(&self.sf).for_each(|(a, b)| *a -= *b);
        let dfid = 0.5 * ctx.plan.norm_sq(&z);
        let (reg, nnz) = l1_nnz(&self.y, n, ctx.lam);
        Ok((dfid, reg, nnz))
    }
}

/// `Σ_m λ_m‖y_m‖₁` and the nonzero count of maps laid out `M × n`.
pub(crate) fn l1_nnz<T: FftReal>(y: &[T], n: usize, lam: &[T]) -> (f64, usize) {
    let parts: Vec<(f64, usize)> = y
        .par_chunks(n)
        .zip(lam.par_iter())
        .map(|(p, &l)| {
            let s: f64 = p.chunks(1024).map(|c| c.iter().fold(T::zero(), |a, v| a + v.abs()).as_f64()).sum();
            (s * l.as_f64(), p.iter().filter(|v| **v != T::zero()).count())
        })
        .collect();
    parts.iter().fold((0.0, 0), |(a, b), (s, c)| (a + s, b + c))
}

// ---------------------------------------------------------------------------------------------
// mask decoupling

/// State of the mask-decoupled ADMM for one image on the (padded) domain.
pub(crate) struct MaskState<T: FftReal> {
    /// Sparse maps y₁ (M × Nd), zero beyond the map support.
    pub y1: Vec<T>,
    u1: Vec<T>,
    /// Reconstruction variable q ≈ Dx (C × Nd).
    q: Vec<T>,
    u0: Vec<T>,
    /// Embedded image (C × Nd).
    s: Vec<T>,
    /// Data weights on the domain (C × Nd), 0 outside the image.
    wts: Vec<T>,
    pub rho: f64,
    uscale: f64,
    buf: Vec<Complex<T>>,
    vbuf: Vec<Complex<T>>,
    zbuf: Vec<Complex<T>>,
    pub k: usize,
}

impl<T: FftReal> MaskState<T> {
    /// `s` and `wts` are the embedded image and weights (C × Nd); `warm` maps on the domain (M × Nd).
    /// The reconstruction variable starts primal-feasible, `q = D y₁`.
    pub fn new(ctx: &Ctx<'_, T>, s: Vec<T>, wts: Vec<T>, warm: Option<Vec<T>>, set: &Settings) -> Result<Self> {
        let (m, c, f) = (ctx.ds.m, ctx.ds.c, ctx.ds.f);
        let n = ctx.geom.dom_len();
        let y1 = warm.unwrap_or_else(|| vec![T::zero(); m * n]);
        let q = if y1.iter().any(|v| *v != T::zero()) { synthesize(ctx, &y1)? } else { vec![T::zero(); c * n] };
        let rho = set.rho0;
        let u1 = y1
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let l = ctx.lam[i / n].as_f64() / rho;
                T::lit(if v > T::zero() {
                    l
                } else if v < T::zero() {
                    -l
                } else {
                    0.0
                })
            })
            .collect();
        Ok(Self {
            y1,
            u1,
            q,
            u0: vec![T::zero(); c * n],
            s,
            wts,
            rho,
            uscale: 1.0,
            buf: vec![cz(); m * f],
            vbuf: vec![cz(); c * f],
            zbuf: vec![cz(); c * f],
            k: 0,
        })
    }

    pub fn step(&mut self, ctx: &Ctx<'_, T>, set: &Settings) -> Result<(IterStat, bool)> {
        let plan = ctx.plan;
        let g = ctx.geom;
        let (f, w) = (ctx.ds.f, plan.w);
        let n = g.dom_len();
        let sc = T::lit(self.uscale);
        // FFT(y₁ − u₁) per map and FFT(y₀ + s − u₀) per channel, rescaling the duals if ρ changed
        self.buf.par_chunks_mut(f).zip(self.y1.par_chunks(n)).zip(self.u1.par_chunks_mut(n)).try_for_each_init(
            || plan.work(),
            |wk: &mut Work<T>, ((out, y), u)| {
                plan.forward(
                    wk,
                    |i, row| {
                        for ((r, &yv), uv) in row.iter_mut().zip(&y[i * w..(i + 1) * w]).zip(&mut u[i * w..(i + 1) * w])
                        {
                            *uv *= sc;
                            *r = yv - *uv;
                        }
                    },
                    out,
                )
            },
        )?;
        self.vbuf.par_chunks_mut(f).zip(self.q.par_chunks(n)).zip(self.u0.par_chunks_mut(n)).try_for_each_init(
            || plan.work(),
            |wk: &mut Work<T>, ((out, q), u)| {
                plan.forward(
                    wk,
                    |i, row| {
                        for ((o, &qv), uv) in row.iter_mut().zip(&q[i * w..(i + 1) * w]).zip(&mut u[i * w..(i + 1) * w])
                        {
                            *uv *= sc;
                            *o = qv - *uv;
                        }
                    },
                    out,
                )
            },
        )?;
        self.uscale = 1.0;
        xsolve(ctx.ds, plan, &mut self.buf, Rhs::Adjoint { v: &self.vbuf }, T::one(), Some(&mut self.zbuf), None);
        let rho = T::lit(self.rho);
        let alpha = T::lit(set.relax);
        let beta = T::one() - alpha;
        // channels: q update from Dx
        let ch_stats: Vec<[f64; 6]> = self
            .zbuf
            .par_chunks_mut(f)
            .zip(self.q.par_chunks_mut(n))
            .zip(self.u0.par_chunks_mut(n))
            .zip(self.s.par_chunks(n))
            .zip(self.wts.par_chunks(n))
            .map_init(
                || plan.work(),
                |wk: &mut Work<T>, ((((spec, q), u0), sp), wp)| -> Result<[f64; 6]> {
                    let mut acc = [0.0f64; 6];
                    plan.inverse(wk, spec, |i, row| {
                        let r = i * w..(i + 1) * w;
                        let mut a = [T::zero(); 6];
                        for ((((&dx, qv), uv), &sv), &wv) in row
                            .iter()
                            .zip(&mut q[r.clone()])
                            .zip(&mut u0[r.clone()])
                            .zip(&sp[r.clone()])
                            .zip(&wp[r.clone()])
                        {
                            let ax = alpha * dx + beta * *qv;
                            let v = ax + *uv;
                            let qn = (wv * sv + rho * v) / (wv + rho);
                            let un = v - qn;
                            let pr = dx - qn;
                            let dq = qn - *qv;
                            let e = dx - sv;
                            a[0] += pr * pr;
                            a[1] += dq * dq;
                            a[2] += dx * dx;
                            a[3] += qn * qn;
                            a[4] += un * un;
                            a[5] += wv * e * e;
                            *qv = qn;
                            *uv = un;
                        }
                        for (s, v) in acc.iter_mut().zip(a) {
                            *s += v.as_f64();
                        }
                    })?;
                    Ok(acc)
                },
            )
            .collect::<Result<_>>()?;
        // maps: y₁ update from x
        let nonneg = ctx.nonneg;
        let map_stats: Vec<[f64; 6]> = self
            .buf
            .par_chunks_mut(f)
            .zip(self.y1.par_chunks_mut(n))
            .zip(self.u1.par_chunks_mut(n))
            .enumerate()
            .map_init(
                || plan.work(),
                |wk: &mut Work<T>, (m, ((spec, y), u))| -> Result<[f64; 6]> {
                    let thr = ctx.lam[m] / rho;
                    let mut acc = [0.0f64; 6];
                    plan.inverse(wk, spec, |i, row| {
                        let r = i * w..(i + 1) * w;
                        let inside_rows = i < g.mh;
                        let mut a = [T::zero(); 6];
                        for (j, ((&x, yv), uv)) in row.iter().zip(&mut y[r.clone()]).zip(&mut u[r.clone()]).enumerate()
                        {
                            let ax = alpha * x + beta * *yv;
                            let v = ax + *uv;
                            let yn = if inside_rows && j < g.mw { prox(v, thr, nonneg) } else { T::zero() };
                            let un = v - yn;
                            let (dr, dy) = (x - yn, yn - *yv);
                            a[0] += dr * dr;
                            a[1] += dy * dy;
                            a[2] += x * x;
                            a[3] += yn * yn;
                            a[4] += un * un;
                            a[5] += x.abs();
                            *yv = yn;
                            *uv = un;
                        }
                        for (s, v) in acc.iter_mut().zip(a) {
                            *s += v.as_f64();
                        }
                    })?;
                    acc[5] *= ctx.lam[m].as_f64();
                    Ok(acc)
                },
            )
            .collect::<Result<_>>()?;
        let mut ct = [0.0f64; 6];
        for s in &ch_stats {
            for (t, v) in ct.iter_mut().zip(s) {
                *t += v;
            }
        }
        let mut mt = [0.0f64; 6];
        for s in &map_stats {
            for (t, v) in mt.iter_mut().zip(s) {
                *t += v;
            }
        }
        let rs =
            Rsd { r2: ct[0] + mt[0], dy2: ct[1] + mt[1], ax2: ct[2] + mt[2], by2: ct[3] + mt[3], u2: ct[4] + mt[4] };
        let rho_used = self.rho;
        let (r, s, converged, mult) = balance(&rs, self.rho, self.k, set);
        if mult != 1.0 {
            self.rho *= mult;
            self.uscale = 1.0 / mult;
        }
        self.k += 1;
        Ok((
            IterStat { objective: 0.5 * ct[5] + mt[5], primal_residual: r, dual_residual: s, rho: rho_used },
            converged,
        ))
    }

    /// `(½ Σ w (D y₁ − s)², Σ_m λ_m‖y₁,m‖₁, nnz)` at the sparse maps.
    pub fn objective(&self, ctx: &Ctx<'_, T>) -> Result<(f64, f64, usize)> {
        let n = ctx.geom.dom_len();
        let recon = synthesize(ctx, &self.y1)?;
        let dfid: f64 = recon
            .par_chunks(n)
            .zip(self.s.par_chunks(n))
            .zip(self.wts.par_chunks(n))
            .map(|((r, s), w)| {
                r.iter()
                    .zip(s)
                    .zip(w)
                    .map(|((&a, &b), &c)| c.as_f64() * (a - b).as_f64() * (a - b).as_f64())
                    .sum::<f64>()
            })
            .collect::<Vec<f64>>()
            .iter()
            .sum();
        let (reg, nnz) = l1_nnz(&self.y1, n, ctx.lam);
        Ok((0.5 * dfid, reg, nnz))
    }
}

/// `Σ_m d_m * y_m` on the domain (C × Nd) for maps on the domain (M × Nd).
pub(crate) fn synthesize<T: FftReal>(ctx: &Ctx<'_, T>, y: &[T]) -> Result<Vec<T>> {
    let (f, n) = (ctx.ds.f, ctx.geom.dom_len());
    let mut yf = vec![cz(); ctx.ds.m * f];
    yf.par_chunks_mut(f)
        .zip(y.par_chunks(n))
        .try_for_each_init(|| ctx.plan.work(), |wk, (o, p)| ctx.plan.forward_plane(wk, p, o))?;
    let mut z = vec![cz(); ctx.ds.c * f];
    forward_spectrum(ctx.ds, &yf, &mut z);
    let mut out = vec![T::zero(); ctx.ds.c * n];
    out.par_chunks_mut(n)
        .zip(z.par_chunks_mut(f))
        .try_for_each_init(|| ctx.plan.work(), |wk, (o, zs)| ctx.plan.inverse_plane(wk, zs, o))?;
    Ok(out)
}

/// Run a state to its stopping point.
pub(crate) fn run<T: FftReal, S>(
    st: &mut S,
    ctx: &Ctx<'_, T>,
    set: &Settings,
    max_iter: usize,
    history: Option<&mut Vec<IterStat>>,
    mut step: impl FnMut(&mut S, &Ctx<'_, T>, &Settings) -> Result<(IterStat, bool)>,
) -> Result<(usize, StopReason, Option<IterStat>)> {
    let mut hist = history;
    let mut last = None;
    for it in 0..max_iter {
        let (stat, conv) = step(st, ctx, set)?;
        if !stat.objective.is_finite() {
            return Err(crate::error::ConvCodingError::Numerical {
                op: "ADMM",
                detail: format!("objective became {} at iteration {}", stat.objective, it + 1),
            });
        }
        if let Some(h) = hist.as_deref_mut() {
            h.push(stat);
        }
        last = Some(stat);
        if conv {
            let stop = StopReason::Converged {
                criterion: Criterion::PrimalDualResiduals,
                change: stat.primal_residual.max(stat.dual_residual),
                tol: set.tol,
            };
            return Ok((it + 1, stop, last));
        }
    }
    Ok((max_iter, StopReason::MaxIterations, last))
}
