//! F11 "anomaly detection": textures with synthetic defects, three reconstructors side by side;
//! F11b: one-class MNIST and Fashion-MNIST.

use super::common::err;
use super::plot::{Canvas, Chart, Kind, Series};
use super::{Ctx, Figure};
use indicatif::ProgressBar;
use latent_anomaly::heatmap::compare_masks;
use latent_anomaly::restore::texture_ae_params;
use latent_anomaly::{
    Checked, Detector, DetectorParams, EvalParams, EvalReport, Evaluation, ImageScore, MapParams, NormalizerParams,
    ParamGuard, PatchCoder, PatchDictionary, PatchDictionaryParams, Reconstructor, RgbImage, Scope, Side,
    SsimAutoencoder, SsimParams, corrupted_pixel_auroc, evaluate_mvtec, heatmap_panel, load_mvtec_train, random_crops,
    restoration_check,
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
            the clean crop; architecture, training length and map smoothing chosen in three rounds on corrupted \
            held-out normal data only, the last per texture, never on the test defects) maps defects back to normal texture, so its plain \
            squared-error map is high on them. Whether it reaches the bar on every category is the metric \
            restoring_ae_pixel_auroc_at_least_0.90_on_every_category; soft, low-contrast stains on grass are the \
            hardest defect (see the per-defect results).",
    run: run_textures,
};

pub const FIGURE_F11B: Figure = Figure {
    id: "F11b",
    title: "One-class MNIST and Fashion-MNIST",
    claim: "Trained on one class only, the reconstruction error separates that class from all others: \
            AUROC per normal class and its mean (Bergmann et al. report ≈ 0.98 mean one-class MNIST AUROC for an \
            ℓ2 autoencoder).",
    run: run_one_class,
};

/// The detectors, in display order: the three raw-error detectors, then the same three models
/// with the map normalised by held-out normal data.
const MODELS: [&str; 7] = [
    "l2_ae",
    "ssim_ae",
    "sparse_coding",
    "l2_ae_normalized",
    "ssim_ae_normalized",
    "sparse_coding_normalized",
    "restoring_ae",
];
const MODEL_NAMES: [&str; 7] = [
    "ℓ2 autoencoder",
    "SSIM autoencoder",
    "sparse coding (patch dictionary)",
    "ℓ2 AE, normalised map",
    "SSIM AE, normalised map",
    "sparse coding, normalised map",
    "restoring AE (blob-denoising)",
];
/// Detectors shown in the example sheet (the three raw ones, the normalised ℓ2 autoencoder and
/// the restoring autoencoder).
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
            restoring_epochs: 50,
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
/// 1×32×32 → 32@16² → 64@8² → 64@8² (5×5, stride 1) → code 32@8² (5×5, stride 1), mirrored
/// decoder.
const RESTORING_STAGES: [(usize, usize, usize, usize); 4] =
    [(32, 4, 2, 1), (64, 4, 2, 1), (64, 5, 1, 2), (32, 5, 1, 2)];

/// The restoring autoencoder's tile side, training crops and epochs for one texture.
#[derive(Debug, Clone, Copy)]
struct RestoringChoice {
    tile: usize,
    crops: usize,
    epochs: usize,
    /// Added to the texture's seed for the model's initialisation and shuffling.
    seed_offset: u64,
}

/// Round 3's per-texture choice (see [`restoring_ae`]): brick 8000 crops × 25 epochs of 32×32
/// tiles; grass 4000 crops × 50 epochs of 48×48 tiles; gravel the same with model seed + 7.
fn restoring_choice(texture: &str) -> RestoringChoice {
    match texture {
        "grass" => RestoringChoice { tile: 48, crops: 4000, epochs: 50, seed_offset: 0 },
        "gravel" => RestoringChoice { tile: 48, crops: 4000, epochs: 50, seed_offset: 7 },
        _ => RestoringChoice { tile: 32, crops: 8000, epochs: 25, seed_offset: 0 },
    }
}

/// The restoring (blob-denoising) autoencoder: [`RESTORING_STAGES`], otherwise as [`conv_ae`]
/// (leaky ReLU, sigmoid output, Adam lr 2e-3, batch 32), trained to return the clean crop of a
/// blob-corrupted one. Chosen, with the map σ, on blob-corrupted held-out *normal* images only,
/// by the detector's pixel AUROC for the corrupted pixels; no test defect was looked at (the
/// selection programs were retired from `crates/anomaly/examples`; their findings are in the
/// latent-anomaly README, "What we tried", and in `git log -- crates/anomaly/examples`). Round 1
/// (one corruption draw, mean over the textures): five candidates × σ ∈ {none, 1, 2, 4};
/// 16@16² → 32@8² → code 32@8², 50 epochs, σ = 1 won with 0.736 (48×48 tiles: 0.730). Round 2
/// (three corruption draws): the round-1 winner 0.7445 at σ = 1; the same with a second map,
/// inference trick or more training — (G₁∗e)² 0.727, a two-sided normalised map 0.731,
/// restoring twice 0.739, 4-flip averaging 0.743, tile stride 4 0.745, a 3-seed ensemble 0.747,
/// 100 epochs 0.744 — and more context: one extra 3×3 stage at 8² 0.753, two 0.748, two 5×5
/// stages 0.760, wider and deeper with 3×3 stages 0.764, and this one (wider, deeper, 5×5
/// stages) 0.773 at σ = 1 (σ = 2: 0.749; raw map 0.771), the best. Round 3 (same protocol,
/// chosen **per texture**, map fixed at σ = 1): this architecture on 32×32 tiles (brick / grass /
/// gravel 0.886 / 0.725 / 0.709), with feathered training blobs (σf ≤ 2 px: 0.884 / 0.704 /
/// 0.676; ≤ 4 px: 0.882 / 0.669 / 0.677), one more 64@8² 5×5 stage (0.890 / 0.680 / 0.661),
/// 48×48 tiles (0.887 / **0.747** / 0.505, the last a collapsed training run) and 8000 crops × 25
/// epochs (**0.893** / 0.713 / 0.711); a second seed of the 48×48 model on the two textures where
/// it was best or collapsed (grass 0.731, gravel **0.719**). The best per texture is
/// [`restoring_choice`]. Seed-to-seed spread on one texture is up to 0.017 (grass), so the
/// per-texture differences below that are within noise.
fn restoring_ae(
    choice: RestoringChoice,
    epochs: usize,
    seed: u64,
) -> Result<latent_autoencoder::Checked<ConvAeParams>, String> {
    latent_anomaly::restore::restoring_ae_params(choice.tile, &RESTORING_STAGES, epochs, seed, restoring_noise())
        .check()
        .map_err(err)
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
        y_range: Some((0.0, 1.08)),
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
        let checks = heldout_blob_checks(ctx, &data, &models)?;
        record_texture(ctx, &mut results, ci, &data, &runs, checks)?;
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
            "restoring (blob-denoising) autoencoder: conv 1×T×T → 32@T/2² → 64@T/4² → 64@T/4² (5×5, stride 1) → code \
         32@T/4² (5×5, stride 1), mirrored, optimiser and batch as the ℓ2 AE; full run: brick and gravel T = 32, 8000 \
         random crops, 25 epochs; grass and gravel T = 48, 4000 crops, 50 epochs, gravel with model seed + 7 (quick run: the ℓ2 AE's crop count, {} epochs, \
         same T; see restoring_ae_<texture>); architecture, epochs \
         and map σ chosen on blob-corrupted held-out normal images only, by the detector's \
         pixel AUROC for the corrupted pixels, not on test defects (the three rounds are summarised in the \
         latent-anomaly README, \"What we tried\"): round 1 (one corruption \
         draw) chose 16@16² → 32@8² → code 32@8², 50 epochs, σ = 1 among 5 candidates × σ ∈ {{none, 1, 2, 4}} (0.736); \
         round 2 (three draws: 0.7445 for round 1's choice) found no gain from other maps \
         ((G₁∗e)² 0.727, two-sided normalised 0.731), restoring twice, finer tiles, flips, a 3-seed ensemble (0.747) or \
         100 epochs, and a gain from more context and width (3×3 stages: 0.764): this architecture 0.773 at σ = 1 \
         (σ = 2: 0.749); round 3 (same three draws, chosen per texture with σ = 1 fixed; \
         brick / grass / gravel): 32×32 tiles 0.886 / 0.725 / 0.709, feathered training blobs σf ≤ 2 px \
         0.884 / 0.704 / 0.676 and ≤ 4 px 0.882 / 0.669 / 0.677, one more 5×5 stage 0.890 / 0.680 / 0.661, \
         48×48 tiles 0.887 / 0.747 / 0.505 (collapsed run), 8000 crops × 25 epochs 0.893 / 0.713 / 0.711, 48×48 tiles \
         with model seed + 7 on grass and gravel 0.731 / 0.719; best per texture kept. MSE loss \
         between the reconstruction of a corrupted crop and the clean crop. Corruption (BlobNoise defaults, fixed a \
         priori, generic, independent of the defect generator): per crop with probability 0.8, blobs = the highest \
         c·H·W pixels of a two-octave value-noise field (cell 2–12 px), c ~ U(0, 0.3); inside the blobs the crop is \
         blended (opacity U(0.3, 1)) with either its mean over the blob (1/3) or B + g·(x − B) (2/3; B = Gaussian blur \
         σ = 2, gain g ~ U(0, 2)), plus a shift U(−0.4, 0.4), clamped to the crop's range. Map: squared error, \
         Gaussian σ = 1 (no normalised variant: with the one-sided normaliser, pooled statistics and the same σ it is \
         a monotone transform of the smoothed map; measured with σ = 2 in an earlier run, equal up to ties). heldout_normal_blob_check: the same corruption applied to \
         400 crops of the held-out normal images (no defects): restored MSE and AUROC of the raw error map for the \
         corrupted pixels; detector_pixel_auroc_on_corrupted_heldout_images: the same for the whole detector (tiles, \
         its own σ) on the corrupted held-out 64×64 images",
            sz.restoring_epochs
        ),
    );
    ctx.config("image_score", "maximum of the map");
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

/// The four models trained on one texture's normal images.
struct TextureModels {
    l2: Trained<Autoencoder<f32>>,
    ssim: Trained<SsimAutoencoder<f32>>,
    dict: Trained<PatchDictionary<f32>>,
    restoring: Trained<Autoencoder<f32>>,
    restoring_tile: usize,
}

/// Train the ℓ2 autoencoder, the SSIM autoencoder (same architecture and crops), the patch
/// dictionary and the restoring autoencoder of [`restoring_choice`] on one texture.
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

    // the restoring autoencoder, trained on the same crops to map blob-corrupted normal crops
    // back to the clean crops
    bar.set_message(format!("{name}: restoring autoencoder"));
    let choice = restoring_choice(name);
    let (r_crops, r_epochs) = if ctx.quick { (sz.crops, sz.restoring_epochs) } else { (choice.crops, choice.epochs) };
    let restoring = timed(|| {
        // the ℓ2 AE's crops when they are the same draw, else crops of the restoring tile size
        let own_crops;
        let r_train = if choice.tile == TILE && r_crops == sz.crops {
            &data.crops
        } else {
            own_crops = random_crops(&data.fit, choice.tile, choice.tile, r_crops, seed + 1).map_err(err)?;
            &own_crops
        };
        Ok(restoring_ae(choice, r_epochs, seed + choice.seed_offset)?.fit(r_train).map_err(err)?.model)
    })?;
    ctx.config(
        &format!("restoring_ae_{name}"),
        format!(
            "{}×{} tiles, {r_crops} crops, {r_epochs} epochs, model seed = texture seed + {}",
            choice.tile, choice.tile, choice.seed_offset
        ),
    );
    Ok(TextureModels { l2, ssim, dict, restoring, restoring_tile: choice.tile })
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

/// The detectors of [`MODELS`], in order: the three raw-error detectors, the same models with
/// maps normalised by the held-out normal images (the normaliser's window replaces the
/// smoothing; times include training), and the restoring autoencoder.
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
    let TextureModels { l2, ssim, dict, restoring, restoring_tile } = models;
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
        raw(
            &restoring.model,
            tiles_of(*restoring_tile, MapParams::new().smoothing(RESTORING_SMOOTHING))?,
            restoring.seconds,
        ),
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

/// The normal-data-only check of the ℓ2 and the restoring autoencoder: blob-corrupted crops and
/// whole images of the held-out normal images, recorded as metrics; returns the raw numbers.
fn heldout_blob_checks(ctx: &mut Ctx, data: &TextureData, models: &TextureModels) -> Result<Value, String> {
    let (name, seed, held) = (data.name, data.seed, &data.held);
    let mut checks = serde_json::Map::new();
    for (label, model, sigma, tile) in [
        ("l2_ae", &models.l2.model, SMOOTHING, TILE),
        ("restoring_ae", &models.restoring.model, RESTORING_SMOOTHING, models.restoring_tile),
    ] {
        let held_crops = random_crops(held, tile, tile, 400, seed + 2).map_err(err)?;
        let c = restoration_check(model, &held_crops, &restoring_noise(), seed + 3).map_err(err)?;
        let det = Detector::new(model, tiles_of(tile, MapParams::new().smoothing(sigma))?);
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
    /// `[category][metric: image AUROC, pixel AUROC, AUPRO][model]`.
    table: Vec<[[f64; MODELS.len()]; 3]>,
    /// Per category and model: the full reports and the held-out checks.
    raw: serde_json::Map<String, Value>,
    csv_rows: Vec<Vec<f64>>,
    /// Rows of the example sheet.
    sheet_rows: Vec<RgbImage>,
}

/// Record one category's runs: metrics, raw reports, CSV rows, the table row and the example
/// sheet's rows (one test image of three defect kinds, every detector of [`SHEET_MODELS`]).
fn record_texture(
    ctx: &mut Ctx,
    results: &mut TextureResults,
    ci: usize,
    data: &TextureData,
    runs: &[Run],
    checks: Value,
) -> Result<(), String> {
    let name = data.name;
    let mut row = [[0.0; MODELS.len()]; 3];
    let mut cat_raw = serde_json::Map::new();
    for (m, r) in runs.iter().enumerate() {
        let rep = &r.eval.report;
        row[0][m] = rep.image_auroc;
        row[1][m] = rep.pixel_auroc;
        row[2][m] = rep.aupro;
        let key = format!("{name}_{}", MODELS[m]);
        ctx.metric(&format!("{key}_image_auroc"), rep.image_auroc);
        ctx.metric(&format!("{key}_pixel_auroc"), rep.pixel_auroc);
        ctx.metric(&format!("{key}_aupro"), rep.aupro);
        ctx.metric(&format!("{key}_pixel_f1_max"), rep.pixel_f1.f1);
        let mut j = report_json(rep);
        j["pixel_threshold_heldout_q995"] = json!(r.pixel_threshold);
        j["seconds"] = json!(r.seconds);
        cat_raw.insert(MODELS[m].to_string(), j);
        results.csv_rows.push(vec![
            ci as f64,
            m as f64,
            rep.image_auroc,
            rep.pixel_auroc,
            rep.aupro,
            rep.image_f1.f1,
            rep.pixel_f1.f1,
            r.seconds,
        ]);
    }
    cat_raw.insert("heldout_normal_blob_check".to_string(), checks);
    results.raw.insert(name.to_string(), Value::Object(cat_raw));
    results.table.push(row);

    let cat = &data.cat;
    let picks: Vec<usize> =
        ["scratch", "hole", "stain"].iter().filter_map(|k| cat.test.iter().position(|e| e.defect == *k)).collect();
    let per_model: Vec<Vec<RgbImage>> =
        SHEET_MODELS.iter().map(|&m| example_rows(&runs[m], cat, &picks)).collect::<Result<_, _>>()?;
    for d in 0..picks.len() {
        let row: Vec<RgbImage> = per_model.iter().map(|rows| rows[d].clone()).collect();
        results.sheet_rows.push(RgbImage::hconcat(&row, 6, [255, 255, 255]).map_err(err)?);
    }
    Ok(())
}

/// The means over categories (metrics), the raw reports, the CSV, the bar charts and the
/// example sheet.
fn write_texture_results(ctx: &mut Ctx, results: &TextureResults) -> Result<(), String> {
    let table = &results.table;
    for (m, model) in MODELS.iter().enumerate() {
        for (k, metric) in ["image_auroc", "pixel_auroc", "aupro"].iter().enumerate() {
            let mean = table.iter().map(|r| r[k][m]).sum::<f64>() / table.len() as f64;
            ctx.metric(&format!("mean_{model}_{metric}"), mean);
        }
        let min_pixel = table.iter().map(|r| r[1][m]).fold(f64::INFINITY, f64::min);
        ctx.metric(&format!("{model}_pixel_auroc_at_least_0.90_on_every_category"), min_pixel >= 0.90);
    }
    ctx.raw("results", &Value::Object(results.raw.clone()))?;
    ctx.csv(
        "results",
        &[
            "category(0=brick,1=grass,2=gravel)",
            "model(0=l2_ae,1=ssim_ae,2=sparse_coding,3=l2_ae_normalized,4=ssim_ae_normalized,5=sparse_coding_normalized,6=restoring_ae)",
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
        ctx.chart(
            &format!("bars_{metric}"),
            &format!(
                "{label} per texture category: the three raw-error detectors, the same models with normalised maps, and \
                 the restoring (blob-denoising) autoencoder."
            ),
            &grouped_bars(label, label, &vals),
            (800, 420),
        )?;
    }
    write_example_sheet(ctx, &results.sheet_rows)
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
