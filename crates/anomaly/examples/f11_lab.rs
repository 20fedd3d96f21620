//! F11's selection laboratory: train restoring autoencoders on one synthetic texture (the same
//! data, split and crops as `cargo xtask reproduce-figures --fig F11`), several training seeds,
//! and print for every model and for the mean-reconstruction ensemble of all of them
//! (1) the validation numbers on **normal data only** — the detector's pixel AUROC for the
//! pixels of held-out normal images changed by blob corruptions (three draws), and the image
//! AUROC of held-out normal against their corrupted copies for several image scores — and
//! (2) with `--test`, the test numbers (pixel AUROC, image AUROC, AUPRO) that F11 reports.
//! Choices are made on (1); (2) is printed only to report a choice after it was made.
//!
//! ```text
//! cargo run --release -p latent-anomaly --example f11_lab -- TEXTURE TILE CROPS EPOCHS SEEDS [ARCH] [--test]
//! # e.g. grass 32 4000 10 0,1,2 wide --test
//! ```
//! `--tta` prints instead the test-time symmetry averaging candidates T0–T2 (docs, "Test-time
//! symmetry averaging").
//! `--post` prints instead the map post-processing candidates C0–C4 (cross-fitted statistics,
//! see the docs, "Map post-processing against grass's normal residual").
//! `SEEDS` are offsets added to the texture's seed (F11: `100 × texture index`); `ARCH` is
//! `wide` (F11's restoring architecture, default) or `small` (16@16² → 32@8² → code 32@8²).

use latent_anomaly::filter::gaussian_blur;
use latent_anomaly::restore::restoring_ae_params;
use latent_anomaly::{
    Connectivity, Detector, DetectorParams, MeanEnsemble, Reconstructor, Result, aupro, auroc, load_mvtec_test,
    load_mvtec_train, pixel_auroc, random_crops,
};
use latent_anomaly::{MapNormalizer, NormalizerParams, ParamGuard, Scope, Side, Symmetries, SymmetryAverage};
use latent_autoencoder::{Autoencoder, BlobNoise, NoiseModel};
use latent_datasets::anomaly::{AnomalyConfig, TEXTURES, generate_anomaly_set, load_texture};
use latent_datasets::mvtec::MvtecCategory;
use latent_linalg::Tensor4;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

const CROP: usize = 64;

/// Image scores pooled from a σ = 1 map: max; max after a further blur of σ = 2 and 4; mean of
/// the top 1 % and 5 % of the pixels.
const SCORES: [&str; 5] = ["max", "max_blur2", "max_blur4", "top1%", "top5%"];

fn image_scores(maps: &Tensor4<f32>) -> Result<Vec<Vec<f64>>> {
    let [n, _, h, w] = maps.shape();
    let plane = h * w;
    let b2 = gaussian_blur(maps, 2.0)?;
    let b4 = gaussian_blur(maps, 4.0)?;
    let max = |t: &Tensor4<f32>, i: usize| {
        t.as_slice()[i * plane..(i + 1) * plane].iter().fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)))
    };
    let top = |i: usize, frac: f64| {
        let mut v: Vec<f32> = maps.as_slice()[i * plane..(i + 1) * plane].to_vec();
        v.sort_by(|a, b| b.total_cmp(a));
        let k = ((plane as f64 * frac).ceil() as usize).max(1);
        v[..k].iter().map(|&x| f64::from(x)).sum::<f64>() / k as f64
    };
    Ok((0..n).map(|i| vec![max(maps, i), max(&b2, i), max(&b4, i), top(i, 0.01), top(i, 0.05)]).collect())
}

fn column(s: &[Vec<f64>], k: usize) -> Vec<f64> {
    s.iter().map(|r| r[k]).collect()
}

fn stages(arch: &str) -> Vec<(usize, usize, usize, usize)> {
    match arch {
        "small" => vec![(16, 4, 2, 1), (32, 4, 2, 1), (32, 3, 1, 1)],
        "mid" => vec![(32, 4, 2, 1), (64, 4, 2, 1), (32, 5, 1, 2)],
        _ => vec![(32, 4, 2, 1), (64, 4, 2, 1), (64, 5, 1, 2), (32, 5, 1, 2)],
    }
}

/// Map variants from the residual `e = x − x̂`: `G₁∗e²` (F11's), `G₂∗e²`, `(G₂∗e)²`, `(G₃∗e)²`,
/// and `mix` = `G₁∗(e² + w·(G₂∗e)²)` with `w` = mean `e²` / mean `(G₂∗e)²` over the held-out
/// normal images (F11's `MapKind::SquaredWithLocalMean`).
const MAPS: [&str; 5] = ["G1e2", "G2e2", "(G2e)2", "(G3e)2", "mix"];

fn maps_of(x: &Tensor4<f32>, xh: &Tensor4<f32>, norm: Option<&[f64; 2]>) -> Result<Vec<Tensor4<f32>>> {
    let mut e = x.clone();
    e.as_mut_slice().iter_mut().zip(xh.as_slice()).for_each(|(a, &b)| *a -= b);
    let mut e2 = e.clone();
    e2.as_mut_slice().iter_mut().for_each(|v| *v *= *v);
    let sq = |mut t: Tensor4<f32>| {
        t.as_mut_slice().iter_mut().for_each(|v| *v *= *v);
        t
    };
    let g1 = gaussian_blur(&e2, 1.0)?;
    let g2 = gaussian_blur(&e2, 2.0)?;
    let s2 = sq(gaussian_blur(&e, 2.0)?);
    let s3 = sq(gaussian_blur(&e, 3.0)?);
    // F11's SquaredWithLocalMean { sigma: 2, weight: mean e² / mean (G₂∗e)² on held-out normal
    // images }, smoothed with σ = 1
    let m = match norm {
        Some(m) => *m,
        None => [mean(&e2), mean(&s2)],
    };
    let mut mix = e2.clone();
    mix.as_mut_slice().iter_mut().zip(s2.as_slice()).for_each(|(a, &b)| *a += (m[0] / m[1]) as f32 * b);
    let mix = gaussian_blur(&mix, 1.0)?;
    Ok(vec![g1, g2, s2, s3, mix])
}

fn mean(t: &Tensor4<f32>) -> f64 {
    t.as_slice().iter().map(|&v| f64::from(v)).sum::<f64>() / t.len() as f64
}

fn report<R: Reconstructor<f32>>(
    label: &str,
    model: R,
    held: &Tensor4<f32>,
    cat: Option<&MvtecCategory>,
    seed: u64,
    tile: usize,
) -> Result<()> {
    let det = Detector::new(model, DetectorParams::new().tiles(tile, tile, 8).batch_size(256).check()?);
    let noise = NoiseModel::Blobs(BlobNoise::default());
    let n = held.n();
    let plane = CROP * CROP;
    let clean_maps = maps_of(held, &det.reconstruct(held)?, None)?;
    let norm = {
        let xh = det.reconstruct(held)?;
        let mut e = held.clone();
        e.as_mut_slice().iter_mut().zip(xh.as_slice()).for_each(|(a, &b)| *a -= b);
        let e2: Vec<f32> = e.as_slice().iter().map(|v| v * v).collect();
        let mut s2 = gaussian_blur(&e, 2.0)?;
        s2.as_mut_slice().iter_mut().for_each(|v| *v *= *v);
        [e2.iter().map(|&v| f64::from(v)).sum::<f64>() / e2.len() as f64, mean(&s2)]
    };
    let clean_scores: Vec<Vec<Vec<f64>>> = clean_maps.iter().map(image_scores).collect::<Result<_>>()?;
    // per map: pixel AUROCs of the draws, corrupted image scores of the changed images
    let mut pix = vec![Vec::new(); MAPS.len()];
    let mut corr_scores = vec![Vec::new(); MAPS.len()];
    for draw in 0..3u64 {
        let mut c = held.clone();
        noise.corrupt_images(c.as_mut_slice(), held.shape(), None, &mut ChaCha8Rng::seed_from_u64(seed + 4 + draw));
        let changed: Vec<bool> = held.as_slice().iter().zip(c.as_slice()).map(|(a, b)| a != b).collect();
        let maps = maps_of(&c, &det.reconstruct(&c)?, Some(&norm))?;
        for (k, m) in maps.iter().enumerate() {
            pix[k].push(auroc(m.as_slice(), &changed)?);
            let sc = image_scores(m)?;
            for i in 0..n {
                if changed[i * plane..(i + 1) * plane].iter().any(|&b| b) {
                    corr_scores[k].push(sc[i].clone());
                }
            }
        }
    }
    for k in 0..MAPS.len() {
        let mean_pix = pix[k].iter().sum::<f64>() / pix[k].len() as f64;
        print!("{label:9} {:7} VAL pix {mean_pix:.4} img", MAPS[k]);
        for s in 0..SCORES.len() {
            let mut v = column(&clean_scores[k], s);
            let mut l = vec![false; n];
            v.extend(column(&corr_scores[k], s));
            l.resize(v.len(), true);
            print!(" {}={:.3}", SCORES[s], auroc(&v, &l)?);
        }
        println!();
    }
    if let Some(cat) = cat {
        let test = load_mvtec_test::<f32>(cat, 1)?;
        let maps = maps_of(&test.images, &det.reconstruct(&test.images)?, Some(&norm))?;
        let labels: Vec<bool> = test.defects.iter().map(|d| d != "good").collect();
        let shape = [test.images.n(), CROP, CROP];
        for (k, m) in maps.iter().enumerate() {
            let sc = image_scores(m)?;
            print!(
                "{label:9} {:7} TEST pix {:.4} aupro {:.4} img",
                MAPS[k],
                pixel_auroc(m.as_slice(), &test.masks, shape)?,
                aupro(m.as_slice(), &test.masks, shape, 0.3, Connectivity::Eight)?
            );
            for s in 0..SCORES.len() {
                print!(" {}={:.3}", SCORES[s], auroc(&column(&sc, s), &labels)?);
            }
            // stain pixel AUROC
            let idx: Vec<usize> =
                (0..test.defects.len()).filter(|&i| test.defects[i] == "stain" || test.defects[i] == "good").collect();
            let mm: Vec<f32> = idx.iter().flat_map(|&i| m.as_slice()[i * plane..(i + 1) * plane].to_vec()).collect();
            let mk: Vec<bool> = idx.iter().flat_map(|&i| test.masks[i * plane..(i + 1) * plane].to_vec()).collect();
            println!(" stain_pix={:.3}", auroc(&mm, &mk)?);
        }
    }
    Ok(())
}

/// Post-processing candidates of the 2026-12-06 round (see the docs, "Map post-processing
/// against grass's normal residual"): C0 = F11's mix map, C1 / C2 = C0 normalised (pooled /
/// per-pixel statistics), C3 = multi-scale mix (σ = 2 and 4 local means), C4 = C0 over the
/// local variance of the reconstruction plus its normal mean.
const POST: [&str; 5] = ["C0", "C1", "C2", "C3", "C4"];

/// What the candidates need from clean normal images and their reconstructions.
struct PostStats {
    w2: f64,
    w4: f64,
    global: MapNormalizer,
    per_pixel: MapNormalizer,
    vbar: f64,
}

fn residual(x: &Tensor4<f32>, xh: &Tensor4<f32>) -> Tensor4<f32> {
    let mut e = x.clone();
    e.as_mut_slice().iter_mut().zip(xh.as_slice()).for_each(|(a, &b)| *a -= b);
    e
}

fn squared(mut t: Tensor4<f32>) -> Tensor4<f32> {
    t.as_mut_slice().iter_mut().for_each(|v| *v *= *v);
    t
}

/// `G₂∗(x̂ − G₂∗x̂)²`: the local variance of the reconstruction.
fn local_var(xh: &Tensor4<f32>) -> Result<Tensor4<f32>> {
    gaussian_blur(&squared(residual(xh, &gaussian_blur(xh, 2.0)?)), 2.0)
}

/// `G₁∗(e² + Σ wₛ·(Gₛ∗e)²)` over the given (σ, w).
fn mix_map(e: &Tensor4<f32>, terms: &[(f64, f64)]) -> Result<Tensor4<f32>> {
    let mut m = squared(e.clone());
    for &(sigma, w) in terms {
        let l = squared(gaussian_blur(e, sigma)?);
        m.as_mut_slice().iter_mut().zip(l.as_slice()).for_each(|(a, &b)| *a += w as f32 * b);
    }
    gaussian_blur(&m, 1.0)
}

fn post_stats(x: &Tensor4<f32>, xh: &Tensor4<f32>) -> Result<PostStats> {
    let e = residual(x, xh);
    let e2 = mean(&squared(e.clone()));
    let w2 = e2 / mean(&squared(gaussian_blur(&e, 2.0)?));
    let w4 = e2 / mean(&squared(gaussian_blur(&e, 4.0)?));
    let c0 = mix_map(&e, &[(2.0, w2)])?;
    let np = |scope| NormalizerParams::new().window(2.0).floor(0.01).side(Side::TwoSided).scope(scope).check();
    Ok(PostStats {
        w2,
        w4,
        global: np(Scope::Global)?.fit(&c0)?,
        per_pixel: np(Scope::PerPixel)?.fit(&c0)?,
        vbar: mean(&local_var(xh)?),
    })
}

/// The candidate maps C0–C4 and F11's image-score map `G₁∗e²`.
fn post_maps(x: &Tensor4<f32>, xh: &Tensor4<f32>, st: &PostStats) -> Result<(Vec<Tensor4<f32>>, Tensor4<f32>)> {
    let e = residual(x, xh);
    let c0 = mix_map(&e, &[(2.0, st.w2)])?;
    let c1 = st.global.apply(&c0)?;
    let c2 = st.per_pixel.apply(&c0)?;
    let c3 = mix_map(&e, &[(2.0, st.w2), (4.0, st.w4)])?;
    let mut c4 = c0.clone();
    let v = local_var(xh)?;
    c4.as_mut_slice().iter_mut().zip(v.as_slice()).for_each(|(a, &b)| *a /= b + st.vbar as f32);
    let g1 = gaussian_blur(&squared(e), 1.0)?;
    Ok((vec![c0, c1, c2, c3, c4], g1))
}

fn slice_n(t: &Tensor4<f32>, from: usize, to: usize) -> Result<Tensor4<f32>> {
    let [_, c, h, w] = t.shape();
    let d = c * h * w;
    Ok(Tensor4::from_vec([to - from, c, h, w], t.as_slice()[from * d..to * d].to_vec())?)
}

fn concat(a: &Tensor4<f32>, b: &Tensor4<f32>) -> Result<Tensor4<f32>> {
    let [n, c, h, w] = a.shape();
    let mut v = a.as_slice().to_vec();
    v.extend_from_slice(b.as_slice());
    Ok(Tensor4::from_vec([n + b.n(), c, h, w], v)?)
}

/// Candidate maps of `x` (20 images, reconstructions `xh`) with cross-fitted statistics: the
/// first half's maps from the second half's clean images' statistics and vice versa.
fn cross_maps(
    x: &Tensor4<f32>,
    xh: &Tensor4<f32>,
    stats: &[PostStats; 2],
) -> Result<(Vec<Tensor4<f32>>, Tensor4<f32>)> {
    let h = x.n() / 2;
    let (ma, ga) = post_maps(&slice_n(x, 0, h)?, &slice_n(xh, 0, h)?, &stats[1])?;
    let (mb, gb) = post_maps(&slice_n(x, h, x.n())?, &slice_n(xh, h, x.n())?, &stats[0])?;
    let maps = ma.iter().zip(&mb).map(|(a, b)| concat(a, b)).collect::<Result<_>>()?;
    Ok((maps, concat(&ga, &gb)?))
}

/// The changed pixels, the candidate maps and `G₁∗e²` of one validation draw.
type ValDraw = (Vec<bool>, Vec<Tensor4<f32>>, Tensor4<f32>);

/// One validation draw: `held` corrupted by the restoring autoencoder's blobs (seed `seed`), the
/// changed pixels, and the candidate maps and `G₁∗e²` of the corrupted images (cross-fitted).
fn val_draw<R: Reconstructor<f32>>(
    held: &Tensor4<f32>,
    det: &Detector<f32, R>,
    stats: &[PostStats; 2],
    seed: u64,
) -> Result<ValDraw> {
    let mut c = held.clone();
    NoiseModel::Blobs(BlobNoise::default()).corrupt_images(
        c.as_mut_slice(),
        held.shape(),
        None,
        &mut ChaCha8Rng::seed_from_u64(seed),
    );
    let changed: Vec<bool> = held.as_slice().iter().zip(c.as_slice()).map(|(a, b)| a != b).collect();
    let (maps, g1) = cross_maps(&c, &det.reconstruct(&c)?, stats)?;
    Ok((changed, maps, g1))
}

/// The test set, its candidate maps and `G₁∗e²` (statistics from all held-out images and their
/// reconstructions `rec`, as F11 computes them), the image labels and the mask shape.
type TestMaps = (latent_anomaly::TestSet<f32>, Vec<Tensor4<f32>>, Tensor4<f32>, Vec<bool>, [usize; 3]);

fn test_maps<R: Reconstructor<f32>>(
    cat: &MvtecCategory,
    held: &Tensor4<f32>,
    rec: &Tensor4<f32>,
    det: &Detector<f32, R>,
) -> Result<TestMaps> {
    let st = post_stats(held, rec)?;
    let test = load_mvtec_test::<f32>(cat, 1)?;
    let (maps, g1) = post_maps(&test.images, &det.reconstruct(&test.images)?, &st)?;
    let labels: Vec<bool> = test.defects.iter().map(|d| d != "good").collect();
    let shape = [test.images.n(), CROP, CROP];
    Ok((test, maps, g1, labels, shape))
}

fn report_post<R: Reconstructor<f32>>(
    label: &str,
    model: R,
    held: &Tensor4<f32>,
    cat: Option<&MvtecCategory>,
    seed: u64,
    tile: usize,
) -> Result<()> {
    let det = Detector::new(model, DetectorParams::new().tiles(tile, tile, 8).batch_size(256).check()?);
    let n = held.n();
    let h = n / 2;
    let plane = CROP * CROP;
    let rec = det.reconstruct(held)?;
    let stats = [
        post_stats(&slice_n(held, 0, h)?, &slice_n(&rec, 0, h)?)?,
        post_stats(&slice_n(held, h, n)?, &slice_n(&rec, h, n)?)?,
    ];
    let (clean_maps, clean_g1) = cross_maps(held, &rec, &stats)?;
    let clean_scores: Vec<Vec<Vec<f64>>> = clean_maps.iter().map(image_scores).collect::<Result<_>>()?;
    let clean_f11 = column(&image_scores(&clean_g1)?, 4);
    let mut pix = vec![Vec::new(); POST.len()];
    let mut corr_scores = vec![Vec::new(); POST.len()];
    let mut corr_f11 = Vec::new();
    for draw in 0..3u64 {
        let (changed, maps, g1) = val_draw(held, &det, &stats, seed + 4 + draw)?;
        let hit = |i: usize| changed[i * plane..(i + 1) * plane].iter().any(|&b| b);
        let f = column(&image_scores(&g1)?, 4);
        corr_f11.extend((0..n).filter(|&i| hit(i)).map(|i| f[i]));
        for (k, m) in maps.iter().enumerate() {
            pix[k].push(auroc(m.as_slice(), &changed)?);
            let sc = image_scores(m)?;
            corr_scores[k].extend((0..n).filter(|&i| hit(i)).map(|i| sc[i].clone()));
        }
    }
    let img_auroc = |clean: Vec<f64>, corr: &[f64]| {
        let mut v = clean;
        let mut l = vec![false; v.len()];
        v.extend_from_slice(corr);
        l.resize(v.len(), true);
        auroc(&v, &l)
    };
    println!("{label:9} f11score VAL img top5%(G1e2)={:.3}", img_auroc(clean_f11, &corr_f11)?);
    for k in 0..POST.len() {
        let mean_pix = pix[k].iter().sum::<f64>() / pix[k].len() as f64;
        print!("{label:9} {:3} VAL pix {mean_pix:.4} img", POST[k]);
        for s in 0..SCORES.len() {
            print!(" {}={:.3}", SCORES[s], img_auroc(column(&clean_scores[k], s), &column(&corr_scores[k], s))?);
        }
        println!();
    }
    if let Some(cat) = cat {
        let (test, maps, g1, labels, shape) = test_maps(cat, held, &rec, &det)?;
        println!("{label:9} f11score TEST img top5%(G1e2)={:.3}", auroc(&column(&image_scores(&g1)?, 4), &labels)?);
        for (k, m) in maps.iter().enumerate() {
            let sc = image_scores(m)?;
            print!(
                "{label:9} {:3} TEST pix {:.4} aupro {:.4} img",
                POST[k],
                pixel_auroc(m.as_slice(), &test.masks, shape)?,
                aupro(m.as_slice(), &test.masks, shape, 0.3, Connectivity::Eight)?
            );
            for s in 0..SCORES.len() {
                print!(" {}={:.3}", SCORES[s], auroc(&column(&sc, s), &labels)?);
            }
            print_per_defect(m, &test, plane)?;
        }
    }
    Ok(())
}

/// Test-time symmetry averaging candidates T0 (the model), T1 (mirrors), T2 (dihedral) with F11's
/// map (C4, cross-fitted statistics) and image score (top 5 % of `G₁∗e²`): val pix, val AUPRO of
/// the changed regions, val img; with a test category, the test numbers afterwards.
fn report_tta(
    label: &str,
    model: &Autoencoder<f32>,
    held: &Tensor4<f32>,
    cat: Option<&MvtecCategory>,
    seed: u64,
    tile: usize,
) -> Result<()> {
    let cands: [(&str, Option<Symmetries>); 3] =
        [("T0", None), ("T1", Some(Symmetries::Mirrors)), ("T2", Some(Symmetries::Dihedral))];
    for (name, sym) in cands {
        let rec: Box<dyn Reconstructor<f32>> = match sym {
            None => Box::new(model),
            Some(s) => Box::new(SymmetryAverage::new(model, s)),
        };
        let det = Detector::new(rec, DetectorParams::new().tiles(tile, tile, 8).batch_size(256).check()?);
        let n = held.n();
        let h = n / 2;
        let plane = CROP * CROP;
        let t = Instant::now();
        let rec = det.reconstruct(held)?;
        let stats = [
            post_stats(&slice_n(held, 0, h)?, &slice_n(&rec, 0, h)?)?,
            post_stats(&slice_n(held, h, n)?, &slice_n(&rec, h, n)?)?,
        ];
        let (_, clean_g1) = cross_maps(held, &rec, &stats)?;
        let clean_f11 = column(&image_scores(&clean_g1)?, 4);
        let (mut pix, mut pro, mut corr_f11) = (Vec::new(), Vec::new(), Vec::new());
        for draw in 0..3u64 {
            let (changed, maps, g1) = val_draw(held, &det, &stats, seed + 4 + draw)?;
            let hit = |i: usize| changed[i * plane..(i + 1) * plane].iter().any(|&b| b);
            let f = column(&image_scores(&g1)?, 4);
            corr_f11.extend((0..n).filter(|&i| hit(i)).map(|i| f[i]));
            pix.push(auroc(maps[4].as_slice(), &changed)?);
            pro.push(aupro(maps[4].as_slice(), &changed, [n, CROP, CROP], 0.3, Connectivity::Eight)?);
        }
        let mut v = clean_f11;
        let mut l = vec![false; v.len()];
        v.extend_from_slice(&corr_f11);
        l.resize(v.len(), true);
        let m3 = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        println!(
            "{label:9} {name} VAL pix {:.4} aupro {:.4} img {:.3}  ({:.1} s)",
            m3(&pix),
            m3(&pro),
            auroc(&v, &l)?,
            t.elapsed().as_secs_f64()
        );
        if let Some(cat) = cat {
            let (test, maps, g1, labels, shape) = test_maps(cat, held, &rec, &det)?;
            let m = &maps[4];
            print!(
                "{label:9} {name} TEST pix {:.4} aupro {:.4} img {:.3}",
                pixel_auroc(m.as_slice(), &test.masks, shape)?,
                aupro(m.as_slice(), &test.masks, shape, 0.3, Connectivity::Eight)?,
                auroc(&column(&image_scores(&g1)?, 4), &labels)?
            );
            print_per_defect(m, &test, plane)?;
        }
    }
    Ok(())
}

/// Prints the pixel AUROC of `m` per defect type (that type's images and the good ones).
fn print_per_defect(m: &Tensor4<f32>, test: &latent_anomaly::TestSet<f32>, plane: usize) -> Result<()> {
    let mut kinds: Vec<&String> = test.defects.iter().filter(|d| *d != "good").collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let idx: Vec<usize> =
            (0..test.defects.len()).filter(|&i| test.defects[i] == *kind || test.defects[i] == "good").collect();
        let mm: Vec<f32> = idx.iter().flat_map(|&i| m.as_slice()[i * plane..(i + 1) * plane].to_vec()).collect();
        let mk: Vec<bool> = idx.iter().flat_map(|&i| test.masks[i * plane..(i + 1) * plane].to_vec()).collect();
        print!(" {kind}={:.3}", auroc(&mm, &mk)?);
    }
    println!();
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let test = args.iter().any(|a| a == "--test");
    let post = args.iter().any(|a| a == "--post");
    let tta = args.iter().any(|a| a == "--tta");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let texture = pos.first().map_or("grass", |s| s.as_str());
    let tile: usize = pos.get(1).map_or(32, |s| s.parse().unwrap());
    let n_crops: usize = pos.get(2).map_or(4000, |s| s.parse().unwrap());
    let epochs: usize = pos.get(3).map_or(10, |s| s.parse().unwrap());
    let seeds: Vec<u64> = pos.get(4).map_or(vec![0], |s| s.split(',').map(|v| v.parse().unwrap()).collect());
    let arch = pos.get(5).map_or("wide", |s| s.as_str());
    let ci = TEXTURES.iter().position(|t| *t == texture).expect("texture: brick, grass or gravel");
    let seed = 100 * ci as u64;

    let root = std::env::temp_dir().join(format!("f11_lab_{}", std::process::id()));
    let cfg =
        AnomalyConfig { crop: CROP, n_train: 100, n_test_good: 20, n_test_per_defect: 5, ..AnomalyConfig::default() };
    let set = generate_anomaly_set(&load_texture(texture)?, texture, &cfg, seed)?;
    set.write_mvtec(&root)?;
    let cat = MvtecCategory::open(&root, texture)?;
    let all = load_mvtec_train::<f32>(&cat, 1)?;
    let n_fit = all.n() - all.n() / 5;
    let d = all.sample_len();
    let fit = Tensor4::from_vec([n_fit, 1, CROP, CROP], all.as_slice()[..n_fit * d].to_vec())?;
    let held = Tensor4::from_vec([all.n() - n_fit, 1, CROP, CROP], all.as_slice()[n_fit * d..].to_vec())?;
    let crops = random_crops(&fit, tile, tile, n_crops, seed + 1)?;
    println!("== {texture} tile {tile} crops {n_crops} epochs {epochs} arch {arch} seeds {seeds:?}");

    let mut models: Vec<Autoencoder<f32>> = Vec::new();
    for &s in &seeds {
        let t = Instant::now();
        let path = std::env::temp_dir().join(format!("f11lab_{texture}_{tile}_{n_crops}_{epochs}_{arch}_{s}.model"));
        let m = if let Ok(m) = Autoencoder::<f32>::load(&path) {
            m
        } else {
            let m = restoring_ae_params(tile, &stages(arch), epochs, seed + s, NoiseModel::Blobs(BlobNoise::default()))
                .check()?
                .fit(&crops)?
                .model;
            m.save(&path)?;
            m
        };
        println!("seed +{s}: trained in {:.1} s", t.elapsed().as_secs_f64());
        if tta {
            report_tta(&format!("seed+{s}"), &m, &held, test.then_some(&cat), seed, tile)?;
        } else if post {
            report_post(&format!("seed+{s}"), &m, &held, test.then_some(&cat), seed, tile)?;
        } else {
            report(&format!("seed+{s}"), &m, &held, test.then_some(&cat), seed, tile)?;
        }
        models.push(m);
    }
    if post || tta {
        // the ensemble is not a candidate of the post-processing round
    } else if models.len() > 1 {
        report("ensemble", MeanEnsemble::new(models)?, &held, test.then_some(&cat), seed, tile)?;
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
