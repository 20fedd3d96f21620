//! Batch convolutional dictionary learning: alternate ADMM coding of all images with a
//! constrained dictionary update (Wohlberg 2016; Garcia-Cardona & Wohlberg 2018).

use crate::admm::{AdmmState, Ctx, MaskState, Settings, l1_nnz};
use crate::dictupd::{ConsensusDict, DictProblem, FilterConstraint, FistaDict, project};
use crate::error::{ConvCodingError, Result, finite, invalid, nonneg_param, pos_param, shape};
use crate::filters::Filters;
use crate::geometry::{Boundary, Geometry};
use crate::params::{AdmmParams, AutoRho, check_lambda};
use crate::spectral::{Spectral, cz};
use crate::spectrum::DictSpectrum;
use latent_linalg::Tensor4;
use latent_linalg::fft::FftReal;
use latent_optim::fit::{Checked, Fit, ParamGuard};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;

/// How the dictionary is updated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum DictSolver {
    /// Consensus ADMM in the DFT domain (periodic boundary only).
    Consensus {
        /// Initial penalty (`None`: the number of images).
        rho: Option<f64>,
        /// Over-relaxation α.
        relax: f64,
        /// Penalty adaptation.
        auto_rho: Option<AutoRho>,
    },
    /// FISTA with backtracking (factor `eta > 1`), gradient in the DFT domain; handles the
    /// zero-padded boundary.
    Fista {
        /// Backtracking factor.
        eta: f64,
    },
}

impl Default for DictSolver {
    fn default() -> Self {
        DictSolver::Consensus { rho: None, relax: 1.8, auto_rho: Some(AutoRho::interleaved()) }
    }
}

/// Why learning stopped (latent's one learner stop reason).
pub use latent_optim::fit::LearnStop;

/// Diagnostics of one outer iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CdlIter {
    /// `½ Σ_k ‖Σ_m d_m * s_{k,m} − x_k‖² + λ Σ_{k,m} ‖s_{k,m}‖₁` at the (projected, feasible)
    /// filters and the (sparse) maps after this iteration, summed over images.
    pub objective: f64,
    /// The data term of `objective`.
    pub data_fidelity: f64,
    /// The ℓ1 term of `objective`.
    pub regularizer: f64,
    /// Fraction of nonzero map entries.
    pub nnz_fraction: f64,
    /// Mean ρ of the coding ADMM over images.
    pub code_rho: f64,
}

/// What a callback sees after each outer iteration.
#[derive(Debug)]
pub struct CdlProgress<'a, T: latent_linalg::Real> {
    /// Iteration, from 1.
    pub iteration: usize,
    /// The current filters.
    pub filters: &'a Filters<T>,
    /// This iteration's diagnostics.
    pub stat: CdlIter,
}

/// A callback: return `ControlFlow::Break(())` to stop learning early.
pub type CdlCallback<'a, T> = Box<dyn FnMut(&CdlProgress<'_, T>) -> ControlFlow<()> + 'a>;

/// A learned convolutional dictionary with its learning history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct FittedCdl<T: latent_linalg::Real> {
    /// The filters `(M, C, kh, kw)`.
    pub filters: Filters<T>,
    /// ℓ1 weight used.
    pub lambda: f64,
    /// Border handling used.
    pub boundary: Boundary,
    /// Per-iteration diagnostics (batch) or per-batch coding objectives (online, in
    /// `objective` with the other fields 0).
    pub history: Vec<CdlIter>,
    /// Outer iterations (batch) or batches (online) run.
    pub iterations: usize,
    /// Why learning stopped.
    pub stop: LearnStop,
}

/// Parameters of batch convolutional dictionary learning:
/// `min_{d, s} ½ Σ_k ‖Σ_m d_m * s_{k,m} − x_k‖² + λ Σ_{k,m} ‖s_{k,m}‖₁` s.t. `‖d_m‖ = 1` and `d_m`
/// supported on `kh × kw`.
///
/// Each outer iteration runs `code_iters` ADMM iterations on the maps of every image (warm:
/// maps, duals and ρ persist across outer iterations) and `dict_iters` iterations of the
/// dictionary update. With the defaults (1 and 1) this is the interleaved scheme of
/// Garcia-Cardona & Wohlberg (2018), as in SPORCO's `ConvBPDNDictLearn`.
///
/// | parameter | default | meaning | range |
/// |---|---|---|---|
/// | `filters` | — | number of filters M | ≥ 1 |
/// | `kh`, `kw` | — | filter size (odd or even) | ≥ 1, ≤ image size |
/// | `lambda` | — | ℓ1 weight λ | finite, ≥ 0 |
/// | `iterations` | 50 | outer iterations | ≥ 1 |
/// | `code_iters` | 1 | ADMM coding iterations per outer iteration | ≥ 1 |
/// | `dict_iters` | 1 | dictionary-update iterations per outer iteration | ≥ 1 |
/// | `coding` | ρ = 50λ + 0.5, α = 1.8, [`AutoRho::interleaved`] | coding ADMM | |
/// | `dict_solver` | [`DictSolver::Consensus`] (ρ = K, α = 1.8, interleaved adaptation) | dictionary update | |
/// | `constraint` | [`FilterConstraint::UnitNorm`] | filter norm constraint | |
/// | `zero_mean` | false | constrain filters to zero mean | |
/// | `nonneg` | false | non-negative maps | |
/// | `boundary` | [`Boundary::Periodic`] | border handling ([`Boundary::ZeroPad`] needs [`DictSolver::Fista`]) | |
/// | `tol` | 0 | stop when the relative objective decrease over an iteration is below | finite, ≥ 0 |
/// | `seed` | 0 | random initial filters (when none are given) | |
/// | `progress` | false | progress bar (terminal only) | |
#[derive(Debug, Clone, PartialEq)]
pub struct CdlParams<T> {
    /// Number of filters.
    pub filters: usize,
    /// Filter height.
    pub kh: usize,
    /// Filter width.
    pub kw: usize,
    /// ℓ1 weight.
    pub lambda: T,
    /// Outer iterations.
    pub iterations: usize,
    /// Coding iterations per outer iteration.
    pub code_iters: usize,
    /// Dictionary iterations per outer iteration.
    pub dict_iters: usize,
    /// Coding ADMM parameters.
    pub coding: AdmmParams,
    /// Dictionary update.
    pub dict_solver: DictSolver,
    /// Filter constraint.
    pub constraint: FilterConstraint,
    /// Zero-mean filters.
    pub zero_mean: bool,
    /// Non-negative maps.
    pub nonneg: bool,
    /// Border handling.
    pub boundary: Boundary,
    /// Relative-decrease tolerance.
    pub tol: f64,
    /// Seed.
    pub seed: u64,
    /// Progress bar.
    pub progress: bool,
}

impl<T: latent_linalg::Real> CdlParams<T> {
    /// Defaults for everything but the dictionary shape and λ.
    pub fn new(filters: usize, (kh, kw): (usize, usize), lambda: T) -> Self {
        Self {
            filters,
            kh,
            kw,
            lambda,
            iterations: 50,
            code_iters: 1,
            dict_iters: 1,
            coding: AdmmParams {
                rho: Some(50.0 * lambda.as_f64() + 0.5),
                relax: 1.8,
                auto_rho: Some(AutoRho::interleaved()),
            },
            dict_solver: DictSolver::default(),
            constraint: FilterConstraint::UnitNorm,
            zero_mean: false,
            nonneg: false,
            boundary: Boundary::Periodic,
            tol: 0.0,
            seed: 0,
            progress: false,
        }
    }
}

impl<T: latent_linalg::Real> ParamGuard for CdlParams<T> {
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
        for (name, v) in
            [("iterations", self.iterations), ("code_iters", self.code_iters), ("dict_iters", self.dict_iters)]
        {
            if v == 0 {
                return Err(invalid(name, 0, "must be >= 1"));
            }
        }
        self.coding.validate()?;
        match self.dict_solver {
            DictSolver::Consensus { rho, relax, auto_rho } => {
                if let Some(r) = rho {
                    pos_param("dict rho", r)?;
                }
                if !(relax > 0.0 && relax < 2.0) {
                    return Err(invalid("dict relax", relax, "must be in (0, 2)"));
                }
                if let Some(a) = auto_rho {
                    a.validate()?;
                }
                if self.boundary != Boundary::Periodic {
                    return Err(invalid(
                        "dict_solver",
                        "Consensus",
                        "the consensus dictionary update needs the periodic boundary; use DictSolver::Fista with ZeroPad",
                    ));
                }
            }
            DictSolver::Fista { eta } => {
                if !(eta > 1.0) || !eta.is_finite() {
                    return Err(invalid("eta", eta, "must be finite and > 1"));
                }
            }
        }
        nonneg_param("tol", self.tol)?;
        Ok(())
    }
}

impl<T: FftReal> Fit<Tensor4<T>> for CdlParams<T> {
    type Fitted = FittedCdl<T>;

    /// Learn filters from the images `(K, C, H, W)`, starting from random filters; see
    /// [`CdlLearner::fit_with`] for initial filters and callbacks.
    fn fit_checked(params: &Checked<Self>, images: &Tensor4<T>) -> Result<FittedCdl<T>> {
        CdlLearner::from(params.clone()).fit(images)
    }
}

impl<T> From<Checked<CdlParams<T>>> for CdlLearner<T> {
    fn from(p: Checked<CdlParams<T>>) -> Self {
        CdlLearner { p: p.into_inner() }
    }
}

/// A batch learner built from checked parameters (`CdlLearner::from(params.check()?)`), for
/// initial filters and callbacks ([`CdlLearner::fit_with`]); `params.check()?.fit(&images)` is
/// the short form.
///
/// # Example
/// ```
/// use latent_conv_coding::{CdlParams, ParamGuard};
/// use latent_linalg::Tensor4;
/// let x = Tensor4::from_fn([2, 1, 24, 24], |[k, _, i, j]| (((i + 2 * k) / 3 + j / 4) % 2) as f64 - 0.5).unwrap();
/// let mut p = CdlParams::new(4, (5, 5), 0.1);
/// p.iterations = 15;
/// let fit = p.check().unwrap().fit(&x).unwrap();
/// assert_eq!(fit.filters.count(), 4);
/// assert!(fit.history.last().unwrap().objective < fit.history[0].objective);
/// ```
#[derive(Debug, Clone)]
pub struct CdlLearner<T> {
    p: CdlParams<T>,
}

/// Coding state of one image.
enum CodeState<T: FftReal> {
    Plain(AdmmState<T>),
    Masked(MaskState<T>),
}

impl<T: FftReal> CdlLearner<T> {
    /// The parameters.
    pub fn params(&self) -> &CdlParams<T> {
        &self.p
    }

    /// Learn filters from the images `(K, C, H, W)`, starting from random filters.
    ///
    /// # Errors
    /// As [`CdlLearner::fit_with`].
    pub fn fit(&self, images: &Tensor4<T>) -> Result<FittedCdl<T>> {
        self.fit_with(images, None, None)
    }

    /// Learn from initial filters (or random ones) with a callback after each iteration.
    ///
    /// # Errors
    /// [`ConvCodingError::Empty`] / [`ConvCodingError::NonFinite`] for bad images,
    /// [`ConvCodingError::Shape`] for filters larger than the images or initial filters of the wrong
    /// shape, [`ConvCodingError::Numerical`] if an iteration diverges.
    pub fn fit_with(
        &self,
        images: &Tensor4<T>,
        init: Option<&Filters<T>>,
        mut callback: Option<CdlCallback<'_, T>>,
    ) -> Result<FittedCdl<T>> {
        let p = &self.p;
        let [k, c, h, w] = images.shape();
        if images.is_empty() {
            return Err(ConvCodingError::Empty("images"));
        }
        finite("images", images.as_slice())?;
        let mut filters = match init {
            Some(f) => {
                if (f.count(), f.channels(), f.kh(), f.kw()) != (p.filters, c, p.kh, p.kw) {
                    return Err(shape(
                        "CdlLearner::fit",
                        format!(
                            "initial filters are {}x{}x{}x{}, expected {}x{c}x{}x{}",
                            f.count(),
                            f.channels(),
                            f.kh(),
                            f.kw(),
                            p.filters,
                            p.kh,
                            p.kw
                        ),
                    ));
                }
                f.clone()
            }
            None => Filters::random(p.filters, c, p.kh, p.kw, p.seed)?,
        };
        let (m, taps) = (p.filters, p.kh * p.kw);
        project(filters.as_mut_slice(), m, c, taps, p.constraint, p.zero_mean);
        let geom = Geometry::new(h, w, p.kh, p.kw, p.boundary, true)?;
        let plan = Spectral::new(geom.dh, geom.dw);
        let f = plan.len();
        let (n, nd) = (geom.image_len(), geom.dom_len());
        let lam = vec![p.lambda; m];
        let set = Settings::new(&p.coding, p.lambda.as_f64(), 0.0);
        // images on the domain, their spectra, and the domain weights (zero padding)
        let mut sdom = vec![T::zero(); k * c * nd];
        for (src, dst) in images.as_slice().chunks(n).zip(sdom.chunks_mut(nd)) {
            geom.embed_image(src, dst);
        }
        let mut sf = vec![cz(); k * c * f];
        sf.par_chunks_mut(f)
            .zip(sdom.par_chunks(nd))
            .try_for_each_init(|| plan.work(), |wk, (o, s)| plan.forward_plane(wk, s, o))?;
        let mask: Option<Vec<T>> = geom.padded().then(|| {
            let ones = vec![T::one(); n];
            let mut wd = vec![T::zero(); k * c * nd];
            for dst in wd.chunks_mut(nd) {
                geom.embed_image(&ones, dst);
            }
            wd
        });
        let mut ds = DictSpectrum::new(&plan, &filters)?;
        let mut states: Vec<CodeState<T>> = {
            let ctx = Ctx { plan: &plan, ds: &ds, geom, lam: &lam, nonneg: p.nonneg };
            (0..k)
                .map(|i| -> Result<CodeState<T>> {
                    let s = &sdom[i * c * nd..(i + 1) * c * nd];
                    Ok(match &mask {
                        None => CodeState::Plain(AdmmState::new(&ctx, s, None, &set)?),
                        Some(wd) => CodeState::Masked(MaskState::new(
                            &ctx,
                            s.to_vec(),
                            wd[i * c * nd..(i + 1) * c * nd].to_vec(),
                            None,
                            &set,
                        )?),
                    })
                })
                .collect::<Result<_>>()?
        };
        let mut consensus = match p.dict_solver {
            DictSolver::Consensus { rho, relax, auto_rho } => {
                Some(ConsensusDict::<T>::new(k, m, c, &geom, f, rho.unwrap_or(k as f64), relax, auto_rho))
            }
            DictSolver::Fista { .. } => None,
        };
        let mut fista = match p.dict_solver {
            DictSolver::Fista { eta } => Some(FistaDict::new(eta)),
            DictSolver::Consensus { .. } => None,
        };
        let bar = progress_bar(p.progress, p.iterations as u64, "conv dictionary learning");
        let mut history: Vec<CdlIter> = Vec::with_capacity(p.iterations);
        let mut stop = LearnStop::MaxIterations;
        let mut it = 0;
        while it < p.iterations {
            it += 1;
            // coding
            {
                let ctx = Ctx { plan: &plan, ds: &ds, geom, lam: &lam, nonneg: p.nonneg };
                states.par_iter_mut().try_for_each(|st| -> Result<()> {
                    for _ in 0..p.code_iters {
                        match st {
                            CodeState::Plain(s) => s.step(&ctx, &set)?,
                            CodeState::Masked(s) => s.step(&ctx, &set)?,
                        };
                    }
                    Ok(())
                })?;
            }
            // maps → spectra
            let zs: Vec<DictSpectrum<T>> = states
                .iter()
                .map(|st| match st {
                    CodeState::Plain(s) => DictSpectrum::from_planes(&plan, &s.y, m),
                    CodeState::Masked(s) => DictSpectrum::from_planes(&plan, &s.y1, m),
                })
                .collect::<Result<_>>()?;
            let pb = DictProblem {
                plan: &plan,
                geom,
                m,
                c,
                zs: &zs,
                sf: &sf,
                mask: mask.as_deref(),
                constraint: p.constraint,
                zero_mean: p.zero_mean,
            };
            let dfid = match (&mut consensus, &mut fista) {
                (Some(cs), _) => cs.run(&pb, filters.as_mut_slice(), p.dict_iters)?,
                (None, Some(fs)) => fs.run(&pb, filters.as_mut_slice(), p.dict_iters)?,
                (None, None) => return Err(invalid("dict_solver", "none", "no dictionary solver configured")),
            };
            let (mut reg, mut nnz, mut rho_sum) = (0.0, 0usize, 0.0);
            for st in &states {
                let (y, rho) = match st {
                    CodeState::Plain(s) => (&s.y, s.rho),
                    CodeState::Masked(s) => (&s.y1, s.rho),
                };
                let (r, z) = l1_nnz(y, nd, &lam);
                reg += r;
                nnz += z;
                rho_sum += rho;
            }
            let stat = CdlIter {
                objective: dfid + reg,
                data_fidelity: dfid,
                regularizer: reg,
                nnz_fraction: nnz as f64 / (k * m * geom.map_len()) as f64,
                code_rho: rho_sum / k as f64,
            };
            if !stat.objective.is_finite() {
                return Err(ConvCodingError::Numerical {
                    op: "CdlLearner::fit",
                    detail: format!("objective became {} at iteration {it}", stat.objective),
                });
            }
            history.push(stat);
            bar.set_message(format!("objective {:.5}", stat.objective));
            bar.inc(1);
            // new dictionary for the coding step
            ds = DictSpectrum::new(&plan, &filters)?;
            if let Some(cb) = callback.as_mut()
                && cb(&CdlProgress { iteration: it, filters: &filters, stat }).is_break()
            {
                stop = LearnStop::Callback;
                break;
            }
            if p.tol > 0.0 && history.len() >= 2 {
                let prev = history[history.len() - 2].objective;
                if (prev - stat.objective) <= p.tol * prev.abs() {
                    stop = LearnStop::Converged;
                    break;
                }
            }
        }
        bar.finish_and_clear();
        Ok(FittedCdl { filters, lambda: p.lambda.as_f64(), boundary: p.boundary, history, iterations: it, stop })
    }
}

/// A progress bar drawn only when asked for, on a terminal, with the `progress` feature.
pub(crate) fn progress_bar(show: bool, len: u64, what: &'static str) -> latent_optim::progress::Bar {
    latent_optim::progress::Bar::new(show, len, what)
}

const CDL_MAGIC: [u8; 8] = *b"LTNTCDLD";
const FORMAT_VERSION: u32 = 1;

pub(crate) fn persist_err(e: latent_linalg::persist::PersistError) -> ConvCodingError {
    match e {
        latent_linalg::persist::PersistError::Io { path, source } => ConvCodingError::Io { path, source },
        other => ConvCodingError::Format(other.to_string()),
    }
}

/// Largest dictionary or state file `load` reads (4 GiB).
pub(crate) const MAX_FILE_LEN: u64 = 1 << 32;

/// Read a whole model file, refusing files larger than [`MAX_FILE_LEN`].
pub(crate) fn read_model_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let io = |source| ConvCodingError::Io { path: path.to_path_buf(), source };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_LEN {
        return Err(ConvCodingError::Format(format!("{}: {len} bytes, larger than any model file", path.display())));
    }
    std::fs::read(path).map_err(io)
}

/// Re-validate filters read from a file (shape consistent with the data, finite).
pub(crate) fn check_loaded_filters<T: FftReal>(f: &Filters<T>, path: &std::path::Path) -> Result<()> {
    let [m, c, kh, kw] = f.as_tensor().shape();
    let n = m.checked_mul(c).and_then(|v| v.checked_mul(kh)).and_then(|v| v.checked_mul(kw));
    if n != Some(f.as_slice().len()) || f.as_slice().is_empty() {
        return Err(ConvCodingError::Format(format!(
            "{}: filter shape {m}x{c}x{kh}x{kw} does not match its {} values",
            path.display(),
            f.as_slice().len()
        )));
    }
    if f.as_slice().iter().any(|v| !v.finite()) {
        return Err(ConvCodingError::Format(format!("{}: non-finite filter taps", path.display())));
    }
    Ok(())
}

impl<T: FftReal> FittedCdl<T> {
    /// Save (versioned, checksummed, atomic; magic `LTNTCDLD`).
    ///
    /// # Errors
    /// [`ConvCodingError::Io`] naming the path.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        latent_linalg::persist::save(path.as_ref(), CDL_MAGIC, FORMAT_VERSION, self).map_err(persist_err)
    }
    /// Load a file written by [`FittedCdl::save`].
    ///
    /// # Errors
    /// [`ConvCodingError::Format`] for a corrupt, truncated, foreign or newer-version file;
    /// [`ConvCodingError::Io`] when it cannot be read.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_model_file(path)?;
        Self::decode(&bytes, path)
    }

    /// The bytes [`FittedCdl::save`] writes (magic `LTNTCDLD`, version, length, checksum, payload).
    ///
    /// # Errors
    /// [`ConvCodingError::Format`] when encoding fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        latent_linalg::persist::to_bytes(CDL_MAGIC, FORMAT_VERSION, self).map_err(persist_err)
    }

    /// Parse the bytes of a file written by [`FittedCdl::save`], with the checks of
    /// [`FittedCdl::load`].
    ///
    /// # Errors
    /// As [`FittedCdl::load`], without the I/O errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, std::path::Path::new("<memory>"))
    }

    fn decode(bytes: &[u8], path: &std::path::Path) -> Result<Self> {
        let (_, v): (u32, Self) =
            latent_linalg::persist::from_bytes(bytes, CDL_MAGIC, FORMAT_VERSION, path).map_err(persist_err)?;
        check_loaded_filters(&v.filters, path)?;
        if !(v.lambda.is_finite() && v.lambda >= 0.0) {
            return Err(ConvCodingError::Format(format!("{}: invalid lambda {}", path.display(), v.lambda)));
        }
        Ok(v)
    }
}
