//! Training end to end on small synthetic cell images, and the trainer's typed errors.

use latent_datasets::cells::{SynthCells, synth_cell_set};
use latent_unet::ParamGuard;
use latent_unet::data::{Split, TileAugment, evaluate, random_tile, split, standardize};
use latent_unet::{Padding, SegLoss, SegTrainer, TrainParams, UNet, UnetError, UnetParams, WeightMapParams};

fn synth(n: usize, seed: u64) -> Vec<latent_datasets::cells::CellSample> {
    let cfg = SynthCells { width: 64, height: 64, n_cells: 8, ..SynthCells::default() };
    synth_cell_set(&cfg, n, seed).unwrap().iter().map(|s| standardize(s).unwrap()).collect()
}

#[test]
fn a_small_unet_learns_to_segment_synthetic_cells() {
    let sources = synth(6, 1);
    let test = synth(1, 2).remove(0);
    let p = UnetParams::new().depth(2).base_channels(8).classes(2).seed(3).check().unwrap();
    let mut net = p.build::<UNet<f32>>().unwrap();
    let before = evaluate(&net, &test, 48, 8).unwrap().0;
    let trainer = SegTrainer::new(
        TrainParams::new().steps(60).batch_size(4).tile(32).lr(3e-3).final_lr(3e-4).seed(4).check().unwrap(),
    );
    let report = trainer.fit(&mut net, &sources).unwrap();
    let first: f64 = report.losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = report.losses[50..].iter().sum::<f64>() / 10.0;
    assert!(last < 0.7 * first, "loss {first} -> {last}");
    let (after, classes) = evaluate(&net, &test, 48, 8).unwrap();
    assert_eq!(classes.len(), 64 * 64);
    assert!(after.iou > 0.7 && after.iou > before.iou, "held-out IoU {} -> {}", before.iou, after.iou);
    assert!(after.pixel_accuracy > 0.85, "{after:?}");
}

#[test]
fn unpadded_networks_train_on_cropped_targets() {
    let sources = synth(2, 5);
    let p = UnetParams::new().depth(2).base_channels(4).classes(3).padding(Padding::Valid).seed(6).check().unwrap();
    let mut net = p.build::<UNet<f32>>().unwrap();
    // 36 → 20: the targets are the centre 20×20 of each tile
    let trainer = SegTrainer::new(
        TrainParams::new().steps(2).batch_size(2).tile(36).loss(SegLoss::CrossEntropyDice).check().unwrap(),
    );
    let b = trainer.batch(&net, &sources, 0).unwrap();
    assert_eq!(b.images.shape(), [2, 1, 36, 36]);
    assert_eq!(b.labels.len(), 2 * 20 * 20);
    assert_eq!(b.weights.as_ref().map(Vec::len), Some(2 * 20 * 20));
    assert!(b.labels.iter().all(|&l| l < 3));
    let rep = trainer.fit(&mut net, &sources).unwrap();
    assert!(rep.losses.iter().all(|l| l.is_finite()));
    // a tile the network does not accept names the valid sizes
    let bad = SegTrainer::new(TrainParams::new().steps(1).tile(35).check().unwrap());
    let e = bad.fit(&mut net, &sources).unwrap_err();
    assert!(matches!(e, UnetError::InputSize { size: 35, .. }) && e.to_string().contains("36"), "{e}");
}

#[test]
fn tiles_are_reproducible_and_targets_consistent() {
    let s = synth(1, 7).remove(0);
    let aug = TileAugment::default();
    let wp = WeightMapParams::default();
    let a = random_tile(&s, 32, 4, 2, &aug, Some(&wp), 11).unwrap();
    let b = random_tile(&s, 32, 4, 2, &aug, Some(&wp), 11).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.image.len(), a.labels.len()), (32 * 32, 24 * 24));
    assert!(a.weights.unwrap().iter().all(|&w| w.is_finite() && w > 0.0));
    assert!(matches!(random_tile(&s, 65, 0, 2, &aug, None, 0), Err(UnetError::InvalidParameter { name: "tile", .. })));
    assert!(matches!(random_tile(&s, 16, 8, 2, &aug, None, 0), Err(UnetError::InvalidParameter { name: "tile", .. })));
}

#[test]
fn trainer_and_data_errors_are_typed() {
    let bad = [
        (TrainParams::new().steps(0), "steps"),
        (TrainParams::new().batch_size(0), "batch_size"),
        (TrainParams::new().tile(0), "tile"),
        (TrainParams::new().lr(-1.0), "lr"),
        (TrainParams::new().final_lr(1.0), "final_lr"),
        (TrainParams::new().weight_map(Some(WeightMapParams { sigma: f64::NAN, ..Default::default() })), "sigma"),
        (TrainParams::new().augment(TileAugment { flips: true, elastic: Some((1, 5.0)) }), "augment.elastic.grid"),
    ];
    for (p, name) in bad {
        match p.check() {
            Err(UnetError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let mut net = UnetParams::new().depth(2).base_channels(2).check().unwrap().build::<UNet<f32>>().unwrap();
    let t = SegTrainer::new(TrainParams::new().steps(1).tile(32).check().unwrap());
    assert!(matches!(t.fit(&mut net, &[]), Err(UnetError::Empty { .. })));
    let small = synth_cell_set(&SynthCells { width: 20, height: 40, ..SynthCells::default() }, 1, 0).unwrap();
    assert!(matches!(t.fit(&mut net, &small), Err(UnetError::InvalidParameter { name: "tile", .. })));
    let s = synth(1, 0).remove(0);
    assert!(matches!(split(&s, Split::Columns(1.0)), Err(UnetError::InvalidParameter { .. })));
    let (a, b) = split(&s, Split::Rows(0.5)).unwrap();
    assert_eq!((a.height(), b.height(), a.width()), (32, 32, 64));
    // a constant image cannot be standardised
    let flat = latent_datasets::cells::CellSample::from_labels(
        latent_datasets::GrayImage::filled(8, 8, 0.5),
        latent_datasets::LabelImage { width: 8, height: 8, data: vec![0; 64] },
    )
    .unwrap();
    assert!(matches!(standardize(&flat), Err(UnetError::InvalidParameter { .. })));
}
