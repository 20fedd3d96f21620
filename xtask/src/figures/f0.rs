//! F0 "the data": a sheet of everything the other figures learn from.

use super::plot::{Canvas, linear, tile_sheet};
use super::{Ctx, Figure};
use latent_datasets::anomaly::{AnomalyConfig, DefectKind, generate_anomaly_set, load_texture};
use latent_datasets::cells::CellSample;
use latent_datasets::patches::{Zca, extract_random_patches, whiten_1f};
use latent_datasets::{FashionMnist, Mnist, data_dir, load_image_folder};
use serde_json::json;

pub const FIGURE: Figure = Figure {
    id: "F0",
    title: "The data",
    claim: "Everything is learned from real data shipped with the repository (MNIST, Fashion-MNIST, natural \
            photographs, a fluorescence nuclei image with labelled nuclei, CC0 textures); only the defects \
            painted on the textures are synthetic.",
    run,
};

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Mean |correlation| between different pixels of a patch set (1.0 = fully redundant, 0 = white).
fn mean_abs_offdiag_corr(p: &[f32], dim: usize) -> f64 {
    let n = p.len() / dim;
    let mut mean = vec![0.0f64; dim];
    for r in p.chunks(dim) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0f64; dim * dim];
    for r in p.chunks(dim) {
        for i in 0..dim {
            let a = r[i] as f64 - mean[i];
            for j in 0..dim {
                cov[i * dim + j] += a * (r[j] as f64 - mean[j]);
            }
        }
    }
    let mut s = 0.0;
    for i in 0..dim {
        for j in 0..dim {
            if i != j {
                s += (cov[i * dim + j] / (cov[i * dim + i] * cov[j * dim + j]).sqrt().max(1e-300)).abs();
            }
        }
    }
    s / (dim * (dim - 1)) as f64
}

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let bar = ctx.progress(5, "F0 data sheet");
    // MNIST: the first ten test digits (the lecture's compression figure shows 7 2 1 0 4)
    bar.set_message("MNIST");
    let mnist = if ctx.quick { Mnist::load_small() } else { Mnist::load_default() }.map_err(err)?;
    let first: Vec<Vec<f32>> = (0..10)
        .map(|i| mnist.test.image(i).map(<[f32]>::to_vec).ok_or("MNIST test set is empty"))
        .collect::<Result<_, _>>()?;
    let labels: Vec<u8> = (0..10).filter_map(|i| mnist.test.label(i)).collect();
    ctx.canvas(
        "mnist_first10.png",
        &format!("The first ten MNIST test digits (labels {labels:?})."),
        &tile_sheet(&first, 28, 28, 10, 3, false),
    )?;
    ctx.metric("mnist_test_images", mnist.test.len() as u64);
    ctx.metric("mnist_train_images", mnist.train.len() as u64);
    ctx.metric("mnist_first_test_labels", json!(labels));
    bar.inc(1);

    bar.set_message("Fashion-MNIST");
    let fashion = FashionMnist::load_default().map_err(err)?;
    let mut samples = Vec::new();
    for class in 0..10u8 {
        if let Some(i) = (0..fashion.test.len()).find(|&i| fashion.test.label(i) == Some(class)) {
            samples.push(fashion.test.image(i).map(<[f32]>::to_vec).ok_or("Fashion-MNIST image")?);
        }
    }
    ctx.canvas(
        "fashion_classes.png",
        "Fashion-MNIST: the first test image of each of the ten classes.",
        &tile_sheet(&samples, 28, 28, 10, 3, false),
    )?;
    ctx.metric("fashion_test_images", fashion.test.len() as u64);
    bar.inc(1);

    bar.set_message("natural images");
    let imgs: Vec<_> =
        load_image_folder(data_dir().join("natural-gray")).map_err(err)?.into_iter().map(|(_, i)| i).collect();
    ctx.metric("natural_images", imgs.len() as u64);
    let count = if ctx.quick { 2000 } else { 10000 };
    let mut raw = extract_random_patches(&imgs, 12, 12, count, ctx.seed).map_err(err)?;
    raw.remove_mean();
    let before = mean_abs_offdiag_corr(raw.data(), 144);
    let zca = Zca::fit(&raw, 0.01).map_err(err)?;
    let mut white = raw.clone();
    zca.apply(&mut white).map_err(err)?;
    let after = mean_abs_offdiag_corr(white.data(), 144);
    let whitened_imgs: Vec<_> = imgs.iter().map(|i| whiten_1f(i, 0.4)).collect::<Result<_, _>>().map_err(err)?;
    let mut of = extract_random_patches(&whitened_imgs, 12, 12, 32, ctx.seed + 1).map_err(err)?;
    of.remove_mean();
    let pick = |p: &latent_datasets::patches::PatchSet| -> Vec<Vec<f32>> {
        (0..32).filter_map(|i| p.patch(i).map(<[f32]>::to_vec)).collect()
    };
    ctx.canvas(
        "patches_raw.png",
        "12×12 natural-image patches, mean removed (before whitening).",
        &tile_sheet(&pick(&raw), 12, 12, 16, 4, true),
    )?;
    ctx.canvas(
        "patches_zca.png",
        "The same patches after ZCA whitening (ε = 0.01).",
        &tile_sheet(&pick(&white), 12, 12, 16, 4, true),
    )?;
    ctx.canvas(
        "patches_1f.png",
        "Patches of the images after Olshausen & Field's 1/f whitening filter (f₀ = 0.4 cycles/pixel, as in their code).",
        &tile_sheet(&pick(&of), 12, 12, 16, 4, true),
    )?;
    ctx.metric("patch_pixel_corr_before_whitening", before);
    ctx.metric("patch_pixel_corr_after_zca", after);
    bar.inc(1);

    bar.set_message("nuclei");
    let cells = CellSample::load_dsb2018().map_err(err)?;
    let (w, h) = (cells.width(), cells.height());
    let img = cells.image();
    let mut c = Canvas::new(2 * w + 8, h, [255, 255, 255]);
    let (lo, hi) = img.data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    c.gray_tile(0, 0, w, h, &img.data, 1, &linear(lo, hi));
    let map = linear(lo, hi);
    let overlay: Vec<[u8; 3]> = (0..w * h)
        .map(|k| {
            if cells.borders()[k] {
                [255, 220, 0]
            } else if cells.mask()[k] {
                let g = map(img.data[k]) as f32;
                [(0.5 * g) as u8, (0.5 * g + 127.0) as u8, (0.5 * g + 127.0) as u8]
            } else {
                let g = map(img.data[k]);
                [g, g, g]
            }
        })
        .collect();
    c.rgb_tile(w + 8, 0, w, h, &overlay, 1);
    ctx.canvas(
        "nuclei.png",
        "The fluorescence nuclei image (BBBC038/DSB 2018), and its instance mask (cyan) with borders (yellow).",
        &c,
    )?;
    ctx.metric("nuclei_instances", cells.count_instances() as u64);
    ctx.metric("nuclei_mask_fraction", cells.mask().iter().filter(|m| **m).count() as f64 / (w * h) as f64);
    bar.inc(1);

    bar.set_message("textures with defects");
    let cfg = AnomalyConfig {
        crop: 128,
        n_train: 1,
        n_test_good: 1,
        n_test_per_defect: 1,
        defects: DefectKind::ALL.to_vec(),
    };
    let mut rows = Vec::new();
    let mut fractions = serde_json::Map::new();
    for (t, name) in ["brick", "grass", "gravel"].iter().enumerate() {
        let tex = load_texture(name).map_err(err)?;
        let set = generate_anomaly_set(&tex, name, &cfg, ctx.seed + t as u64).map_err(err)?;
        let defective: Vec<_> = set.test.iter().filter(|s| s.defect.is_some()).collect();
        for s in &defective {
            let frac = s.mask.iter().filter(|m| **m).count() as f64 / s.mask.len() as f64;
            fractions.insert(format!("{name}/{}", s.defect.map(|d| d.name()).unwrap_or("?")), json!(frac));
        }
        rows.push(defective.into_iter().cloned().collect::<Vec<_>>());
    }
    let n = rows.first().map_or(0, Vec::len);
    let tile = 128;
    let mut sheet = Canvas::new(n * (tile + 4) + 4, 6 * (tile + 4) + 4, [255, 255, 255]);
    for (r, row) in rows.iter().enumerate() {
        for (q, s) in row.iter().enumerate() {
            let (x0, y0) = (4 + q * (tile + 4), 4 + 2 * r * (tile + 4));
            sheet.gray_tile(x0, y0, tile, tile, &s.image.data, 1, &linear(0.0, 1.0));
            let ov: Vec<[u8; 3]> = s
                .image
                .data
                .iter()
                .zip(&s.mask)
                .map(|(&v, &m)| {
                    let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
                    if m { [255, g / 3, g / 3] } else { [g, g, g] }
                })
                .collect();
            sheet.rgb_tile(x0, y0 + tile + 4, tile, tile, &ov, 1);
        }
    }
    let kinds: Vec<&str> = DefectKind::ALL.iter().map(|d| d.name()).collect();
    ctx.canvas(
        "textures_defects.png",
        &format!("Synthetic defects on the CC0 textures brick, grass, gravel (rows), kinds {kinds:?} (columns); below each, its exact mask in red."),
        &sheet,
    )?;
    ctx.metric("defect_pixel_fraction", serde_json::Value::Object(fractions));
    bar.inc(1);
    bar.finish_and_clear();
    ctx.config("patch_size", 12);
    ctx.config("patches_for_zca", count as u64);
    Ok(())
}
