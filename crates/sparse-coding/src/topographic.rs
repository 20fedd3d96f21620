//! Topographic sparse coding (Kavukcuoglu, Ranzato, Fergus & LeCun 2009; the lecture's
//! "Topological Sparse Coding"): atoms live on a 2-D torus grid and the penalty is a sum, over
//! overlapping grid neighbourhoods, of the (smoothed) L2 norm of the codes in the neighbourhood,
//! `λ Σᵢ √(‖s_{Pᵢ}‖² + ε)`, so atoms that fire together end up as grid neighbours and the learned
//! filters vary smoothly across the grid.

use crate::dictionary::{BlockCoordinate, DictionaryUpdate, Stats};
use crate::encoder::{CodeInfo, Encoder, Prepared, StopReason};
use crate::error::{Result, SparseCodingError, dim, finite, invalid};
use crate::learn::init_from_data;
use crate::prox_encoders::GramQuadratic;
use latent_linalg::{DMatrix, Real};
use latent_optim::fit::{Checked, Fit, ParamGuard};
use latent_optim::objective::Objective;
use latent_optim::prox::Zero;
use latent_optim::setters;
use latent_optim::solver::{Criterion, ProxGradParams, fista};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Atoms on a `rows × cols` torus; neighbourhood i is the `size × size` window (wrapping around)
/// whose top-left corner is grid cell i.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Torus {
    /// Grid rows.
    pub rows: usize,
    /// Grid columns.
    pub cols: usize,
    /// Neighbourhood side.
    pub size: usize,
}

impl Torus {
    /// Validate the grid.
    ///
    /// # Errors
    /// [`SparseCodingError::InvalidParameter`] for empty grids or a window larger than the grid.
    pub fn new(rows: usize, cols: usize, size: usize) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(invalid("grid", format!("{rows}x{cols}"), "must be non-empty"));
        }
        if size == 0 || size > rows || size > cols {
            return Err(invalid("size", size, format!("must be in 1..={}", rows.min(cols))));
        }
        Ok(Self { rows, cols, size })
    }
    /// Number of atoms (grid cells).
    pub fn atoms(&self) -> usize {
        self.rows * self.cols
    }
    /// The members of neighbourhood `i` (atom indices, row-major grid).
    pub fn group(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let (r0, c0) = (i / self.cols, i % self.cols);
        (0..self.size)
            .flat_map(move |a| (0..self.size).map(move |b| ((r0 + a) % self.rows) * self.cols + (c0 + b) % self.cols))
    }
    /// The 4-neighbours of atom `i` on the torus.
    pub fn neighbours(&self, i: usize) -> [usize; 4] {
        let (r, c) = (i / self.cols, i % self.cols);
        [
            ((r + self.rows - 1) % self.rows) * self.cols + c,
            ((r + 1) % self.rows) * self.cols + c,
            r * self.cols + (c + self.cols - 1) % self.cols,
            r * self.cols + (c + 1) % self.cols,
        ]
    }
}

/// The smoothed topographic penalty `λ Σᵢ √(‖s_{Pᵢ}‖² + ε)` with its gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct TopographicPenalty {
    /// The grid.
    pub torus: Torus,
    /// Weight λ.
    pub lambda: f64,
    /// Smoothing ε.
    pub eps: f64,
}

impl TopographicPenalty {
    /// Value, and gradient written into `grad` (overwritten).
    pub fn value_grad<T: Real>(&self, s: &[T], grad: &mut [T]) -> T {
        grad.iter_mut().for_each(|g| *g = T::zero());
        let mut v = 0.0;
        for i in 0..self.torus.atoms() {
            let sq: f64 = self.torus.group(i).map(|j| s[j].as_f64() * s[j].as_f64()).sum();
            let n = (sq + self.eps).sqrt();
            v += n;
            let scale = T::lit(self.lambda / n);
            for j in self.torus.group(i) {
                grad[j] += scale * s[j];
            }
        }
        T::lit(self.lambda * v)
    }
}

/// `½‖x − Ws‖² + topographic penalty` as one smooth objective for FISTA.
#[derive(Debug)]
struct TopoObjective<'a, T: Real> {
    quad: GramQuadratic<'a, T>,
    pen: &'a TopographicPenalty,
}

impl<T: Real> Objective<T> for TopoObjective<'_, T> {
    fn dim(&self) -> usize {
        self.quad.p.atoms()
    }
    fn value_grad(&self, s: &[T], grad: &mut [T]) -> T {
        let q = self.quad.eval(s, grad);
        let mut g2 = vec![T::zero(); s.len()];
        let p = self.pen.value_grad(s, &mut g2);
        grad.iter_mut().zip(&g2).for_each(|(a, &b)| *a += b);
        q + p
    }
}

/// Encoder for the topographic objective, by FISTA with backtracking and restart.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `penalty` | — | grid, λ, ε | λ ≥ 0, ε > 0 |
/// | `tol` | 1e-6 | relative change of the iterate | > 0 |
/// | `max_iter` | 500 | FISTA iterations | ≥ 1 |
#[derive(Debug, Clone, PartialEq)]
pub struct TopographicEncoder {
    /// The penalty.
    pub penalty: TopographicPenalty,
    /// Tolerance.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
}

impl<T: Real> Encoder<T> for TopographicEncoder {
    fn check(&self, p: &Prepared<T>) -> Result<()> {
        if p.atoms() != self.penalty.torus.atoms() {
            return Err(dim(
                "TopographicEncoder",
                format!("dictionary has {} atoms, grid has {}", p.atoms(), self.penalty.torus.atoms()),
            ));
        }
        if !(self.penalty.lambda >= 0.0) || !(self.penalty.eps > 0.0) {
            return Err(invalid(
                "lambda/eps",
                format!("{}/{}", self.penalty.lambda, self.penalty.eps),
                "need lambda >= 0, eps > 0",
            ));
        }
        Ok(())
    }

    fn encode_prepared(&self, p: &Prepared<T>, x: &[T], c: &[T], s: &mut [T]) -> Result<CodeInfo> {
        let xx = crate::encoder::dot(x, x);
        let f = TopoObjective { quad: GramQuadratic { p, c, xx }, pen: &self.penalty };
        // Lipschitz bound: λ_max(G) + λ·(groups per atom)/√ε
        let groups_per_atom = (self.penalty.torus.size * self.penalty.torus.size) as f64;
        let l = p.lipschitz().as_f64() + self.penalty.lambda * groups_per_atom / self.penalty.eps.sqrt();
        let params = ProxGradParams::new()
            .step(1.0 / l)
            .tol(self.tol)
            .criterion(Criterion::RelativeChangeX)
            .max_iter(self.max_iter)
            .restart(true);
        let res = fista(&f, &Zero, s, &params)?;
        s.copy_from_slice(&res.x);
        Ok(CodeInfo {
            iterations: res.iterations,
            stop: if res.converged() { StopReason::Converged } else { StopReason::MaxIterations },
            duality_gap: None,
            objective: res.objective,
        })
    }
}

/// Parameters of [`TopographicLearner`]: online learning (mini-batches, block-coordinate
/// dictionary updates) with the topographic encoder.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `torus` | — | grid (its cell count is the number of atoms) | |
/// | `lambda` | — | penalty weight | ≥ 0 |
/// | `eps` | 1e-2 | smoothing ε | > 0 |
/// | `batch_size` | 256 | mini-batch | ≥ 1 |
/// | `epochs` | 2 | passes | ≥ 1 |
/// | `seed` | 0 | initialisation and shuffling | |
#[derive(Debug, Clone, PartialEq)]
pub struct TopographicParams {
    /// Grid.
    pub torus: Torus,
    /// Weight.
    pub lambda: f64,
    /// Smoothing.
    pub eps: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
}

impl TopographicParams {
    /// Defaults for everything but the grid and λ.
    pub fn new(torus: Torus, lambda: f64) -> Self {
        Self { torus, lambda, eps: 1e-2, batch_size: 256, epochs: 2, seed: 0 }
    }
    setters! {
        /// Smoothing ε of the penalty.
        eps: f64,
        /// Mini-batch size.
        batch_size: usize,
        /// Passes over the data.
        epochs: usize,
        /// Seed.
        seed: u64,
    }
}

impl ParamGuard for TopographicParams {
    type Error = SparseCodingError;

    /// # Errors
    /// [`SparseCodingError::InvalidParameter`] naming the bad value.
    fn validate(&self) -> Result<()> {
        if !(self.lambda >= 0.0) || !self.lambda.is_finite() {
            return Err(invalid("lambda", self.lambda, "must be finite and >= 0"));
        }
        if !(self.eps > 0.0) {
            return Err(invalid("eps", self.eps, "must be > 0"));
        }
        if self.batch_size == 0 || self.epochs == 0 {
            return Err(invalid("batch_size/epochs", format!("{}/{}", self.batch_size, self.epochs), "must be >= 1"));
        }
        Ok(())
    }
}

impl<T: Real> Fit<DMatrix<T>> for TopographicParams {
    type Fitted = FittedTopographic<T>;

    /// Learn from signals (columns of `x`); see [`TopographicLearner::fit`].
    fn fit_checked(params: &Checked<Self>, x: &DMatrix<T>) -> Result<FittedTopographic<T>> {
        TopographicLearner::from(params.clone()).fit(x)
    }
}

impl From<Checked<TopographicParams>> for TopographicLearner {
    fn from(p: Checked<TopographicParams>) -> Self {
        TopographicLearner { p: p.into_inner() }
    }
}

/// A validated topographic learner.
#[derive(Debug, Clone)]
pub struct TopographicLearner {
    p: TopographicParams,
}

/// A learned topographic dictionary.
#[derive(Debug, Clone)]
pub struct FittedTopographic<T: Real> {
    /// Atoms as columns, in row-major grid order.
    pub dictionary: DMatrix<T>,
    /// The grid.
    pub torus: Torus,
    /// Mean objective per mini-batch.
    pub history: Vec<f64>,
}

impl TopographicLearner {
    /// The encoder these parameters define.
    pub fn encoder(&self) -> TopographicEncoder {
        TopographicEncoder {
            penalty: TopographicPenalty { torus: self.p.torus.clone(), lambda: self.p.lambda, eps: self.p.eps },
            tol: 1e-5,
            max_iter: 300,
        }
    }

    /// Learn from signals (columns of `x`).
    ///
    /// # Errors
    /// Empty/NaN data and solver failures.
    pub fn fit<T: Real>(&self, x: &DMatrix<T>) -> Result<FittedTopographic<T>> {
        if x.ncols() == 0 || x.nrows() == 0 {
            return Err(SparseCodingError::Empty("training signals"));
        }
        finite("training signals", x.as_slice())?;
        let p = &self.p;
        let h = p.torus.atoms();
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let mut w = init_from_data(x, h, &mut rng);
        let enc = self.encoder();
        let mut stats = Stats::zeros(x.nrows(), h);
        let mut order: Vec<usize> = (0..x.ncols()).collect();
        let mut history = Vec::new();
        let mut t = 0usize;
        for _ in 0..p.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(p.batch_size) {
                let b = DMatrix::from_fn(x.nrows(), chunk.len(), |i, j| x[(i, chunk[j])]);
                let codes = enc.encode_batch(&w, &b, None)?;
                history.push(codes.mean_objective());
                t += 1;
                let eta = chunk.len() as f64;
                let theta = if (t as f64) < eta { t as f64 * eta } else { eta * eta + t as f64 - eta };
                stats.accumulate(&b, &codes.codes, T::lit((theta + 1.0 - eta) / (theta + 1.0)))?;
                BlockCoordinate { passes: 1, report_objective: false }.update(&mut w, &stats)?;
            }
        }
        Ok(FittedTopographic { dictionary: w, torus: p.torus.clone(), history })
    }
}

/// Topographic smoothness of a dictionary on a grid: the mean |cosine similarity| of grid
/// 4-neighbours and of all other pairs. A topographic map has the first well above the second.
///
/// # Errors
/// A dimension error when the dictionary does not have one atom per grid position.
pub fn grid_smoothness<T: Real>(w: &DMatrix<T>, torus: &Torus) -> Result<(f64, f64)> {
    if w.ncols() != torus.atoms() {
        return Err(dim("grid_smoothness", format!("{} atoms vs {} grid cells", w.ncols(), torus.atoms())));
    }
    let h = w.ncols();
    let norms: Vec<f64> =
        (0..h).map(|j| w.column(j).iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>().sqrt().max(1e-300)).collect();
    let cos = |a: usize, b: usize| -> f64 {
        w.column(a).iter().zip(w.column(b).iter()).map(|(x, y)| x.as_f64() * y.as_f64()).sum::<f64>().abs()
            / (norms[a] * norms[b])
    };
    let mut nb = (0.0, 0usize);
    let mut all = (0.0, 0usize);
    for a in 0..h {
        let ns = torus.neighbours(a);
        for b in 0..h {
            if a == b {
                continue;
            }
            if ns.contains(&b) {
                nb.0 += cos(a, b);
                nb.1 += 1;
            } else {
                all.0 += cos(a, b);
                all.1 += 1;
            }
        }
    }
    Ok((nb.0 / nb.1.max(1) as f64, all.0 / all.1.max(1) as f64))
}
