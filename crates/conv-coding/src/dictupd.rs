//! The dictionary update of convolutional dictionary learning:
//! `min_d ½ Σ_k Σ_c ‖√w ⊙ (Σ_m z_{k,m} * d_{m,c} − s_{k,c})‖²` subject to every filter being
//! supported on its `kh × kw` window and of unit norm (or in the unit ball).
//!
//! Two solvers, both in the DFT domain of the (padded) image domain:
//!
//! * **Consensus ADMM** (Šorel & Šroubek 2016; Garcia-Cardona & Wohlberg 2018): each image keeps
//!   its own full-size copy `x_k` of the dictionary, solved per frequency by Sherman–Morrison with
//!   the image's maps in the role the filters play in coding; the consensus variable
//!   `y = P(mean_k(x_k + u_k))` is projected onto the constraint set. Unmasked problems only.
//! * **FISTA** with backtracking on the small filters, by the shared
//!   [`latent_optim::fista_linear`]: the gradient `Σ_k ẑ_k^H (ẑ_k d̂ − ŝ_k)` is formed per
//!   frequency (with the mask applied in the spatial domain when there is one), cropped to the
//!   support, and followed by the projection.

use crate::error::{ConvCodingError, Result, solver_err};
use crate::geometry::Geometry;
use crate::params::AutoRho;
use crate::spectral::{Spectral, Work, cz};
use crate::spectrum::{DictSpectrum, Rhs, xsolve};
use latent_linalg::fft::FftReal;
use latent_optim::{LinearSmooth, Prox, ProxGradParams, fista_linear};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// The constraint set of each filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FilterConstraint {
    /// `‖d_m‖ = 1` (filters are rescaled to unit norm; an all-zero filter stays zero).
    #[default]
    UnitNorm,
    /// `‖d_m‖ ≤ 1` (the convex relaxation; the optimum of a used filter lies on the sphere anyway).
    UnitBall,
}

/// Project small filters `(M, C, kh, kw)` onto the constraint set (support is implicit), with
/// optional mean removal per filter channel.
pub(crate) fn project<T: FftReal>(
    d: &mut [T],
    m: usize,
    c: usize,
    taps: usize,
    cons: FilterConstraint,
    zero_mean: bool,
) {
    for f in d.chunks_mut(c * taps).take(m) {
        if zero_mean {
            for ch in f.chunks_mut(taps) {
                let mean = ch.iter().fold(T::zero(), |a, &v| a + v) / T::from_count(taps);
                ch.iter_mut().for_each(|v| *v -= mean);
            }
        }
        let n = f.iter().fold(T::zero(), |a, &v| a + v * v).sqrt();
        let scale = match cons {
            FilterConstraint::UnitNorm if n > T::zero() => T::one() / n,
            FilterConstraint::UnitBall if n > T::one() => T::one() / n,
            _ => T::one(),
        };
        if scale != T::one() {
            f.iter_mut().for_each(|v| *v *= scale);
        }
    }
}

/// The data of a dictionary update: code and image spectra of every image on a common domain.
pub(crate) struct DictProblem<'a, T: FftReal> {
    pub plan: &'a Spectral<T>,
    pub geom: Geometry,
    pub m: usize,
    pub c: usize,
    /// Maps of each image as a single-channel "dictionary" (Z_k), for the per-frequency solves.
    pub zs: &'a [DictSpectrum<T>],
    /// Image spectra, `K × C × F`.
    pub sf: &'a [Complex<T>],
    /// Domain weights `K × C × Nd` (mask / zero padding), if any.
    pub mask: Option<&'a [T]>,
    pub constraint: FilterConstraint,
    pub zero_mean: bool,
}

impl<T: FftReal> DictProblem<'_, T> {
    fn k(&self) -> usize {
        self.zs.len()
    }
    fn taps(&self) -> usize {
        self.geom.kh * self.geom.kw
    }
    /// Spectra of small filters `(M·C planes)` on the domain.
    fn filter_spectra(&self, d: &[T], out: &mut [Complex<T>]) -> Result<()> {
        let (f, taps, kh, kw) = (self.plan.len(), self.taps(), self.geom.kh, self.geom.kw);
        out.par_chunks_mut(f)
            .zip(d.par_chunks(taps))
            .try_for_each_init(|| self.plan.work(), |wk, (o, k)| self.plan.kernel(wk, k, kh, kw, o))
    }

    /// Residual spectra `R̂_{k,c} = Σ_m Ẑ_{k,m} D̂_{m,c} − Ŝ_{k,c}` (K × C × F), with the mask applied
    /// (through the spatial domain) when there is one. Returns `½ Σ w r²`.
    fn residual(&self, dspec: &[Complex<T>], res: &mut [Complex<T>]) -> Result<f64> {
        let (m, c, f) = (self.m, self.c, self.plan.len());
        res.par_chunks_mut(f).enumerate().for_each(|(kc, r)| {
            let (k, ch) = (kc / c, kc % c);
            let z = &self.zs[k];
            r.copy_from_slice(&self.sf[kc * f..(kc + 1) * f]);
            r.iter_mut().for_each(|v| *v = -*v);
            for mm in 0..m {
                let zm = z.filt(mm, 0);
                let dm = &dspec[(mm * c + ch) * f..(mm * c + ch + 1) * f];
                for ((rv, &a), &b) in r.iter_mut().zip(zm).zip(dm) {
                    *rv += a * b;
                }
            }
        });
        match self.mask {
            None => Ok(0.5 * res.par_chunks(f).map(|r| self.plan.norm_sq(r)).collect::<Vec<f64>>().iter().sum::<f64>()),
            Some(w) => {
                let nd = self.geom.dom_len();
                let parts: Vec<f64> = res
                    .par_chunks_mut(f)
                    .zip(w.par_chunks(nd))
                    .map_init(
                        || (self.plan.work(), vec![T::zero(); nd]),
                        |(wk, plane), (r, wp)| -> Result<f64> {
                            self.plan.inverse_plane(wk, r, plane)?;
                            let mut acc = 0.0;
                            for (p, &wv) in plane.iter_mut().zip(wp) {
                                acc += wv.as_f64() * p.as_f64() * p.as_f64();
                                *p *= wv;
                            }
                            self.plan.forward_plane(wk, plane, r)?;
                            Ok(0.5 * acc)
                        },
                    )
                    .collect::<Result<_>>()?;
                Ok(parts.iter().sum())
            }
        }
    }

    /// Objective `½ Σ w r²` of small filters `d`.
    pub fn objective(&self, d: &[T]) -> Result<f64> {
        let f = self.plan.len();
        let mut ds = vec![cz(); self.m * self.c * f];
        self.filter_spectra(d, &mut ds)?;
        let mut res = vec![cz(); self.k() * self.c * f];
        self.residual(&ds, &mut res)
    }
}

// ---------------------------------------------------------------------------------------------

/// Two spectra buffers.
type SpectraPair<T> = (Vec<Complex<T>>, Vec<Complex<T>>);

/// The data term of the dictionary update as a [`LinearSmooth`] in the small filters: the image
/// of filters `d` is their spectra on the domain (`M × C × F`), linear in `d`, so FISTA keeps the
/// spectra of its extrapolated point without transforming it.
pub(crate) struct DictSmooth<'p, 'a, T: FftReal> {
    pb: &'p DictProblem<'a, T>,
    /// Residual spectra `K × C × F` and gradient spectra `M × C × F` (scratch).
    scratch: RefCell<SpectraPair<T>>,
}

impl<'p, 'a, T: FftReal> DictSmooth<'p, 'a, T> {
    pub fn new(pb: &'p DictProblem<'a, T>) -> Self {
        let f = pb.plan.len();
        Self { pb, scratch: RefCell::new((vec![cz(); pb.k() * pb.c * f], vec![cz(); pb.m * pb.c * f])) }
    }
}

impl<T: FftReal> LinearSmooth<T> for DictSmooth<'_, '_, T> {
    type Image = Vec<Complex<T>>;
    type Error = ConvCodingError;
    fn dim(&self) -> usize {
        self.pb.m * self.pb.c * self.pb.taps()
    }
    fn image(&self) -> Vec<Complex<T>> {
        vec![cz(); self.pb.m * self.pb.c * self.pb.plan.len()]
    }
    fn apply(&self, d: &[T], ds: &mut Vec<Complex<T>>) -> Result<()> {
        self.pb.filter_spectra(d, ds)
    }
    fn value(&self, _: &[T], ds: &Vec<Complex<T>>) -> Result<f64> {
        self.pb.residual(ds, &mut self.scratch.borrow_mut().0)
    }
    /// `½ Σ w r²` and its gradient `Σ_k ẑ_k^H r̂_k` cropped to the filter support.
    fn value_grad(&self, _: &[T], ds: &Vec<Complex<T>>, grad: &mut [T]) -> Result<f64> {
        let pb = self.pb;
        let (c, f, taps) = (pb.c, pb.plan.len(), pb.taps());
        let mut sc = self.scratch.borrow_mut();
        let (res, gs) = &mut *sc;
        let fy = pb.residual(ds, res)?;
        // Ĝ_{m,c} = Σ_k conj(Ẑ_{k,m}) R̂_{k,c}
        gs.par_chunks_mut(f).enumerate().for_each(|(mc, g)| {
            let (mm, ch) = (mc / c, mc % c);
            g.iter_mut().for_each(|v| *v = cz());
            for (kk, z) in pb.zs.iter().enumerate() {
                let r = &res[(kk * c + ch) * f..(kk * c + ch + 1) * f];
                for ((gv, zv), &rv) in g.iter_mut().zip(z.filt(mm, 0)).zip(r) {
                    *gv += zv.conj() * rv;
                }
            }
        });
        let (kh, kw) = (pb.geom.kh, pb.geom.kw);
        grad.par_chunks_mut(taps).zip(gs.par_chunks_mut(f)).try_for_each_init(
            || pb.plan.work(),
            |wk: &mut Work<T>, (o, g)| {
                pb.plan.inverse(wk, g, |i, row| {
                    if i < kh {
                        o[i * kw..(i + 1) * kw].copy_from_slice(&row[..kw]);
                    }
                })
            },
        )?;
        Ok(fy)
    }
    fn extrapolate(&self, beta: T, a: &Vec<Complex<T>>, b: &Vec<Complex<T>>, ay: &mut Vec<Complex<T>>) {
        for ((o, &a), &b) in ay.iter_mut().zip(a).zip(b) {
            *o = a + (a - b) * beta;
        }
    }
}

/// The filter constraint as the "proximal map" of its indicator: the projection of
/// [`project`]. Its value is 0: the solver evaluates it only at the starting filters (projected
/// by the caller) and at projected points, so the update is a projected-gradient method.
struct FilterSet {
    m: usize,
    c: usize,
    taps: usize,
    constraint: FilterConstraint,
    zero_mean: bool,
}

impl<T: FftReal> Prox<T> for FilterSet {
    fn prox(&self, d: &mut [T], _step: T) -> latent_optim::Result<()> {
        project(d, self.m, self.c, self.taps, self.constraint, self.zero_mean);
        Ok(())
    }
    fn value(&self, _: &[T]) -> T {
        T::zero()
    }
}

/// FISTA state of the dictionary update (kept across outer iterations): the Lipschitz estimate
/// `L` (step `1/L`) that backtracking reached, and the backtracking factor.
#[derive(Debug, Clone)]
pub(crate) struct FistaDict {
    pub lip: f64,
    pub eta: f64,
}

impl FistaDict {
    /// A fresh state (the first run starts from the average Lipschitz bound over frequencies).
    pub fn new(eta: f64) -> Self {
        Self { lip: 0.0, eta }
    }

    /// Run `iters` iterations of the shared FISTA ([`fista_linear`]) from the small filters `d`
    /// (updated in place), starting from the step `1/L` with `L` the last run's estimate divided
    /// by `eta`. Stops early only at an exact fixed point. Returns the objective at the final
    /// filters.
    pub fn run<T: FftReal>(&mut self, pb: &DictProblem<'_, T>, d: &mut [T], iters: usize) -> Result<f64> {
        let (m, c, f, taps) = (pb.m, pb.c, pb.plan.len(), pb.taps());
        if self.lip <= 0.0 {
            // start from the average Lipschitz bound over frequencies; backtracking raises it
            let mut acc = vec![0.0f64; f];
            for z in pb.zs {
                for (a, g) in acc.iter_mut().zip(&z.gram) {
                    *a += g.re.as_f64();
                }
            }
            let mx = acc.iter().fold(0.0f64, |a, &b| a.max(b));
            self.lip = (mx / m as f64).max(1e-12);
        } else {
            self.lip = (self.lip / self.eta).max(1e-12);
        }
        let params = ProxGradParams::new()
            .max_iter(iters)
            .tol(0.0)
            .backtracking(1.0 / self.lip, self.eta)
            .restart(true)
            .slack(1e-12)
            .max_backtracks(61);
        let set = FilterSet { m, c, taps, constraint: pb.constraint, zero_mean: pb.zero_mean };
        let res =
            fista_linear(&DictSmooth::new(pb), &set, d, &params, |_| {}).map_err(solver_err("dictionary FISTA"))?;
        // the estimate backtracking reached: L·ηᴮ (B step reductions), as the step 1/L/ηᴮ
        for _ in 0..res.backtracks {
            self.lip *= self.eta;
        }
        d.copy_from_slice(&res.x);
        Ok(res.objective)
    }
}

// ---------------------------------------------------------------------------------------------

/// Consensus ADMM state of the dictionary update.
pub(crate) struct ConsensusDict<T: FftReal> {
    /// Scaled duals, one full-size plane per `(k, c, m)`.
    u: Vec<T>,
    pub rho: f64,
    uscale: f64,
    relax: f64,
    auto: Option<AutoRho>,
    xi: f64,
    k_iter: usize,
    started: bool,
    buf: Vec<Complex<T>>,
}

impl<T: FftReal> ConsensusDict<T> {
    pub fn new(
        k: usize,
        m: usize,
        c: usize,
        geom: &Geometry,
        f: usize,
        rho: f64,
        relax: f64,
        auto: Option<AutoRho>,
    ) -> Self {
        Self {
            u: vec![T::zero(); k * m * c * geom.dom_len()],
            rho,
            uscale: 1.0,
            relax,
            auto,
            xi: auto.map_or(1.0, |a| a.target.unwrap_or(1.0)),
            k_iter: 0,
            started: false,
            buf: vec![cz(); k * m * c * f],
        }
    }

    /// Run `iters` iterations; `d` holds the consensus filters (small, projected) on entry and exit.
    /// Returns the objective at the final filters.
    pub fn run(&mut self, pb: &DictProblem<'_, T>, d: &mut [T], iters: usize) -> Result<f64> {
        let (m, c, f, taps) = (pb.m, pb.c, pb.plan.len(), pb.taps());
        let k = pb.k();
        let g = pb.geom;
        let nd = g.dom_len();
        let (kh, kw, w) = (g.kh, g.kw, pb.plan.w);
        let plan = pb.plan;
        if self.k_iter == 0 && !self.started {
            // u_k = y₀/ρ: the dual optimality condition of the constraint at the initial filters
            self.started = true;
            let inv = T::lit(1.0 / self.rho);
            self.u.par_chunks_mut(nd).enumerate().for_each(|(p, u)| {
                let (ch, mm) = ((p / m) % c, p % m);
                let filt = &d[(mm * c + ch) * taps..(mm * c + ch + 1) * taps];
                for i in 0..kh {
                    for (uv, &fv) in u[i * w..i * w + kw].iter_mut().zip(&filt[i * kw..(i + 1) * kw]) {
                        *uv = fv * inv;
                    }
                }
            });
        }
        for _ in 0..iters {
            let sc = T::lit(self.uscale);
            self.uscale = 1.0;
            let rescale = sc != T::one();
            let y: &[T] = d;
            // FFT(y − u) for every (k, c, m) plane
            self.buf.par_chunks_mut(f).zip(self.u.par_chunks_mut(nd)).enumerate().try_for_each_init(
                || plan.work(),
                |wk: &mut Work<T>, (p, (out, u))| {
                    let (ch, mm) = ((p / m) % c, p % m);
                    let filt = &y[(mm * c + ch) * taps..(mm * c + ch + 1) * taps];
                    plan.forward(
                        wk,
                        |i, row| {
                            let ur = &mut u[i * w..(i + 1) * w];
                            if rescale {
                                ur.iter_mut().for_each(|v| *v *= sc);
                            }
                            for (r, &uv) in row.iter_mut().zip(ur.iter()) {
                                *r = -uv;
                            }
                            if i < kh {
                                for (r, &fv) in row[..kw].iter_mut().zip(&filt[i * kw..(i + 1) * kw]) {
                                    *r += fv;
                                }
                            }
                        },
                        out,
                    )
                },
            )?;
            let rho = T::lit(self.rho);
            // per (k, c): Sherman–Morrison with the maps of image k
            self.buf.par_chunks_mut(m * f).enumerate().for_each(|(kc, b)| {
                xsolve(&pb.zs[kc / c], plan, b, Rhs::Data { s: &pb.sf[kc * f..(kc + 1) * f] }, rho, None, None);
            });
            // inverse fused with the relaxation and w = x_r + u (stored in u); keep the support parts
            let alpha = T::lit(self.relax);
            let beta = T::one() - alpha;
            let parts: Vec<(f64, f64, Vec<T>, Vec<T>)> = self
                .buf
                .par_chunks_mut(f)
                .zip(self.u.par_chunks_mut(nd))
                .enumerate()
                .map_init(
                    || plan.work(),
                    |wk: &mut Work<T>, (p, (spec, u))| -> Result<(f64, f64, Vec<T>, Vec<T>)> {
                        let (ch, mm) = ((p / m) % c, p % m);
                        let filt = &y[(mm * c + ch) * taps..(mm * c + ch + 1) * taps];
                        let (mut x2, mut w2) = (0.0, 0.0);
                        let mut xs = vec![T::zero(); taps];
                        let mut ws = vec![T::zero(); taps];
                        plan.inverse(wk, spec, |i, row| {
                            let ur = &mut u[i * w..(i + 1) * w];
                            let (mut a, mut b) = (T::zero(), T::zero());
                            for (j, (&x, uv)) in row.iter().zip(ur.iter_mut()).enumerate() {
                                let yv = if i < kh && j < kw { filt[i * kw + j] } else { T::zero() };
                                let wv = alpha * x + beta * yv + *uv;
                                a += x * x;
                                b += wv * wv;
                                *uv = wv;
                            }
                            if i < kh {
                                xs[i * kw..(i + 1) * kw].copy_from_slice(&row[..kw]);
                                ws[i * kw..(i + 1) * kw].copy_from_slice(&ur[..kw]);
                            }
                            x2 += a.as_f64();
                            w2 += b.as_f64();
                        })?;
                        Ok((x2, w2, xs, ws))
                    },
                )
                .collect::<Result<_>>()?;
            // y = P(mean_k w_k) on the support
            let yprev = d.to_vec();
            let inv_k = T::one() / T::from_count(k);
            for mm in 0..m {
                for ch in 0..c {
                    let dst = &mut d[(mm * c + ch) * taps..(mm * c + ch + 1) * taps];
                    dst.iter_mut().for_each(|v| *v = T::zero());
                    for kk in 0..k {
                        for (o, &v) in dst.iter_mut().zip(&parts[(kk * c + ch) * m + mm].3) {
                            *o += v;
                        }
                    }
                    dst.iter_mut().for_each(|v| *v *= inv_k);
                }
            }
            project(d, m, c, taps, pb.constraint, pb.zero_mean);
            let y: &[T] = d;
            // u = w − y
            self.u.par_chunks_mut(nd).enumerate().for_each(|(p, u)| {
                let (ch, mm) = ((p / m) % c, p % m);
                let filt = &y[(mm * c + ch) * taps..(mm * c + ch + 1) * taps];
                for i in 0..kh {
                    for (uv, &fv) in u[i * w..i * w + kw].iter_mut().zip(&filt[i * kw..(i + 1) * kw]) {
                        *uv -= fv;
                    }
                }
            });
            // residuals from the full-plane norms and the support parts
            let (mut x2, mut r2, mut u2) = (0.0, 0.0, 0.0);
            for (p, (px2, pw2, xs, ws)) in parts.iter().enumerate() {
                let (ch, mm) = ((p / m) % c, p % m);
                let filt = &y[(mm * c + ch) * taps..(mm * c + ch + 1) * taps];
                let (mut xy, mut wy, mut yy) = (0.0, 0.0, 0.0);
                for ((&a, &b), &fv) in xs.iter().zip(ws).zip(filt) {
                    xy += (a * fv).as_f64();
                    wy += (b * fv).as_f64();
                    yy += (fv * fv).as_f64();
                }
                x2 += px2;
                r2 += (px2 - 2.0 * xy + yy).max(0.0);
                u2 += (pw2 - 2.0 * wy + yy).max(0.0);
            }
            let y2: f64 = y.iter().map(|v| v.as_f64() * v.as_f64()).sum();
            let dy2: f64 = y.iter().zip(&yprev).map(|(a, b)| (*a - *b).as_f64().powi(2)).sum();
            let kf = k as f64;
            let rn = x2.sqrt().max(kf.sqrt() * y2.sqrt());
            let rn = if rn == 0.0 { 1.0 } else { rn };
            let sn = self.rho * u2.sqrt();
            let sn = if sn == 0.0 { 1.0 } else { sn };
            let r = r2.sqrt() / rn;
            let s = kf.sqrt() * self.rho * dy2.sqrt() / sn;
            if let Some(a) = &self.auto
                && self.k_iter != 0
                && (self.k_iter + 1).is_multiple_of(a.period)
            {
                let mult = a.factor(r, s, self.xi);
                if mult != 1.0 {
                    self.rho *= mult;
                    self.uscale = 1.0 / mult;
                }
            }
            self.k_iter += 1;
        }
        pb.objective(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Boundary;
    use latent_optim::gradcheck::{GradCheck, GradCheckReport, check_gradient};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Sizes of a random dictionary-update problem.
    #[derive(Debug, Clone, Copy)]
    struct Sizes {
        k: usize,
        m: usize,
        c: usize,
        kh: usize,
        kw: usize,
        h: usize,
        w: usize,
    }

    /// The CDL filter gradient (`DictSmooth::value_grad`) against central differences of the
    /// objective `DictProblem::objective`, through the shared checker.
    /// `tamper` scales one gradient entry by 1.5 first (a deliberately wrong gradient).
    fn check_filter_gradient(sz: Sizes, boundary: Boundary, seed: u64, tamper: bool) -> GradCheckReport {
        let Sizes { k, m, c, kh, kw, h, w } = sz;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let geom = Geometry::new(h, w, kh, kw, boundary, true).unwrap();
        let plan = Spectral::<f64>::new(geom.dh, geom.dw);
        let (f, n, nd, ml) = (plan.len(), geom.image_len(), geom.dom_len(), geom.map_len());
        // images → domain → spectra
        let mut sdom = vec![0.0; k * c * nd];
        for dst in sdom.chunks_mut(nd) {
            let img: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            geom.embed_image(&img, dst);
        }
        let mut sf = vec![cz(); k * c * f];
        let mut wk = plan.work();
        for (o, s) in sf.chunks_mut(f).zip(sdom.chunks(nd)) {
            plan.forward_plane(&mut wk, s, o).unwrap();
        }
        let mask: Option<Vec<f64>> = geom.padded().then(|| {
            let ones = vec![1.0; n];
            let mut wd = vec![0.0; k * c * nd];
            for dst in wd.chunks_mut(nd) {
                geom.embed_image(&ones, dst);
            }
            wd
        });
        // sparse-ish maps of every image, on the domain
        let zs: Vec<DictSpectrum<f64>> = (0..k)
            .map(|_| {
                let mut dom = vec![0.0; m * nd];
                for plane in dom.chunks_mut(nd) {
                    let map: Vec<f64> =
                        (0..ml).map(|_| if rng.random_bool(0.3) { rng.random_range(-1.0..1.0) } else { 0.0 }).collect();
                    geom.embed_map(&map, plane);
                }
                DictSpectrum::from_planes(&plan, &dom, m).unwrap()
            })
            .collect();
        let pb = DictProblem {
            plan: &plan,
            geom,
            m,
            c,
            zs: &zs,
            sf: &sf,
            mask: mask.as_deref(),
            constraint: FilterConstraint::UnitNorm,
            zero_mean: false,
        };
        let d: Vec<f64> = (0..m * c * kh * kw).map(|_| rng.random_range(-1.0..1.0)).collect();
        let smooth = DictSmooth::new(&pb);
        let mut ds = smooth.image();
        smooth.apply(&d, &mut ds).unwrap();
        let mut grad = vec![0.0; d.len()];
        let value = smooth.value_grad(&d, &ds, &mut grad).unwrap();
        let direct = pb.objective(&d).unwrap();
        assert!((value - direct).abs() <= 1e-12 * direct.abs().max(1.0), "{value} vs {direct}");
        if tamper {
            let i = grad.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).map_or(0, |(i, _)| i);
            grad[i] *= 1.5;
        }
        check_gradient(|x: &[f64]| pb.objective(x).unwrap_or(f64::NAN), &d, &grad, &GradCheck::default()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn cdl_filter_gradient_matches_finite_differences(
            k in 1usize..3, m in 1usize..4, c in 1usize..3, kh in 1usize..4, kw in 1usize..4,
            h in 4usize..8, w in 4usize..8, zero_pad in any::<bool>(), seed in any::<u64>(),
        ) {
            let boundary = if zero_pad { Boundary::ZeroPad } else { Boundary::Periodic };
            let report = check_filter_gradient(Sizes { k, m, c, kh, kw, h, w }, boundary, seed, false);
            prop_assert!(report.passes(1e-6), "{:?}: {}", boundary, report);
        }
    }

    #[test]
    fn a_wrong_filter_gradient_fails_the_check() {
        // Guard against a check that passes everything: the same problem with one entry off.
        let sz = Sizes { k: 2, m: 2, c: 2, kh: 3, kw: 2, h: 6, w: 5 };
        for boundary in [Boundary::Periodic, Boundary::ZeroPad] {
            assert!(check_filter_gradient(sz, boundary, 7, false).passes(1e-6));
            assert!(!check_filter_gradient(sz, boundary, 7, true).passes(1e-3));
        }
    }
}
