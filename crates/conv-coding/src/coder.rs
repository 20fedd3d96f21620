//! The convolutional sparse coder: validation, dispatch to ADMM or FISTA, batches in parallel.

use crate::admm::{AdmmState, Ctx, MaskState, Settings, run};
use crate::error::{ConvCodingError, Result, finite, invalid, shape};
use crate::filters::Filters;
use crate::geometry::{Boundary, Geometry};
use crate::operator::{Backend, ConvOperator};
use crate::params::{CscParams, SolveInfo, Solver};
use crate::spectral::Spectral;
use crate::spectrum::DictSpectrum;
use latent_linalg::Tensor4;
use latent_linalg::fft::FftReal;
use latent_optim::fit::Checked;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A convolutional sparse coder, built from checked parameters:
/// `Csc::from(CscParams::new(λ)...check()?)`.
///
/// # Example
/// ```
/// use latent_conv_coding::{Csc, CscParams, Filters, FistaParams, ParamGuard};
/// use latent_linalg::Tensor4;
/// let d = Filters::<f64>::random(4, 1, 4, 4, 0).unwrap();
/// let x = Tensor4::from_fn([1, 1, 16, 16], |[_, _, i, j]| ((i * 3 + j * 5) % 7) as f64 / 7.0 - 0.4).unwrap();
/// let admm = Csc::from(CscParams::new(0.1).max_iter(300).tol(1e-6).check().unwrap()).encode(&d, &x).unwrap();
/// let fista = Csc::from(CscParams::new(0.1).max_iter(2000).tol(1e-9).fista(FistaParams::default()).check().unwrap())
///     .encode(&d, &x)
///     .unwrap();
/// assert!((admm.objective() - fista.objective()).abs() < 1e-3 * fista.objective());
/// assert!(admm.nnz_fraction() < 0.5);
/// ```
#[derive(Debug, Clone)]
pub struct Csc<T> {
    pub(crate) p: CscParams<T>,
}

impl<T> From<Checked<CscParams<T>>> for Csc<T> {
    fn from(p: Checked<CscParams<T>>) -> Self {
        Csc { p: p.into_inner() }
    }
}

/// Maps of a batch of images and each image's diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct CscCodes<T: latent_linalg::Real> {
    /// Feature maps `(K, M, mh, mw)`; the map size depends on the boundary (see [`Boundary`]).
    pub maps: Tensor4<T>,
    /// Diagnostics per image.
    pub info: Vec<SolveInfo>,
    /// Border handling used.
    pub boundary: Boundary,
    /// Image size `(h, w)`.
    pub image_size: (usize, usize),
}

impl<T: FftReal> CscCodes<T> {
    /// Sum of the per-image objectives at the returned maps.
    pub fn objective(&self) -> f64 {
        self.info.iter().map(|i| i.objective).sum()
    }
    /// Fraction of nonzero map entries over the batch.
    pub fn nnz_fraction(&self) -> f64 {
        let n = self.maps.as_slice().iter().filter(|v| **v != T::zero()).count();
        n as f64 / self.maps.len().max(1) as f64
    }
    /// The reconstruction `Σ_m d_m * s_m` of every image, `(K, C, h, w)`.
    ///
    /// # Errors
    /// [`ConvCodingError::Shape`] when `filters` do not match the maps.
    pub fn reconstruct(&self, filters: &Filters<T>) -> Result<Tensor4<T>> {
        let (h, w) = self.image_size;
        ConvOperator::new(filters, h, w, self.boundary, Backend::Fft)?.apply(&self.maps)
    }
}

/// Validated inputs shared by every solver.
pub(crate) struct Inputs<'a, T: FftReal> {
    pub k: usize,
    pub c: usize,
    pub m: usize,
    pub h: usize,
    pub w: usize,
    pub lam: Vec<T>,
    pub images: &'a Tensor4<T>,
    pub mask: Option<&'a Tensor4<T>>,
    pub warm: Option<&'a Tensor4<T>>,
}

impl<T: FftReal> Inputs<'_, T> {
    /// The mask of image `k`, channel `c` (h·w values), if any.
    pub fn mask_plane(&self, k: usize, c: usize) -> Option<&[T]> {
        self.mask.map(|mk| {
            let [mn, mc, _, _] = mk.shape();
            let n = self.h * self.w;
            let (kk, cc) = (if mn == 1 { 0 } else { k }, if mc == 1 { 0 } else { c });
            &mk.as_slice()[(kk * mc + cc) * n..(kk * mc + cc + 1) * n]
        })
    }
}

impl<T: FftReal> Csc<T> {
    /// The parameters.
    pub fn params(&self) -> &CscParams<T> {
        &self.p
    }

    /// Code a batch of images `(K, C, H, W)` with the filters `(M, C, kh, kw)`.
    ///
    /// # Errors
    /// As [`Csc::encode_with`].
    pub fn encode(&self, filters: &Filters<T>, images: &Tensor4<T>) -> Result<CscCodes<T>> {
        self.encode_with(filters, images, None, None)
    }

    pub(crate) fn validate<'a>(
        &self,
        filters: &Filters<T>,
        images: &'a Tensor4<T>,
        mask: Option<&'a Tensor4<T>>,
        warm: Option<&'a Tensor4<T>>,
    ) -> Result<Inputs<'a, T>> {
        let [k, c, h, w] = images.shape();
        if images.is_empty() {
            return Err(ConvCodingError::Empty("images"));
        }
        if c != filters.channels() {
            return Err(shape("Csc::encode", format!("images have {c} channels, the filters {}", filters.channels())));
        }
        finite("images", images.as_slice())?;
        finite("filters", filters.as_slice())?;
        Geometry::new(h, w, filters.kh(), filters.kw(), self.p.boundary, false)?;
        let m = filters.count();
        let lam = match &self.p.map_weights {
            Some(wt) if wt.len() != m => {
                return Err(invalid(
                    "map_weights",
                    format!("{} weights", wt.len()),
                    format!("need one per filter ({m})"),
                ));
            }
            Some(wt) => wt.iter().map(|&v| v * self.p.lambda).collect(),
            None => vec![self.p.lambda; m],
        };
        if let Some(mk) = mask {
            let [mn, mc, mh, mw] = mk.shape();
            if !(mn == 1 || mn == k) || !(mc == 1 || mc == c) || mh != h || mw != w {
                return Err(shape(
                    "Csc::encode",
                    format!("mask is {mn}x{mc}x{mh}x{mw}; expected (1 or {k}) x (1 or {c}) x {h} x {w}"),
                ));
            }
            finite("mask", mk.as_slice())?;
            if let Some(i) = mk.as_slice().iter().position(|v| *v < T::zero()) {
                return Err(invalid("mask", format!("element {i} = {}", mk.as_slice()[i]), "weights must be >= 0"));
            }
        }
        if let Some(wm) = warm {
            let (mh, mw) = self.p.boundary.map_size(h, w, filters.kh(), filters.kw());
            if wm.shape() != [k, m, mh, mw] {
                return Err(shape(
                    "Csc::encode",
                    format!("warm start is {:?}, expected [{k}, {m}, {mh}, {mw}]", wm.shape()),
                ));
            }
            finite("warm start", wm.as_slice())?;
        }
        Ok(Inputs { k, c, m, h, w, lam, images, mask, warm })
    }

    /// Code a batch with an optional data-term mask and an optional warm start.
    ///
    /// | argument | shape | meaning |
    /// |---|---|---|
    /// | `filters` | `(M, C, kh, kw)` | the dictionary; `kh ≤ H`, `kw ≤ W` |
    /// | `images` | `(K, C, H, W)` | the images, coded independently (in parallel) |
    /// | `mask` | `(K or 1, C or 1, H, W)` | per-pixel weights `w ≥ 0` of the data term `½ Σ w (Σ d*s − x)²`; 0 marks a missing pixel |
    /// | `warm` | `(K, M, mh, mw)` | initial maps |
    ///
    /// # Errors
    /// [`ConvCodingError::Shape`] for mismatched shapes or filters larger than the image,
    /// [`ConvCodingError::NonFinite`] for NaN/Inf, [`ConvCodingError::InvalidParameter`] for
    /// negative mask weights or a wrong number of map weights, [`ConvCodingError::Numerical`] if
    /// the iteration diverges.
    pub fn encode_with(
        &self,
        filters: &Filters<T>,
        images: &Tensor4<T>,
        mask: Option<&Tensor4<T>>,
        warm: Option<&Tensor4<T>>,
    ) -> Result<CscCodes<T>> {
        let inp = self.validate(filters, images, mask, warm)?;
        let (mh, mw) = self.p.boundary.map_size(inp.h, inp.w, filters.kh(), filters.kw());
        let results: Vec<(Vec<T>, SolveInfo)> = match &self.p.solver {
            Solver::Admm(ap) => {
                let geom = Geometry::new(inp.h, inp.w, filters.kh(), filters.kw(), self.p.boundary, true)?;
                let plan = Spectral::new(geom.dh, geom.dw);
                let ds = DictSpectrum::new(&plan, filters)?;
                let set = Settings::new(ap, self.p.lambda.as_f64(), self.p.tol);
                let ctx = Ctx { plan: &plan, ds: &ds, geom, lam: &inp.lam, nonneg: self.p.nonneg };
                (0..inp.k).into_par_iter().map(|i| self.admm_one(&ctx, &set, &inp, i)).collect::<Result<_>>()?
            }
            Solver::Fista(fp) => {
                let op = ConvOperator::new(filters, inp.h, inp.w, self.p.boundary, fp.domain)?;
                let (c, n) = (inp.c, inp.h * inp.w);
                (0..inp.k)
                    .into_par_iter()
                    .map(|i| {
                        let s = &images.as_slice()[i * c * n..(i + 1) * c * n];
                        let wts: Option<Vec<T>> = inp
                            .mask
                            .map(|_| (0..c).flat_map(|ch| inp.mask_plane(i, ch).unwrap_or(&[]).to_vec()).collect());
                        let warm_i = inp.warm.and_then(|wm| wm.sample(i));
                        crate::fista::solve(
                            &op,
                            s,
                            wts.as_deref(),
                            &inp.lam,
                            self.p.nonneg,
                            fp,
                            self.p.max_iter,
                            self.p.tol,
                            warm_i,
                            self.p.history,
                        )
                    })
                    .collect::<Result<_>>()?
            }
        };
        let mut data = Vec::with_capacity(inp.k * inp.m * mh * mw);
        let mut info = Vec::with_capacity(inp.k);
        for (maps, inf) in results {
            data.extend_from_slice(&maps);
            info.push(inf);
        }
        Ok(CscCodes {
            maps: Tensor4::from_vec([inp.k, inp.m, mh, mw], data)?,
            info,
            boundary: self.p.boundary,
            image_size: (inp.h, inp.w),
        })
    }

    /// ADMM on image `i`: the standard form when nothing is masked, mask decoupling otherwise.
    fn admm_one(&self, ctx: &Ctx<'_, T>, set: &Settings, inp: &Inputs<'_, T>, i: usize) -> Result<(Vec<T>, SolveInfo)> {
        let g = ctx.geom;
        let (c, m) = (inp.c, inp.m);
        let n = g.image_len();
        let s = &inp.images.as_slice()[i * c * n..(i + 1) * c * n];
        let warm = inp.warm.and_then(|wm| wm.sample(i));
        let mut hist = Vec::new();
        let hist_opt = if self.p.history { Some(&mut hist) } else { None };
        if !g.padded() && inp.mask.is_none() {
            let mut st = AdmmState::new(ctx, s, warm, set)?;
            let (iters, stop, last) = run(&mut st, ctx, set, self.p.max_iter, hist_opt, |st, c, s| st.step(c, s))?;
            let (dfid, reg, nnz) = st.objective(ctx)?;
            let info = admm_info(iters, stop, last, dfid, reg, nnz, st.y.len(), st.rho, hist);
            return Ok((st.y, info));
        }
        let nd = g.dom_len();
        let mut sd = vec![T::zero(); c * nd];
        let mut wd = vec![T::zero(); c * nd];
        let ones = vec![T::one(); n];
        for ch in 0..c {
            g.embed_image(&s[ch * n..(ch + 1) * n], &mut sd[ch * nd..(ch + 1) * nd]);
            g.embed_image(inp.mask_plane(i, ch).unwrap_or(&ones), &mut wd[ch * nd..(ch + 1) * nd]);
        }
        let warm_d = warm.map(|wm| {
            let mut d = vec![T::zero(); m * nd];
            for mm in 0..m {
                g.embed_map(&wm[mm * g.map_len()..(mm + 1) * g.map_len()], &mut d[mm * nd..(mm + 1) * nd]);
            }
            d
        });
        let mut st = MaskState::new(ctx, sd, wd, warm_d, set)?;
        let (iters, stop, last) = run(&mut st, ctx, set, self.p.max_iter, hist_opt, |st, c, s| st.step(c, s))?;
        let (dfid, reg, nnz) = st.objective(ctx)?;
        let ml = g.map_len();
        let mut maps = vec![T::zero(); m * ml];
        for mm in 0..m {
            g.crop_map(&st.y1[mm * nd..(mm + 1) * nd], &mut maps[mm * ml..(mm + 1) * ml]);
        }
        let info = admm_info(iters, stop, last, dfid, reg, nnz, maps.len(), st.rho, hist);
        Ok((maps, info))
    }

    /// The objective `½ Σ w (Σ d*s − x)² + Σ_m λ_m‖s_m‖₁` of every image for given maps, computed
    /// from scratch (with these parameters' λ, map weights and boundary).
    ///
    /// # Errors
    /// As [`Csc::encode_with`], and [`ConvCodingError::Shape`] for maps of the wrong shape.
    pub fn objective(
        &self,
        filters: &Filters<T>,
        images: &Tensor4<T>,
        maps: &Tensor4<T>,
        mask: Option<&Tensor4<T>>,
    ) -> Result<Vec<f64>> {
        let inp = self.validate(filters, images, mask, Some(maps))?;
        let op = ConvOperator::new(filters, inp.h, inp.w, self.p.boundary, Backend::Fft)?;
        let rec = op.apply(maps)?;
        let (c, n) = (inp.c, inp.h * inp.w);
        let ml = maps.sample_len() / inp.m;
        Ok((0..inp.k)
            .map(|i| {
                let mut d = 0.0;
                for ch in 0..c {
                    let r = &rec.as_slice()[(i * c + ch) * n..(i * c + ch + 1) * n];
                    let x = &images.as_slice()[(i * c + ch) * n..(i * c + ch + 1) * n];
                    d += match inp.mask_plane(i, ch) {
                        Some(w) => r
                            .iter()
                            .zip(x)
                            .zip(w)
                            .map(|((&a, &b), &c)| c.as_f64() * (a - b).as_f64() * (a - b).as_f64())
                            .sum::<f64>(),
                        None => r.iter().zip(x).map(|(&a, &b)| (a - b).as_f64() * (a - b).as_f64()).sum::<f64>(),
                    };
                }
                let s = maps.sample(i).unwrap_or(&[]);
                let reg: f64 = s
                    .chunks(ml)
                    .zip(&inp.lam)
                    .map(|(p, l)| l.as_f64() * p.iter().map(|v| v.as_f64().abs()).sum::<f64>())
                    .sum();
                0.5 * d + reg
            })
            .collect())
    }
}

#[allow(clippy::too_many_arguments)]
fn admm_info(
    iterations: usize,
    stop: crate::params::StopReason,
    last: Option<crate::params::IterStat>,
    dfid: f64,
    reg: f64,
    nnz: usize,
    len: usize,
    rho: f64,
    history: Vec<crate::params::IterStat>,
) -> SolveInfo {
    SolveInfo {
        iterations,
        stop,
        objective: dfid + reg,
        data_fidelity: dfid,
        regularizer: reg,
        nnz_fraction: nnz as f64 / len.max(1) as f64,
        primal_residual: last.map_or(f64::NAN, |l| l.primal_residual),
        dual_residual: last.map_or(f64::NAN, |l| l.dual_residual),
        rho,
        history,
    }
}
