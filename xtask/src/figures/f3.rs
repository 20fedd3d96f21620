//! F3 "convolutional vs patch-based": filters learned by patch-based sparse coding and by
//! convolutional sparse coding on the same high-passed natural images, and how redundant each set
//! is under shifts. F3b: an image, its sparse feature maps and its reconstruction.

use super::common::{batch_progress, err, natural_images, psnr};
use super::plot::{Canvas, Chart, Kind, Series, linear, symmetric, tile_sheet};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_conv_coding::{Boundary, CdlLearner, CdlParams, CdlProgress, Csc, CscParams, DictSolver, Filters, Tensor4};
use latent_datasets::GrayImage;
use latent_datasets::patches::extract_random_patches;
use latent_linalg::DMatrix;
use latent_linalg::{Trans, matmul};
use latent_sparse_coding::{Encoder, Lars, OnlineLearner, OnlineParams, ParamGuard};
use serde_json::json;

pub const FIGURE_F3: Figure = Figure {
    id: "F3",
    title: "Convolutional vs patch-based dictionaries",
    claim: "Patch-based sparse coding must represent every pattern at every position inside the patch, so it \
            learns shifted replicas of the same filter; convolutional sparse coding is shift-invariant and learns \
            a richer, less redundant set: each filter's maximum normalised cross-correlation (over all shifts) \
            with any other filter is lower on average. Compared on the filters each method's codes use, at matched \
            sparsity (the same fraction of nonzero code entries per filter and position).",
    run: run_f3,
};

pub const FIGURE_F3B: Figure = Figure {
    id: "F3b",
    title: "Convolutional sparse representation of an image",
    claim: "An image is the sum of a few filters convolved with sparse feature maps, x ≈ Σ_j d_j * s_j: the \
            maps are mostly zero, yet the reconstruction is faithful.",
    run: run_f3b,
};

/// A value → gray-level map for an image panel.
type PixelMap = Box<dyn Fn(f32) -> u8>;

/// Filter size of F3, shared by both methods.
const K: usize = 12;
/// Filter size of F3b.
const KB: usize = 8;

/// High-passed images (minus a 5×5 box-blurred copy, as the benchmark image), scaled to unit
/// variance over the set.
fn high_passed(images: &[GrayImage]) -> Vec<GrayImage> {
    let mut w: Vec<GrayImage> = images
        .iter()
        .map(|i| {
            let l = box_blur(&i.data, i.height, i.width, 5);
            GrayImage { width: i.width, height: i.height, data: i.data.iter().zip(&l).map(|(a, b)| a - b).collect() }
        })
        .collect();
    let (mut s, mut n) = (0.0f64, 0usize);
    for i in &w {
        s += i.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        n += i.data.len();
    }
    let sd = (s / n.max(1) as f64).sqrt().max(1e-12) as f32;
    for i in &mut w {
        i.data.iter_mut().for_each(|v| *v /= sd);
    }
    w
}

/// `per` crops of `size × size` from each image, at fixed positions spread over the image.
fn crops(images: &[GrayImage], size: usize, per: usize) -> Result<Tensor4<f32>, String> {
    let mut data = Vec::new();
    let mut k = 0;
    for img in images {
        if img.width < size || img.height < size {
            continue;
        }
        for c in 0..per {
            // positions along the diagonal: centre first, then towards the corners
            let t = if per == 1 { 0.5 } else { 0.15 + 0.7 * c as f64 / (per - 1) as f64 };
            let x0 = ((img.width - size) as f64 * t) as usize;
            let y0 = ((img.height - size) as f64 * (1.0 - t)) as usize;
            for y in y0..y0 + size {
                data.extend_from_slice(&img.data[y * img.width + x0..y * img.width + x0 + size]);
            }
            k += 1;
        }
    }
    Tensor4::from_vec([k, 1, size, size], data).map_err(err)
}

/// For every filter, its maximum normalised cross-correlation `|⟨d_i, shift(d_j)⟩| / (‖d_i‖‖d_j‖)`
/// over all `(2k − 1)²` relative shifts (zero outside the support) and over all other filters `j`.
pub fn max_shifted_ncc(filters: &[Vec<f64>], k: usize) -> Vec<f64> {
    let norms: Vec<f64> = filters.iter().map(|f| f.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300)).collect();
    let kk = k as isize;
    (0..filters.len())
        .map(|i| {
            let mut best = 0.0f64;
            for j in 0..filters.len() {
                if j == i {
                    continue;
                }
                for dy in -(kk - 1)..kk {
                    for dx in -(kk - 1)..kk {
                        let mut s = 0.0;
                        for y in 0.max(-dy)..kk.min(kk - dy) {
                            for x in 0.max(-dx)..kk.min(kk - dx) {
                                s += filters[i][(y * kk + x) as usize] * filters[j][((y + dy) * kk + x + dx) as usize];
                            }
                        }
                        best = best.max(s.abs() / (norms[i] * norms[j]));
                    }
                }
            }
            best
        })
        .collect()
}

/// `m` random `K × K` patches of the images (mean removed, unit norm, flat ones skipped) as
/// initial filters.
fn data_filters(x: &Tensor4<f32>, m: usize, seed: u64) -> Result<Filters<f32>, String> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xF3);
    let (n, h, w) = (x.n(), x.h(), x.w());
    let mut data = Vec::with_capacity(m * K * K);
    let mut tries = 0;
    while data.len() < m * K * K {
        let (k, y0, x0) = (rng.random_range(0..n), rng.random_range(0..=h - K), rng.random_range(0..=w - K));
        let img = x.sample(k).ok_or("no image")?;
        let mut p: Vec<f32> = (0..K * K).map(|t| img[(y0 + t / K) * w + x0 + t % K]).collect();
        let mean = p.iter().sum::<f32>() / (K * K) as f32;
        p.iter_mut().for_each(|v| *v -= mean);
        tries += 1;
        if p.iter().map(|v| v * v).sum::<f32>() < 1e-6 && tries < 100 * m {
            continue;
        }
        data.extend(p);
    }
    let mut f = Filters::from_vec(m, 1, K, K, data).map_err(err)?;
    f.normalize();
    Ok(f)
}

fn histogram(v: &[f64], bins: usize) -> Vec<(f64, f64)> {
    let mut h = vec![0.0; bins];
    for &x in v {
        h[((x * bins as f64) as usize).min(bins - 1)] += 1.0 / v.len() as f64;
    }
    h.iter().enumerate().map(|(i, &n)| ((i as f64 + 0.5) / bins as f64, n)).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `k × k` patches of a batch of images at random positions (every position is a candidate, as
/// for a convolutional code), mean removed and divided by the patch set's scale.
struct Positions {
    /// Patches, one per column.
    x: DMatrix<f64>,
}

impl Positions {
    fn sample(images: &Tensor4<f32>, k: usize, sd: f64, count: usize, seed: u64) -> Result<Self, String> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x3F3);
        let (n, h, w) = (images.n(), images.h(), images.w());
        let mut cols = Vec::with_capacity(count * k * k);
        for _ in 0..count {
            let (i, y0, x0) = (rng.random_range(0..n), rng.random_range(0..=h - k), rng.random_range(0..=w - k));
            let img = images.sample(i).ok_or("no image")?;
            let p: Vec<f64> = (0..k * k).map(|t| img[(y0 + t / k) * w + x0 + t % k] as f64).collect();
            let m = p.iter().sum::<f64>() / (k * k) as f64;
            cols.extend(p.iter().map(|v| (v - m) / sd));
        }
        Ok(Positions { x: DMatrix::from_vec(k * k, count, cols) })
    }

    /// Fraction of nonzero code entries, relative error ‖x − Ds‖²/‖x‖² of the patches and the atoms
    /// used, when coding with LARS at `lam`.
    fn code(&self, d: &DMatrix<f64>, lam: f64) -> Result<(f64, f64, Vec<bool>), String> {
        let codes = Lars::new(lam).encode_batch(d, &self.x, None).map_err(err)?;
        let rec = matmul(d, Trans::N, &codes.codes, Trans::N).map_err(err)?;
        let e: f64 = rec.iter().zip(self.x.iter()).map(|(a, b)| (a - b).powi(2)).sum();
        let energy: f64 = self.x.iter().map(|v| v * v).sum();
        let used = (0..d.ncols()).map(|j| codes.codes.row(j).iter().any(|v| *v != 0.0)).collect();
        Ok((codes.mean_nnz() / d.ncols() as f64, e / energy.max(1e-300), used))
    }

    /// The LARS penalty whose fraction of nonzero code entries matches `target` (geometric
    /// bisection), with the fraction, the relative error and the atoms used there.
    fn match_sparsity(&self, d: &DMatrix<f64>, target: f64) -> Result<(f64, f64, f64, Vec<bool>), String> {
        let (mut lo, mut hi) = (1e-3f64, 1e3f64);
        for _ in 0..22 {
            let mid = (lo * hi).sqrt();
            if self.code(d, mid)?.0 > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let lam = (lo * hi).sqrt();
        let (f, e, u) = self.code(d, lam)?;
        Ok((lam, f, e, u))
    }
}

fn run_f3(ctx: &mut Ctx) -> Result<(), String> {
    let quick = ctx.quick;
    let (m, crop, per, iters) = if quick { (16, 64, 1, 40) } else { (64, 128, 2, 120) };
    let (patches, epochs) = if quick { (8000, 1) } else { (100_000, 3) };
    let (lam_conv, lam_patch) = (0.15f32, 0.4f64);
    let named = natural_images()?;
    let imgs: Vec<GrayImage> = named.iter().map(|(_, i)| i.clone()).collect();
    let used: Vec<GrayImage> = if quick { imgs.iter().take(6).cloned().collect() } else { imgs.clone() };
    ctx.config("images", json!(named.iter().take(used.len()).map(|(n, _)| n.clone()).collect::<Vec<_>>()));
    ctx.config("preprocessing", "high-pass: image minus its 5×5 box blur, unit variance over the set (both methods)");
    ctx.config("filters", format!("{m} filters of {K}x{K} for both methods"));
    // convolutional: batch CDL on high-passed crops, from random image patches
    let white = high_passed(&used);
    let x = crops(&white, crop, per)?;
    let mut p = CdlParams::new(m, (K, K), lam_conv);
    p.iterations = iters;
    p.code_iters = 2;
    p.dict_solver = DictSolver::Fista { eta: 2.0 };
    p.seed = ctx.seed;
    let clock = std::time::Instant::now();
    let bar = ctx.progress(iters as u64, "F3 conv dictionary");
    let init = data_filters(&x, m, ctx.seed)?;
    let fit = CdlLearner::from(p.check().map_err(err)?)
        .fit_with(
            &x,
            Some(&init),
            Some(Box::new(|pr: &CdlProgress<'_, f32>| {
                bar.set_message(format!("objective {:.1}", pr.stat.objective));
                bar.inc(1);
                std::ops::ControlFlow::Continue(())
            })),
        )
        .map_err(err)?;
    bar.finish_and_clear();
    ctx.metric("conv_learning_seconds", clock.elapsed().as_secs_f64());
    ctx.config("conv_images", json!([x.n(), crop, crop]));
    ctx.config("conv_lambda", lam_conv as f64);
    ctx.config("conv_iterations", iters as u64);
    ctx.config(
        "conv_solver",
        "batch CDL: 2 ADMM coding + 1 FISTA dictionary iterations per outer iteration, periodic boundary",
    );
    // patch-based: online dictionary learning on patches of the same high-passed images
    let (xp, patch_sd) = {
        let mut ps = extract_random_patches(&white, K, K, patches, ctx.seed).map_err(err)?;
        ps.remove_mean();
        let mm: DMatrix<f64> = ps.to_dmatrix_cols();
        let sd = (mm.iter().map(|v| v * v).sum::<f64>() / mm.len() as f64).sqrt().max(1e-12);
        (mm / sd, sd)
    };
    let op = OnlineParams::new(m, lam_patch).epochs(epochs).seed(ctx.seed);
    let clock = std::time::Instant::now();
    let bar = ctx.progress((epochs * patches.div_ceil(256)) as u64, "F3 patch dictionary");
    let pfit = OnlineLearner::from(op.check().map_err(err)?).fit(&xp, Some(batch_progress(&bar))).map_err(err)?;
    bar.finish_and_clear();
    ctx.metric("patch_learning_seconds", clock.elapsed().as_secs_f64());
    ctx.config("patch_count", patches as u64);
    ctx.config("patch_lambda", lam_patch);
    ctx.config(
        "patch_solver",
        "online dictionary learning (Mairal et al. 2009), LARS codes, mean-removed unit-variance patches",
    );
    // the redundancy measure
    let conv: Vec<Vec<f64>> =
        (0..m).map(|j| fit.filters.filter(j).unwrap_or(&[]).iter().map(|&v| v as f64).collect()).collect();
    let patch: Vec<Vec<f64>> = (0..m).map(|j| pfit.dictionary.column(j).iter().copied().collect()).collect();
    let random: Vec<Vec<f64>> = {
        let r = Filters::<f64>::random(m, 1, K, K, ctx.seed + 7).map_err(err)?;
        (0..m).map(|j| r.filter(j).unwrap_or(&[]).to_vec()).collect()
    };
    let (nc, np, nr) = (max_shifted_ncc(&conv, K), max_shifted_ncc(&patch, K), max_shifted_ncc(&random, K));
    // which convolutional filters the final dictionary actually uses on the training crops
    let clock = std::time::Instant::now();
    let spin = ctx.spinner("F3 usage");
    let codes = Csc::from(CscParams::new(lam_conv).max_iter(100).check().map_err(err)?)
        .encode(&fit.filters, &x)
        .map_err(err)?;
    spin.finish_and_clear();
    let plane = x.h() * x.w();
    let used_conv: Vec<bool> = (0..m)
        .map(|j| {
            (0..x.n())
                .any(|k| codes.maps.as_slice()[(k * m + j) * plane..(k * m + j + 1) * plane].iter().any(|v| *v != 0.0))
        })
        .collect();
    let nc_used: Vec<f64> = nc.iter().zip(&used_conv).filter(|(_, u)| **u).map(|(v, _)| *v).collect();
    ctx.metric("conv_coding_seconds", clock.elapsed().as_secs_f64());
    ctx.metric("conv_filters_used", nc_used.len() as u64);
    ctx.metric("mean_max_ncc_conv_used_filters", mean(&nc_used));
    // the conv codes' sparsity and reconstruction error on the training crops
    let rec = codes.reconstruct(&fit.filters).map_err(err)?;
    let energy: f64 = x.as_slice().iter().map(|&v| (v as f64).powi(2)).sum();
    let conv_err = rec.as_slice().iter().zip(x.as_slice()).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum::<f64>()
        / energy.max(1e-300);
    let conv_frac = codes.nnz_fraction();
    ctx.metric("conv_code_nonzero_fraction", conv_frac);
    ctx.metric("conv_relative_error", conv_err);
    // matched sparsity: the patch dictionary codes patches of the same crops at random positions
    // (both methods then have m coefficients per position) with the LARS penalty whose fraction
    // of nonzero code entries equals the conv codes' (bisection on λ)
    let clock = std::time::Instant::now();
    let spin = ctx.spinner("F3 matched sparsity");
    let positions = Positions::sample(&x, K, patch_sd, if quick { 4000 } else { 16000 }, ctx.seed)?;
    let (lam_match, patch_frac, patch_err, used_patch) = positions.match_sparsity(&pfit.dictionary, conv_frac)?;
    spin.finish_and_clear();
    ctx.metric("matched_sparsity_seconds", clock.elapsed().as_secs_f64());
    ctx.metric("patch_lambda_at_matched_sparsity", lam_match);
    ctx.metric("patch_code_nonzero_fraction_at_matched_sparsity", patch_frac);
    ctx.metric("patch_relative_error_at_matched_sparsity", patch_err);
    ctx.metric("sparsity_mismatch", (patch_frac - conv_frac).abs() / conv_frac.max(1e-300));
    ctx.check("sparsity_matched_within_5_percent", "sparsity_mismatch", Cmp::Le, Rhs::Value(0.05))?;
    ctx.metric("patch_atoms_used_at_matched_sparsity", used_patch.iter().filter(|u| **u).count() as u64);
    // redundancy among the filters each method uses (at matched sparsity), each against the others it uses
    let used_of = |f: &[Vec<f64>], u: &[bool]| -> Vec<Vec<f64>> {
        f.iter().zip(u).filter(|(_, u)| **u).map(|(v, _)| v.clone()).collect()
    };
    let nc_among = max_shifted_ncc(&used_of(&conv, &used_conv), K);
    let np_among = max_shifted_ncc(&used_of(&patch, &used_patch), K);
    ctx.metric("mean_max_ncc_conv_among_used", mean(&nc_among));
    ctx.metric("mean_max_ncc_patch_among_used", mean(&np_among));
    ctx.config(
        "comparison",
        "at matched sparsity: the conv codes of the training crops (λ = conv_lambda, 100 ADMM iterations) have \
         m coefficients per pixel position, a fraction conv_code_nonzero_fraction of them nonzero; the patch \
         dictionary codes mean-removed K×K patches of the same crops at random positions (m coefficients per \
         position too) with the LARS penalty (bisection) that gives the same fraction of nonzeros. Redundancy is \
         the mean, over the filters a method's codes use, of the maximum shifted NCC with another filter it uses. \
         (Matched reconstruction error is out of reach: the conv codes reach conv_relative_error, the patch \
         dictionary has fewer atoms than pixels.)",
    );
    let (mc, mp, mr) = (mean(&nc), mean(&np), mean(&nr));
    let frac = |v: &[f64], t: f64| v.iter().filter(|&&x| x > t).count() as f64 / v.len() as f64;
    ctx.metric("mean_max_ncc_patch", mp);
    ctx.metric("mean_max_ncc_conv", mc);
    ctx.metric("mean_max_ncc_random", mr);
    ctx.metric("median_max_ncc_patch", median(&np));
    ctx.metric("median_max_ncc_conv", median(&nc));
    ctx.metric("fraction_above_0.8_patch", frac(&np, 0.8));
    ctx.metric("fraction_above_0.8_conv", frac(&nc, 0.8));
    let last = fit.history.last().ok_or("empty history")?;
    ctx.metric("conv_objective_per_image", last.objective / x.n() as f64);
    ctx.metric("conv_nnz_fraction", last.nnz_fraction);
    ctx.metric("patch_final_batch_objective", pfit.history.last().copied().unwrap_or(f64::NAN));
    let to_f32 = |v: &[Vec<f64>]| v.iter().map(|f| f.iter().map(|&x| x as f32).collect()).collect::<Vec<Vec<f32>>>();
    // order both sheets by redundancy (most redundant first) so replicas sit together
    let order = |v: &[f64]| {
        let mut o: Vec<usize> = (0..v.len()).collect();
        o.sort_by(|a, b| v[*b].total_cmp(&v[*a]));
        o
    };
    let pick = |f: &[Vec<f64>], o: &[usize]| o.iter().map(|&i| f[i].clone()).collect::<Vec<_>>();
    let cols = 8;
    let zoom = if K > 8 { 4 } else { 6 };
    ctx.canvas(
        "patch_filters.png",
        &format!("Patch-based atoms ({K}×{K}), most shift-redundant first (mean max NCC {mp:.3}); each scaled to its own range."),
        &tile_sheet(&to_f32(&pick(&patch, &order(&np))), K, K, cols, zoom, true),
    )?;
    ctx.canvas(
        "conv_filters.png",
        &format!(
            "Convolutional filters ({K}×{K}), most shift-redundant first (mean max NCC {mc:.3}; {} of {m} used by the final codes).",
            nc_used.len()
        ),
        &tile_sheet(&to_f32(&pick(&conv, &order(&nc))), K, K, cols, zoom, true),
    )?;
    let chart = Chart {
        title: "Maximum normalised cross-correlation with another filter, over all shifts".into(),
        x_label: "max NCC".into(),
        y_label: "fraction of filters".into(),
        series: vec![
            Series::new(format!("patch-based (mean {mp:.3})"), histogram(&np, 20), Kind::Bars(0.016), 1),
            Series::new(
                format!("convolutional (mean {mc:.3})"),
                histogram(&nc, 20).into_iter().map(|(a, b)| (a + 0.017, b)).collect(),
                Kind::Bars(0.016),
                0,
            ),
            Series::new(format!("random Gaussian (mean {mr:.3})"), histogram(&nr, 20), Kind::LinePoints, 6),
        ],
        x_range: Some((0.0, 1.05)),
        ..Chart::default()
    };
    ctx.chart("max_ncc_histogram", "Distribution of each filter's maximum normalised cross-correlation (over all relative shifts) with any other filter: patch-based atoms are shifted replicas of each other far more often.", &chart, (720, 420))?;
    let hist: Vec<(f64, f64)> =
        fit.history.iter().enumerate().map(|(i, s)| (i as f64 + 1.0, s.objective / x.n() as f64)).collect();
    ctx.chart(
        "conv_objective",
        "Convolutional dictionary learning: objective per image ½‖Σ d*s − x‖² + λ‖s‖₁ after each outer iteration.",
        &Chart {
            title: "Convolutional dictionary learning".into(),
            x_label: "iteration".into(),
            y_label: "objective per image".into(),
            series: vec![Series::new("", hist, Kind::Line, 0)],
            ..Chart::default()
        },
        (620, 360),
    )?;
    ctx.csv(
        "max_ncc",
        &["filter", "patch_based", "convolutional", "random"],
        &(0..m).map(|i| vec![i as f64, np[i], nc[i], nr[i]]).collect::<Vec<_>>(),
    )?;
    ctx.raw("conv_history", &json!(fit.history))?;
    fit.save(ctx.dir.join("conv_dictionary.bin")).map_err(err)?;
    pfit.save(ctx.dir.join("patch_dictionary.bin")).map_err(err)?;
    ctx.check("all_filters_conv_less_redundant", "mean_max_ncc_conv", Cmp::Lt, Rhs::Metric("mean_max_ncc_patch"))?;
    let holds = ctx.check(
        "claim_holds",
        "mean_max_ncc_conv_among_used",
        Cmp::Lt,
        Rhs::Metric("mean_max_ncc_patch_among_used"),
    )?;
    if !holds {
        return Err(format!(
            "convolutional filters are not less shift-redundant at matched sparsity: mean max NCC among \
             used filters {:.3} vs patch-based {:.3}",
            mean(&nc_among),
            mean(&np_among)
        ));
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() { f64::NAN } else { s[s.len() / 2] }
}

/// Periodic box blur of odd width `r` (separable).
fn box_blur(img: &[f32], h: usize, w: usize, r: usize) -> Vec<f32> {
    let half = (r / 2) as isize;
    let mut tmp = vec![0.0f32; h * w];
    for i in 0..h {
        for j in 0..w {
            let mut s = 0.0;
            for d in -half..=half {
                s += img[i * w + (j as isize + d).rem_euclid(w as isize) as usize];
            }
            tmp[i * w + j] = s / r as f32;
        }
    }
    let mut out = vec![0.0f32; h * w];
    for i in 0..h {
        for j in 0..w {
            let mut s = 0.0;
            for d in -half..=half {
                s += tmp[(i as isize + d).rem_euclid(h as isize) as usize * w + j];
            }
            out[i * w + j] = s / r as f32;
        }
    }
    out
}

/// 2×2 average down-sampling.
fn half(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width / 2, img.height / 2);
    GrayImage::from_fn(w, h, |x, y| {
        let g = |xx: usize, yy: usize| img.data[yy * img.width + xx];
        0.25 * (g(2 * x, 2 * y) + g(2 * x + 1, 2 * y) + g(2 * x, 2 * y + 1) + g(2 * x + 1, 2 * y + 1))
    })
}

fn run_f3b(ctx: &mut Ctx) -> Result<(), String> {
    let quick = ctx.quick;
    let named = natural_images()?;
    let target = "skimage_camera";
    let (_, cam) = named.iter().find(|(n, _)| n == target).ok_or(format!("{target} not found"))?;
    let size = if quick { 128 } else { 256 };
    let small = half(cam);
    let (x0, y0) = ((small.width - size) / 2, (small.height - size) / 2);
    let img = small.crop(x0, y0, size, size).map_err(err)?;
    let low = box_blur(&img.data, size, size, 9);
    let high: Vec<f32> = img.data.iter().zip(&low).map(|(a, b)| a - b).collect();
    // a dictionary learned on the other images (high-passed the same way)
    let (m, crop, iters) = if quick { (16, 64, 25) } else { (32, 128, 60) };
    let mut train = Vec::new();
    for (_, im) in named.iter().filter(|(n, _)| n != target).take(if quick { 4 } else { 12 }) {
        let s = half(im);
        if s.width < crop || s.height < crop {
            continue;
        }
        let c = s.crop((s.width - crop) / 2, (s.height - crop) / 2, crop, crop).map_err(err)?;
        let l = box_blur(&c.data, crop, crop, 9);
        train.extend(c.data.iter().zip(&l).map(|(a, b)| a - b));
    }
    let k = train.len() / (crop * crop);
    let xt = Tensor4::from_vec([k, 1, crop, crop], train).map_err(err)?;
    let lambda = 0.02f32;
    let mut p = CdlParams::new(m, (KB, KB), lambda);
    p.iterations = iters;
    p.code_iters = 2;
    p.dict_solver = DictSolver::Fista { eta: 2.0 };
    p.seed = ctx.seed;
    let spin = ctx.spinner("F3b dictionary");
    let fit = p.check().map_err(err)?.fit(&xt).map_err(err)?;
    spin.finish_and_clear();
    // code the held-out image with zero padding (no wrap-around at its border)
    let xi = Tensor4::from_vec([1, 1, size, size], high.clone()).map_err(err)?;
    let spin = ctx.spinner("F3b coding");
    let coder = CscParams::new(lambda).boundary(Boundary::ZeroPad).max_iter(300).tol(1e-4).check().map_err(err)?;
    let codes = Csc::from(coder).encode(&fit.filters, &xi).map_err(err)?;
    spin.finish_and_clear();
    let rec_high = codes.reconstruct(&fit.filters).map_err(err)?;
    let rec: Vec<f32> = rec_high.as_slice().iter().zip(&low).map(|(a, b)| a + b).collect();
    let info = &codes.info[0];
    let p_full = psnr(&rec, &img.data);
    let p_low = psnr(&low, &img.data);
    ctx.metric("nnz_fraction", info.nnz_fraction);
    ctx.metric("psnr_db", p_full);
    ctx.metric("psnr_lowpass_only_db", p_low);
    ctx.metric("admm_iterations", info.iterations as u64);
    ctx.metric("objective", info.objective);
    ctx.metric("maps_nonzero", (info.nnz_fraction * codes.maps.len() as f64).round());
    ctx.check("maps_mostly_zero", "nnz_fraction", Cmp::Lt, Rhs::Value(0.5))?;
    ctx.check("reconstruction_psnr_at_least_30_db", "psnr_db", Cmp::Ge, Rhs::Value(30.0))?;
    ctx.config("image", format!("{target}, 2×2 averaged, central {size}×{size} crop"));
    ctx.config("split", "low-pass = 9×9 box blur (periodic); the high-pass rest is coded");
    ctx.config("dictionary", format!("{m} filters {KB}×{KB} learned on {k} high-passed {crop}×{crop} crops of other images, λ = {lambda}, {iters} iterations"));
    ctx.config("coding", "ADMM, zero-padded boundary, λ = 0.02, tol 1e-4");
    // panels: image, high-pass, reconstruction, error
    let zoom = if quick { 2 } else { 1 };
    let tw = size * zoom;
    let mut c = Canvas::new(4 * tw + 5 * 6, tw + 12, [255, 255, 255]);
    let hi_a = high.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let errv: Vec<f32> = rec.iter().zip(&img.data).map(|(a, b)| a - b).collect();
    let panels: [(&[f32], PixelMap); 4] = [
        (&img.data, Box::new(linear(0.0, 1.0))),
        (&high, Box::new(symmetric(hi_a))),
        (&rec, Box::new(linear(0.0, 1.0))),
        (&errv, Box::new(symmetric(hi_a))),
    ];
    for (i, (v, map)) in panels.iter().enumerate() {
        c.gray_tile(6 + i * (tw + 6), 6, size, size, v, zoom, map.as_ref());
    }
    ctx.canvas(
        "image_and_reconstruction.png",
        &format!(
            "Left to right: the image; its high-pass part (what is coded); the reconstruction low-pass + Σ d*s ({p_full:.1} dB PSNR, low-pass alone {p_low:.1} dB); the error (same scale as the high-pass)."
        ),
        &c,
    )?;
    // the most used feature maps, cropped to the image area
    let (mh, mw) = (codes.maps.h(), codes.maps.w());
    let maps = codes.maps.as_slice();
    let mut usage: Vec<(usize, f64)> =
        (0..m).map(|j| (j, maps[j * mh * mw..(j + 1) * mh * mw].iter().map(|v| v.abs() as f64).sum())).collect();
    usage.sort_by(|a, b| b.1.total_cmp(&a.1));
    let show = 8.min(m);
    let tiles: Vec<Vec<f32>> = usage[..show]
        .iter()
        .map(|&(j, _)| {
            let mut t = Vec::with_capacity(size * size);
            for y in KB - 1..KB - 1 + size {
                t.extend_from_slice(&maps[j * mh * mw + y * mw + KB - 1..j * mh * mw + y * mw + KB - 1 + size]);
            }
            t
        })
        .collect();
    let sheet = tile_sheet(&tiles, size, size, 4, zoom, true);
    ctx.canvas(
        "feature_maps.png",
        &format!("The {show} most used of the {m} sparse feature maps s_j (gray = 0; {:.2} % of all map entries are nonzero).", 100.0 * info.nnz_fraction),
        &sheet,
    )?;
    let ftiles: Vec<Vec<f32>> = usage.iter().map(|&(j, _)| fit.filters.filter(j).unwrap_or(&[]).to_vec()).collect();
    ctx.canvas(
        "filters.png",
        "The filters d_j, most used first (same order as the maps).",
        &tile_sheet(&ftiles, KB, KB, 8, 6, true),
    )?;
    fit.save(ctx.dir.join("dictionary.bin")).map_err(err)?;
    Ok(())
}
