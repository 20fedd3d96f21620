//! F9 "U-Net segmentation": a U-Net trained on part of the real nuclei image segments the
//! held-out part; the same network without its shortcut connections, and a shallow network
//! without the abstract (down-sampled) representation, show that both are needed.

use super::common::err;
use super::plot::{Canvas, Chart, Kind, Series, heat, linear};
use super::{Cmp, Ctx, Figure, Rhs};
use latent_datasets::cells::{CellSample, SynthCells, synth_cell_set};
use latent_unet::data::{Split, evaluate, split, standardize};
use latent_unet::metrics::evaluate_classes;
use latent_unet::weight_map::{WeightMapParams, class_map, weight_map};
use latent_unet::{Padding, ParamGuard, SegMetrics, SegTrainer, TrainParams, UNet, UnetParams};
use serde_json::json;

pub const FIGURE: Figure = Figure {
    id: "F9",
    title: "U-Net segmentation",
    claim: "Shortcut connections finely encode the boundaries of the segments; the abstract, down-sampled \
            representation serves to understand the segment's content. Both are necessary for good segmentation: \
            a U-Net trained on part of a nuclei image segments the held-out part well (IoU ≥ 0.85), and removing the \
            shortcuts or the down-sampled levels makes it worse.",
    run,
};

/// Pixels of a held-out instance map whose 4-neighbour (inside the image) has another label.
fn borders(inst: &[u32], w: usize, h: usize) -> Vec<bool> {
    (0..w * h)
        .map(|k| {
            let (x, y, v) = (k % w, k / w, inst[k]);
            v != 0
                && ((x > 0 && inst[k - 1] != v)
                    || (x + 1 < w && inst[k + 1] != v)
                    || (y > 0 && inst[k - w] != v)
                    || (y + 1 < h && inst[k + w] != v))
        })
        .collect()
}

/// The lecture's rendering: gray input, predicted mask in cyan, ground-truth border in yellow.
fn overlay(img: &[f32], mask: Option<&[bool]>, border: Option<&[bool]>, lo: f32, hi: f32) -> Vec<[u8; 3]> {
    let map = linear(lo, hi);
    (0..img.len())
        .map(|k| {
            let g = map(img[k]);
            let mut c = [g, g, g];
            if mask.is_some_and(|m| m[k]) {
                c = [
                    (g as f32 * 0.45) as u8,
                    (g as f32 * 0.45 + 140.0).min(255.0) as u8,
                    (g as f32 * 0.45 + 140.0).min(255.0) as u8,
                ];
            }
            if border.is_some_and(|b| b[k]) {
                c = [255, 220, 0];
            }
            c
        })
        .collect()
}

struct Variant {
    key: &'static str,
    short: &'static str,
    label: &'static str,
    params: UnetParams,
    synthetic: bool,
}

/// What one trained variant gave on the held-out part.
struct Outcome {
    short: &'static str,
    label: &'static str,
    metrics: SegMetrics,
    classes: Vec<u8>,
    losses: Vec<f64>,
}

fn run(ctx: &mut Ctx) -> Result<(), String> {
    let quick = ctx.quick;
    let full = CellSample::load_dsb2018().map_err(err)?;
    let (train, test) = split(&full, Split::Columns(0.75)).map_err(err)?;
    let (train_s, test_s) = (standardize(&train).map_err(err)?, standardize(&test).map_err(err)?);
    let n_synth = if quick { 2 } else { 6 };
    let synth_cfg = SynthCells { width: 128, height: 128, ..SynthCells::default() };
    let real = vec![train_s.clone()];
    let mut with_synth = real.clone();
    for s in synth_cell_set(&synth_cfg, n_synth, ctx.seed + 90).map_err(err)? {
        with_synth.push(standardize(&s).map_err(err)?);
    }
    let (base, steps, batch, tile) = if quick { (8, 100, 8, 64) } else { (16, 600, 8, 64) };
    let classes = 2;
    let unet = UnetParams::new().depth(3).base_channels(base).classes(classes).padding(Padding::Same).seed(ctx.seed);
    let variants = [
        Variant { key: "unet", short: "U-Net", label: "U-Net (3 levels, shortcuts)", params: unet, synthetic: false },
        Variant {
            key: "no_skips",
            short: "no shortcuts",
            label: "without shortcut connections",
            params: unet.skips(false),
            synthetic: false,
        },
        Variant {
            key: "shallow",
            short: "shallow (1 level)",
            label: "shallow: 1 level, no down-sampling",
            params: unet.depth(1),
            synthetic: false,
        },
        Variant {
            key: "unet_synthetic",
            short: "U-Net + synthetic",
            label: "U-Net trained with synthetic cells added",
            params: unet,
            synthetic: true,
        },
    ];
    let train_params = TrainParams::new()
        .steps(steps)
        .batch_size(batch)
        .tile(tile)
        .lr(1e-3)
        .final_lr(3e-5)
        .weight_map(Some(WeightMapParams::default()))
        .seed(ctx.seed + 1)
        .check()
        .map_err(err)?;
    ctx.config("data", "DSB 2018 nuclei image 512×512 (125 nuclei): train on the left 3/4 (x < 384), held out: the right 1/4 (x ≥ 384, 128×512)");
    ctx.config(
        "synthetic_images",
        format!("variant unet_synthetic: {n_synth} synthetic 128×128 cell images (synth_cell_set) added to the training image, tiles drawn in proportion to area"),
    );
    ctx.config("architecture", format!("depth 3 (two 2×2 poolings), base {base} channels, same padding, {classes} classes (background, cell), 2×2 transposed-conv up, concat shortcuts, 1×1 head"));
    ctx.config("training", format!("{steps} Adam steps, batch {batch} random {tile}×{tile} tiles (flips, rotations, elastic 3×3 grid σ = 10 px), lr 1e-3 → 3e-5 cosine, weighted cross-entropy w0 = 10, σ = 5 px, class-balanced"));
    ctx.config("prediction", "overlap-tile with mirror padding; instances = 4-connected components of the predicted cells; components < 8 px dropped");
    ctx.config(
        "paper_reference_iou",
        "«PhC-U373 0.9203, DIC-HeLa 0.7756 (Ronneberger et al. 2015, Table 2)», other data sets, for scale only",
    );

    let (tw, th) = (test_s.width(), test_s.height());
    let truth = test_s.instances().data.clone();
    let mut results: Vec<Outcome> = Vec::new();
    for v in &variants {
        let checked = v.params.check().map_err(err)?;
        let mut net = checked.build::<UNet<f32>>().map_err(err)?;
        let n_params = net.num_params();
        let bar = ctx.progress(steps as u64, &format!("F9 {}", v.key));
        let trainer = SegTrainer::new(train_params.clone());
        let report = trainer
            .fit_with(&mut net, if v.synthetic { &with_synth } else { &real }, &mut |s| {
                bar.set_position(s.step as u64);
                bar.set_message(format!("loss {:.3}", s.loss));
            })
            .map_err(err)?;
        bar.finish_and_clear();
        let pred_tile = 64 + 2 * net.geometry().context();
        let (m, cls) = evaluate(&net, &test_s, pred_tile, 8).map_err(err)?;
        ctx.metric(&format!("{}_iou", v.key), m.iou);
        ctx.metric(&format!("{}_dice", v.key), m.dice);
        ctx.metric(&format!("{}_pixel_accuracy", v.key), m.pixel_accuracy);
        ctx.metric(&format!("{}_instance_f1", v.key), m.f1);
        ctx.metric(&format!("{}_instance_precision", v.key), m.precision);
        ctx.metric(&format!("{}_instance_recall", v.key), m.recall);
        ctx.metric(&format!("{}_train_seconds", v.key), report.seconds);
        ctx.metric(&format!("{}_params", v.key), n_params);
        if v.key == "unet" {
            // the trained model file round-trips to identical predictions
            let path = ctx.dir.join("unet.bin");
            net.save(&path).map_err(err)?;
            let back = UNet::<f32>::load(&path).map_err(err)?;
            let (m2, cls2) = evaluate(&back, &test_s, pred_tile, 8).map_err(err)?;
            ctx.claim(
                "unet_reload_identical",
                cls2 == cls && m2 == m,
                "the model reloaded from unet.bin predicts the same classes and metrics",
            );
            ctx.metric("unet_model_file_bytes", std::fs::metadata(&path).map_err(err)?.len());
        }
        results.push(Outcome { short: v.short, label: v.label, metrics: m, classes: cls, losses: report.losses });
    }

    // baseline: the global intensity threshold that is best on the training part
    let thr_metrics = |s: &CellSample, t: f32| -> Result<SegMetrics, String> {
        let cls: Vec<u8> = s.image().data.iter().map(|&v| u8::from(v > t)).collect();
        evaluate_classes(&cls, &s.instances().data, s.width(), s.height(), 2, 8).map_err(err)
    };
    let mut best = (f64::NEG_INFINITY, 0.0f32);
    for k in 0..120 {
        let t = -1.5 + k as f32 * 0.05;
        let iou = thr_metrics(&train_s, t)?.iou;
        if iou > best.0 {
            best = (iou, t);
        }
    }
    let thr = thr_metrics(&test_s, best.1)?;
    ctx.metric("threshold_iou", thr.iou);
    ctx.metric("threshold_instance_f1", thr.f1);
    ctx.config(
        "threshold_baseline",
        format!("global threshold {:.2} (standardised intensity), chosen on the training part", best.1),
    );

    let score = |i: usize| results[i].metrics;
    ctx.check("unet_iou_at_least_0_85", "unet_iou", Cmp::Ge, Rhs::Value(0.85))?;
    ctx.check("shortcuts_help_iou", "unet_iou", Cmp::Gt, Rhs::Metric("no_skips_iou"))?;
    ctx.check("shortcuts_help_f1", "unet_instance_f1", Cmp::Gt, Rhs::Metric("no_skips_instance_f1"))?;
    ctx.check("abstraction_helps_iou", "unet_iou", Cmp::Gt, Rhs::Metric("shallow_iou"))?;
    ctx.check("abstraction_helps_f1", "unet_instance_f1", Cmp::Gt, Rhs::Metric("shallow_instance_f1"))?;

    // panel: input | truth | U-Net | no shortcuts | shallow | weight map
    let gt_border = borders(&truth, tw, th);
    let gt_cls = class_map(&truth, tw, th, classes).map_err(err)?;
    let wm = weight_map(&truth, &gt_cls, tw, th, classes, &WeightMapParams::default()).map_err(err)?;
    let img = &test_s.image().data;
    let (lo, hi) = (-1.0f32, 4.0f32);
    let gap = 8;
    let top = 34;
    let mut canvas = Canvas::new(6 * (tw + gap) + gap, th + top + gap + 18, [255, 255, 255]);
    let gt_mask: Vec<bool> = truth.iter().map(|&l| l != 0).collect();
    let mut tiles: Vec<(String, String, Vec<[u8; 3]>)> = vec![
        ("input (held out)".into(), String::new(), overlay(img, None, None, lo, hi)),
        ("ground truth".into(), "cells and borders".into(), overlay(img, Some(&gt_mask), Some(&gt_border), lo, hi)),
    ];
    for r in results.iter().take(3) {
        let mask: Vec<bool> = r.classes.iter().map(|&c| c != 0).collect();
        let scores = format!("IoU {:.3}  F1 {:.3}", r.metrics.iou, r.metrics.f1);
        tiles.push((r.short.to_string(), scores, overlay(img, Some(&mask), Some(&gt_border), lo, hi)));
    }
    let wmax = wm.iter().fold(0.0f32, |a, &b| a.max(b));
    tiles.push((
        "weight map".into(),
        format!("max {wmax:.1}, √ scale"),
        wm.iter().map(|&v| heat((v / wmax).sqrt())).collect(),
    ));
    for (i, (l1, l2, rgb)) in tiles.iter().enumerate() {
        let x0 = gap + i * (tw + gap);
        canvas.rgb_tile(x0, top, tw, th, rgb, 1);
        canvas.text(x0 as i32, 4, l1, 12.0)?;
        canvas.text(x0 as i32, 18, l2, 11.0)?;
    }
    canvas.text(gap as i32, (top + th + 4) as i32, "cyan: predicted cells   yellow: ground-truth borders", 12.0)?;
    ctx.canvas(
        "segmentation.png",
        "Held-out right quarter of the nuclei image (128×512). Columns: input; ground truth; the U-Net; the same U-Net \
         without shortcut connections; a shallow network without down-sampling; the weight map w(x) = w_c(x) + \
         w0·exp(−(d1+d2)²/2σ²) of the held-out truth (square-root colour scale). Cyan: predicted cells, yellow: \
         ground-truth borders (the lecture's rendering).",
        &canvas,
    )?;

    let names = ["U-Net", "no shortcuts", "shallow", "U-Net + synthetic", "threshold"];
    let ious = [score(0).iou, score(1).iou, score(2).iou, score(3).iou, thr.iou];
    let f1s = [score(0).f1, score(1).f1, score(2).f1, score(3).f1, thr.f1];
    let chart = Chart {
        title: "Held-out segmentation quality".into(),
        x_label: "0 U-Net · 1 no shortcuts · 2 shallow · 3 U-Net + synthetic · 4 global threshold".into(),
        y_label: "score".into(),
        series: vec![
            Series::new(
                "IoU",
                ious.iter().enumerate().map(|(i, &v)| (i as f64 - 0.18, v)).collect(),
                Kind::Bars(0.34),
                0,
            ),
            Series::new(
                "instance F1 (IoU ≥ 0.5)",
                f1s.iter().enumerate().map(|(i, &v)| (i as f64 + 0.18, v)).collect(),
                Kind::Bars(0.34),
                1,
            ),
        ],
        y_range: Some((0.0, 1.05)),
        ..Chart::default()
    };
    ctx.chart("scores", "IoU and instance F1 on the held-out quarter: the U-Net, its ablations (no shortcuts; no down-sampled levels), the U-Net trained with synthetic cells added, and a global intensity threshold.", &chart, (720, 420))?;
    let smooth = |v: &[f64]| -> Vec<(f64, f64)> {
        let k = (v.len() / 20).max(1);
        v.chunks(k)
            .enumerate()
            .map(|(i, c)| (((i * k) + c.len()) as f64, c.iter().sum::<f64>() / c.len() as f64))
            .collect()
    };
    let loss_chart = Chart {
        title: "Training loss (weighted cross-entropy)".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        series: results
            .iter()
            .enumerate()
            .map(|(i, r)| Series::new(r.label, smooth(&r.losses), Kind::Line, i))
            .collect(),
        ..Chart::default()
    };
    ctx.chart("loss", "Training loss of the four networks (mean over blocks of steps).", &loss_chart, (720, 420))?;
    ctx.raw(
        "metrics_table",
        &json!(
            names
                .iter()
                .zip(ious.iter().zip(f1s.iter()))
                .map(|(n, (i, f))| json!({"model": n, "iou": i, "instance_f1": f}))
                .collect::<Vec<_>>()
        ),
    )?;
    Ok(())
}
