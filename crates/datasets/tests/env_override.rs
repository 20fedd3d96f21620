//! `LATENT_DATA_DIR` overrides the data folder. Kept alone in its own test binary because it
//! changes the process environment.

mod common;

use common::TempDir;
use latent_datasets::{DatasetError, Mnist, data_dir, data_file};

#[test]
fn env_var_overrides_the_data_folder() {
    let dir = TempDir::new("env_override");
    let small = dir.join("mnist-2k-1k");
    std::fs::create_dir_all(&small).unwrap();
    let src = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist-2k-1k"));
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(src.join(f), small.join(f)).unwrap();
    }
    // SAFETY: this test binary has a single test, so no other thread reads the environment.
    unsafe { std::env::set_var("LATENT_DATA_DIR", dir.path()) };
    assert_eq!(data_dir(), dir.path());
    assert_eq!(&Mnist::load_small().unwrap().test.labels()[..5], &[7, 2, 1, 0, 4]);
    let e = Mnist::load_default().unwrap_err();
    assert!(matches!(&e, DatasetError::Missing { path, .. } if path.starts_with(dir.path())), "{e}");
    assert!(matches!(data_file("cells/dsb2018_img.png"), Err(DatasetError::Missing { .. })));
    // a value that names no folder is an error naming it and the variable, never a fallback
    let nowhere = dir.join("no-such-folder");
    // SAFETY: as above, the only thread of this single-test binary touches the environment.
    unsafe { std::env::set_var("LATENT_DATA_DIR", &nowhere) };
    let e = Mnist::load_small().unwrap_err();
    assert!(matches!(&e, DatasetError::Missing { path, .. } if path == &nowhere), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("LATENT_DATA_DIR") && msg.contains("no-such-folder"), "{msg}");
    assert!(latent_datasets::find_data_dir().is_err());
    // an empty value falls back to the repository folder
    // SAFETY: as above, the only thread of this single-test binary touches the environment.
    unsafe { std::env::set_var("LATENT_DATA_DIR", "") };
    assert!(data_dir().join("mnist-2k-1k").is_dir());
    // SAFETY: as above.
    unsafe { std::env::remove_var("LATENT_DATA_DIR") };
}
