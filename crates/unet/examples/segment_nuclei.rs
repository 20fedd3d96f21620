//! Train a U-Net on the left three quarters of the real DSB 2018 nuclei image and evaluate it on
//! the held-out right quarter.
//!
//! `cargo run --release -p latent-unet --example segment_nuclei -- [steps] [depth] [base] [classes] [valid|same] [skips|noskips] [synthetic]`

use latent_datasets::cells::{CellSample, SynthCells, synth_cell_set};
use latent_unet::ParamGuard;
use latent_unet::data::{Split, evaluate, split, standardize};
use latent_unet::{Padding, SegTrainer, TrainParams, UNet, UnetParams};

fn main() -> Result<(), latent_unet::UnetError> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let steps: usize = arg(0, "300").parse().unwrap_or(300);
    let depth: usize = arg(1, "3").parse().unwrap_or(3);
    let base: usize = arg(2, "16").parse().unwrap_or(16);
    let classes: usize = arg(3, "3").parse().unwrap_or(3);
    let padding = if arg(4, "same") == "valid" { Padding::Valid } else { Padding::Same };
    let skips = arg(5, "skips") != "noskips";
    let n_synth: usize = arg(6, "0").parse().unwrap_or(0);

    let full = CellSample::load_dsb2018()?;
    let (train, test) = split(&full, Split::Columns(0.75))?;
    let mut sources = vec![standardize(&train)?];
    if n_synth > 0 {
        let cfg = SynthCells { width: 128, height: 128, ..SynthCells::default() };
        for s in synth_cell_set(&cfg, n_synth, 7)? {
            sources.push(standardize(&s)?);
        }
    }
    let test = standardize(&test)?;
    // baseline: the best global intensity threshold on the held-out part (an upper bound for
    // any threshold rule)
    let truth = &test.instances().data;
    let best = (0..200)
        .map(|k| {
            let t = -2.0 + k as f32 * 0.05;
            let cls: Vec<u8> = test.image().data.iter().map(|&v| u8::from(v > t)).collect();
            let m = latent_unet::metrics::evaluate_classes(&cls, truth, test.width(), test.height(), 2, 8).unwrap();
            (m.iou, m.f1, t)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or_default();
    println!("best threshold {:.2}: IoU {:.4}, F1 {:.4}", best.2, best.0, best.1);
    let params =
        UnetParams::new().depth(depth).base_channels(base).classes(classes).padding(padding).skips(skips).check()?;
    let mut net = params.build::<UNet<f32>>()?;
    let g = net.geometry();
    let tile = match padding {
        Padding::Same => 64,
        Padding::Valid => g.valid_sizes_near(64 + 2 * g.margin()).1.unwrap_or(96),
    };
    let trainer = SegTrainer::new(TrainParams::new().steps(steps).tile(tile).lr(1e-3).final_lr(3e-5).check()?);
    let report = trainer.fit_with(&mut net, &sources, &mut |s| {
        if s.step % 50 == 0 {
            eprintln!("step {:4}/{}: loss {:.4}", s.step, s.steps, s.loss);
        }
    })?;
    let pred_tile = match padding {
        Padding::Same => 64 + 2 * g.context(),
        Padding::Valid => g.valid_sizes_near(128 + 2 * g.margin()).1.unwrap_or(tile),
    };
    let (m, _) = evaluate(&net, &test, pred_tile, 8)?;
    println!(
        "{padding:?} depth {depth} base {base} classes {classes} skips {skips}: {:.1} s, held-out IoU {:.4}, Dice {:.4}, pixel acc {:.4}, F1 {:.4} (TP {}, FP {}, FN {})",
        report.seconds, m.iou, m.dice, m.pixel_accuracy, m.f1, m.true_positives, m.false_positives, m.false_negatives
    );
    Ok(())
}
