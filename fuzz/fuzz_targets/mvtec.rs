//! MVTec AD folder pairing: an arbitrary layout of images and masks (with arbitrary bytes) on disk.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Entry {
    split: u8,
    defect: u8,
    name: u8,
    mask: bool,
    bytes: Vec<u8>,
    valid_png: Option<(u8, u8)>,
}

fn png(w: u8, h: u8) -> Vec<u8> {
    let (w, h) = (w as usize % 9 + 1, h as usize % 9 + 1);
    let dir = std::env::temp_dir().join(format!("latent-fuzz-png-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join("t.png");
    let _ = latent_datasets::write_png_gray8_bytes(&p, w, h, &vec![128u8; w * h]);
    std::fs::read(&p).unwrap_or_default()
}

fuzz_target!(|entries: Vec<Entry>| {
    let root = std::env::temp_dir().join(format!("latent-fuzz-mvtec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let cat = root.join("cat");
    for e in entries.iter().take(12) {
        let defect = ["good", "scratch", "hole"][e.defect as usize % 3];
        let name = format!("{:03}", e.name % 5);
        let (dir, file) = match (e.split % 2, e.mask) {
            (0, _) => (cat.join("train/good"), format!("{name}.png")),
            (_, false) => (cat.join("test").join(defect), format!("{name}.png")),
            (_, true) => (cat.join("ground_truth").join(defect), format!("{name}_mask.png")),
        };
        let _ = std::fs::create_dir_all(&dir);
        let bytes = match e.valid_png {
            Some((w, h)) => png(w, h),
            None => e.bytes.clone(),
        };
        let _ = std::fs::write(dir.join(file), bytes);
    }
    if let Ok(c) = latent_datasets::mvtec::MvtecCategory::open(&root, "cat") {
        for i in 0..c.train.len() {
            let _ = c.load_train(i);
        }
        for i in 0..c.test.len() {
            let _ = c.load_test(i);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
});
