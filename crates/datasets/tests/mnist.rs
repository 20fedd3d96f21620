//! MNIST / Fashion-MNIST on the repository's real data, plus loader validation.

mod common;

use common::TempDir;
use latent_datasets::idx::{IdxArray, IdxData, write_idx};
use latent_datasets::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, resolve_idx_file};
use latent_datasets::{Dataset, DatasetError, FashionMnist, Mnist, data_dir};
use std::path::Path;

#[test]
fn small_mnist_matches_the_official_prefix() {
    let m = Mnist::load_small().unwrap();
    assert_eq!((m.train.len(), m.test.len()), (2000, 1000));
    assert_eq!((m.train.height(), m.train.width(), m.train.dim()), (28, 28, 784));
    assert_eq!(&m.test.labels()[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    // the first training digit of MNIST is a 5, then 0 4 1 9
    assert_eq!(&m.train.labels()[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(m.train.images().len(), 2000 * 784);
    assert!(m.train.images().iter().all(|&v| (0.0..=1.0).contains(&v)));
    // both extremes occur and values are multiples of 1/255
    assert!(m.test.images().contains(&1.0) && m.test.images().contains(&0.0));
    assert!(m.test.images().iter().all(|&v| ((v * 255.0).round() - v * 255.0).abs() < 1e-4));
    assert!(m.train.label_counts().iter().all(|&c| c > 150));
}

#[test]
fn default_sets_have_10k_test_images() {
    let m = Mnist::load_default().unwrap();
    assert_eq!((m.train.len(), m.test.len()), (10_000, 10_000));
    assert_eq!(&m.test.labels()[..5], &[7, 2, 1, 0, 4]);
    let small = Mnist::load_small().unwrap();
    // byte-identical prefixes of the official files
    assert_eq!(&m.test.images()[..1000 * 784], small.test.images());
    assert_eq!(&m.train.labels()[..2000], small.train.labels());
    let f = FashionMnist::load_default().unwrap();
    assert_eq!((f.train.len(), f.test.len()), (10_000, 10_000));
    assert_eq!(f.test.label_counts(), vec![1000; 10]);
    // Fashion-MNIST's first test item is an ankle boot (9)
    assert_eq!(f.test.label(0), Some(9));
}

#[test]
fn matrix_and_tensor_views_agree_with_the_row_buffer() {
    let m = Mnist::load_small().unwrap();
    let x = m.test.to_dmatrix_cols::<f32>();
    assert_eq!(x.shape(), (784, 1000));
    for i in [0usize, 1, 999] {
        let col: Vec<f32> = x.column(i).iter().copied().collect();
        assert_eq!(col.as_slice(), m.test.image(i).unwrap());
    }
    let sel = m.test.to_dmatrix_cols_of::<f64>(&[4, 0]).unwrap();
    assert_eq!(sel.shape(), (784, 2));
    assert_eq!(sel[(300, 0)], f64::from(m.test.image(4).unwrap()[300]));
    let t = m.test.to_tensor4::<f32>(&[2, 3]).unwrap();
    assert_eq!(t.shape(), [2, 1, 28, 28]);
    assert_eq!(t.sample(1).unwrap(), m.test.image(3).unwrap());
    assert!(matches!(m.test.to_tensor4::<f32>(&[1000]), Err(DatasetError::OutOfRange { index: 1000, len: 1000 })));
    let g = m.test.gray_image(0).unwrap();
    assert_eq!((g.width, g.height), (28, 28));
    // Dataset trait
    let (img, label) = m.test.get(2).unwrap();
    assert_eq!((img.len(), label), (784, 1));
    assert!(m.test.get(1000).is_err());
    let sub = m.test.subset(&[4, 3, 2]).unwrap();
    assert_eq!(sub.labels(), &[4, 0, 1]);
    assert_eq!(m.test.take(5).labels(), &[7, 2, 1, 0, 4]);
}

#[test]
fn one_class_split_labels_anomalies() {
    let m = Mnist::load_small().unwrap();
    let s = m.one_class(3).unwrap();
    assert!(s.train.labels().iter().all(|&l| l == 3));
    assert_eq!(s.train.len(), m.train.labels().iter().filter(|&&l| l == 3).count());
    assert_eq!(s.test.len(), 1000);
    for (i, &a) in s.test_anomalous.iter().enumerate() {
        assert_eq!(a, m.test.labels()[i] != 3);
    }
    assert!(matches!(m.one_class(10), Err(DatasetError::InvalidParameter { .. })));
}

fn write_set(dir: &Path, n_img: usize, n_lab: usize, gz: bool) {
    let ext = if gz { ".gz" } else { "" };
    for (imgs, labs, ni, nl) in [(TRAIN_IMAGES, TRAIN_LABELS, n_img, n_lab), (TEST_IMAGES, TEST_LABELS, 2, 2)] {
        let a =
            IdxArray::new(vec![ni, 3, 2], IdxData::U8((0..ni * 6).map(|k| (k * 40 % 256) as u8).collect())).unwrap();
        write_idx(dir.join(format!("{imgs}{ext}")), &a, gz).unwrap();
        let l = IdxArray::new(vec![nl], IdxData::U8((0..nl).map(|k| k as u8 % 10).collect())).unwrap();
        write_idx(dir.join(format!("{labs}{ext}")), &l, gz).unwrap();
    }
}

#[test]
fn any_folder_with_the_four_files_loads_plain_or_gzip() {
    for gz in [false, true] {
        let dir = TempDir::new("mnist_dir");
        write_set(dir.path(), 3, 3, gz);
        let m = Mnist::from_dir(dir.path()).unwrap();
        assert_eq!((m.train.len(), m.train.height(), m.train.width()), (3, 3, 2));
        assert_eq!(m.train.image(1).unwrap()[0], 240.0 / 255.0); // element 6 of the payload: 6 * 40
        assert_eq!(FashionMnist::from_dir(dir.path()).unwrap().test.labels(), &[0, 1]);
    }
}

#[test]
fn image_label_count_mismatch_is_typed() {
    let dir = TempDir::new("mnist_mismatch");
    write_set(dir.path(), 3, 2, true);
    let e = Mnist::from_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&e, DatasetError::Mismatch { path, what } if path.ends_with("train-labels-idx1-ubyte.gz") && what.contains("2 labels but 3 images")),
        "{e}"
    );
}

#[test]
fn wrong_element_type_or_rank_is_typed() {
    let dir = TempDir::new("mnist_type");
    write_set(dir.path(), 2, 2, false);
    let f = IdxArray::new(vec![2, 3, 2], IdxData::F32(vec![0.5; 12])).unwrap();
    write_idx(dir.join(TRAIN_IMAGES), &f, false).unwrap();
    assert!(matches!(Mnist::from_dir(dir.path()), Err(DatasetError::Mismatch { .. })));
    let flat = IdxArray::new(vec![2, 6], IdxData::U8(vec![0; 12])).unwrap();
    write_idx(dir.join(TRAIN_IMAGES), &flat, false).unwrap();
    assert!(matches!(Mnist::from_dir(dir.path()), Err(DatasetError::Mismatch { .. })));
}

#[test]
fn missing_file_names_the_file_and_layout() {
    let dir = TempDir::new("mnist_missing");
    write_set(dir.path(), 2, 2, true);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = Mnist::from_dir(dir.path()).unwrap_err();
    assert!(matches!(e, DatasetError::Missing { .. }));
    let msg = e.to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte") && msg.contains("train-images-idx3-ubyte"), "{msg}");
    assert!(matches!(Mnist::from_dir(dir.join("nope")), Err(DatasetError::Missing { .. })));
    // resolution prefers the uncompressed file
    std::fs::write(dir.join(TRAIN_LABELS), b"x").unwrap();
    assert!(resolve_idx_file(dir.path(), TRAIN_LABELS).unwrap().ends_with(TRAIN_LABELS));
}

#[test]
fn data_dir_points_at_the_repository_data() {
    if std::env::var_os("LATENT_DATA_DIR").is_none() {
        assert!(data_dir().join("mnist-2k-1k").is_dir());
    }
    let e = latent_datasets::data_file("no-such-set/file.idx").unwrap_err();
    assert!(matches!(e, DatasetError::Missing { .. }));
    assert!(e.to_string().contains("no-such-set/file.idx") && e.to_string().contains("LATENT_DATA_DIR"));
}
