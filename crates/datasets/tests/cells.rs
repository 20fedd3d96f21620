//! Real nuclei data, consistent augmentation and the synthetic cell generator.

mod common;

use common::TempDir;
use latent_datasets::cells::{Augment, CellSample, ElasticField, SynthCells, border_map, synth_cell_set, synth_cells};
use latent_datasets::{DatasetError, LabelImage, data_file, rng_from_seed, write_png_gray8_bytes};
use std::collections::BTreeSet;

fn consistent(s: &CellSample) {
    let n = s.width() * s.height();
    assert_eq!((s.image().data.len(), s.instances().data.len(), s.mask().len(), s.borders().len()), (n, n, n, n));
    assert_eq!(s.mask(), s.instances().to_mask().as_slice());
    assert_eq!(s.borders(), border_map(s.instances()).as_slice());
}

#[test]
fn real_nuclei_load_with_exact_annotations() {
    let s = CellSample::load_dsb2018().unwrap();
    assert_eq!((s.width(), s.height()), (512, 512));
    assert_eq!(s.count_instances(), 125);
    assert_eq!(s.instances().max_label(), 125);
    // the shipped borders file is exactly our border definition (checked by the loader too)
    consistent(&s);
    let fg = s.mask().iter().filter(|&&m| m).count();
    assert!(fg > 10_000 && fg < 200_000, "foreground {fg}");
    // nuclei are brighter than background
    let mean = |want: bool| {
        let v: Vec<f32> = s.image().data.iter().zip(s.mask()).filter(|(_, m)| **m == want).map(|(v, _)| *v).collect();
        v.iter().sum::<f32>() / v.len() as f32
    };
    assert!(mean(true) > 2.0 * mean(false));
}

#[test]
fn loader_rejects_inconsistent_annotations() {
    let dir = TempDir::new("cells_bad");
    let src = data_file("cells").unwrap();
    for f in latent_datasets::cells::DSB2018_FILES {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    assert!(CellSample::load_dsb2018_from(dir.path()).is_ok());
    // a mask of the wrong size names the mask file
    write_png_gray8_bytes(dir.join("dsb2018_mask.png"), 4, 4, &[0; 16]).unwrap();
    let e = CellSample::load_dsb2018_from(dir.path()).unwrap_err();
    assert!(
        matches!(&e, DatasetError::SizeMismatch { path, actual_w: 4, .. } if path.ends_with("dsb2018_mask.png")),
        "{e}"
    );
    // an all-background mask disagrees with the labels
    write_png_gray8_bytes(dir.join("dsb2018_mask.png"), 512, 512, &vec![0; 512 * 512]).unwrap();
    assert!(matches!(CellSample::load_dsb2018_from(dir.path()), Err(DatasetError::Mismatch { .. })));
    // a non-binary mask
    write_png_gray8_bytes(dir.join("dsb2018_mask.png"), 512, 512, &vec![7; 512 * 512]).unwrap();
    assert!(matches!(CellSample::load_dsb2018_from(dir.path()), Err(DatasetError::Format { .. })));
    std::fs::remove_file(dir.join("dsb2018_borders.png")).unwrap();
    let e = CellSample::load_dsb2018_from(dir.path()).unwrap_err();
    assert!(matches!(&e, DatasetError::Missing { path, .. } if path.ends_with("dsb2018_borders.png")));
}

#[test]
fn flips_and_rotations_move_all_layers_together() {
    let s = CellSample::load_dsb2018().unwrap().crop(100, 50, 64, 40).unwrap();
    consistent(&s);
    assert_eq!(s.flip_horizontal().flip_horizontal(), s);
    assert_eq!(s.flip_vertical().flip_vertical(), s);
    assert_eq!(s.rot90(1).rot90(1).rot90(1).rot90(1), s);
    assert_eq!(s.rot90(2), s.flip_horizontal().flip_vertical());
    assert_eq!(s.rot90(3), s.rot90(1).rot90(2));
    let r = s.rot90(1);
    assert_eq!((r.width(), r.height()), (40, 64));
    consistent(&r);
    // pixel-level check: image and labels moved by the same map
    for (x, y) in [(0usize, 0usize), (63, 0), (10, 39), (33, 17)] {
        let (nx, ny) = (y, 63 - x); // rot90 ccw: old (x, y) → new (y, w-1-x)
        assert_eq!(r.image().get(nx, ny), s.image().get(x, y));
        assert_eq!(r.instances().get(nx, ny), s.instances().get(x, y));
    }
    let f = s.flip_horizontal();
    assert_eq!(f.instances().get(0, 5), s.instances().get(63, 5));
    assert!(matches!(s.crop(60, 0, 8, 8), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn elastic_deformation_is_seeded_and_label_preserving() {
    let s = CellSample::load_dsb2018().unwrap().crop(0, 0, 160, 160).unwrap();
    let a = s.elastic(3, 10.0, &mut rng_from_seed(4)).unwrap();
    let b = s.elastic(3, 10.0, &mut rng_from_seed(4)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, s);
    consistent(&a);
    // nearest-neighbour labels: no new ids appear
    let ids = |c: &CellSample| c.instances().data.iter().copied().collect::<BTreeSet<u32>>();
    assert!(ids(&a).is_subset(&ids(&s)));
    // intensities are interpolated within the original range
    let (lo, hi) = s.image().data.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(a.image().data.iter().all(|&v| v >= lo - 1e-6 && v <= hi + 1e-6));
    // zero displacement is the identity
    assert_eq!(s.elastic(3, 0.0, &mut rng_from_seed(1)).unwrap(), s);
    // the dense field interpolates the control points smoothly: corners carry control values
    let f = ElasticField::random(101, 101, 3, 10.0, &mut rng_from_seed(2)).unwrap();
    let (d0, d1) = (f.displacement(0, 0).unwrap(), f.displacement(1, 0).unwrap());
    assert!((d0.0 - d1.0).abs() < 2.0 && (d0.1 - d1.1).abs() < 2.0);
    assert!(f.displacement(101, 0).is_none());
    assert!(matches!(s.elastic(1, 10.0, &mut rng_from_seed(0)), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(s.elastic(3, f64::NAN, &mut rng_from_seed(0)), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn augment_is_deterministic_per_seed() {
    let s = CellSample::load_dsb2018().unwrap();
    let cfg = Augment { crop: Some((96, 96)), ..Augment::default() };
    let outs: Vec<CellSample> = (0..6).map(|seed| s.augment(&cfg, seed).unwrap()).collect();
    for (seed, o) in outs.iter().enumerate() {
        assert_eq!(o, &s.augment(&cfg, seed as u64).unwrap());
        assert_eq!((o.width(), o.height()), (96, 96));
        consistent(o);
    }
    assert_ne!(outs[0], outs[1]);
    let mut rng = rng_from_seed(0);
    assert!(matches!(s.random_crop(600, 10, &mut rng), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn synthetic_cells_have_instances_masks_and_borders() {
    let cfg = SynthCells::default();
    let a = synth_cells(&cfg, 3).unwrap();
    assert_eq!(a, synth_cells(&cfg, 3).unwrap());
    assert_ne!(a, synth_cells(&cfg, 4).unwrap());
    consistent(&a);
    let n = a.count_instances();
    assert!(n >= 5, "only {n} cells");
    // ids are consecutive from 1
    assert_eq!(a.instances().max_label() as usize, n);
    // some cells touch: a border pixel next to a different non-zero label
    let l: &LabelImage = a.instances();
    let touching = (0..l.height).any(|y| {
        (1..l.width).any(|x| {
            let (p, q) = (l.get(x - 1, y).unwrap(), l.get(x, y).unwrap());
            p != 0 && q != 0 && p != q
        })
    });
    assert!(touching, "expected touching cells");
    assert!(a.image().data.iter().all(|v| (0.0..=1.0).contains(v)));
    let set = synth_cell_set(&cfg, 3, 7).unwrap();
    assert_eq!(set, synth_cell_set(&cfg, 3, 7).unwrap());
    assert_ne!(set[0], set[1]);
    let bad = SynthCells { radius: (5.0, 2.0), ..cfg };
    assert!(matches!(synth_cells(&bad, 0), Err(DatasetError::InvalidParameter { .. })));
    let bad = SynthCells { width: 0, ..cfg };
    assert!(matches!(synth_cells(&bad, 0), Err(DatasetError::InvalidParameter { .. })));
}

#[test]
fn samples_stack_into_unet_tensors() {
    let s = CellSample::load_dsb2018().unwrap();
    let crops: Vec<CellSample> = (0..3).map(|i| s.crop(64 * i, 0, 64, 32).unwrap()).collect();
    let (x, y, b) = latent_datasets::cells::stack_cells::<f32>(&crops).unwrap();
    assert_eq!(x.shape(), [3, 1, 32, 64]);
    assert_eq!(x.sample(2).unwrap(), crops[2].image().data.as_slice());
    let m: Vec<f32> = crops[1].mask().iter().map(|&v| f32::from(u8::from(v))).collect();
    assert_eq!(y.sample(1).unwrap(), m.as_slice());
    assert_eq!(
        b.sample(0).unwrap().iter().filter(|&&v| v == 1.0).count(),
        crops[0].borders().iter().filter(|&&v| v).count()
    );
    let mixed = [crops[0].clone(), s.crop(0, 0, 10, 10).unwrap()];
    assert!(matches!(latent_datasets::cells::stack_cells::<f32>(&mixed), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(latent_datasets::cells::stack_cells::<f64>(&[]), Err(DatasetError::InvalidParameter { .. })));
}
