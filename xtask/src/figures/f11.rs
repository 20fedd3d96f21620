//! F11 "anomaly detection": textures with synthetic defects, three reconstructors side by side;
//! F11b: one-class MNIST and Fashion-MNIST.

use super::common::err;
use super::plot::{Canvas, Chart, Kind, Series};
use super::{Cmp, Ctx, Figure, Rhs};
use indicatif::ProgressBar;
use latent_anomaly::heatmap::compare_masks;
use latent_anomaly::restore::texture_ae_params;
use latent_anomaly::{
    Checked, ContrastNorm, Detector, DetectorParams, EvalParams, EvalReport, Evaluation, ImageScore, MapKind,
    MapParams, MeanEnsemble, NormalizerParams, ParamGuard, PatchCoder, PatchDictionary, PatchDictionaryParams,
    Reconstructor, RgbImage, Scope, Side, SsimAutoencoder, SsimParams, TestSet, corrupted_pixel_auroc, evaluate_mvtec,
    heatmap_panel, load_mvtec_test, load_mvtec_train, random_crops, restoration_check,
};
use latent_autoencoder::models::{ConvAeParams, MlpAeParams};
use latent_autoencoder::train::TrainParams;
use latent_autoencoder::{Activation, Autoencoder, BlobNoise, CheckedModel, NoiseModel};
use latent_datasets::anomaly::{AnomalyConfig, TEXTURES, generate_anomaly_set, load_texture};
use latent_datasets::mvtec::MvtecCategory;
use latent_datasets::{FashionMnist, ImageSet, Mnist, one_class_split};
use latent_linalg::Tensor4;
use serde_json::{Value, json};
use std::path::Path;

pub const FIGURE_F11: Figure = Figure {
    id: "F11",
    title: "Anomaly detection by reconstruction error",
    claim: "A reconstructor trained on normal data only reconstructs normal structure and fails on anomalies: \
            the per-pixel reconstruction error is a heatmap that localises defects and its maximum scores the \
            image. Measured on three textures with synthetic defects (MVTec AD layout) for an ℓ2 autoencoder, \
            an SSIM autoencoder and a sparse-coding patch dictionary: image AUROC, pixel AUROC, AUPRO (FPR ≤ 0.3). \
            On busy textures (grass, gravel) smooth defects (stains, holes, flat patches) are reconstructed better \
            than the texture, so the raw error map is inverted there; the same three models with the map normalised \
            by held-out normal data (two-sided z-score of the local residual energy: too much and too little error \
            are both anomalous) are shown alongside; neither reaches the issue's bar of pixel AUROC ≥ 0.90 on every \
            category. A restoring autoencoder (the lecture's denoising autoencoder with generic blob-shaped \
            corruptions — blurred, contrast-scaled, shifted or flat regions — trained on normal crops only to return \
            the clean crop) maps defects back to normal texture, so its error is high on them; its map adds to the \
            squared error the squared local mean of the residual (a soft stain leaves a residual of one sign that \
            survives the local mean, the busy texture's residual averages out) and is divided by the local contrast of \
            the reconstruction (the error relative to the error texture of that contrast normally has), and its image score is the mean of \
            the top 5 % of its plain squared-error map. It is the recommended detector and is reported over three training seeds (mean and \
            worst seed per texture, and the ensemble of the three models); architecture, training length, map and \
            score were chosen on corrupted held-out normal data only, never on the test defects, within the \
            ten-minute budget of the whole run (issue 17). The earlier, ten times costlier restoring model (wider, \
            5×5 stages, 48×48 tiles on grass and gravel, up to 50 epochs; one seed, quoted from the run of 2026-11-27, \
            not measured here: «pixel AUROC 0.995 / 0.902 / 0.952») \
            is no longer run: three seeds of it take about 30 minutes. Whether the issue's bar — worst-seed pixel \
            AUROC ≥ 0.92 and mean image AUROC ≥ 0.90 on every texture — is reached is stated by \
            recommended_worst_seed_pixel_auroc_at_least_0.92_on_every_texture and \
            recommended_mean_image_auroc_at_least_0.90_on_every_texture; soft, low-contrast stains on grass and the \
            image score on the busy textures are the hardest part (see the per-defect results).",
    run: run_textures,
};

pub const FIGURE_F11B: Figure = Figure {
    id: "F11b",
    title: "One-class MNIST and Fashion-MNIST",
    claim: "Trained on one class only, the reconstruction error separates that class from all others: \
            AUROC per normal class and its mean («Bergmann et al. report ≈ 0.98 mean one-class MNIST AUROC for an \
            ℓ2 autoencoder»).",
    run: run_one_class,
};

/// The detectors, in display order: the three raw-error detectors, the same three models with
/// the map normalised by held-out normal data, the restoring autoencoder (its numbers: the mean
/// over [`RESTORING_SEEDS`] training seeds) and the mean-reconstruction ensemble of those seeds'
/// restoring autoencoders.
const MODELS: [&str; 8] = [
    "l2_ae",
    "ssim_ae",
    "sparse_coding",
    "l2_ae_normalized",
    "ssim_ae_normalized",
    "sparse_coding_normalized",
    "restoring_ae",
    "restoring_ae_ensemble",
];
const MODEL_NAMES: [&str; 8] = [
    "ℓ2 autoencoder",
    "SSIM autoencoder",
    "sparse coding (patch dictionary)",
    "ℓ2 AE, normalised map",
    "SSIM AE, normalised map",
    "sparse coding, normalised map",
    "restoring AE (mean of 3 seeds)",
    "restoring AE, 3-seed ensemble",
];
/// Index of the restoring autoencoder in [`MODELS`] (the recommended detector) and of the
/// ensemble.
const RESTORING: usize = 6;
const ENSEMBLE: usize = 7;
/// Training seeds of the restoring autoencoder (model seed = texture seed + k, k < this).
const RESTORING_SEEDS: usize = 3;
/// Detectors shown in the example sheet (the three raw ones, the normalised ℓ2 autoencoder and
/// the restoring autoencoder of the first seed).
const SHEET_MODELS: [usize; 5] = [0, 1, 2, 3, 6];

/// Sizes of the texture experiment.
struct TextureSizes {
    n_train: usize,
    n_test_good: usize,
    n_test_per_defect: usize,
    crops: usize,
    epochs: usize,
    /// Epochs of the restoring autoencoder (chosen on held-out normal data, see
    /// [`restoring_ae`]).
    restoring_epochs: usize,
    train_patches: usize,
}

fn sizes(quick: bool) -> TextureSizes {
    if quick {
        TextureSizes {
            n_train: 40,
            n_test_good: 8,
            n_test_per_defect: 2,
            crops: 800,
            epochs: 3,
            restoring_epochs: 3,
            train_patches: 5000,
        }
    } else {
        TextureSizes {
            n_train: 100,
            n_test_good: 20,
            n_test_per_defect: 5,
            crops: 4000,
            epochs: 10,
            restoring_epochs: 15,
            train_patches: 20000,
        }
    }
}

/// Tile side of the autoencoders (test images are 64×64 and processed in overlapping tiles).
const TILE: usize = 32;
const CROP: usize = 64;
const SMOOTHING: f64 = 2.0;
/// Map smoothing σ of the restoring autoencoder (chosen with the architecture and epochs on
/// held-out normal data, see [`restoring_ae`]).
const RESTORING_SMOOTHING: f64 = 1.0;

/// The map normaliser of the `*_normalized` detectors, fixed a priori (not tuned on the test
/// set): local-energy window σ = the smoothing σ of the raw maps, floor 1 % of the normal mean
/// error, two-sided, statistics pooled over all pixels (the textures are stationary).
fn normalizer() -> Result<Checked<NormalizerParams>, String> {
    NormalizerParams::new().window(SMOOTHING).floor(0.01).side(Side::TwoSided).scope(Scope::Global).check().map_err(err)
}

/// The convolutional autoencoder used for both losses: 1×32×32 → 16×16×16 → 32×8×8 → 32×4×4 →
/// code 16×4×4 (a 4× bottleneck), mirrored decoder, leaky ReLU, sigmoid output.
fn conv_ae(epochs: usize, seed: u64) -> Result<latent_autoencoder::Checked<ConvAeParams>, String> {
    texture_ae_params(TILE, &[(16, 4, 2, 1), (32, 4, 2, 1), (32, 4, 2, 1), (16, 3, 1, 1)], epochs, seed)
        .check()
        .map_err(err)
}

/// Encoder stages `(channels, kernel, stride, padding)` of the restoring autoencoder:
/// 1×32×32 → 16@16² → 32@8² → code 32@8² (3×3, stride 1), mirrored decoder (round 1's
/// architecture, see [`restoring_ae`]).
const RESTORING_STAGES: [(usize, usize, usize, usize); 3] = [(16, 4, 2, 1), (32, 4, 2, 1), (32, 3, 1, 1)];

/// Gaussian σ of the local mean of the residual in the restoring autoencoder's map
/// ([`MapKind::SquaredWithLocalMean`]).
const LOCAL_MEAN_SIGMA: f64 = 2.0;

/// Image score of the restoring autoencoder: the mean of the top 5 % of its plain squared-error
/// map smoothed with σ = 1 (chosen on held-out normal against blob-corrupted held-out normal
/// images, see [`restoring_ae`] and [`restoring_score_map`]).
const RESTORING_SCORE: ImageScore = ImageScore::TopPercent(5);

/// The restoring (blob-denoising) autoencoder: [`RESTORING_STAGES`], otherwise as [`conv_ae`]
/// (leaky ReLU, sigmoid output, Adam lr 2e-3, batch 32), trained on the ℓ2 autoencoder's crops
/// to return the clean crop of a blob-corrupted one, with training seed `seed`.
///
/// History (all choices on blob-corrupted held-out *normal* images only, never on test
/// defects; findings in the latent-anomaly README, "What we tried", and
/// `crates/anomaly/docs/f11-seeds-and-budget.md`): rounds 1–3 (2026-11-27) chose a wider model
/// (32@16² → 64@8² → 64@8² 5×5 → code 32@8² 5×5) trained 8000 crops × 25 epochs (brick) and
/// 48×48 tiles, 4000 crops × 50 epochs (grass, gravel): about 640 s of training per run of F11
/// on two idle cores, one seed. Three seeds of it do not fit issue 17's ten-minute budget for
/// the whole run (about 30 min); the 2026-12-05 round chose, within the budget, round 1's
/// architecture trained on the ℓ2 autoencoder's 4000 crops for 10 epochs, the
/// [`MapKind::SquaredWithLocalMean`] map for localisation and the top-5 % mean of the plain
/// `G₁∗e²` map as the image score (its held-out validation image AUROC was higher than the
/// same score of the localisation map). A later round the same day chose 15 epochs (full
/// size; quick stays at 3): on validation, 15 raised the worst seed's pixel AUROC on every
/// texture and the mean over textures and seeds, 20 lowered brick's worst seed.
fn restoring_ae(epochs: usize, seed: u64) -> Result<latent_autoencoder::Checked<ConvAeParams>, String> {
    latent_anomaly::restore::restoring_ae_params(TILE, &RESTORING_STAGES, epochs, seed, restoring_noise())
        .check()
        .map_err(err)
}

/// Gaussian σ of the local variance of the reconstruction that the restoring autoencoder's map
/// is divided by ([`ContrastNorm`]).
const CONTRAST_SIGMA: f64 = 2.0;

/// The restoring autoencoder's map settings (localisation): `e² + w·(G₂∗e)²` smoothed with
/// σ = 1, where `w` makes both terms' means equal on the held-out normal images, divided by
/// `V + V̄` (`V` = the local variance `G₂∗(x̂ − G₂∗x̂)²` of the reconstruction, `V̄` its mean on the
/// held-out normal images; candidate C4 of the 2026-12-06 round, chosen on held-out normal data
/// by a rule fixed beforehand, see `crates/anomaly/docs/f11-seeds-and-budget.md`). Its image
/// scores are replaced by [`restoring_score_map`]'s.
fn restoring_map<R: Reconstructor<f32>>(model: R, held: &Tensor4<f32>) -> Result<MapParams, String> {
    let det = Detector::new(model, tiles_of(TILE, MapParams::new())?);
    let rec = det.reconstruct(held).map_err(err)?;
    let mut e = held.clone();
    e.as_mut_slice().iter_mut().zip(rec.as_slice()).for_each(|(a, &b)| *a -= b);
    let energy = e.as_slice().iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    let local = latent_anomaly::filter::gaussian_blur(&e, LOCAL_MEAN_SIGMA).map_err(err)?;
    let local_energy = local.as_slice().iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    let weight = if local_energy > 0.0 { energy / local_energy } else { 1.0 };
    let contrast = ContrastNorm { sigma: CONTRAST_SIGMA, floor: 1.0 }.local_variance(&rec).map_err(err)?;
    let mean_contrast = contrast.as_slice().iter().map(|&v| f64::from(v)).sum::<f64>() / contrast.len() as f64;
    // a reconstruction without any contrast on normal data: fall back to a tiny positive floor
    let floor = if mean_contrast > 0.0 { mean_contrast } else { 1e-6 };
    Ok(MapParams::new()
        .kind(MapKind::SquaredWithLocalMean { sigma: LOCAL_MEAN_SIGMA, weight })
        .smoothing(RESTORING_SMOOTHING)
        .contrast(CONTRAST_SIGMA, floor)
        .score(RESTORING_SCORE))
}

/// The restoring autoencoder's image-score settings: the plain squared error smoothed with σ = 1,
/// pooled by [`RESTORING_SCORE`] (chosen on held-out normal against blob-corrupted held-out
/// normal images: higher there than the same score of the localisation map, see
/// [`restoring_ae`]).
fn restoring_score_map() -> MapParams {
    MapParams::new().smoothing(RESTORING_SMOOTHING).score(RESTORING_SCORE)
}

/// Replace the image-level numbers of `eval` (image AUROC, image F1-max, per-defect image AUROC,
/// scores) by the image scores of `detector`'s map settings on the same test images, computed
/// from the reconstructions `eval` already holds (the same model and tiles: no second pass).
fn rescore_images<R: Reconstructor<f32>>(
    eval: &mut Evaluation<f32>,
    detector: &Detector<f32, R>,
    test: &TestSet<f32>,
) -> Result<(), String> {
    let maps = detector.map_config();
    let scores = maps.scores(&maps.maps(&test.images, &eval.reconstructions).map_err(err)?).map_err(err)?;
    let anomalous = test.anomalous();
    let r = &mut eval.report;
    r.image_auroc = latent_anomaly::auroc(&scores, &anomalous).map_err(err)?;
    r.image_f1 = latent_anomaly::f1_max(&scores, &anomalous).map_err(err)?;
    for d in &mut r.per_defect {
        let idx: Vec<usize> =
            (0..test.defects.len()).filter(|&i| test.defects[i] == "good" || test.defects[i] == d.defect).collect();
        let s: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
        let l: Vec<bool> = idx.iter().map(|&i| anomalous[i]).collect();
        d.image_auroc = latent_anomaly::auroc(&s, &l).map_err(err)?;
    }
    eval.scores = scores;
    Ok(())
}

fn report_json(r: &EvalReport) -> Value {
    json!({
        "image_auroc": r.image_auroc,
        "pixel_auroc": r.pixel_auroc,
        "aupro": r.aupro,
        "image_f1_max": r.image_f1.f1,
        "pixel_f1_max": r.pixel_f1.f1,
        "pixel_f1_threshold": r.pixel_f1.threshold,
        "per_defect": r.per_defect.iter().map(|d| json!({
            "defect": d.defect, "count": d.count, "image_auroc": d.image_auroc,
            "pixel_auroc": d.pixel_auroc, "aupro": d.aupro,
        })).collect::<Vec<_>>(),
    })
}

/// Everything measured for one detector on one category.
struct Run {
    eval: Evaluation<f32>,
    /// Pixel threshold: the 99.5 % quantile of the maps of held-out normal images.
    pixel_threshold: f64,
    seconds: f64,
}

fn run_detector<R: Reconstructor<f32>>(
    det: &Detector<f32, R>,
    cat: &MvtecCategory,
    held_out: &Tensor4<f32>,
    seconds: f64,
) -> Result<Run, String> {
    let t = std::time::Instant::now();
    let cal = det.calibrate(held_out, 0.995).map_err(err)?;
    let eval = evaluate_mvtec(det, cat, &EvalParams::new().check().map_err(err)?).map_err(err)?;
    Ok(Run { eval, pixel_threshold: cal.pixel, seconds: seconds + t.elapsed().as_secs_f64() })
}

/// Rows of input | reconstruction | heatmap | thresholded overlay | TP/FP/FN for chosen test images.
fn example_rows(run: &Run, cat: &MvtecCategory, picks: &[usize]) -> Result<Vec<RgbImage>, String> {
    let [_, _, h, w] = run.eval.maps.shape();
    let plane = h * w;
    let maps = run.eval.maps.as_slice();
    // one colour scale per detector: up to the 99.9 % quantile of all its map values
    let hi = latent_anomaly::quantile(maps, 0.999).map_err(err)?.max(run.pixel_threshold * 1.5);
    let mut rows = Vec::new();
    for &i in picks {
        let s = cat.load_test(i).map_err(err)?;
        let img = &s.image.data;
        let rec = &run.eval.reconstructions.as_slice()[i * plane..(i + 1) * plane];
        let map = &maps[i * plane..(i + 1) * plane];
        let mut panel =
            heatmap_panel(img, rec, map, w, h, (0.0, hi), run.pixel_threshold, Some(&s.mask)).map_err(err)?;
        let flagged: Vec<bool> = map.iter().map(|&v| f64::from(v) >= run.pixel_threshold).collect();
        let cmp = compare_masks(&flagged, &s.mask, w, h).map_err(err)?;
        panel = RgbImage::hconcat(&[panel, cmp], 0, [255, 255, 255]).map_err(err)?;
        rows.push(panel);
    }
    Ok(rows)
}

fn to_canvas(img: RgbImage, header: usize) -> Canvas {
    let mut c = Canvas::new(img.width, img.height + header, [255, 255, 255]);
    c.rgb[3 * header * img.width..].copy_from_slice(&img.data);
    c
}

fn grouped_bars(title: &str, y_label: &str, values: &[[f64; MODELS.len()]]) -> Chart {
    let k = MODELS.len() as f64;
    let width = 0.84 / k;
    let series = (0..MODELS.len())
        .map(|m| {
            let pts = values
                .iter()
                .enumerate()
                .map(|(c, v)| (c as f64 + (m as f64 - (k - 1.0) / 2.0) * width, v[m]))
                .collect();
            Series::new(MODEL_NAMES[m], pts, Kind::Bars(width * 0.9), m)
        })
        .collect();
    Chart {
        title: format!("{title} (categories: 0 brick, 1 grass, 2 gravel)"),
        x_label: "texture category".into(),
        y_label: y_label.into(),
        series,
        // room above the bars for the legend of eight detectors
        y_range: Some((0.0, 1.55)),
        x_range: Some((-0.6, 2.6)),
        ..Chart::default()
    }
}

/// The corruption of the restoring autoencoder, fixed a priori (generic blobs, see
/// [`BlobNoise`]; independent of the defect generator, not tuned on test data).
fn restoring_noise() -> NoiseModel {
    NoiseModel::Blobs(BlobNoise::default())
}

fn run_textures(ctx: &mut Ctx) -> Result<(), String> {
    let sz = sizes(ctx.quick);
    let root = ctx.dir.join("mvtec_synthetic");
    let _ = std::fs::remove_dir_all(&root);
    describe_textures(ctx, &sz);
    let bar = ctx.progress((TEXTURES.len() * MODELS.len()) as u64, "F11 textures");
    let mut results = TextureResults::default();
    for (ci, &name) in TEXTURES.iter().enumerate() {
        let data = prepare_texture(&root, name, ctx.seed + 100 * ci as u64, &sz)?;
        let models = train_models(ctx, &bar, &data, &sz)?;
        let detectors = build_detectors(&bar, &data, &models)?;
        let runs = evaluate_detectors(&bar, &data, &detectors)?;
        drop(detectors);
        let restoring = evaluate_restoring(&bar, &data, &models)?;
        let checks = heldout_blob_checks(ctx, &data, &models)?;
        record_texture(ctx, &mut results, ci, &data, &runs, &restoring, checks)?;
    }
    bar.finish_and_clear();
    write_texture_results(ctx, &results)
}

/// The settings of the texture experiment, recorded in the figure's config.
fn describe_textures(ctx: &mut Ctx, sz: &TextureSizes) {
    ctx.config(
        "layout",
        "synthetic defects written in the MVTec AD folder layout under mvtec_synthetic/, read back with MvtecCategory",
    );
    ctx.config("crop", CROP as u64);
    ctx.config("train_images", sz.n_train as u64);
    ctx.config("test_images", format!("{} good + {} per defect kind × 6 kinds", sz.n_test_good, sz.n_test_per_defect));
    ctx.config(
        "autoencoders",
        format!(
            "conv 1×{TILE}×{TILE} → 16@16² → 32@8² → 32@4² → code 16@4², mirrored; leaky ReLU, sigmoid; {} random {TILE}×{TILE} \
             crops of the training images, {} epochs, Adam lr 2e-3, batch 32; applied in {TILE}×{TILE} tiles every 8 px",
            sz.crops, sz.epochs
        ),
    );
    ctx.config("l2_ae", "MSE loss; map: squared error, Gaussian σ = 2");
    ctx.config(
        "ssim_ae",
        "same architecture, loss 1 − SSIM (11×11 Gaussian window, σ = 1.5); map: 1 − SSIM, Gaussian σ = 2",
    );
    ctx.config(
        "sparse_coding",
        format!("128 atoms learned online (λ = 0.05) on {} random 8×8 patches; OMP k = 3, every 2nd patch position, overlaps averaged, raw patches (means kept); map: squared error, Gaussian σ = 2", sz.train_patches),
    );
    ctx.config(
        "normalized",
        "the *_normalized detectors use the same trained models on unsmoothed maps (squared error; 1 − SSIM for the \
         SSIM AE), normalised by the 20 % held-out normal training images: s = ln(G_σ ∗ map + 0.01·mean normal map), \
         σ = 2 px; split robust z-score z = (s − median)/(Q(0.841) − median) above the median, \
         (s − median)/(median − Q(0.159)) below, statistics pooled over all held-out pixels; anomaly map |z| \
         (two-sided). Settings fixed a priori, the same for all categories, not tuned on test data",
    );
    ctx.config(
        "restoring_ae",
        format!(
            "restoring (blob-denoising) autoencoder, the recommended detector: conv 1×32×32 → 16@16² → 32@8² → code \
             32@8² (3×3, stride 1), mirrored, leaky ReLU, sigmoid, Adam lr 2e-3, batch 32, trained on the ℓ2 AE's {} \
             crops for {} epochs to return the clean crop of a blob-corrupted one (MSE), three training seeds (model \
             seed = texture seed + 0, 1, 2; its per-texture numbers without a suffix are the mean over the seeds, \
             _worst the worst seed, _seedK each seed). Map: e² + w·(G₂∗e)² (e = x − x̂; w = mean e² / mean (G₂∗e)² on \
             the held-out normal images, per model), Gaussian σ = 1, divided by V + V̄ (V = G₂∗(x̂ − G₂∗x̂)², the local \
             variance of the reconstruction; V̄ its mean on the held-out normal images, per model); image score: mean of the top 5 % of the plain \
             squared-error map e² smoothed with σ = 1 (a second pass of the same model). \
             Corruption (BlobNoise defaults, fixed a priori, generic, independent of the defect generator): per crop \
             with probability 0.8, blobs = the highest c·H·W pixels of a two-octave value-noise field (cell 2–12 px), \
             c ~ U(0, 0.3); inside the blobs the crop is blended (opacity U(0.3, 1)) with either its mean over the \
             blob (1/3) or B + g·(x − B) (2/3; B = Gaussian blur σ = 2, gain g ~ U(0, 2)), plus a shift \
             U(−0.4, 0.4), clamped to the crop's range. Architecture, training length, map and image score chosen on \
             held-out normal images only (the pixels and images changed by blob corruptions of the 20 held-out normal \
             images; see the latent-anomaly docs, f11-seeds-and-budget.md), never on the test defects. \
             restoring_ae_ensemble: the same three models, reconstructions averaged, the same maps (its own w) and \
             score. heldout_normal_blob_check: the corruption applied to 400 crops of the held-out normal images \
             (restored MSE, AUROC of the raw error map for the changed pixels) and the whole detector's pixel AUROC \
             for the changed pixels of the corrupted held-out 64×64 images (first seed; every seed: \
             <texture>_restoring_ae_seedK_heldout_blob_detector_pixel_auroc)",
            sz.crops, sz.restoring_epochs
        ),
    );
    ctx.config("image_score", "maximum of the map (restoring autoencoder: mean of the top 5 % of G₁∗e²)");
    ctx.config("pixel_threshold", "99.5 % quantile of the maps of 20 % held-out normal training images");
}

/// One texture's data: its category written in the MVTec layout, the normal training images
/// split into the 80 % that train the models and the 20 % held out (thresholds, normalisers,
/// validation), and the autoencoders' random training crops of the 80 %.
struct TextureData {
    name: &'static str,
    seed: u64,
    cat: MvtecCategory,
    fit: Tensor4<f32>,
    held: Tensor4<f32>,
    crops: Tensor4<f32>,
}

/// Generate texture `name`'s synthetic defects (seeded by `seed`), write them under `root`, read
/// them back and split the normal images.
fn prepare_texture(root: &Path, name: &'static str, seed: u64, sz: &TextureSizes) -> Result<TextureData, String> {
    let cfg = AnomalyConfig {
        crop: CROP,
        n_train: sz.n_train,
        n_test_good: sz.n_test_good,
        n_test_per_defect: sz.n_test_per_defect,
        ..AnomalyConfig::default()
    };
    let set = generate_anomaly_set(&load_texture(name).map_err(err)?, name, &cfg, seed).map_err(err)?;
    set.write_mvtec(root).map_err(err)?;
    let cat = MvtecCategory::open(root, name).map_err(err)?;
    let all = load_mvtec_train::<f32>(&cat, 1).map_err(err)?;
    // 80 % of the normal images train the models, 20 % calibrate the pixel threshold
    let n_fit = all.n() - all.n() / 5;
    let d = all.sample_len();
    let fit = Tensor4::from_vec([n_fit, 1, CROP, CROP], all.as_slice()[..n_fit * d].to_vec()).map_err(err)?;
    let held =
        Tensor4::from_vec([all.n() - n_fit, 1, CROP, CROP], all.as_slice()[n_fit * d..].to_vec()).map_err(err)?;
    let crops = random_crops(&fit, TILE, TILE, sz.crops, seed + 1).map_err(err)?;
    Ok(TextureData { name, seed, cat, fit, held, crops })
}

/// A trained model and the seconds its training took.
struct Trained<M> {
    model: M,
    seconds: f64,
}

/// Time `train`.
fn timed<M>(train: impl FnOnce() -> Result<M, String>) -> Result<Trained<M>, String> {
    let t = std::time::Instant::now();
    let model = train()?;
    Ok(Trained { model, seconds: t.elapsed().as_secs_f64() })
}

/// The models trained on one texture's normal images.
struct TextureModels {
    l2: Trained<Autoencoder<f32>>,
    ssim: Trained<SsimAutoencoder<f32>>,
    dict: Trained<PatchDictionary<f32>>,
    /// The restoring autoencoders of the [`RESTORING_SEEDS`] training seeds.
    restoring: Vec<Trained<Autoencoder<f32>>>,
}

/// Train the ℓ2 autoencoder, the SSIM autoencoder (same architecture and crops), the patch
/// dictionary and the restoring autoencoders (one per training seed) on one texture.
fn train_models(
    ctx: &mut Ctx,
    bar: &ProgressBar,
    data: &TextureData,
    sz: &TextureSizes,
) -> Result<TextureModels, String> {
    let (name, seed) = (data.name, data.seed);
    bar.set_message(format!("{name}: ℓ2 autoencoder"));
    let l2 = timed(|| Ok(conv_ae(sz.epochs, seed)?.fit(&data.crops).map_err(err)?.model))?;

    bar.set_message(format!("{name}: SSIM autoencoder"));
    let ssim = timed(|| {
        let ae = conv_ae(sz.epochs, seed)?.build_for::<f32>([1, TILE, TILE]).map_err(err)?;
        let mut ssim_ae = SsimAutoencoder::new(ae, SsimParams::new().check().map_err(err)?).map_err(err)?;
        let train = TrainParams::new().epochs(sz.epochs).batch_size(32).lr(2e-3).seed(seed).progress(false);
        ssim_ae.fit(&data.crops, train.check().map_err(err)?).map_err(err)?;
        Ok(ssim_ae)
    })?;

    bar.set_message(format!("{name}: sparse coding"));
    let dict = timed(|| {
        PatchDictionaryParams::new()
            .patch(8)
            .stride(2)
            .atoms(128)
            .lambda(0.05)
            .remove_mean(false)
            .coder(PatchCoder::Omp { k: 3 })
            .train_patches(sz.train_patches)
            .seed(seed)
            .check()
            .map_err(err)?
            .fit(&data.fit)
            .map_err(err)
    })?;

    // the restoring autoencoders, trained on the same crops to map blob-corrupted normal crops
    // back to the clean crops, one per training seed
    let restoring = (0..RESTORING_SEEDS as u64)
        .map(|k| {
            bar.set_message(format!("{name}: restoring autoencoder, seed +{k}"));
            timed(|| Ok(restoring_ae(sz.restoring_epochs, seed + k)?.fit(&data.crops).map_err(err)?.model))
        })
        .collect::<Result<Vec<_>, String>>()?;
    ctx.config(
        &format!("restoring_ae_{name}"),
        format!(
            "{TILE}×{TILE} tiles, {} crops, {} epochs, model seeds = texture seed + 0, 1, 2; training seconds {}",
            sz.crops,
            sz.restoring_epochs,
            restoring.iter().map(|r| format!("{:.1}", r.seconds)).collect::<Vec<_>>().join(", ")
        ),
    );
    Ok(TextureModels { l2, ssim, dict, restoring })
}

/// Detector settings for `tile × tile` tiles every 8 px.
fn tiles_of(tile: usize, map: MapParams) -> Result<Checked<DetectorParams>, String> {
    DetectorParams::new().map(map).tiles(tile, tile, 8).batch_size(256).check().map_err(err)
}

/// A detector of the figure around one of the trained models, with the seconds spent on it so
/// far (training, and fitting its normaliser).
struct TimedDetector<'a> {
    detector: Detector<f32, Box<dyn Reconstructor<f32> + 'a>>,
    seconds: f64,
}

/// The detectors of [`MODELS`] before the restoring autoencoder, in order: the three raw-error
/// detectors and the same models with maps normalised by the held-out normal images (the
/// normaliser's window replaces the smoothing; times include training).
fn build_detectors<'a>(
    bar: &ProgressBar,
    data: &TextureData,
    models: &'a TextureModels,
) -> Result<Vec<TimedDetector<'a>>, String> {
    let held = &data.held;
    let raw = |model: &'a dyn Reconstructor<f32>, config: Checked<DetectorParams>, seconds: f64| TimedDetector {
        detector: Detector::new(Box::new(model) as Box<dyn Reconstructor<f32> + 'a>, config),
        seconds,
    };
    let normalized = |model: &'a dyn Reconstructor<f32>, config: Checked<DetectorParams>, seconds: f64| {
        let t = std::time::Instant::now();
        let detector = Detector::new(Box::new(model) as Box<dyn Reconstructor<f32> + 'a>, config)
            .normalize_on(held, &normalizer()?)
            .map_err(err)?;
        Ok::<_, String>(TimedDetector { detector, seconds: seconds + t.elapsed().as_secs_f64() })
    };
    let TextureModels { l2, ssim, dict, .. } = models;
    let tiles = |map: MapParams| tiles_of(TILE, map);
    bar.set_message(format!("{}: normalised maps", data.name));
    Ok(vec![
        raw(&l2.model, tiles(MapParams::new().smoothing(SMOOTHING))?, l2.seconds),
        raw(&ssim.model, tiles(MapParams::new().ssim(SsimParams::new()).smoothing(SMOOTHING))?, ssim.seconds),
        raw(
            &dict.model,
            DetectorParams::new()
                .map(MapParams::new().smoothing(SMOOTHING).score(ImageScore::Max))
                .check()
                .map_err(err)?,
            dict.seconds,
        ),
        normalized(&l2.model, tiles(MapParams::new())?, l2.seconds)?,
        normalized(&ssim.model, tiles(MapParams::new().ssim(SsimParams::new()))?, ssim.seconds)?,
        normalized(&dict.model, DetectorParams::new().check().map_err(err)?, dict.seconds)?,
    ])
}

/// Calibrate and evaluate every detector on the texture's test images.
fn evaluate_detectors(
    bar: &ProgressBar,
    data: &TextureData,
    detectors: &[TimedDetector<'_>],
) -> Result<Vec<Run>, String> {
    detectors
        .iter()
        .enumerate()
        .map(|(m, d)| {
            bar.set_message(format!("{}: evaluating {}", data.name, MODELS[m]));
            let run = run_detector(&d.detector, &data.cat, &data.held, d.seconds)?;
            bar.inc(1);
            Ok(run)
        })
        .collect()
}

/// The restoring autoencoder of every seed and their ensemble, evaluated: the seeds' runs, the
/// ensemble's run, and each seed's normal-data-only validation (the detector's pixel AUROC for
/// the pixels of the held-out normal images changed by the training corruption).
struct RestoringRuns {
    seeds: Vec<Run>,
    validation: Vec<f64>,
    ensemble: Run,
}

fn evaluate_restoring(bar: &ProgressBar, data: &TextureData, models: &TextureModels) -> Result<RestoringRuns, String> {
    let test = load_mvtec_test::<f32>(&data.cat, 1).map_err(err)?;
    let mut seeds = Vec::new();
    let mut validation = Vec::new();
    for (k, r) in models.restoring.iter().enumerate() {
        bar.set_message(format!("{}: evaluating the restoring autoencoder, seed +{k}", data.name));
        let t = std::time::Instant::now();
        let det = Detector::new(&r.model, tiles_of(TILE, restoring_map(&r.model, &data.held)?)?);
        let seconds = r.seconds + t.elapsed().as_secs_f64();
        validation.push(corrupted_pixel_auroc(&det, &data.held, &restoring_noise(), data.seed + 4).map_err(err)?);
        let mut run = run_detector(&det, &data.cat, &data.held, seconds)?;
        rescore_images(&mut run.eval, &Detector::new(&r.model, tiles_of(TILE, restoring_score_map())?), &test)?;
        seeds.push(run);
    }
    bar.inc(1);
    bar.set_message(format!("{}: evaluating the restoring ensemble", data.name));
    let members: Vec<&Autoencoder<f32>> = models.restoring.iter().map(|r| &r.model).collect();
    let seconds = models.restoring.iter().map(|r| r.seconds).sum::<f64>();
    let t = std::time::Instant::now();
    let ensemble = MeanEnsemble::new(members).map_err(err)?;
    let det = Detector::new(&ensemble, tiles_of(TILE, restoring_map(&ensemble, &data.held)?)?);
    let mut run = run_detector(&det, &data.cat, &data.held, seconds + t.elapsed().as_secs_f64())?;
    rescore_images(&mut run.eval, &Detector::new(&ensemble, tiles_of(TILE, restoring_score_map())?), &test)?;
    let ensemble = run;
    bar.inc(1);
    Ok(RestoringRuns { seeds, validation, ensemble })
}

/// The normal-data-only check of the ℓ2 and the restoring autoencoder (first seed):
/// blob-corrupted crops and whole images of the held-out normal images, recorded as metrics;
/// returns the raw numbers.
fn heldout_blob_checks(ctx: &mut Ctx, data: &TextureData, models: &TextureModels) -> Result<Value, String> {
    let (name, seed, held) = (data.name, data.seed, &data.held);
    let mut checks = serde_json::Map::new();
    let restoring = &models.restoring[0].model;
    for (label, model, map) in [
        ("l2_ae", &models.l2.model, MapParams::new().smoothing(SMOOTHING)),
        ("restoring_ae", restoring, restoring_map(restoring, held)?),
    ] {
        let held_crops = random_crops(held, TILE, TILE, 400, seed + 2).map_err(err)?;
        let c = restoration_check(model, &held_crops, &restoring_noise(), seed + 3).map_err(err)?;
        let det = Detector::new(model, tiles_of(TILE, map)?);
        let det_auroc = corrupted_pixel_auroc(&det, held, &restoring_noise(), seed + 4).map_err(err)?;
        ctx.metric(&format!("{name}_{label}_heldout_blob_detector_pixel_auroc"), det_auroc);
        ctx.metric(&format!("{name}_{label}_heldout_blob_restored_mse"), c.restored_mse);
        ctx.metric(&format!("{name}_{label}_heldout_blob_changed_auroc"), c.changed_auroc);
        checks.insert(
            label.to_string(),
            json!({
                "corrupted_fraction": c.corrupted_fraction,
                "corrupted_mse": c.corrupted_mse,
                "restored_mse": c.restored_mse,
                "restored_mse_changed": c.restored_mse_changed,
                "restored_mse_unchanged": c.restored_mse_unchanged,
                "changed_auroc": c.changed_auroc,
                "detector_pixel_auroc_on_corrupted_heldout_images": det_auroc,
            }),
        );
    }
    Ok(Value::Object(checks))
}

/// What the texture experiment collects over the categories.
#[derive(Default)]
struct TextureResults {
    /// `[category][metric: image AUROC, pixel AUROC, AUPRO][model]` (the restoring
    /// autoencoder: mean over the seeds).
    table: Vec<[[f64; MODELS.len()]; 3]>,
    /// `[category][seed][metric]` of the restoring autoencoder.
    seeds: Vec<[[f64; 3]; RESTORING_SEEDS]>,
    /// Per category and model: the full reports and the held-out checks.
    raw: serde_json::Map<String, Value>,
    csv_rows: Vec<Vec<f64>>,
    /// Rows of the example sheet.
    sheet_rows: Vec<RgbImage>,
}

/// The three headline metrics of a report: image AUROC, pixel AUROC, AUPRO.
const METRICS: [&str; 3] = ["image_auroc", "pixel_auroc", "aupro"];

fn headline(r: &EvalReport) -> [f64; 3] {
    [r.image_auroc, r.pixel_auroc, r.aupro]
}

/// Record one category's runs: metrics, raw reports, CSV rows, the table row and the example
/// sheet's rows (one test image of three defect kinds, every detector of [`SHEET_MODELS`]).
fn record_texture(
    ctx: &mut Ctx,
    results: &mut TextureResults,
    ci: usize,
    data: &TextureData,
    runs: &[Run],
    restoring: &RestoringRuns,
    checks: Value,
) -> Result<(), String> {
    let name = data.name;
    let mut row = [[0.0; MODELS.len()]; 3];
    let mut cat_raw = serde_json::Map::new();
    let csv_row = |m: usize, seed: f64, r: &Run| {
        let rep = &r.eval.report;
        vec![
            ci as f64,
            m as f64,
            seed,
            rep.image_auroc,
            rep.pixel_auroc,
            rep.aupro,
            rep.image_f1.f1,
            rep.pixel_f1.f1,
            r.seconds,
        ]
    };
    let run_json = |r: &Run| {
        let mut j = report_json(&r.eval.report);
        j["pixel_threshold_heldout_q995"] = json!(r.pixel_threshold);
        j["seconds"] = json!(r.seconds);
        j
    };
    // the single-seed detectors and the ensemble
    for (m, r) in runs.iter().enumerate().chain([(ENSEMBLE, &restoring.ensemble)]) {
        let rep = &r.eval.report;
        for (k, v) in headline(rep).into_iter().enumerate() {
            row[k][m] = v;
        }
        let key = format!("{name}_{}", MODELS[m]);
        ctx.metric(&format!("{key}_image_auroc"), rep.image_auroc);
        ctx.metric(&format!("{key}_pixel_auroc"), rep.pixel_auroc);
        ctx.metric(&format!("{key}_aupro"), rep.aupro);
        ctx.metric(&format!("{key}_pixel_f1_max"), rep.pixel_f1.f1);
        cat_raw.insert(MODELS[m].to_string(), run_json(r));
        results.csv_rows.push(csv_row(m, if m == ENSEMBLE { -1.0 } else { 0.0 }, r));
    }
    // the restoring autoencoder: every seed, their mean and worst
    let mut per_seed = [[0.0; 3]; RESTORING_SEEDS];
    for (s, r) in restoring.seeds.iter().enumerate() {
        per_seed[s] = headline(&r.eval.report);
        let key = format!("{name}_restoring_ae_seed{s}");
        for (k, metric) in METRICS.iter().enumerate() {
            ctx.metric(&format!("{key}_{metric}"), per_seed[s][k]);
        }
        ctx.metric(&format!("{key}_pixel_f1_max"), r.eval.report.pixel_f1.f1);
        ctx.metric(&format!("{key}_heldout_blob_detector_pixel_auroc"), restoring.validation[s]);
        results.csv_rows.push(csv_row(RESTORING, s as f64, r));
    }
    let mut stats = serde_json::Map::new();
    for (k, metric) in METRICS.iter().enumerate() {
        let vals: Vec<f64> = per_seed.iter().map(|v| v[k]).collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let worst = vals.iter().copied().fold(f64::INFINITY, f64::min);
        row[k][RESTORING] = mean;
        ctx.metric(&format!("{name}_restoring_ae_{metric}"), mean);
        ctx.metric(&format!("{name}_restoring_ae_{metric}_mean"), mean);
        ctx.metric(&format!("{name}_restoring_ae_{metric}_worst"), worst);
        stats.insert(format!("{metric}_mean"), json!(mean));
        stats.insert(format!("{metric}_worst"), json!(worst));
    }
    let f1 = restoring.seeds.iter().map(|r| r.eval.report.pixel_f1.f1).sum::<f64>() / restoring.seeds.len() as f64;
    ctx.metric(&format!("{name}_restoring_ae_pixel_f1_max"), f1);
    cat_raw.insert(
        MODELS[RESTORING].to_string(),
        json!({
            "seeds": restoring.seeds.iter().map(run_json).collect::<Vec<_>>(),
            "heldout_blob_detector_pixel_auroc": restoring.validation,
            "over_seeds": stats,
        }),
    );
    cat_raw.insert("heldout_normal_blob_check".to_string(), checks);
    results.raw.insert(name.to_string(), Value::Object(cat_raw));
    results.table.push(row);
    results.seeds.push(per_seed);

    let cat = &data.cat;
    let picks: Vec<usize> =
        ["scratch", "hole", "stain"].iter().filter_map(|k| cat.test.iter().position(|e| e.defect == *k)).collect();
    let per_model: Vec<Vec<RgbImage>> = SHEET_MODELS
        .iter()
        .map(|&m| example_rows(if m == RESTORING { &restoring.seeds[0] } else { &runs[m] }, cat, &picks))
        .collect::<Result<_, _>>()?;
    for d in 0..picks.len() {
        let row: Vec<RgbImage> = per_model.iter().map(|rows| rows[d].clone()).collect();
        results.sheet_rows.push(RgbImage::hconcat(&row, 6, [255, 255, 255]).map_err(err)?);
    }
    Ok(())
}

/// The bars of issue 17 for the recommended detector.
const BAR_WORST_SEED_PIXEL: f64 = 0.92;
const BAR_MEAN_IMAGE: f64 = 0.90;

/// The means over categories (metrics), the claims' booleans, the raw reports, the CSV, the bar
/// charts, the seed chart and the example sheet.
fn write_texture_results(ctx: &mut Ctx, results: &TextureResults) -> Result<(), String> {
    let table = &results.table;
    for (m, model) in MODELS.iter().enumerate() {
        for (k, metric) in METRICS.iter().enumerate() {
            let mean = table.iter().map(|r| r[k][m]).sum::<f64>() / table.len() as f64;
            ctx.metric(&format!("mean_{model}_{metric}"), mean);
        }
        if m != RESTORING {
            // the claim text says these detectors do not reach the bar: recorded, not claimed
            let min_pixel = table.iter().map(|r| r[1][m]).fold(f64::INFINITY, f64::min);
            ctx.metric(&format!("{model}_worst_category_pixel_auroc"), min_pixel);
            ctx.observation(&format!("{model}_pixel_auroc_at_least_0.90_on_every_category"), min_pixel >= 0.90);
        }
    }
    // the recommended detector (the restoring autoencoder) over the seeds
    let worst_pixel: Vec<f64> =
        results.seeds.iter().map(|c| c.iter().map(|s| s[1]).fold(f64::INFINITY, f64::min)).collect();
    let mean_image: Vec<f64> =
        results.seeds.iter().map(|c| c.iter().map(|s| s[0]).sum::<f64>() / c.len() as f64).collect();
    let min_worst_pixel = worst_pixel.iter().copied().fold(f64::INFINITY, f64::min);
    let min_mean_image = mean_image.iter().copied().fold(f64::INFINITY, f64::min);
    ctx.metric("recommended_detector", MODELS[RESTORING]);
    ctx.metric("recommended_worst_seed_pixel_auroc_min_over_textures", min_worst_pixel);
    ctx.metric("recommended_mean_image_auroc_min_over_textures", min_mean_image);
    ctx.check(
        "restoring_ae_worst_seed_pixel_auroc_at_least_0.90_on_every_category",
        "recommended_worst_seed_pixel_auroc_min_over_textures",
        Cmp::Ge,
        Rhs::Value(0.90),
    )?;
    ctx.check(
        "recommended_worst_seed_pixel_auroc_at_least_0.92_on_every_texture",
        "recommended_worst_seed_pixel_auroc_min_over_textures",
        Cmp::Ge,
        Rhs::Value(BAR_WORST_SEED_PIXEL),
    )?;
    ctx.check(
        "recommended_mean_image_auroc_at_least_0.90_on_every_texture",
        "recommended_mean_image_auroc_min_over_textures",
        Cmp::Ge,
        Rhs::Value(BAR_MEAN_IMAGE),
    )?;
    ctx.raw("results", &Value::Object(results.raw.clone()))?;
    ctx.csv(
        "results",
        &[
            "category(0=brick,1=grass,2=gravel)",
            "model(0=l2_ae,1=ssim_ae,2=sparse_coding,3=l2_ae_normalized,4=ssim_ae_normalized,5=sparse_coding_normalized,6=restoring_ae,7=restoring_ae_ensemble)",
            "training_seed_offset(-1=ensemble of 0,1,2)",
            "image_auroc",
            "pixel_auroc",
            "aupro",
            "image_f1_max",
            "pixel_f1_max",
            "seconds",
        ],
        &results.csv_rows,
    )?;
    for (k, (metric, label)) in
        [("image_auroc", "image AUROC"), ("pixel_auroc", "pixel AUROC"), ("aupro", "AUPRO (FPR ≤ 0.3)")]
            .iter()
            .enumerate()
    {
        let vals: Vec<[f64; MODELS.len()]> = table.iter().map(|r| r[k]).collect();
        let mut chart = grouped_bars(label, label, &vals);
        // the restoring autoencoder's min–max over the seeds
        let width = 0.84 / MODELS.len() as f64;
        let x_off = (RESTORING as f64 - (MODELS.len() as f64 - 1.0) / 2.0) * width;
        for (c, seeds) in results.seeds.iter().enumerate() {
            let lo = seeds.iter().map(|s| s[k]).fold(f64::INFINITY, f64::min);
            let hi = seeds.iter().map(|s| s[k]).fold(f64::NEG_INFINITY, f64::max);
            let x = c as f64 + x_off;
            chart.series.push(Series::new("", vec![(x, lo), (x, hi)], Kind::Line, 5));
        }
        ctx.chart(
            &format!("bars_{metric}"),
            &format!(
                "{label} per texture category: the three raw-error detectors (one training seed), the same models with \
                 normalised maps, the restoring (blob-denoising) autoencoder (bar: mean over three training seeds; \
                 line: their min–max) and the ensemble of its three seeds' models."
            ),
            &chart,
            (800, 420),
        )?;
    }
    write_seed_chart(ctx, results)?;
    write_example_sheet(ctx, &results.sheet_rows)
}

/// The recommended detector over the seeds: mean per texture and metric with the min–max over
/// the seeds, the two bars of issue 17, and the table in the caption.
fn write_seed_chart(ctx: &mut Ctx, results: &TextureResults) -> Result<(), String> {
    let mut series = Vec::new();
    let mut caption = String::from(
        "Restoring autoencoder (the recommended detector) over three training seeds (model seed = texture seed + 0, 1, 2): \
         bars are the mean, thin vertical lines the min–max over the seeds; horizontal lines: the bars worst-seed pixel AUROC 0.92 \
         and mean image AUROC 0.90. Mean / worst seed:",
    );
    for (k, label) in ["image AUROC", "pixel AUROC", "AUPRO"].iter().enumerate() {
        let x_off = (k as f64 - 1.0) * 0.27;
        let pts = results
            .seeds
            .iter()
            .enumerate()
            .map(|(c, s)| (c as f64 + x_off, s.iter().map(|v| v[k]).sum::<f64>() / s.len() as f64))
            .collect();
        series.push(Series::new(*label, pts, Kind::Bars(0.24), k));
        for (c, s) in results.seeds.iter().enumerate() {
            let lo = s.iter().map(|v| v[k]).fold(f64::INFINITY, f64::min);
            let hi = s.iter().map(|v| v[k]).fold(f64::NEG_INFINITY, f64::max);
            series.push(Series::new("", vec![(c as f64 + x_off, lo), (c as f64 + x_off, hi)], Kind::Line, 5));
        }
    }
    series.push(Series::new(
        "bar: worst-seed pixel AUROC 0.92",
        vec![(-0.5, BAR_WORST_SEED_PIXEL), (2.5, BAR_WORST_SEED_PIXEL)],
        Kind::Line,
        3,
    ));
    series.push(Series::new(
        "bar: mean image AUROC 0.90",
        vec![(-0.5, BAR_MEAN_IMAGE), (2.5, BAR_MEAN_IMAGE)],
        Kind::Line,
        4,
    ));
    for (c, s) in results.seeds.iter().enumerate() {
        let name = TEXTURES.get(c).copied().unwrap_or("?");
        let stat = |k: usize| {
            let mean = s.iter().map(|v| v[k]).sum::<f64>() / s.len() as f64;
            let worst = s.iter().map(|v| v[k]).fold(f64::INFINITY, f64::min);
            format!("{mean:.3} / {worst:.3}")
        };
        caption += &format!(" {name}: image AUROC {}, pixel AUROC {}, AUPRO {};", stat(0), stat(1), stat(2));
    }
    caption.pop();
    caption.push('.');
    let chart = Chart {
        title: "Restoring AE over three training seeds (categories: 0 brick, 1 grass, 2 gravel)".into(),
        x_label: "texture category".into(),
        y_label: "metric".into(),
        series,
        // room above the bars for the legend
        y_range: Some((0.5, 1.2)),
        x_range: Some((-0.6, 2.6)),
        ..Chart::default()
    };
    ctx.chart("restoring_seeds", &caption, &chart, (800, 420))
}

/// The example sheet, upscaled ×2, with a header naming the detectors and the columns.
fn write_example_sheet(ctx: &mut Ctx, rows: &[RgbImage]) -> Result<(), String> {
    let zoom = 2;
    let sheet = RgbImage::vconcat(rows, 3, [255, 255, 255]).map_err(err)?.upscale(zoom).map_err(err)?;
    let mut canvas = to_canvas(sheet, 44);
    // one detector block: 4 panels + gaps (heatmap_panel) and the comparison, then a 6-pixel gap
    let block = 4 * CROP + 5 * 2 + CROP + 6;
    for (b, &m) in SHEET_MODELS.iter().enumerate() {
        let x0 = zoom * (3 + 6 + b * block);
        canvas.text(x0 as i32, 4, MODEL_NAMES[m], 16.0)?;
        for (i, label) in ["input", "reconstruction", "error map", "flagged + truth", "TP/FP/FN"].iter().enumerate() {
            canvas.text((x0 + zoom * (2 + i * (CROP + 2))) as i32, 24, label, 12.0)?;
        }
    }
    ctx.canvas(
        "examples.png",
        "Rows: brick, grass and gravel, each with a scratch, a hole and a stain. Column blocks: ℓ2 autoencoder, SSIM \
         autoencoder, patch dictionary, ℓ2 autoencoder with the map normalised by held-out normal data (|z| of the \
         local residual energy), restoring (blob-denoising) autoencoder. In each block: input; reconstruction; anomaly map (jet colormap, one scale per \
         block and category); input with the pixels above the held-out-normal threshold in red and the ground truth \
         outlined in green; true positives yellow, false positives red, false negatives blue.",
        &canvas,
    )
}

/// Dense autoencoder 784 → 128 → 32 → 128 → 784 (ReLU, sigmoid output, MSE).
fn mlp_ae(epochs: usize, seed: u64) -> Result<latent_autoencoder::Checked<MlpAeParams>, String> {
    MlpAeParams::new(vec![784, 128, 32])
        .code_activation(Activation::Identity)
        .epochs(epochs)
        .batch_size(64)
        .lr(2e-3)
        .seed(seed)
        .progress(false)
        .check()
        .map_err(err)
}

fn one_class_aurocs(ctx: &Ctx, name: &str, train: &ImageSet, test: &ImageSet) -> Result<[Vec<f64>; 2], String> {
    let epochs = if ctx.quick { 8 } else { 30 };
    let all: Vec<usize> = (0..test.len()).collect();
    let x_test = test.to_tensor4::<f32>(&all).map_err(err)?;
    let flat_test = x_test.clone().reshape([test.len(), 784, 1, 1]).map_err(err)?;
    let mean_score = || DetectorParams::new().map(MapParams::new().score(ImageScore::Mean)).batch_size(1000).check();
    let bar = ctx.progress(10, &format!("F11b {name}"));
    let (mut ae, mut sc) = (Vec::new(), Vec::new());
    for k in 0..10u8 {
        let split = one_class_split(train, test, k).map_err(err)?;
        let idx: Vec<usize> = (0..split.train.len()).collect();
        let x = split.train.to_tensor4::<f32>(&idx).map_err(err)?;
        let fitted = mlp_ae(epochs, ctx.seed + u64::from(k))?
            .fit(&x.clone().reshape([idx.len(), 784, 1, 1]).map_err(err)?)
            .map_err(err)?;
        let det = Detector::new(fitted.model, mean_score().map_err(err)?);
        let s = det.scores(&flat_test).map_err(err)?;
        ae.push(latent_anomaly::auroc(&s, &split.test_anomalous).map_err(err)?);
        // sparse coding: whole images coded with 8 of 64 atoms learned on the normal class
        let dict = PatchDictionaryParams::new()
            .patch(28)
            .stride(28)
            .atoms(64)
            .lambda(0.5)
            .remove_mean(false)
            .coder(PatchCoder::Omp { k: 8 })
            .train_patches(idx.len())
            .epochs(if ctx.quick { 1 } else { 3 })
            .seed(ctx.seed + u64::from(k))
            .check()
            .map_err(err)?
            .fit(&x)
            .map_err(err)?;
        let det = Detector::new(dict, mean_score().map_err(err)?);
        let s = det.scores(&x_test).map_err(err)?;
        sc.push(latent_anomaly::auroc(&s, &split.test_anomalous).map_err(err)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok([ae, sc])
}

fn run_one_class(ctx: &mut Ctx) -> Result<(), String> {
    let (mnist, fashion) = if ctx.quick {
        let m = Mnist::load_small().map_err(err)?;
        let f = FashionMnist::load_default().map_err(err)?;
        ((m.train, m.test), (f.train.take(2000), f.test.take(1000)))
    } else {
        let m = Mnist::load_default().map_err(err)?;
        let f = FashionMnist::load_default().map_err(err)?;
        ((m.train, m.test), (f.train, f.test))
    };
    ctx.config(
        "mnist",
        format!("{} training images (one class at a time), {} test images", mnist.0.len(), mnist.1.len()),
    );
    ctx.config(
        "fashion_mnist",
        format!("{} training images (one class at a time), {} test images", fashion.0.len(), fashion.1.len()),
    );
    ctx.config(
        "autoencoder",
        format!(
            "dense 784-128-32-128-784, ReLU, linear code, sigmoid output, MSE, Adam lr 2e-3, batch 64, {} epochs",
            if ctx.quick { 8 } else { 30 }
        ),
    );
    ctx.config("sparse_coding", "64 whole-image atoms learned online (λ = 0.5), OMP with 8 atoms");
    ctx.config("score", "mean squared reconstruction error of the image");
    let mut raw = serde_json::Map::new();
    for (name, (train, test)) in [("mnist", &mnist), ("fashion_mnist", &fashion)] {
        let [ae, sc] = one_class_aurocs(ctx, name, train, test)?;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        ctx.metric(&format!("{name}_ae_auroc_per_class"), json!(ae));
        ctx.metric(&format!("{name}_ae_mean_auroc"), mean(&ae));
        ctx.metric(&format!("{name}_sparse_coding_auroc_per_class"), json!(sc));
        ctx.metric(&format!("{name}_sparse_coding_mean_auroc"), mean(&sc));
        raw.insert(name.to_string(), json!({"autoencoder": ae, "sparse_coding": sc}));
        let rows: Vec<Vec<f64>> = (0..10).map(|k| vec![k as f64, ae[k], sc[k]]).collect();
        ctx.csv(&format!("{name}_auroc"), &["normal_class", "autoencoder_auroc", "sparse_coding_auroc"], &rows)?;
        let bars = |v: &[f64], off: f64| v.iter().enumerate().map(|(k, &a)| (k as f64 + off, a)).collect::<Vec<_>>();
        let lo = ae.iter().chain(&sc).copied().fold(1.0, f64::min);
        let chart = Chart {
            title: format!(
                "{}: one-class AUROC (mean: autoencoder {:.3}, sparse coding {:.3})",
                if name == "mnist" { "MNIST" } else { "Fashion-MNIST" },
                mean(&ae),
                mean(&sc)
            ),
            x_label: "normal class".into(),
            y_label: "AUROC".into(),
            series: vec![
                Series::new("dense autoencoder", bars(&ae, -0.2), Kind::Bars(0.38), 0),
                Series::new("sparse coding", bars(&sc, 0.2), Kind::Bars(0.38), 2),
            ],
            y_range: Some(((lo - 0.05).clamp(0.0, 0.8), 1.02)),
            x_range: Some((-0.7, 9.7)),
            ..Chart::default()
        };
        ctx.chart(
            &format!("{name}_auroc"),
            &format!("AUROC of the mean squared reconstruction error when class k is normal and the other nine classes are anomalous ({name})."),
            &chart,
            (700, 400),
        )?;
    }
    ctx.raw("one_class_auroc", &Value::Object(raw))?;
    Ok(())
}
