//! Online convolutional dictionary learning for many images.
//!
//! For periodic convolution with filters supported on `kh × kw`, the data term of one image is an
//! exact quadratic in the filter taps: `½‖Σ_m z_m * d_m − s‖² = ½ dᵀA d − bᵀd + ½‖s‖²` with
//! `A[(m,u,v), (m',u',v')] = Σ_j z_m(j) z_{m'}(j + (u − u', v − v'))` (cross-correlations of the
//! maps at lags within the filter window) and `b[(m,u,v)] = Σ_j z_m(j) s(j + (u, v))`. These
//! statistics have the size of the dictionary, not of the image, so images of any size can be
//! streamed. As in Mairal et al. (2010), each mini-batch is coded with the current filters, its
//! statistics are folded in with forgetting `A ← βA + A_batch` (β = (1 − 1/t)^p), and the
//! filters are updated by a few projected FISTA steps on the surrogate. The correlations are
//! computed from the sparse maps' nonzeros only, so their cost scales with the sparsity.

use crate::coder::Csc;
use crate::dictupd::{FilterConstraint, project};
use crate::error::{ConvCodingError, Result, finite, invalid, nonneg_param, shape, solver_err};
use crate::filters::Filters;
use crate::geometry::Boundary;
use crate::learn::{CdlIter, FittedCdl, LearnStop, check_loaded_filters, persist_err, progress_bar, read_model_file};
use crate::params::{AdmmParams, CscParams, check_lambda};
use latent_linalg::Tensor4;
use latent_linalg::fft::FftReal;
use latent_optim::collective::{ChunkPartials, Communicator};
use latent_optim::fit::{Checked, Fit, ParamGuard};
use latent_optim::{LinearSmooth, Prox, ProxGradParams, fista_linear};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// Parameters of [`OnlineCdl`].
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `filters` | — | number of filters M | ≥ 1 |
/// | `kh`, `kw` | — | filter size | ≥ 1 |
/// | `lambda` | — | ℓ1 weight λ | finite, ≥ 0 |
/// | `code_iters` | 100 | ADMM iterations to code a batch | ≥ 1 |
/// | `code_tol` | 1e-3 | ADMM residual tolerance | ≥ 0 |
/// | `coding` | ADMM defaults | coding ADMM | |
/// | `dict_iters` | 10 | projected FISTA steps on the surrogate per batch | ≥ 1 |
/// | `forgetting` | 10 | exponent p of β_t = (1 − 1/t)^p (0: no forgetting) | finite, ≥ 0 |
/// | `constraint` | [`FilterConstraint::UnitNorm`] | filter norm constraint | |
/// | `zero_mean` | false | zero-mean filters | |
/// | `nonneg` | false | non-negative maps | |
/// | `epochs` | 1 | passes over the batches in [`OnlineCdl::fit`] | ≥ 1 |
/// | `shuffle` | true | shuffle the batch order each epoch (seeded) | |
/// | `seed` | 0 | initial filters and shuffling | |
/// | `progress` | false | progress bar (terminal only) | |
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineCdlParams<T> {
    /// Number of filters.
    pub filters: usize,
    /// Filter height.
    pub kh: usize,
    /// Filter width.
    pub kw: usize,
    /// ℓ1 weight.
    pub lambda: T,
    /// Coding iterations.
    pub code_iters: usize,
    /// Coding tolerance.
    pub code_tol: f64,
    /// Coding ADMM parameters.
    pub coding: AdmmParams,
    /// Surrogate FISTA steps per batch.
    pub dict_iters: usize,
    /// Forgetting exponent.
    pub forgetting: f64,
    /// Filter constraint.
    pub constraint: FilterConstraint,
    /// Zero-mean filters.
    pub zero_mean: bool,
    /// Non-negative maps.
    pub nonneg: bool,
    /// Epochs.
    pub epochs: usize,
    /// Shuffle batches.
    pub shuffle: bool,
    /// Seed.
    pub seed: u64,
    /// Progress bar.
    pub progress: bool,
}

impl<T: FftReal> OnlineCdlParams<T> {
    /// Defaults for everything but the dictionary shape and λ.
    pub fn new(filters: usize, (kh, kw): (usize, usize), lambda: T) -> Self {
        Self {
            filters,
            kh,
            kw,
            lambda,
            code_iters: 100,
            code_tol: 1e-3,
            coding: AdmmParams::default(),
            dict_iters: 10,
            forgetting: 10.0,
            constraint: FilterConstraint::UnitNorm,
            zero_mean: false,
            nonneg: false,
            epochs: 1,
            shuffle: true,
            seed: 0,
            progress: false,
        }
    }
}

impl<T: latent_linalg::Real> ParamGuard for OnlineCdlParams<T> {
    type Error = ConvCodingError;

    /// # Errors
    /// [`ConvCodingError::InvalidParameter`] naming the first bad value.
    fn validate(&self) -> Result<()> {
        check_lambda(self.lambda)?;
        if self.filters == 0 {
            return Err(invalid("filters", 0, "must be >= 1"));
        }
        if self.kh == 0 || self.kw == 0 {
            return Err(invalid("filter size", format!("{}x{}", self.kh, self.kw), "must be >= 1x1"));
        }
        for (name, v) in [("code_iters", self.code_iters), ("dict_iters", self.dict_iters), ("epochs", self.epochs)] {
            if v == 0 {
                return Err(invalid(name, 0, "must be >= 1"));
            }
        }
        nonneg_param("code_tol", self.code_tol)?;
        nonneg_param("forgetting", self.forgetting)?;
        self.coding.validate()?;
        Ok(())
    }
}

impl<T: FftReal> Fit<[Tensor4<T>]> for OnlineCdlParams<T> {
    type Fitted = FittedCdl<T>;

    /// `epochs` passes over the batches (each `(K, C, H, W)`) from a fresh learner; see
    /// [`OnlineCdl`] for one batch at a time and warm restarts.
    fn fit_checked(params: &Checked<Self>, batches: &[Tensor4<T>]) -> Result<FittedCdl<T>> {
        OnlineCdl::from(params.clone()).fit(batches)
    }
}

impl<T: latent_linalg::Real> From<Checked<OnlineCdlParams<T>>> for OnlineCdl<T> {
    fn from(p: Checked<OnlineCdlParams<T>>) -> Self {
        OnlineCdl { p: p.into_inner(), state: None }
    }
}

/// Everything needed to continue online learning (warm restart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct OnlineCdlState<T: latent_linalg::Real> {
    /// Current filters.
    pub filters: Filters<T>,
    /// Surrogate matrix `A` (P × P, P = M·kh·kw), row-major.
    pub a: Vec<f64>,
    /// Surrogate vectors `b` (C × P).
    pub b: Vec<f64>,
    /// Batches seen.
    pub batches: usize,
    /// Coding objective of each batch (with the filters before its update).
    pub history: Vec<f64>,
    /// Last power-iteration vector (warm start for λ_max(A)).
    pub power: Vec<f64>,
}

/// An online learner built from checked parameters (`OnlineCdl::from(params.check()?)`);
/// [`OnlineCdl::partial_fit`] takes one batch of images at a time, [`OnlineCdl::with_state`]
/// continues from a saved state. `params.check()?.fit(&batches[..])` is the short form of a fresh
/// [`OnlineCdl::fit`].
///
/// # Example
/// ```
/// use latent_conv_coding::{OnlineCdl, OnlineCdlParams, ParamGuard};
/// use latent_linalg::Tensor4;
/// let mut learner = OnlineCdl::from(OnlineCdlParams::new(4, (4, 4), 0.1).check().unwrap());
/// for k in 0..3 {
///     let x = Tensor4::from_fn([1, 1, 20, 20], |[_, _, i, j]| (((i + k) / 3 + j / 5) % 2) as f64 - 0.5).unwrap();
///     let obj = learner.partial_fit(&x).unwrap();
///     assert!(obj.is_finite());
/// }
/// assert_eq!(learner.state().unwrap().batches, 3);
/// ```
#[derive(Debug, Clone)]
pub struct OnlineCdl<T: latent_linalg::Real> {
    p: OnlineCdlParams<T>,
    state: Option<OnlineCdlState<T>>,
}

impl<T: FftReal> OnlineCdl<T> {
    /// Continue from a saved state (its filters must match the parameters).
    ///
    /// # Errors
    /// [`ConvCodingError::Shape`] when the state does not match.
    pub fn with_state(mut self, st: OnlineCdlState<T>) -> Result<Self> {
        let f = &st.filters;
        let p = (self.p.filters * self.p.kh * self.p.kw, f.channels());
        if (f.count(), f.kh(), f.kw()) != (self.p.filters, self.p.kh, self.p.kw)
            || st.a.len() != p.0 * p.0
            || st.b.len() != p.1 * p.0
        {
            return Err(shape(
                "OnlineCdl::with_state",
                format!(
                    "state has {}x{}x{}x{} filters, |A| = {}, |b| = {}; parameters want {} filters of {}x{}",
                    f.count(),
                    f.channels(),
                    f.kh(),
                    f.kw(),
                    st.a.len(),
                    st.b.len(),
                    self.p.filters,
                    self.p.kh,
                    self.p.kw
                ),
            ));
        }
        self.state = Some(st);
        Ok(self)
    }

    /// The current state (`None` before the first batch).
    pub fn state(&self) -> Option<&OnlineCdlState<T>> {
        self.state.as_ref()
    }

    /// Learn from one batch of images `(K, C, H, W)` (periodic boundary): code it with the current
    /// filters, fold its statistics in, and update the filters. Returns the batch's coding
    /// objective (summed over its images) before the update.
    ///
    /// # Errors
    /// Empty/NaN images, images smaller than the filters, a channel count that changed between
    /// batches, solver failures.
    pub fn partial_fit(&mut self, images: &Tensor4<T>) -> Result<f64> {
        self.partial_fit_impl(None, images)
    }

    /// Data-parallel [`OnlineCdl::partial_fit`]: every rank passes the same global batch; each
    /// codes its block of images ([`Communicator::my_chunks`], one chunk per image), and the
    /// per-image statistics `A_i`, `b_i` and objectives are summed in image order
    /// ([`Communicator::sum_all_reduce`]) — the very order in which `partial_fit` sums them — so
    /// the filters are **bit-identical** to one process's [`OnlineCdl::partial_fit`] on any
    /// number of ranks. Each rank holds the statistics of its images until the sum (`(P² + C·P)`
    /// values per image, `P = M·kh·kw`).
    ///
    /// # Errors
    /// As [`OnlineCdl::partial_fit`]; [`ConvCodingError::Optim`] wrapping
    /// [`latent_optim::OptimError::Collective`] for a failed collective.
    pub fn partial_fit_distributed(&mut self, comm: &dyn Communicator, images: &Tensor4<T>) -> Result<f64> {
        self.partial_fit_impl(Some(comm), images)
    }

    fn partial_fit_impl(&mut self, comm: Option<&dyn Communicator>, images: &Tensor4<T>) -> Result<f64> {
        let p = self.p.clone();
        let [k, c, h, w] = images.shape();
        if images.is_empty() {
            return Err(ConvCodingError::Empty("images"));
        }
        finite("images", images.as_slice())?;
        let (m, kh, kw) = (p.filters, p.kh, p.kw);
        let taps = kh * kw;
        let pp = m * taps;
        if self.state.is_none() {
            let mut f = Filters::random(m, c, kh, kw, p.seed)?;
            project(f.as_mut_slice(), m, c, taps, p.constraint, p.zero_mean);
            self.state = Some(OnlineCdlState {
                filters: f,
                a: vec![0.0; pp * pp],
                b: vec![0.0; c * pp],
                batches: 0,
                history: Vec::new(),
                power: Vec::new(),
            });
        }
        let st = self.state.as_mut().ok_or(ConvCodingError::Empty("state"))?;
        if st.filters.channels() != c {
            return Err(shape(
                "OnlineCdl::partial_fit",
                format!("images have {c} channels, the filters {}", st.filters.channels()),
            ));
        }
        let coder = CscParams::new(p.lambda)
            .nonneg(p.nonneg)
            .boundary(Boundary::Periodic)
            .admm(p.coding)
            .max_iter(p.code_iters)
            .tol(p.code_tol)
            .check()?;
        let (ab, bb, obj) = match comm {
            None => {
                let codes = Csc::from(coder).encode(&st.filters, images)?;
                let obj = codes.objective();
                // batch statistics
                let (mut ab, mut bb) = (vec![0.0f64; pp * pp], vec![0.0f64; c * pp]);
                for i in 0..k {
                    let z = codes.maps.sample(i).unwrap_or(&[]);
                    let s = images.sample(i).unwrap_or(&[]);
                    let (ai, bi) = statistics(z, s, m, c, h, w, kh, kw);
                    ab.iter_mut().zip(&ai).for_each(|(a, v)| *a += v);
                    bb.iter_mut().zip(&bi).for_each(|(a, v)| *a += v);
                }
                (ab, bb, obj)
            }
            Some(comm) => {
                let mine = comm.my_chunks(k);
                let len = pp * pp + c * pp + 1;
                let mut local = ChunkPartials::new(comm, k, len);
                if !mine.is_empty() {
                    let d = c * h * w;
                    let part = images.as_slice()[mine.start * d..mine.end * d].to_vec();
                    let sub = Tensor4::from_vec([mine.len(), c, h, w], part)?;
                    let codes = Csc::from(coder).encode(&st.filters, &sub)?;
                    for i in 0..mine.len() {
                        let z = codes.maps.sample(i).unwrap_or(&[]);
                        let s = sub.sample(i).unwrap_or(&[]);
                        let (ai, bi) = statistics(z, s, m, c, h, w, kh, kw);
                        local.begin_chunk();
                        local.extend_mapped(&ai, |v| v);
                        local.extend_mapped(&bi, |v| v);
                        local.push(codes.info.get(i).map_or(0.0, |info| info.objective));
                    }
                }
                let mut total = local.sum_all_reduce(comm).map_err(latent_optim::OptimError::from)?;
                let obj = total.pop().unwrap_or(0.0);
                let bb = total.split_off(pp * pp);
                (total, bb, obj)
            }
        };
        // saturating: a loaded state may hold any count
        st.batches = st.batches.saturating_add(1);
        let t = st.batches as f64;
        let beta = if p.forgetting == 0.0 { 1.0 } else { (1.0 - 1.0 / t).powf(p.forgetting) };
        st.a.par_iter_mut().zip(ab.par_iter()).for_each(|(a, v)| *a = beta * *a + v);
        st.b.iter_mut().zip(&bb).for_each(|(a, v)| *a = beta * *a + v);
        surrogate_update(st, &p, c)?;
        st.history.push(obj);
        Ok(obj)
    }

    /// Run `epochs` passes over a list of batches (each `(K, C, H, W)`; sizes may differ between
    /// batches).
    ///
    /// # Errors
    /// As [`OnlineCdl::partial_fit`]; [`ConvCodingError::Empty`] for no batches.
    pub fn fit(&mut self, batches: &[Tensor4<T>]) -> Result<FittedCdl<T>> {
        if batches.is_empty() {
            return Err(ConvCodingError::Empty("batches"));
        }
        let p = self.p.clone();
        let mut order: Vec<usize> = (0..batches.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x5EED);
        let bar = progress_bar(p.progress, (p.epochs * batches.len()) as u64, "online conv dictionary learning");
        for _ in 0..p.epochs {
            if p.shuffle {
                order.shuffle(&mut rng);
            }
            for &i in &order {
                let obj = self.partial_fit(&batches[i])?;
                bar.set_message(format!("batch objective {obj:.4}"));
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        let st = self.state.as_ref().ok_or(ConvCodingError::Empty("state"))?;
        Ok(FittedCdl {
            filters: st.filters.clone(),
            lambda: p.lambda.as_f64(),
            boundary: Boundary::Periodic,
            history: st
                .history
                .iter()
                .map(|&o| CdlIter {
                    objective: o,
                    data_fidelity: 0.0,
                    regularizer: 0.0,
                    nnz_fraction: 0.0,
                    code_rho: 0.0,
                })
                .collect(),
            iterations: st.batches,
            stop: LearnStop::MaxIterations,
        })
    }
}

/// `A` (P × P) and `b` (C × P) of one image from its (sparse) periodic maps `z` (M × h·w) and
/// channels `s` (C × h·w).
#[allow(clippy::too_many_arguments)]
pub(crate) fn statistics<T: FftReal>(
    z: &[T],
    s: &[T],
    m: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
) -> (Vec<f64>, Vec<f64>) {
    let n = h * w;
    let taps = kh * kw;
    let pp = m * taps;
    // nonzeros per pixel (CSR), in map order
    let mut counts = vec![0usize; n + 1];
    for mm in 0..m {
        for (j, v) in z[mm * n..(mm + 1) * n].iter().enumerate() {
            if *v != T::zero() {
                counts[j + 1] += 1;
            }
        }
    }
    for j in 0..n {
        counts[j + 1] += counts[j];
    }
    let mut fill = counts.clone();
    let mut ent: Vec<(usize, f64)> = vec![(0, 0.0); counts[n]];
    for mm in 0..m {
        for (j, v) in z[mm * n..(mm + 1) * n].iter().enumerate() {
            if *v != T::zero() {
                ent[fill[j]] = (mm, v.as_f64());
                fill[j] += 1;
            }
        }
    }
    let (ly, lx) = (2 * kh - 1, 2 * kw - 1);
    // R_{m,m'}(δ) for δ = (dy, dx) ∈ (−(kh−1)..kh−1) × (−(kw−1)..kw−1), per first map m
    let r: Vec<Vec<f64>> = (0..m)
        .into_par_iter()
        .map(|mm| {
            let mut rm = vec![0.0f64; m * ly * lx];
            for (j, v) in z[mm * n..(mm + 1) * n].iter().enumerate() {
                if *v == T::zero() {
                    continue;
                }
                let a = v.as_f64();
                let (jy, jx) = (j / w, j % w);
                for oy in 0..ly {
                    let py = (jy + h * kh + oy + 1 - kh) % h;
                    for ox in 0..lx {
                        let px = (jx + w * kw + ox + 1 - kw) % w;
                        let q = py * w + px;
                        for &(m2, bv) in &ent[counts[q]..counts[q + 1]] {
                            rm[(m2 * ly + oy) * lx + ox] += a * bv;
                        }
                    }
                }
            }
            rm
        })
        .collect();
    // A[(m,u,v),(m',u',v')] = R_{m,m'}(u − u', v − v')
    let mut a = vec![0.0f64; pp * pp];
    a.par_chunks_mut(pp).enumerate().for_each(|(row, ar)| {
        let (mm, t) = (row / taps, row % taps);
        let (u, v) = (t / kw, t % kw);
        for m2 in 0..m {
            for u2 in 0..kh {
                for v2 in 0..kw {
                    let (oy, ox) = (u + kh - 1 - u2, v + kw - 1 - v2);
                    ar[m2 * taps + u2 * kw + v2] = r[mm][(m2 * ly + oy) * lx + ox];
                }
            }
        }
    });
    // b_c[(m,u,v)] = Σ_j z_m(j) s_c(j + (u, v))
    let mut b = vec![0.0f64; c * pp];
    b.par_chunks_mut(pp).enumerate().for_each(|(ch, bc)| {
        let sc = &s[ch * n..(ch + 1) * n];
        for mm in 0..m {
            for (j, v) in z[mm * n..(mm + 1) * n].iter().enumerate() {
                if *v == T::zero() {
                    continue;
                }
                let a = v.as_f64();
                let (jy, jx) = (j / w, j % w);
                for u in 0..kh {
                    let row = &sc[((jy + u) % h) * w..((jy + u) % h + 1) * w];
                    for vv in 0..kw {
                        bc[mm * taps + u * kw + vv] += a * row[(jx + vv) % w].as_f64();
                    }
                }
            }
        }
    });
    (a, b)
}

/// `out = A x` for a row-major P × P matrix (rows in parallel, each in a fixed order).
fn matvec(a: &[f64], x: &[f64], out: &mut [f64]) {
    let p = x.len();
    out.par_iter_mut().enumerate().for_each(|(i, o)| {
        *o = a[i * p..(i + 1) * p].iter().zip(x).map(|(u, v)| u * v).sum();
    });
}

/// The surrogate `Σ_c ½ d_cᵀ A d_c − b_cᵀ d_c` with the filters in `(c, p)` order, as a
/// [`LinearSmooth`] whose image is `A d_c` for every channel (one product per iteration).
struct Surrogate<'a> {
    a: &'a [f64],
    b: &'a [f64],
    pp: usize,
    c: usize,
}

impl LinearSmooth<f64> for Surrogate<'_> {
    type Image = Vec<f64>;
    type Error = ConvCodingError;
    fn dim(&self) -> usize {
        self.c * self.pp
    }
    fn image(&self) -> Vec<f64> {
        vec![0.0; self.c * self.pp]
    }
    fn apply(&self, x: &[f64], ax: &mut Vec<f64>) -> Result<()> {
        for (xc, oc) in x.chunks(self.pp).zip(ax.chunks_mut(self.pp)) {
            matvec(self.a, xc, oc);
        }
        Ok(())
    }
    fn value(&self, x: &[f64], ax: &Vec<f64>) -> Result<f64> {
        Ok(x.iter().zip(ax).zip(self.b).map(|((&x, &ax), &b)| (0.5 * ax - b) * x).sum())
    }
    fn value_grad(&self, x: &[f64], ax: &Vec<f64>, grad: &mut [f64]) -> Result<f64> {
        for ((g, &ax), &b) in grad.iter_mut().zip(ax).zip(self.b) {
            *g = ax - b;
        }
        self.value(x, ax)
    }
    fn extrapolate(&self, beta: f64, a: &Vec<f64>, b: &Vec<f64>, ay: &mut Vec<f64>) {
        for ((o, &a), &b) in ay.iter_mut().zip(a).zip(b) {
            *o = a + beta * (a - b);
        }
    }
}

/// The filter constraint on `f64` filters in `(c, p)` order: rounded to `T`, projected as the
/// filters are stored ([`project`]), and widened back. Value 0 (evaluated only at projected
/// points and at the starting filters).
struct FilterSetF64<T> {
    m: usize,
    c: usize,
    taps: usize,
    constraint: FilterConstraint,
    zero_mean: bool,
    ty: PhantomData<T>,
}

impl<T: FftReal> Prox<f64> for FilterSetF64<T> {
    fn prox(&self, x: &mut [f64], _step: f64) -> latent_optim::Result<()> {
        let (m, c, taps) = (self.m, self.c, self.taps);
        let pp = m * taps;
        let mut small = vec![T::zero(); m * c * taps];
        for mm in 0..m {
            for ch in 0..c {
                for t in 0..taps {
                    small[(mm * c + ch) * taps + t] = T::lit(x[ch * pp + mm * taps + t]);
                }
            }
        }
        project(&mut small, m, c, taps, self.constraint, self.zero_mean);
        for mm in 0..m {
            for ch in 0..c {
                for t in 0..taps {
                    x[ch * pp + mm * taps + t] = small[(mm * c + ch) * taps + t].as_f64();
                }
            }
        }
        Ok(())
    }
    fn value(&self, _: &[f64]) -> f64 {
        0.0
    }
}

/// A few projected FISTA steps (the shared [`fista_linear`], fixed step `1/L`, no restart) on
/// `Σ_c ½ d_cᵀ A d_c − b_cᵀ d_c` from the current filters.
fn surrogate_update<T: FftReal>(st: &mut OnlineCdlState<T>, p: &OnlineCdlParams<T>, c: usize) -> Result<()> {
    let (m, kh, kw) = (p.filters, p.kh, p.kw);
    let taps = kh * kw;
    let pp = m * taps;
    // λ_max(A) by power iteration (warm-started)
    if st.power.len() != pp {
        st.power = (0..pp).map(|i| 1.0 + (i % 7) as f64 * 0.1).collect();
    }
    let mut v = st.power.clone();
    let mut av = vec![0.0; pp];
    let mut lmax = 0.0;
    for _ in 0..30 {
        let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if nv == 0.0 {
            break;
        }
        v.iter_mut().for_each(|x| *x /= nv);
        matvec(&st.a, &v, &mut av);
        let l = v.iter().zip(&av).map(|(a, b)| a * b).sum::<f64>();
        std::mem::swap(&mut v, &mut av);
        if (l - lmax).abs() <= 1e-6 * l.abs() {
            lmax = l;
            break;
        }
        lmax = l;
    }
    st.power = v;
    if !(lmax > 0.0) {
        // no nonzero codes yet: nothing to learn from this batch
        return Ok(());
    }
    let lip = lmax * 1.05;
    // filters in (c, p) order for the quadratic, (m, c, taps) for the projection
    let fs = st.filters.as_slice();
    let mut x = vec![0.0f64; c * pp];
    for mm in 0..m {
        for ch in 0..c {
            for t in 0..taps {
                x[ch * pp + mm * taps + t] = fs[(mm * c + ch) * taps + t].as_f64();
            }
        }
    }
    let params = ProxGradParams::new().max_iter(p.dict_iters).tol(0.0).step(1.0 / lip).restart(false);
    let set = FilterSetF64::<T> { m, c, taps, constraint: p.constraint, zero_mean: p.zero_mean, ty: PhantomData };
    let f = Surrogate { a: &st.a, b: &st.b, pp, c };
    let res = fista_linear(&f, &set, &x, &params, |_| {}).map_err(solver_err("OnlineCdl"))?;
    let x = res.x;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(ConvCodingError::Numerical { op: "OnlineCdl", detail: "the filter update diverged".into() });
    }
    let out = st.filters.as_mut_slice();
    for mm in 0..m {
        for ch in 0..c {
            for t in 0..taps {
                out[(mm * c + ch) * taps + t] = T::lit(x[ch * pp + mm * taps + t]);
            }
        }
    }
    Ok(())
}

const STATE_MAGIC: [u8; 8] = *b"LTNTOCDL";
const FORMAT_VERSION: u32 = 1;

impl<T: FftReal> OnlineCdlState<T> {
    /// Save (filters, statistics, counters) for a warm restart (magic `LTNTOCDL`).
    ///
    /// # Errors
    /// [`ConvCodingError::Io`] naming the path.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        latent_linalg::persist::save(path.as_ref(), STATE_MAGIC, FORMAT_VERSION, self).map_err(persist_err)
    }
    /// Load a state written by [`OnlineCdlState::save`], checking its consistency.
    ///
    /// # Errors
    /// [`ConvCodingError::Format`] for a corrupt, inconsistent or newer file;
    /// [`ConvCodingError::Io`] when it cannot be read.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_model_file(path)?;
        Self::decode(&bytes, path)
    }

    /// The bytes [`OnlineCdlState::save`] writes (magic `LTNTOCDL`, version, length, checksum,
    /// payload).
    ///
    /// # Errors
    /// [`ConvCodingError::Format`] when encoding fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        latent_linalg::persist::to_bytes(STATE_MAGIC, FORMAT_VERSION, self).map_err(persist_err)
    }

    /// Parse the bytes of a file written by [`OnlineCdlState::save`], with the checks of
    /// [`OnlineCdlState::load`].
    ///
    /// # Errors
    /// As [`OnlineCdlState::load`], without the I/O errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, std::path::Path::new("<memory>"))
    }

    fn decode(bytes: &[u8], path: &std::path::Path) -> Result<Self> {
        let (_, s): (u32, Self) =
            latent_linalg::persist::from_bytes(bytes, STATE_MAGIC, FORMAT_VERSION, path).map_err(persist_err)?;
        check_loaded_filters(&s.filters, path)?;
        let pp = s.filters.count() * s.filters.kh() * s.filters.kw();
        if s.a.len() != pp * pp
            || s.b.len() != s.filters.channels() * pp
            || s.a.iter().chain(&s.b).any(|v| !v.is_finite())
        {
            return Err(ConvCodingError::Format(format!(
                "{}: statistics do not match {} filters of {}x{}",
                path.display(),
                s.filters.count(),
                s.filters.kh(),
                s.filters.kw()
            )));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::{Backend, ConvOperator};

    #[test]
    fn statistics_give_the_exact_quadratic() {
        let (m, c, h, w, kh, kw) = (3, 2, 9, 7, 3, 2);
        let f = Filters::<f64>::random(m, c, kh, kw, 4).unwrap();
        let z: Vec<f64> =
            (0..m * h * w).map(|i| if (i * 7) % 5 == 0 { ((i % 11) as f64) - 5.0 } else { 0.0 }).collect();
        let s: Vec<f64> = (0..c * h * w).map(|i| ((i * 13) % 17) as f64 / 17.0 - 0.5).collect();
        let (a, b) = statistics(&z, &s, m, c, h, w, kh, kw);
        let op = ConvOperator::new(&f, h, w, Boundary::Periodic, Backend::Direct).unwrap();
        let zt = Tensor4::from_vec([1, m, h, w], z).unwrap();
        let rec = op.apply(&zt).unwrap();
        let direct: f64 = 0.5 * rec.as_slice().iter().zip(&s).map(|(x, y)| (x - y) * (x - y)).sum::<f64>();
        let pp = m * kh * kw;
        let taps = kh * kw;
        let mut quad = 0.5 * s.iter().map(|v| v * v).sum::<f64>();
        for ch in 0..c {
            let d: Vec<f64> = (0..pp).map(|i| f.as_slice()[((i / taps) * c + ch) * taps + i % taps]).collect();
            for i in 0..pp {
                let ad: f64 = (0..pp).map(|j| a[i * pp + j] * d[j]).sum();
                quad += 0.5 * d[i] * ad - b[ch * pp + i] * d[i];
            }
        }
        assert!((quad - direct).abs() < 1e-9 * direct.max(1.0), "{quad} vs {direct}");
    }

    /// Persisted bytes round-trip in memory as through files; every truncation and every flipped
    /// payload byte is a typed error.
    #[test]
    fn files_round_trip_through_bytes_and_damage_is_a_format_error() {
        let x = Tensor4::from_fn([2, 1, 8, 8], |[n, _, i, j]| ((n + i * 3 + j) % 5) as f64 / 5.0 - 0.4).unwrap();
        let mut learner = OnlineCdl::from(OnlineCdlParams::new(2, (3, 3), 0.1).check().unwrap());
        learner.partial_fit(&x).unwrap();
        let state = learner.state().unwrap().clone();
        let fitted = learner.fit(std::slice::from_ref(&x)).unwrap();
        let (sb, fb) = (state.to_bytes().unwrap(), fitted.to_bytes().unwrap());
        assert_eq!(OnlineCdlState::<f64>::from_bytes(&sb).unwrap(), state);
        assert_eq!(FittedCdl::<f64>::from_bytes(&fb).unwrap(), fitted);
        // the other kind of file, truncations, flipped bytes
        assert!(matches!(OnlineCdlState::<f64>::from_bytes(&fb), Err(ConvCodingError::Format(_))));
        assert!(matches!(FittedCdl::<f64>::from_bytes(&sb), Err(ConvCodingError::Format(_))));
        for len in (0..sb.len()).step_by(7) {
            assert!(matches!(OnlineCdlState::<f64>::from_bytes(&sb[..len]), Err(ConvCodingError::Format(_))));
        }
        for i in (28..fb.len()).step_by(5) {
            let mut b = fb.clone();
            b[i] ^= 0x21;
            assert!(matches!(FittedCdl::<f64>::from_bytes(&b), Err(ConvCodingError::Format(_))));
        }
    }
}
