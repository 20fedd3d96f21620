//! Dictionary learning: the lecture's batch algorithm (alternate codes and dictionary over all
//! data) and online algorithm (Mairal, Bach, Ponce & Sapiro 2009: mini-batches and forgetting
//! sufficient statistics).

use crate::dictionary::{BlockCoordinate, DictionaryUpdate, Stats};
use crate::encoder::{Encoder, Prepared};
use crate::error::{Result, SparseCodingError, dim, finite, invalid};
use crate::{CoordinateDescent, Lars};
use latent_linalg::{DMatrix, Real};
use latent_optim::collective::{ChunkPartials, Communicator, Fingerprint, fnv1a};
use latent_optim::fit::{Checked, Fit, ParamGuard};
use latent_optim::setters;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;

/// Which lasso solver codes the signals during learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum L1Solver {
    /// LARS-lasso, certified by coordinate descent (exact; the default).
    #[default]
    Lars,
    /// Coordinate descent, warm-started from the previous codes (batch learner).
    CoordinateDescent,
}

fn encoder<T: Real>(solver: L1Solver, lambda: T, nonneg: bool) -> Box<dyn Encoder<T>> {
    match solver {
        L1Solver::Lars => Box::new(Lars::new(lambda).nonneg(nonneg)),
        L1Solver::CoordinateDescent => Box::new(CoordinateDescent::new(lambda).nonneg(nonneg).tol(1e-9)),
    }
}

/// Pick `h` distinct nonzero signals (columns of `x`) at random as unit-norm initial atoms; pad
/// with random Gaussian atoms if there are not enough nonzero signals.
pub fn init_from_data<T: Real>(x: &DMatrix<T>, h: usize, rng: &mut ChaCha8Rng) -> DMatrix<T> {
    let d = x.nrows();
    let mut nonzero: Vec<usize> =
        (0..x.ncols()).filter(|&j| latent_linalg::ops::norm2(x.column(j).as_slice()) > T::lit(1e-6)).collect();
    nonzero.shuffle(rng);
    let mut w = DMatrix::<T>::zeros(d, h);
    for j in 0..h {
        let col: Vec<T> = match nonzero.get(j) {
            Some(&i) => x.column(i).iter().copied().collect(),
            None => (0..d).map(|_| T::lit(rng.sample::<f64, _>(rand_distr_normal()))).collect(),
        };
        let n = latent_linalg::ops::norm2(&col).max(T::lit(1e-12));
        for (dst, v) in w.column_mut(j).iter_mut().zip(col) {
            *dst = v / n;
        }
    }
    w
}

fn rand_distr_normal() -> rand::distr::StandardUniform {
    rand::distr::StandardUniform
}

/// Replace atoms that no signal used (`A_jj = 0`) by random nonzero signals of `x` (unit norm).
/// Codes of the current batch have zeros there, so the objective does not change.
fn resample_dead<T: Real>(w: &mut DMatrix<T>, a: &DMatrix<T>, x: &DMatrix<T>, rng: &mut ChaCha8Rng) -> usize {
    let h = w.ncols();
    let mut n = 0;
    for j in 0..h {
        if a[(j, j)] > T::zero() {
            continue;
        }
        for _ in 0..16 {
            let i = rng.random_range(0..x.ncols());
            let col: Vec<T> = x.column(i).iter().copied().collect();
            let nn = latent_linalg::ops::norm2(&col);
            if nn > T::lit(1e-6) {
                for (dst, v) in w.column_mut(j).iter_mut().zip(col) {
                    *dst = v / nn;
                }
                n += 1;
                break;
            }
        }
    }
    n
}

/// What a callback sees after each iteration (batch) or mini-batch (online).
#[derive(Debug)]
pub struct Progress<'a, T: Real> {
    /// Iteration (batch learner) or mini-batch (online learner), from 1.
    pub iteration: usize,
    /// The current dictionary.
    pub dictionary: &'a DMatrix<T>,
    /// The latest objective (per signal).
    pub objective: f64,
}

/// A callback: return `ControlFlow::Break(())` to stop learning early.
pub type Callback<'a, T> = Box<dyn FnMut(&Progress<'_, T>) -> ControlFlow<()> + 'a>;

/// Why learning stopped (latent's one learner stop reason).
pub use latent_optim::fit::LearnStop;

/// Parameters of [`BatchLearner`] (the lecture's batch algorithm).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `atoms` | — | dictionary size h | ≥ 1 |
/// | `lambda` | — | ℓ1 weight λ in ½‖x − Ws‖² + λ‖s‖₁ | ≥ 0 |
/// | `max_iter` | 20 | alternations (code all, update W) | ≥ 1 |
/// | `tol` | 0 | stop when the relative objective decrease is below | ≥ 0 |
/// | `solver` | LARS | lasso solver | |
/// | `nonneg` | false | s ≥ 0 | |
/// | `seed` | 0 | initialisation and resampling | |
/// | `progress` | false | progress bar with the objective (terminal only) | |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchParams<T> {
    /// Number of atoms.
    pub atoms: usize,
    /// ℓ1 weight.
    pub lambda: T,
    /// Alternations.
    pub max_iter: usize,
    /// Relative-decrease tolerance.
    pub tol: f64,
    /// Lasso solver.
    pub solver: L1Solver,
    /// Non-negative codes.
    pub nonneg: bool,
    /// Seed.
    pub seed: u64,
    /// Show a progress bar (on a terminal only).
    pub progress: bool,
}

impl<T: Real> BatchParams<T> {
    /// Defaults for everything but the size and λ.
    pub fn new(atoms: usize, lambda: T) -> Self {
        Self { atoms, lambda, max_iter: 20, tol: 0.0, solver: L1Solver::Lars, nonneg: false, seed: 0, progress: false }
    }
    setters! {
        /// Alternations (code all signals, update the dictionary).
        max_iter: usize,
        /// Relative-decrease tolerance.
        tol: f64,
        /// Lasso solver.
        solver: L1Solver,
        /// Non-negative codes.
        nonneg: bool,
        /// Seed.
        seed: u64,
        /// Show a progress bar (on a terminal only).
        progress: bool,
    }
}

impl<T: Real> ParamGuard for BatchParams<T> {
    type Error = SparseCodingError;

    /// # Errors
    /// [`SparseCodingError::InvalidParameter`] naming the bad value.
    fn validate(&self) -> Result<()> {
        crate::encoder::check_lambda(self.lambda)?;
        if self.atoms == 0 {
            return Err(invalid("atoms", 0, "must be >= 1"));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", 0, "must be >= 1"));
        }
        if !(self.tol >= 0.0) || !self.tol.is_finite() {
            return Err(invalid("tol", self.tol, "must be finite and >= 0"));
        }
        Ok(())
    }
}

impl<T: Real> Fit<DMatrix<T>> for BatchParams<T> {
    type Fitted = FittedDictionary<T>;

    /// Learn a dictionary for the signals (columns of `x`, d × n); see [`BatchLearner::fit`].
    fn fit_checked(params: &Checked<Self>, x: &DMatrix<T>) -> Result<FittedDictionary<T>> {
        BatchLearner::from(params.clone()).fit(x)
    }
}

impl<T: Real> From<Checked<BatchParams<T>>> for BatchLearner<T> {
    fn from(p: Checked<BatchParams<T>>) -> Self {
        BatchLearner { p: p.into_inner() }
    }
}

/// A validated batch learner (from `BatchLearner::from(params.check()?)`), for initial
/// dictionaries and callbacks ([`BatchLearner::fit_with`]); `params.check()?.fit(&x)` is the short form.
#[derive(Debug, Clone, Copy)]
pub struct BatchLearner<T> {
    p: BatchParams<T>,
}

/// A learned dictionary with its learning diagnostics.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct FittedDictionary<T: Real> {
    /// The dictionary (d × h, unit-norm atoms as columns).
    pub dictionary: DMatrix<T>,
    /// ℓ1 weight used.
    pub lambda: T,
    /// Objective (per signal) after every coding step and every dictionary step, in order:
    /// `[code₁, dict₁, code₂, dict₂, …]` for the batch learner; per mini-batch (before the update,
    /// on that batch) for the online learner.
    pub history: Vec<f64>,
    /// Iterations (batch) or mini-batches (online) run.
    pub iterations: usize,
    /// Why learning stopped.
    pub stop: LearnStop,
    /// Atoms resampled because no signal used them.
    pub resampled: usize,
}

fn check_data<T: Real>(x: &DMatrix<T>) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(SparseCodingError::Empty("training signals"));
    }
    finite("training signals", x.as_slice())
}

/// Mean of ½‖x‖² over the columns.
fn half_energy<T: Real>(x: &DMatrix<T>) -> f64 {
    0.5 * x.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>() / x.ncols() as f64
}

fn mean_l1<T: Real>(s: &DMatrix<T>) -> f64 {
    s.iter().map(|v| v.as_f64().abs()).sum::<f64>() / s.ncols() as f64
}

impl<T: Real> BatchLearner<T> {
    /// Learn a dictionary for the signals (columns of `x`, d × n).
    ///
    /// # Errors
    /// Empty data, NaN/Inf, or solver failures.
    pub fn fit(&self, x: &DMatrix<T>) -> Result<FittedDictionary<T>> {
        self.fit_with(x, None, None)
    }

    /// [`BatchLearner::fit`] from an initial dictionary and with a callback after each iteration.
    ///
    /// # Errors
    /// As [`BatchLearner::fit`], and a wrong-shaped initial dictionary.
    pub fn fit_with(
        &self,
        x: &DMatrix<T>,
        init: Option<&DMatrix<T>>,
        mut callback: Option<Callback<'_, T>>,
    ) -> Result<FittedDictionary<T>> {
        check_data(x)?;
        let p = &self.p;
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let mut w = match init {
            Some(w0) => {
                if w0.shape() != (x.nrows(), p.atoms) {
                    return Err(dim(
                        "BatchLearner::fit",
                        format!("initial dictionary is {:?}, expected ({}, {})", w0.shape(), x.nrows(), p.atoms),
                    ));
                }
                finite("initial dictionary", w0.as_slice())?;
                w0.clone()
            }
            None => init_from_data(x, p.atoms, &mut rng),
        };
        let enc = encoder(p.solver, p.lambda, p.nonneg);
        let upd = BlockCoordinate { passes: 10, report_objective: true };
        let e0 = half_energy(x);
        let lam = p.lambda.as_f64();
        let mut history = Vec::with_capacity(2 * p.max_iter);
        let mut codes: Option<DMatrix<T>> = None;
        let mut stop = LearnStop::MaxIterations;
        let mut resampled = 0;
        let mut it = 0;
        let bar = progress_bar(p.progress, p.max_iter as u64, "batch dictionary learning");
        while it < p.max_iter {
            it += 1;
            let prepared = Prepared::new(&w)?;
            let warm = if p.solver == L1Solver::CoordinateDescent { codes.as_ref() } else { None };
            let c = enc.encode_batch_prepared(&prepared, x, warm)?;
            let code_obj = c.mean_objective();
            history.push(code_obj);
            let stats = Stats::of(x, &c.codes)?;
            let info = upd.update(&mut w, &stats)?;
            let dict_obj = info.objective + e0 + lam * mean_l1(&c.codes);
            history.push(dict_obj);
            bar.set_message(format!("objective {dict_obj:.5}"));
            bar.inc(1);
            resampled += resample_dead(&mut w, &stats.a, x, &mut rng);
            codes = Some(c.codes);
            if let Some(cb) = callback.as_mut()
                && cb(&Progress { iteration: it, dictionary: &w, objective: dict_obj }).is_break()
            {
                stop = LearnStop::Callback;
                break;
            }
            if it >= 2 && p.tol > 0.0 {
                let prev = history[history.len() - 3];
                if (prev - dict_obj) <= p.tol * prev.abs() {
                    stop = LearnStop::Converged;
                    break;
                }
            }
        }
        bar.finish_and_clear();
        Ok(FittedDictionary { dictionary: w, lambda: p.lambda, history, iterations: it, stop, resampled })
    }
}

/// Parameters of [`OnlineLearner`] (Mairal et al. 2009).
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `atoms` | — | dictionary size h | ≥ 1 |
/// | `lambda` | — | ℓ1 weight λ | ≥ 0 |
/// | `batch_size` | 256 | signals per mini-batch | ≥ 1 |
/// | `epochs` | 1 | passes over the data in [`OnlineLearner::fit`] | ≥ 1 |
/// | `shuffle` | true | shuffle the signals each epoch (seeded) | |
/// | `forgetting` | true | Mairal's β = (θ + 1 − η)/(θ + 1) down-weighting of old statistics | |
/// | `nonneg` | false | s ≥ 0 | |
/// | `seed` | 0 | initialisation, shuffling, resampling | |
/// | `progress` | false | progress bar with the objective (terminal only) | |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineParams<T> {
    /// Number of atoms.
    pub atoms: usize,
    /// ℓ1 weight.
    pub lambda: T,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: usize,
    /// Shuffle each epoch.
    pub shuffle: bool,
    /// Forget old statistics.
    pub forgetting: bool,
    /// Non-negative codes.
    pub nonneg: bool,
    /// Seed.
    pub seed: u64,
    /// Show a progress bar (on a terminal only).
    pub progress: bool,
}

impl<T: Real> OnlineParams<T> {
    /// Defaults for everything but the size and λ.
    pub fn new(atoms: usize, lambda: T) -> Self {
        Self {
            atoms,
            lambda,
            batch_size: 256,
            epochs: 1,
            shuffle: true,
            forgetting: true,
            nonneg: false,
            seed: 0,
            progress: false,
        }
    }
    setters! {
        /// Signals per mini-batch.
        batch_size: usize,
        /// Passes over the data in [`OnlineLearner::fit`].
        epochs: usize,
        /// Shuffle the signals each epoch (seeded).
        shuffle: bool,
        /// Mairal's forgetting of old statistics.
        forgetting: bool,
        /// Non-negative codes.
        nonneg: bool,
        /// Seed.
        seed: u64,
        /// Show a progress bar (on a terminal only).
        progress: bool,
    }
}

impl<T: Real> ParamGuard for OnlineParams<T> {
    type Error = SparseCodingError;

    /// # Errors
    /// [`SparseCodingError::InvalidParameter`] naming the bad value.
    fn validate(&self) -> Result<()> {
        crate::encoder::check_lambda(self.lambda)?;
        if self.atoms == 0 {
            return Err(invalid("atoms", 0, "must be >= 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", 0, "must be >= 1"));
        }
        if self.epochs == 0 {
            return Err(invalid("epochs", 0, "must be >= 1"));
        }
        Ok(())
    }
}

impl<T: Real> Fit<DMatrix<T>> for OnlineParams<T> {
    type Fitted = FittedDictionary<T>;

    /// `epochs` passes over the signals (columns of `x`) from a fresh learner; see
    /// [`OnlineLearner::fit`] for callbacks and warm restarts.
    fn fit_checked(params: &Checked<Self>, x: &DMatrix<T>) -> Result<FittedDictionary<T>> {
        OnlineLearner::from(params.clone()).fit(x, None)
    }
}

impl<T: Real> From<Checked<OnlineParams<T>>> for OnlineLearner<T> {
    fn from(p: Checked<OnlineParams<T>>) -> Self {
        OnlineLearner { p: p.into_inner(), state: None }
    }
}

/// The online learner's state: everything needed to continue learning (warm restart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct OnlineState<T: Real> {
    /// Current dictionary.
    pub dictionary: DMatrix<T>,
    /// Sufficient statistics (A, B).
    pub stats: Stats<T>,
    /// Mini-batches seen.
    pub batches: usize,
    /// Objective per mini-batch (coded with the dictionary before the update).
    pub history: Vec<f64>,
    /// Atoms resampled so far.
    pub resampled: usize,
    /// RNG state, so a restored learner continues exactly.
    pub rng: ChaCha8Rng,
}

/// A validated online learner (`OnlineLearner::from(params.check()?)`); [`OnlineLearner::partial_fit`]
/// takes one mini-batch at a time, [`OnlineLearner::with_state`] continues a saved run.
#[derive(Debug, Clone)]
pub struct OnlineLearner<T: Real> {
    p: OnlineParams<T>,
    state: Option<OnlineState<T>>,
}

impl<T: Real> OnlineLearner<T> {
    /// Continue from a saved state (its dictionary size must match the parameters).
    ///
    /// # Errors
    /// [`SparseCodingError::Dimension`] when the state's shapes do not match.
    pub fn with_state(mut self, state: OnlineState<T>) -> Result<Self> {
        let (d, h) = state.dictionary.shape();
        if h != self.p.atoms || state.stats.a.shape() != (h, h) || state.stats.b.shape() != (d, h) {
            return Err(dim(
                "OnlineLearner::with_state",
                format!(
                    "state has W {:?}, A {:?}, B {:?}; parameters want {} atoms",
                    state.dictionary.shape(),
                    state.stats.a.shape(),
                    state.stats.b.shape(),
                    self.p.atoms
                ),
            ));
        }
        self.state = Some(state);
        Ok(self)
    }

    /// The current state (None before the first mini-batch).
    pub fn state(&self) -> Option<&OnlineState<T>> {
        self.state.as_ref()
    }

    /// The fitted dictionary of the current state, stopped for `stop`.
    fn fitted(&self, stop: LearnStop) -> Result<FittedDictionary<T>> {
        let st = self.state.as_ref().ok_or(SparseCodingError::Empty("state"))?;
        Ok(FittedDictionary {
            dictionary: st.dictionary.clone(),
            lambda: self.p.lambda,
            history: st.history.clone(),
            iterations: st.batches,
            stop,
            resampled: st.resampled,
        })
    }

    /// The learner's state, first initialised from the signals `x` (seeded atoms drawn from them).
    fn state_or_init(&mut self, x: &DMatrix<T>) -> &mut OnlineState<T> {
        let p = self.p;
        self.state.get_or_insert_with(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
            let w = init_from_data(x, p.atoms, &mut rng);
            OnlineState {
                stats: Stats::zeros(x.nrows(), p.atoms),
                dictionary: w,
                batches: 0,
                history: Vec::new(),
                resampled: 0,
                rng,
            }
        })
    }

    /// Learn from one mini-batch (columns of `x`): code it with the current dictionary, fold its
    /// statistics in with forgetting, and update the dictionary by block-coordinate descent.
    /// Returns the mini-batch's objective before the update.
    ///
    /// # Errors
    /// Empty/NaN data, dimension changes between calls, solver failures.
    pub fn partial_fit(&mut self, x: &DMatrix<T>) -> Result<f64> {
        check_data(x)?;
        let p = self.p;
        let st = self.state_or_init(x);
        if x.nrows() != st.dictionary.nrows() {
            return Err(dim(
                "partial_fit",
                format!("signals have {} rows, the dictionary {}", x.nrows(), st.dictionary.nrows()),
            ));
        }
        let enc = Lars::new(p.lambda).nonneg(p.nonneg);
        let prepared = Prepared::new(&st.dictionary)?;
        let codes = enc.encode_batch_prepared(&prepared, x, None)?;
        let obj = codes.mean_objective();
        st.batches += 1;
        let beta = forgetting_beta(p.forgetting, x.ncols(), st.batches);
        st.stats.accumulate(x, &codes.codes, T::lit(beta.max(0.0)))?;
        BlockCoordinate { passes: 1, report_objective: false }.update(&mut st.dictionary, &st.stats)?;
        st.resampled += resample_dead(&mut st.dictionary, &st.stats.a, x, &mut st.rng);
        st.history.push(obj);
        Ok(obj)
    }

    /// Run `epochs` passes over the signals (columns of `x`) in mini-batches.
    ///
    /// # Errors
    /// As [`OnlineLearner::partial_fit`].
    pub fn fit(&mut self, x: &DMatrix<T>, mut callback: Option<Callback<'_, T>>) -> Result<FittedDictionary<T>> {
        check_data(x)?;
        let p = self.p;
        let n = x.ncols();
        let mut order: Vec<usize> = (0..n).collect();
        let mut shuffle_rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x5EED);
        let mut stop = LearnStop::MaxIterations;
        let mut batch = DMatrix::<T>::zeros(x.nrows(), 0);
        let bar = progress_bar(p.progress, (p.epochs * n.div_ceil(p.batch_size)) as u64, "online dictionary learning");
        'epochs: for _ in 0..p.epochs {
            if p.shuffle {
                order.shuffle(&mut shuffle_rng);
            }
            for chunk in order.chunks(p.batch_size) {
                batch = DMatrix::from_fn(x.nrows(), chunk.len(), |i, j| x[(i, chunk[j])]);
                let obj = self.partial_fit(&batch)?;
                bar.set_message(format!("batch objective {obj:.5}"));
                bar.inc(1);
                if let (Some(cb), Some(st)) = (callback.as_mut(), self.state.as_ref())
                    && cb(&Progress { iteration: st.batches, dictionary: &st.dictionary, objective: obj }).is_break()
                {
                    stop = LearnStop::Callback;
                    break 'epochs;
                }
            }
        }
        drop(batch);
        bar.finish_and_clear();
        self.fitted(stop)
    }
}

/// Signals per chunk of a global mini-batch in the data-parallel online learner
/// ([`OnlineLearner::partial_fit_distributed`]): the partition of a batch into chunks depends on
/// the batch size only, never on the number of ranks.
pub const DISTRIBUTED_CHUNK: usize = 64;

/// Fingerprint of a matrix's shape and values (start-up agreement between ranks).
fn matrix_fingerprint<T: Real>(m: &DMatrix<T>) -> u64 {
    let mut f = Fingerprint::new();
    f.word(m.nrows() as u64);
    f.word(m.ncols() as u64);
    f.words(m.as_slice(), |v| v.as_f64().to_bits());
    f.finish()
}

impl<T: Real> OnlineLearner<T> {
    /// Data-parallel [`OnlineLearner::partial_fit`] on the **global** mini-batch `x`, which
    /// every rank passes whole (all ranks hold the same data and draw the same batches). The
    /// batch is cut into chunks of [`DISTRIBUTED_CHUNK`] signals; this rank codes only its block
    /// of chunks ([`Communicator::my_chunks`]); the chunk statistics `A_c = Σ s sᵀ`,
    /// `B_c = Σ x sᵀ` and objective sums are added in chunk order
    /// ([`Communicator::sum_all_reduce`]), folded in with forgetting (`A ← β·A + Σ_c A_c`), and
    /// every rank applies the same dictionary update and dead-atom resampling. The learner
    /// state after the call is bit-identical on every rank and for every number of ranks,
    /// including one process with [`latent_optim::SingleProcess`]. (It differs in the last bits
    /// from [`OnlineLearner::partial_fit`], which accumulates the whole batch at once.)
    ///
    /// # Errors
    /// As [`OnlineLearner::partial_fit`], and [`SparseCodingError::Collective`] when a
    /// collective fails.
    pub fn partial_fit_distributed(&mut self, comm: &dyn Communicator, x: &DMatrix<T>) -> Result<f64> {
        check_data(x)?;
        let p = self.p;
        let st = self.state_or_init(x);
        let (d, h) = st.dictionary.shape();
        if x.nrows() != d {
            return Err(dim("partial_fit_distributed", format!("signals have {} rows, the dictionary {d}", x.nrows())));
        }
        let n = x.ncols();
        let chunks = n.div_ceil(DISTRIBUTED_CHUNK);
        let mine = comm.my_chunks(chunks);
        let len = h * h + d * h + 1;
        let mut local = ChunkPartials::new(comm, chunks, len);
        let enc = Lars::new(p.lambda).nonneg(p.nonneg);
        let prepared = Prepared::new(&st.dictionary)?;
        for c in mine {
            let (j0, j1) = (c * DISTRIBUTED_CHUNK, ((c + 1) * DISTRIBUTED_CHUNK).min(n));
            let xc = x.columns(j0, j1 - j0).into_owned();
            let codes = enc.encode_batch_prepared(&prepared, &xc, None)?;
            let sc = Stats::of(&xc, &codes.codes)?;
            local.begin_chunk();
            local.extend_mapped(sc.a.as_slice(), |v| v.as_f64());
            local.extend_mapped(sc.b.as_slice(), |v| v.as_f64());
            local.push(codes.info.iter().map(|i| i.objective).sum::<f64>());
        }
        let total = local.sum_all_reduce(comm)?;
        let obj = total[len - 1] / n as f64;
        st.batches += 1;
        let beta = T::lit(forgetting_beta(p.forgetting, n, st.batches).max(0.0));
        for (a, &t) in st.stats.a.iter_mut().zip(&total[..h * h]) {
            *a = *a * beta + T::lit(t);
        }
        for (b, &t) in st.stats.b.iter_mut().zip(&total[h * h..len - 1]) {
            *b = *b * beta + T::lit(t);
        }
        st.stats.count = beta.as_f64() * st.stats.count + n as f64;
        BlockCoordinate { passes: 1, report_objective: false }.update(&mut st.dictionary, &st.stats)?;
        st.resampled += resample_dead(&mut st.dictionary, &st.stats.a, x, &mut st.rng);
        st.history.push(obj);
        Ok(obj)
    }

    /// Data-parallel [`OnlineLearner::fit`]: every rank passes the same signals `x`; the epochs
    /// draw the same (seeded) mini-batches on every rank and each goes through
    /// [`OnlineLearner::partial_fit_distributed`]. At start-up the ranks exchange fingerprints of
    /// the parameters, the data (shape and values) and the learner state (for a warm restart)
    /// and refuse to start when one differs. Only rank 0 draws the progress bar; the callback
    /// runs on every rank (it must decide the same on all of them). Same seed and data give
    /// bit-identical dictionaries and histories on 1, 2, 3, … ranks.
    ///
    /// # Errors
    /// As [`OnlineLearner::fit`]; [`SparseCodingError::Collective`] with
    /// [`latent_optim::CommError::Mismatch`] naming the first rank that disagrees with rank 0.
    ///
    /// # Example
    /// ```
    /// use latent_linalg::DMatrix;
    /// use latent_optim::collective::{SingleProcess, run_threads};
    /// use latent_sparse_coding::{OnlineLearner, OnlineParams, ParamGuard};
    /// let x = DMatrix::from_fn(8, 300, |i, j| (((i + 1) * (j + 3)) % 11) as f64 / 11.0 - 0.4);
    /// let params = OnlineParams::new(6, 0.05).batch_size(100).epochs(2).check()?;
    /// let one = OnlineLearner::from(params.clone()).fit_distributed(&SingleProcess, &x, None)?;
    /// let two = run_threads(2, |c| OnlineLearner::from(params.clone()).fit_distributed(&c, &x, None).unwrap());
    /// assert_eq!(two[0].dictionary, one.dictionary);
    /// assert_eq!(two[1].history, one.history);
    /// # Ok::<(), latent_sparse_coding::SparseCodingError>(())
    /// ```
    pub fn fit_distributed(
        &mut self,
        comm: &dyn Communicator,
        x: &DMatrix<T>,
        mut callback: Option<Callback<'_, T>>,
    ) -> Result<FittedDictionary<T>> {
        check_data(x)?;
        let p = self.p;
        comm.agree("online learner parameters", fnv1a(format!("{p:?}").as_bytes()))?;
        comm.agree("training signals (shape and values)", matrix_fingerprint(x))?;
        let state_fp = match &self.state {
            Some(s) => bincode::serde::encode_to_vec(s, bincode::config::standard())
                .map(|b| fnv1a(&b))
                .map_err(|e| SparseCodingError::Format(format!("cannot fingerprint the learner state: {e}")))?,
            None => 0,
        };
        comm.agree("online learner state (warm restart)", state_fp)?;
        let n = x.ncols();
        let mut order: Vec<usize> = (0..n).collect();
        let mut shuffle_rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x5EED);
        let mut stop = LearnStop::MaxIterations;
        let bar = progress_bar(
            p.progress && comm.is_root(),
            (p.epochs * n.div_ceil(p.batch_size)) as u64,
            "online dictionary learning",
        );
        'epochs: for _ in 0..p.epochs {
            if p.shuffle {
                order.shuffle(&mut shuffle_rng);
            }
            for chunk in order.chunks(p.batch_size) {
                let batch = DMatrix::from_fn(x.nrows(), chunk.len(), |i, j| x[(i, chunk[j])]);
                let obj = match self.partial_fit_distributed(comm, &batch) {
                    Ok(o) => o,
                    Err(e) => {
                        bar.finish_and_clear();
                        return Err(e);
                    }
                };
                bar.set_message(format!("batch objective {obj:.5}"));
                bar.inc(1);
                if let (Some(cb), Some(st)) = (callback.as_mut(), self.state.as_ref())
                    && cb(&Progress { iteration: st.batches, dictionary: &st.dictionary, objective: obj }).is_break()
                {
                    stop = LearnStop::Callback;
                    break 'epochs;
                }
            }
        }
        bar.finish_and_clear();
        self.fitted(stop)
    }
}

/// Mairal's forgetting factor β = (θ + 1 − η)/(θ + 1) for mini-batch `t` of `eta` signals
/// (1 without forgetting).
fn forgetting_beta(forgetting: bool, eta: usize, t: usize) -> f64 {
    if forgetting {
        let eta = eta as f64;
        let t = t as f64;
        let theta = if t < eta { t * eta } else { eta * eta + t - eta };
        (theta + 1.0 - eta) / (theta + 1.0)
    } else {
        1.0
    }
}

const DICT_MAGIC: [u8; 8] = *b"LTNTDICT";
const STATE_MAGIC: [u8; 8] = *b"LTNTOLDL";
const FORMAT_VERSION: u32 = 1;

fn persist_err(e: latent_linalg::persist::PersistError) -> SparseCodingError {
    match e {
        latent_linalg::persist::PersistError::Io { path, source } => SparseCodingError::Io { path, source },
        other => SparseCodingError::Format(other.to_string()),
    }
}

fn check_loaded_dictionary<T: Real>(w: &DMatrix<T>, what: &str) -> Result<()> {
    if w.nrows() == 0 || w.ncols() == 0 {
        return Err(SparseCodingError::Format(format!("{what}: empty dictionary")));
    }
    finite("loaded dictionary", w.as_slice())
}

impl<T: Real> FittedDictionary<T> {
    /// Save (versioned, checksummed, atomic).
    ///
    /// # Errors
    /// [`SparseCodingError::Io`] naming the path.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        latent_linalg::persist::save(path.as_ref(), DICT_MAGIC, FORMAT_VERSION, self).map_err(persist_err)
    }
    /// Load a file written by [`FittedDictionary::save`].
    ///
    /// # Errors
    /// [`SparseCodingError::Format`] for a corrupt, truncated, foreign or newer-version file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let (_, d): (u32, Self) =
            latent_linalg::persist::load(path.as_ref(), DICT_MAGIC, FORMAT_VERSION).map_err(persist_err)?;
        check_loaded_dictionary(&d.dictionary, &path.as_ref().display().to_string())?;
        Ok(d)
    }
}

impl<T: Real> OnlineState<T> {
    /// Save (W, A, B, counters, RNG) for a warm restart.
    ///
    /// # Errors
    /// [`SparseCodingError::Io`] naming the path.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        latent_linalg::persist::save(path.as_ref(), STATE_MAGIC, FORMAT_VERSION, self).map_err(persist_err)
    }
    /// The bytes [`OnlineState::save`] writes (versioned, checksummed): how a data-parallel run
    /// broadcasts rank 0's saved state to the other ranks.
    ///
    /// # Errors
    /// [`SparseCodingError::Format`] when encoding fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        latent_linalg::persist::to_bytes(STATE_MAGIC, FORMAT_VERSION, self).map_err(persist_err)
    }

    /// A state from bytes written by [`OnlineState::to_bytes`] (or the contents of a file
    /// written by [`OnlineState::save`]), checking shapes.
    ///
    /// # Errors
    /// [`SparseCodingError::Format`] for corrupt or inconsistent bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, s): (u32, Self) =
            latent_linalg::persist::from_bytes(bytes, STATE_MAGIC, FORMAT_VERSION, std::path::Path::new("<memory>"))
                .map_err(persist_err)?;
        s.check_shapes("<memory>")?;
        Ok(s)
    }

    fn check_shapes(&self, what: &str) -> Result<()> {
        check_loaded_dictionary(&self.dictionary, what)?;
        let (d, h) = self.dictionary.shape();
        if self.stats.a.shape() != (h, h) || self.stats.b.shape() != (d, h) {
            return Err(SparseCodingError::Format(format!("{what}: statistics do not match a {d}x{h} dictionary")));
        }
        Ok(())
    }

    /// Load a state written by [`OnlineState::save`], checking shapes.
    ///
    /// # Errors
    /// [`SparseCodingError::Format`] for a corrupt or inconsistent file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let (_, s): (u32, Self) =
            latent_linalg::persist::load(path.as_ref(), STATE_MAGIC, FORMAT_VERSION).map_err(persist_err)?;
        check_loaded_dictionary(&s.dictionary, &path.as_ref().display().to_string())?;
        let (d, h) = s.dictionary.shape();
        if s.stats.a.shape() != (h, h) || s.stats.b.shape() != (d, h) {
            return Err(SparseCodingError::Format(format!(
                "{}: statistics do not match a {d}x{h} dictionary",
                path.as_ref().display()
            )));
        }
        Ok(s)
    }
}

/// A progress bar drawn only when asked for, on a terminal, with the `progress` feature.
pub(crate) fn progress_bar(show: bool, len: u64, what: &'static str) -> latent_optim::progress::Bar {
    latent_optim::progress::Bar::new(show, len, what)
}
