//! The synthesis operator `A: {s_m} ↦ Σ_m d_m * s_m` and its adjoint, by FFT or by direct
//! summation.

use crate::error::{ConvCodingError, Result, finite, shape};
use crate::filters::Filters;
use crate::geometry::{Boundary, Geometry};
use crate::spectral::{Spectral, Work, cz};
use crate::spectrum::{DictSpectrum, adjoint_spectrum, forward_spectrum};
use latent_linalg::Tensor4;
use latent_linalg::conv::{Conv2dSpec, conv2d, conv2d_backward_input};
use latent_linalg::fft::FftReal;
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};

/// How convolutions are computed.
///
/// | backend | cost per map and channel | notes |
/// |---|---|---|
/// | [`Backend::Fft`] | `O(N log N)` | real FFTs (realfft rows, rustfft columns) on the (padded) domain; best beyond a few taps |
/// | [`Backend::Direct`] | `O(N · kh · kw)` | in the spatial domain, through `latent-linalg`'s convolution entry point ([`latent_linalg::conv::conv2d`] and its input gradient, which pick the kernel) on a circularly padded copy of the maps; best for tiny filters |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Backend {
    /// In the DFT domain.
    #[default]
    Fft,
    /// In the spatial domain (by `latent-linalg`'s convolution).
    Direct,
}

/// The convolutional synthesis operator for one filter bank and one image size:
/// `A s = Σ_m d_m * s_m` (maps `(M, mh, mw)` → image `(C, H, W)`, per channel
/// `x̂_c = Σ_m d_{m,c} * s_m`) and its exact adjoint `Aᴴ r` (`(Aᴴ r)_m = Σ_c d̃_{m,c} ⋆ r_c`,
/// a correlation). The map size depends on the [`Boundary`].
///
/// | parameter | meaning |
/// |---|---|
/// | `filters` | the bank `(M, C, kh, kw)` |
/// | `h`, `w` | image size (≥ the filter size) |
/// | `boundary` | [`Boundary::Periodic`] or [`Boundary::ZeroPad`] |
/// | `backend` | [`Backend::Fft`] or [`Backend::Direct`] |
///
/// # Example
/// ```
/// use latent_conv_coding::{Backend, Boundary, ConvOperator, Filters};
/// use latent_linalg::Tensor4;
/// let d = Filters::<f64>::random(2, 1, 3, 3, 1).unwrap();
/// let op = ConvOperator::new(&d, 8, 8, Boundary::ZeroPad, Backend::Fft).unwrap();
/// assert_eq!(op.map_size(), (10, 10));
/// let s = Tensor4::from_fn([1, 2, 10, 10], |[_, m, i, j]| ((m + i * j) % 3) as f64).unwrap();
/// let x = op.apply(&s).unwrap();
/// let r = Tensor4::from_fn([1, 1, 8, 8], |[_, _, i, j]| (i as f64) - (j as f64)).unwrap();
/// let g = op.adjoint(&r).unwrap();
/// // ⟨A s, r⟩ = ⟨s, Aᴴ r⟩
/// let lhs: f64 = x.as_slice().iter().zip(r.as_slice()).map(|(a, b)| a * b).sum();
/// let rhs: f64 = s.as_slice().iter().zip(g.as_slice()).map(|(a, b)| a * b).sum();
/// assert!((lhs - rhs).abs() < 1e-9 * lhs.abs().max(1.0));
/// ```
#[derive(Debug)]
pub struct ConvOperator<T: FftReal> {
    filters: Filters<T>,
    pub(crate) geom: Geometry,
    backend: Backend,
    fft: Option<FftParts<T>>,
    /// Direct backend: the bank as `conv2d` weights `(C, M, kh, kw)`, taps flipped.
    direct: Option<Tensor4<T>>,
}

pub(crate) struct FftParts<T: FftReal> {
    pub plan: Spectral<T>,
    pub ds: DictSpectrum<T>,
}

impl<T: FftReal> std::fmt::Debug for FftParts<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FftParts {{ {:?} }}", self.plan)
    }
}

/// Scratch for one image through the operator.
pub(crate) struct OpWork<T: FftReal> {
    spec_m: Vec<Complex<T>>,
    spec_c: Vec<Complex<T>>,
    dom: Vec<T>,
    fw: Option<Work<T>>,
}

impl<T: FftReal> ConvOperator<T> {
    /// Build the operator (for the FFT backend this transforms the filters once).
    ///
    /// # Errors
    /// [`ConvCodingError::Shape`] when a filter is larger than the image,
    /// [`ConvCodingError::InvalidParameter`] for an empty image size.
    pub fn new(filters: &Filters<T>, h: usize, w: usize, boundary: Boundary, backend: Backend) -> Result<Self> {
        let geom = Geometry::new(h, w, filters.kh(), filters.kw(), boundary, backend == Backend::Fft)?;
        let (fft, direct) = match backend {
            Backend::Fft => {
                let plan = Spectral::new(geom.dh, geom.dw);
                let ds = DictSpectrum::new(&plan, filters)?;
                (Some(FftParts { plan, ds }), None)
            }
            Backend::Direct => (None, Some(correlation_weights(filters)?)),
        };
        Ok(Self { filters: filters.clone(), geom, backend, fft, direct })
    }

    /// Map size `(mh, mw)` for this image size and boundary.
    pub fn map_size(&self) -> (usize, usize) {
        (self.geom.mh, self.geom.mw)
    }
    /// Image size `(h, w)`.
    pub fn image_size(&self) -> (usize, usize) {
        (self.geom.h, self.geom.w)
    }
    /// The filters.
    pub fn filters(&self) -> &Filters<T> {
        &self.filters
    }
    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// An upper bound of `‖AᴴA‖` (the Lipschitz constant of the gradient of `½‖A s − x‖²`): the
    /// largest eigenvalue of `A_fᴴA_f` over the DFT grid of the (padded) domain, exact for one
    /// channel and the periodic boundary; for the direct backend Young's bound `Σ_{m,c} ‖d_{m,c}‖₁²`
    /// is used instead of a transform.
    pub fn lipschitz(&self) -> f64 {
        match &self.fft {
            Some(p) => p.ds.lipschitz,
            None => {
                let taps = self.filters.kh() * self.filters.kw();
                let c = self.filters.channels();
                (0..self.filters.count())
                    .map(|m| {
                        let f = &self.filters.as_slice()[m * c * taps..(m + 1) * c * taps];
                        f.chunks(taps).map(|k| k.iter().map(|v| v.as_f64().abs()).sum::<f64>().powi(2)).sum::<f64>()
                    })
                    .sum()
            }
        }
    }

    pub(crate) fn work(&self) -> OpWork<T> {
        match &self.fft {
            Some(p) => OpWork {
                spec_m: vec![cz(); p.ds.m * p.ds.f],
                spec_c: vec![cz(); p.ds.c * p.ds.f],
                dom: vec![T::zero(); self.geom.dom_len()],
                fw: Some(p.plan.work()),
            },
            None => OpWork { spec_m: Vec::new(), spec_c: Vec::new(), dom: Vec::new(), fw: None },
        }
    }

    /// `out (C × h·w) = A maps (M × mh·mw)` for one image.
    pub(crate) fn apply_one(&self, maps: &[T], out: &mut [T], work: &mut OpWork<T>) -> Result<()> {
        let g = self.geom;
        match &self.fft {
            Some(p) => {
                let f = p.ds.f;
                let (mw, dw) = (g.mw, g.dw);
                work.spec_m.par_chunks_mut(f).zip(maps.par_chunks(g.map_len())).try_for_each_init(
                    || p.plan.work(),
                    |wk: &mut Work<T>, (spec, map)| {
                        p.plan.forward(
                            wk,
                            |i, row| {
                                if i < g.mh {
                                    row[..mw].copy_from_slice(&map[i * mw..(i + 1) * mw]);
                                    row[mw..dw].iter_mut().for_each(|v| *v = T::zero());
                                } else {
                                    row.iter_mut().for_each(|v| *v = T::zero());
                                }
                            },
                            spec,
                        )
                    },
                )?;
                forward_spectrum(&p.ds, &work.spec_m, &mut work.spec_c);
                let il = g.image_len();
                let dl = g.dom_len();
                let dom = &mut work.dom;
                let wk = work.fw.get_or_insert_with(|| p.plan.work());
                for (spec, img) in work.spec_c.chunks_mut(f).zip(out.chunks_mut(il)) {
                    p.plan.inverse_plane(wk, spec, &mut dom[..dl])?;
                    g.crop_image(dom, img);
                }
                Ok(())
            }
            None => direct_apply(self.direct_weights()?, &g, maps, out),
        }
    }

    /// `out (M × mh·mw) = Aᴴ r (C × h·w)` for one image.
    pub(crate) fn adjoint_one(&self, r: &[T], out: &mut [T], work: &mut OpWork<T>) -> Result<()> {
        let g = self.geom;
        match &self.fft {
            Some(p) => {
                let f = p.ds.f;
                let il = g.image_len();
                let wk = work.fw.get_or_insert_with(|| p.plan.work());
                for (spec, img) in work.spec_c.chunks_mut(f).zip(r.chunks(il)) {
                    g.embed_image(img, &mut work.dom);
                    p.plan.forward_plane(wk, &work.dom, spec)?;
                }
                adjoint_spectrum(&p.ds, &work.spec_c, &mut work.spec_m);
                let (mh, mw) = (g.mh, g.mw);
                work.spec_m.par_chunks_mut(f).zip(out.par_chunks_mut(g.map_len())).try_for_each_init(
                    || p.plan.work(),
                    |wk: &mut Work<T>, (spec, map)| {
                        p.plan.inverse(wk, spec, |i, row| {
                            if i < mh {
                                map[i * mw..(i + 1) * mw].copy_from_slice(&row[..mw]);
                            }
                        })
                    },
                )
            }
            None => direct_adjoint(self.direct_weights()?, &g, r, out),
        }
    }

    fn direct_weights(&self) -> Result<&Tensor4<T>> {
        self.direct.as_ref().ok_or_else(|| ConvCodingError::Numerical {
            op: "ConvOperator",
            detail: "direct backend without its weights".into(),
        })
    }

    fn check_batch(
        &self,
        t: &Tensor4<T>,
        op: &'static str,
        chans: usize,
        h: usize,
        w: usize,
        what: &str,
    ) -> Result<()> {
        let [n, c, th, tw] = t.shape();
        if n == 0 {
            return Err(ConvCodingError::Empty("batch"));
        }
        if c != chans || th != h || tw != w {
            return Err(shape(op, format!("{what} are {c}x{th}x{tw}, expected {chans}x{h}x{w}")));
        }
        Ok(())
    }

    /// `A s` for a batch of maps `(K, M, mh, mw)` → images `(K, C, h, w)`.
    ///
    /// # Errors
    /// [`ConvCodingError::Shape`] for a wrong map shape, [`ConvCodingError::NonFinite`] for NaN/Inf.
    pub fn apply(&self, maps: &Tensor4<T>) -> Result<Tensor4<T>> {
        let g = self.geom;
        self.check_batch(maps, "ConvOperator::apply", self.filters.count(), g.mh, g.mw, "maps")?;
        finite("maps", maps.as_slice())?;
        let k = maps.n();
        let mut out = Tensor4::zeros([k, self.filters.channels(), g.h, g.w])?;
        let il = self.filters.channels() * g.image_len();
        let ml = self.filters.count() * g.map_len();
        out.as_mut_slice()
            .par_chunks_mut(il)
            .zip(maps.as_slice().par_chunks(ml))
            .try_for_each_init(|| self.work(), |wk, (o, s)| self.apply_one(s, o, wk))?;
        Ok(out)
    }

    /// `Aᴴ r` for a batch of images `(K, C, h, w)` → maps `(K, M, mh, mw)`.
    ///
    /// # Errors
    /// [`ConvCodingError::Shape`] for a wrong image shape, [`ConvCodingError::NonFinite`] for NaN/Inf.
    pub fn adjoint(&self, images: &Tensor4<T>) -> Result<Tensor4<T>> {
        let g = self.geom;
        self.check_batch(images, "ConvOperator::adjoint", self.filters.channels(), g.h, g.w, "images")?;
        finite("images", images.as_slice())?;
        let k = images.n();
        let mut out = Tensor4::zeros([k, self.filters.count(), g.mh, g.mw])?;
        let il = self.filters.channels() * g.image_len();
        let ml = self.filters.count() * g.map_len();
        out.as_mut_slice()
            .par_chunks_mut(ml)
            .zip(images.as_slice().par_chunks(il))
            .try_for_each_init(|| self.work(), |wk, (o, r)| self.adjoint_one(r, o, wk))?;
        Ok(out)
    }
}

/// The bank `(M, C, kh, kw)` as weights of a cross-correlation from maps to image channels,
/// `(C, M, kh, kw)` with the taps flipped: `W[c, m, u, v] = d[m, c, kh − 1 − u, kw − 1 − v]`.
fn correlation_weights<T: FftReal>(filters: &Filters<T>) -> Result<Tensor4<T>> {
    let (m, c, kh, kw) = (filters.count(), filters.channels(), filters.kh(), filters.kw());
    let d = filters.as_slice();
    Ok(Tensor4::from_fn([c, m, kh, kw], |[ch, mm, u, v]| d[((mm * c + ch) * kh + kh - 1 - u) * kw + kw - 1 - v])?)
}

/// Where row `a` / column `b` of the padded maps read the maps: `P[a, b] = s[(a + sy) mod mh,
/// (b + sx) mod mw]`, with the padded size `(h + kh − 1, w + kw − 1)`.
fn padding(g: &Geometry) -> (usize, usize, usize, usize) {
    let (sy, sx) = ((g.oy + g.mh + 1 - g.kh) % g.mh, (g.ox + g.mw + 1 - g.kw) % g.mw);
    (g.h + g.kh - 1, g.w + g.kw - 1, sy, sx)
}

/// Direct synthesis `out_c[i, j] = Σ_m Σ_{u,v} d_{m,c}[u, v] s_m[(i + oy − u) mod mh, (j + ox − v) mod mw]`:
/// the maps are padded circularly to `P` (a plain copy for the zero-padded boundary, whose maps
/// already cover every placement) and `out = conv2d(P, W)` (valid cross-correlation with the
/// flipped taps of [`correlation_weights`]).
fn direct_apply<T: FftReal>(wts: &Tensor4<T>, g: &Geometry, maps: &[T], out: &mut [T]) -> Result<()> {
    let m = wts.c();
    let (ph, pw, sy, sx) = padding(g);
    let (mh, mw, ml) = (g.mh, g.mw, g.map_len());
    let mut p = Tensor4::zeros([1, m, ph, pw])?;
    p.as_mut_slice().par_chunks_mut(ph * pw).zip(maps.par_chunks(ml)).for_each(|(dst, map)| {
        for (a, drow) in dst.chunks_mut(pw).enumerate() {
            let r = (a + sy) % mh;
            let src = &map[r * mw..(r + 1) * mw];
            for (b, o) in drow.iter_mut().enumerate() {
                *o = src[(b + sx) % mw];
            }
        }
    });
    let y = conv2d(&p, wts, None, &Conv2dSpec::default())?;
    out.copy_from_slice(y.as_slice());
    Ok(())
}

/// Direct adjoint: the input gradient of the correlation of [`direct_apply`] on the padded maps,
/// folded back onto the maps (every padded entry adds to the map entry it copies).
fn direct_adjoint<T: FftReal>(wts: &Tensor4<T>, g: &Geometry, r: &[T], out: &mut [T]) -> Result<()> {
    let c = wts.n();
    let (ph, pw, sy, sx) = padding(g);
    let (mh, mw, ml) = (g.mh, g.mw, g.map_len());
    let dy = Tensor4::from_vec([1, c, g.h, g.w], r.to_vec())?;
    let dp = conv2d_backward_input(&dy, wts, (ph, pw), &Conv2dSpec::default())?;
    out.par_chunks_mut(ml).zip(dp.as_slice().par_chunks(ph * pw)).for_each(|(map, src)| {
        map.iter_mut().for_each(|v| *v = T::zero());
        for (a, srow) in src.chunks(pw).enumerate() {
            let rr = (a + sy) % mh;
            let mrow = &mut map[rr * mw..(rr + 1) * mw];
            for (b, &v) in srow.iter().enumerate() {
                mrow[(b + sx) % mw] += v;
            }
        }
    });
    Ok(())
}
