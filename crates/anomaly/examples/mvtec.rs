//! Anomaly detection on the MVTec AD folder layout with a convolutional ℓ2 autoencoder applied
//! in overlapping tiles, and a patch-dictionary detector for comparison.
//!
//! ```text
//! cargo run --release -p latent-anomaly --example mvtec                       # synthetic textures
//! cargo run --release -p latent-anomaly --example mvtec -- ROOT CATEGORY [DOWNSCALE]   # real MVTec AD
//! ```
//!
//! Without arguments the three synthetic texture categories of `latent-datasets` are written in
//! the MVTec layout to a temporary folder and evaluated; with a root folder and a category name
//! (e.g. the real MVTec AD and `carpet`, images shrunk by `DOWNSCALE`, default 4) the same code
//! runs on those files. Writes `mvtec_<category>_examples.png` (heatmaps of the first test images
//! of every defect type) to the current folder.

use latent_anomaly::ParamGuard;
use latent_anomaly::heatmap::heatmap_panel;
use latent_anomaly::restore::texture_ae_params;
use latent_anomaly::{
    Detector, DetectorParams, EvalParams, EvalReport, MapParams, PatchCoder, PatchDictionaryParams, Result, RgbImage,
    evaluate_mvtec, load_mvtec_test, load_mvtec_train, random_crops,
};
use latent_datasets::anomaly::{AnomalyConfig, TEXTURES, generate_anomaly_set, load_texture};
use latent_datasets::mvtec::MvtecCategory;
use std::path::PathBuf;
use std::time::Instant;

const TILE: usize = 32;

fn print_report(name: &str, r: &EvalReport, seconds: f64) {
    println!(
        "  {name:16} image AUROC {:.3}  pixel AUROC {:.3}  AUPRO {:.3}  pixel F1-max {:.3}  ({seconds:.1} s)",
        r.image_auroc, r.pixel_auroc, r.aupro, r.pixel_f1.f1
    );
    for d in &r.per_defect {
        println!(
            "      {:16} n = {:2}  image AUROC {:.3}  pixel AUROC {:.3}  AUPRO {:.3}",
            d.defect, d.count, d.image_auroc, d.pixel_auroc, d.aupro
        );
    }
}

fn run(root: &PathBuf, category: &str, downscale: usize) -> Result<()> {
    println!("== {category}");
    let cat = MvtecCategory::open(root, category)?;
    let train = load_mvtec_train::<f32>(&cat, downscale)?;
    let eval = EvalParams::new().downscale(downscale).check()?;

    let t = Instant::now();
    let crops = random_crops(&train, TILE, TILE, 4000, 1)?;
    // the ℓ2 conv AE of F11: 32×32 crops → 16×4×4 code
    let fitted = texture_ae_params(TILE, &[(16, 4, 2, 1), (32, 4, 2, 1), (32, 4, 2, 1), (16, 3, 1, 1)], 10, 1)
        .progress(true)
        .check()?
        .fit(&crops)?;
    let ae = Detector::new(
        fitted.model,
        DetectorParams::new().map(MapParams::new().smoothing(2.0)).tiles(TILE, TILE, 8).batch_size(256).check()?,
    );
    let e = evaluate_mvtec(&ae, &cat, &eval)?;
    print_report("ℓ2 autoencoder", &e.report, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let dict = PatchDictionaryParams::new()
        .atoms(128)
        .coder(PatchCoder::Omp { k: 3 })
        .remove_mean(false)
        .train_patches(20000)
        .seed(1)
        .check()?
        .fit(&train)?;
    let sc = Detector::new(dict, DetectorParams::new().map(MapParams::new().smoothing(2.0)).check()?);
    let e_sc = evaluate_mvtec(&sc, &cat, &eval)?;
    print_report("patch dictionary", &e_sc.report, t.elapsed().as_secs_f64());

    // heatmaps of the autoencoder: the first test image of every defect type
    let test = load_mvtec_test::<f32>(&cat, downscale)?;
    let [_, _, h, w] = test.images.shape();
    let plane = h * w;
    let hi = latent_anomaly::quantile(e.maps.as_slice(), 0.999)?;
    let mut rows = Vec::new();
    for kind in e.report.per_defect.iter().map(|d| d.defect.as_str()) {
        if let Some(i) = test.defects.iter().position(|d| d == kind) {
            let s = |v: &[f32]| v[i * plane..(i + 1) * plane].to_vec();
            rows.push(heatmap_panel(
                &s(test.images.as_slice()),
                &s(e.reconstructions.as_slice()),
                &s(e.maps.as_slice()),
                w,
                h,
                (0.0, hi),
                e.report.pixel_f1.threshold,
                Some(&test.masks[i * plane..(i + 1) * plane]),
            )?);
        }
    }
    let out = PathBuf::from(format!("mvtec_{category}_examples.png"));
    RgbImage::vconcat(&rows, 2, [255, 255, 255])?.write_png(&out)?;
    println!("  heatmaps → {}", out.display());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [root, category, rest @ ..] = args.as_slice() {
        let downscale = rest.first().and_then(|v| v.parse().ok()).unwrap_or(4);
        return run(&PathBuf::from(root), category, downscale);
    }
    let root = std::env::temp_dir().join(format!("latent_anomaly_mvtec_{}", std::process::id()));
    for (i, name) in TEXTURES.iter().enumerate() {
        let cfg = AnomalyConfig { crop: 64, n_train: 100, n_test_good: 20, n_test_per_defect: 5, ..Default::default() };
        generate_anomaly_set(&load_texture(name)?, name, &cfg, i as u64)?.write_mvtec(&root)?;
        run(&root, name, 1)?;
    }
    std::fs::remove_dir_all(&root).ok();
    Ok(())
}
