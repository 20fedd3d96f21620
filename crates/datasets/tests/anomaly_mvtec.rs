//! Synthetic defects with exact masks, the MVTec AD writer and the strict MVTec AD loader.

mod common;

use common::TempDir;
use latent_datasets::anomaly::{AnomalyConfig, DefectKind, generate_anomaly_set, load_texture, paint_defect};
use latent_datasets::mvtec::{MvtecCategory, list_categories};
use latent_datasets::{Dataset, DatasetError, rng_from_seed, write_png_gray8_bytes};

#[test]
fn defect_masks_cover_exactly_the_changed_pixels() {
    for name in latent_datasets::anomaly::TEXTURES {
        let t = load_texture(name).unwrap();
        let base = t.crop(100, 200, 128, 128).unwrap();
        for kind in DefectKind::ALL {
            for seed in 0..4 {
                let (img, mask) = paint_defect(&base, kind, &mut rng_from_seed(seed)).unwrap();
                assert_eq!(mask.len(), base.data.len());
                let changed = img.data.iter().zip(&base.data).filter(|(a, b)| a != b).count();
                assert!(changed > 0, "{name}/{kind:?}: nothing painted");
                for i in 0..mask.len() {
                    assert_eq!(mask[i], img.data[i] != base.data[i], "{name}/{kind:?} pixel {i}");
                }
                // values stay on the 8-bit grid, so PNG round trips keep the masks exact
                assert!(img.data.iter().all(|v| ((v * 255.0).round() - v * 255.0).abs() < 1e-3));
                let (img2, mask2) = paint_defect(&base, kind, &mut rng_from_seed(seed)).unwrap();
                assert_eq!((img2, mask2), (img, mask));
            }
        }
    }
    assert_eq!(DefectKind::from_name("missing_patch"), Some(DefectKind::MissingPatch));
    assert!(load_texture("marble").is_err());
    let tiny = latent_datasets::GrayImage::filled(8, 8, 0.5);
    assert!(matches!(
        paint_defect(&tiny, DefectKind::Hole, &mut rng_from_seed(0)),
        Err(DatasetError::InvalidParameter { .. })
    ));
}

#[test]
fn generated_set_is_deterministic_and_round_trips_through_mvtec_layout() {
    let t = load_texture("brick").unwrap();
    let cfg = AnomalyConfig { crop: 64, n_train: 5, n_test_good: 3, n_test_per_defect: 2, ..AnomalyConfig::default() };
    let set = generate_anomaly_set(&t, "brick", &cfg, 17).unwrap();
    assert_eq!(set, generate_anomaly_set(&t, "brick", &cfg, 17).unwrap());
    assert_ne!(set, generate_anomaly_set(&t, "brick", &cfg, 18).unwrap());
    assert_eq!((set.train.len(), set.test.len()), (5, 3 + 6 * 2));
    assert!(set.test[..3].iter().all(|s| s.defect.is_none() && s.mask.iter().all(|m| !m)));
    assert!(set.test[3..].iter().all(|s| s.defect.is_some() && s.mask.iter().any(|&m| m)));

    let root = TempDir::new("mvtec_rt");
    let base = set.write_mvtec(root.path()).unwrap();
    assert!(base.join("ground_truth/missing_patch/001_mask.png").is_file());
    assert!(!base.join("ground_truth/good").exists());
    assert_eq!(list_categories(root.path()).unwrap(), vec!["brick".to_string()]);
    let cat = MvtecCategory::open(root.path(), "brick").unwrap();
    assert_eq!((cat.train.len(), cat.test.len()), (5, 15));
    let mut kinds = cat.defect_kinds();
    kinds.sort();
    let mut expect: Vec<String> = DefectKind::ALL.iter().map(|k| k.name().to_string()).collect();
    expect.sort();
    assert_eq!(kinds, expect);
    for i in 0..5 {
        assert_eq!(cat.load_train(i).unwrap(), set.train[i]);
    }
    // every generated sample comes back bit-exact with its mask
    let test = cat.test_set();
    assert_eq!(test.len(), 15);
    for i in 0..test.len() {
        let s = test.get(i).unwrap();
        let orig = set.test.iter().find(|o| o.image == s.image).expect("image written and read back exactly");
        assert_eq!(s.mask, orig.mask);
        assert_eq!(s.anomalous, orig.defect.is_some());
        assert_eq!(s.defect, orig.defect.map_or("good", DefectKind::name));
    }
    assert!(matches!(test.get(15), Err(DatasetError::OutOfRange { .. })));
    assert_eq!(cat.train_set().get(0).unwrap(), set.train[0]);
    // a texture too small for disjoint train/test halves, and a bad category name
    let small = t.crop(0, 0, 64, 100).unwrap();
    assert!(matches!(generate_anomaly_set(&small, "x", &cfg, 0), Err(DatasetError::InvalidParameter { .. })));
    assert!(matches!(generate_anomaly_set(&t, "a/b", &cfg, 0), Err(DatasetError::InvalidParameter { .. })));
}

/// A minimal valid category: 1 train image, 1 good and 1 scratched test image with its mask.
fn tiny_category(root: &std::path::Path) {
    let c = root.join("bottle");
    for d in ["train/good", "test/good", "test/scratch", "ground_truth/scratch"] {
        std::fs::create_dir_all(c.join(d)).unwrap();
    }
    let px = vec![100u8; 16];
    write_png_gray8_bytes(c.join("train/good/000.png"), 4, 4, &px).unwrap();
    write_png_gray8_bytes(c.join("test/good/000.png"), 4, 4, &px).unwrap();
    write_png_gray8_bytes(c.join("test/scratch/000.png"), 4, 4, &px).unwrap();
    let mut m = vec![0u8; 16];
    m[5] = 255;
    write_png_gray8_bytes(c.join("ground_truth/scratch/000_mask.png"), 4, 4, &m).unwrap();
}

#[test]
fn mvtec_pairing_errors_are_typed() {
    let root = TempDir::new("mvtec_pairs");
    tiny_category(root.path());
    let cat = MvtecCategory::open(root.path(), "bottle").unwrap();
    let s = cat.load_test(1).unwrap();
    assert_eq!(s.mask.iter().filter(|&&m| m).count(), 1);
    assert!(s.mask[5]);
    assert!(!cat.load_test(0).unwrap().anomalous);

    let c = root.join("bottle");
    // missing mask
    write_png_gray8_bytes(c.join("test/scratch/001.png"), 4, 4, &[0; 16]).unwrap();
    let e = MvtecCategory::open(root.path(), "bottle").unwrap_err();
    assert!(
        matches!(&e, DatasetError::MissingMask { image, expected } if image.ends_with("test/scratch/001.png") && expected.ends_with("ground_truth/scratch/001_mask.png")),
        "{e}"
    );
    // size mismatch between image and mask
    write_png_gray8_bytes(c.join("ground_truth/scratch/001_mask.png"), 5, 4, &[0; 20]).unwrap();
    let e = MvtecCategory::open(root.path(), "bottle").unwrap_err();
    assert!(
        matches!(&e, DatasetError::SizeMismatch { path, expected_w: 4, actual_w: 5, .. } if path.ends_with("001_mask.png")),
        "{e}"
    );
    std::fs::remove_file(c.join("test/scratch/001.png")).unwrap();
    // orphan mask (image removed)
    let e = MvtecCategory::open(root.path(), "bottle").unwrap_err();
    assert!(
        matches!(&e, DatasetError::OrphanMask { mask, expected_image } if mask.ends_with("001_mask.png") && expected_image.ends_with("test/scratch/001.png")),
        "{e}"
    );
    std::fs::remove_file(c.join("ground_truth/scratch/001_mask.png")).unwrap();
    // orphan mask folder without a test folder
    std::fs::create_dir_all(c.join("ground_truth/crack")).unwrap();
    write_png_gray8_bytes(c.join("ground_truth/crack/000_mask.png"), 4, 4, &[0; 16]).unwrap();
    assert!(matches!(MvtecCategory::open(root.path(), "bottle"), Err(DatasetError::OrphanMask { .. })));
    std::fs::remove_dir_all(c.join("ground_truth/crack")).unwrap();
    // badly named mask
    write_png_gray8_bytes(c.join("ground_truth/scratch/000.png"), 4, 4, &[0; 16]).unwrap();
    assert!(matches!(MvtecCategory::open(root.path(), "bottle"), Err(DatasetError::Format { .. })));
    std::fs::remove_file(c.join("ground_truth/scratch/000.png")).unwrap();
    // masks for good images
    std::fs::create_dir_all(c.join("ground_truth/good")).unwrap();
    write_png_gray8_bytes(c.join("ground_truth/good/000_mask.png"), 4, 4, &[0; 16]).unwrap();
    assert!(matches!(MvtecCategory::open(root.path(), "bottle"), Err(DatasetError::Format { .. })));
    std::fs::remove_dir_all(c.join("ground_truth/good")).unwrap();
    assert!(MvtecCategory::open(root.path(), "bottle").is_ok());
    // missing category / empty train folder
    assert!(matches!(MvtecCategory::open(root.path(), "cable"), Err(DatasetError::Missing { .. })));
    std::fs::remove_file(c.join("train/good/000.png")).unwrap();
    assert!(matches!(MvtecCategory::open(root.path(), "bottle"), Err(DatasetError::Missing { .. })));
}
