//! Writes the seed corpora of the `unet_model`, `conv_coding_files` and `training_state` targets:
//! small valid files, and their payloads (the targets also wrap their input in a valid header).
//! Run from `fuzz/`: `cargo run --example seeds`.

use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::train::{Control, EpochContext, TrainParams, Trainer};
use latent_autoencoder::{Autoencoder, CheckedModel, ParamGuard, TrainingState};
use latent_conv_coding::{CdlParams, OnlineCdl, OnlineCdlParams, Tensor4};
use latent_unet::{Padding, UNet, UnetParams};
use std::path::Path;

fn put(target: &str, name: &str, file: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), file).unwrap();
    std::fs::write(dir.join(format!("seed-{name}-payload")), &file[28..]).unwrap();
}

fn main() {
    // U-Net: tiny networks of each kind
    for (i, (depth, base, bn, pad)) in
        [(1, 1, false, Padding::Same), (2, 1, true, Padding::Valid), (2, 2, false, Padding::Same)]
            .into_iter()
            .enumerate()
    {
        let p = UnetParams::new().depth(depth).base_channels(base).batch_norm(bn).padding(pad).seed(i as u64);
        put("unet_model", &format!("f32-{i}"), &p.check().unwrap().build::<UNet<f32>>().unwrap().to_bytes().unwrap());
    }
    let p = UnetParams::new().depth(1).base_channels(1).check().unwrap();
    put("unet_model", "f64", &p.build::<UNet<f64>>().unwrap().to_bytes().unwrap());

    // convolutional dictionaries and online states
    let x = Tensor4::from_fn([2, 1, 8, 8], |[n, _, i, j]| ((n + i * 3 + j) % 5) as f64 / 5.0 - 0.4).unwrap();
    let mut cdl = CdlParams::new(2, (3, 3), 0.1);
    cdl.iterations = 2;
    let fitted = cdl.check().unwrap().fit(&x).unwrap();
    put("conv_coding_files", "dictionary", &fitted.to_bytes().unwrap());
    let mut online = OnlineCdl::from(OnlineCdlParams::new(2, (3, 3), 0.1).check().unwrap());
    online.partial_fit(&x).unwrap();
    put("conv_coding_files", "online-state", &online.state().unwrap().to_bytes().unwrap());

    // training states of the run the target resumes (see fuzz_targets/training_state.rs)
    let x = Tensor4::from_fn([24, 6, 1, 1], |[n, c, ..]| ((n * 5 + c * 3) % 7) as f32 / 7.0).unwrap();
    let base = TrainParams::new().epochs(3).batch_size(8).lr(1e-2).progress(false);
    let path = std::env::temp_dir().join(format!("latent-seeds-{}.state", std::process::id()));
    for (name, p, stop_at) in
        [("epoch1", base.clone(), 1), ("epoch3", base.clone(), 3), ("patience", base.patience(2), 2)]
    {
        let mut model = MlpAeParams::new(vec![6, 3]).check().unwrap().build_for::<f32>([6, 1, 1]).unwrap();
        let mut stop = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
            if ctx.epoch == stop_at { Control::Stop } else { Control::Continue }
        };
        Trainer::new(p.state_checkpoint(&path, 1).check().unwrap())
            .fit_with_callbacks(&mut model, &x, None, &mut [&mut stop])
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        TrainingState::<f32>::from_bytes(&bytes).unwrap();
        put("training_state", name, &bytes);
    }
    std::fs::remove_file(&path).ok();
}
