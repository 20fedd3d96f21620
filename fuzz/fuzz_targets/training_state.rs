//! Autoencoder training-state files (`LTTS-f32` / `LTTS-f64`) on arbitrary bytes, as whole files
//! and as payloads inside a valid header and checksum: a typed error or a state, never a panic; a
//! state that loads is resumed on the small run the seed corpus was written from (see
//! `fuzz/examples/seeds.rs`), which must again end in a report or a typed error.
#![no_main]
use latent_autoencoder::{CheckedModel, ParamGuard, TrainingState};
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::train::{TrainParams, Trainer};
use latent_linalg::Tensor4;
use latent_linalg::persist::wrap_payload;
use libfuzzer_sys::fuzz_target;

fn wrap(magic: &[u8; 8], payload: &[u8]) -> Vec<u8> {
    wrap_payload(*magic, 1, payload)
}

/// The run of the seed corpus: 24 samples of 6 values, an MLP 6 → 3, batches of 8.
fn data() -> Tensor4<f32> {
    Tensor4::from_fn([24, 6, 1, 1], |[n, c, ..]| ((n * 5 + c * 3) % 7) as f32 / 7.0).unwrap()
}

fn params() -> TrainParams {
    TrainParams::new().epochs(3).batch_size(8).lr(1e-2).progress(false)
}

fn resume(bytes: &[u8]) {
    let Ok(state) = TrainingState::<f32>::from_bytes(bytes) else { return };
    let back = state.to_bytes().expect("a loaded state serialises");
    assert!(TrainingState::<f32>::from_bytes(&back).is_ok(), "a saved state loads again");
    let path = std::env::temp_dir().join(format!("latent-fuzz-training-state-{}.bin", std::process::id()));
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let x = data();
    let Ok(mut model) = MlpAeParams::new(vec![6, 3]).check().and_then(|a| a.build_for::<f32>([6, 1, 1])) else {
        return;
    };
    for p in [params(), params().patience(2)] {
        if let Ok(checked) = p.resume_from(&path).check() {
            let _ = Trainer::new(checked).fit(&mut model, &x, None);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    resume(data);
    let _ = TrainingState::<f64>::from_bytes(data);
    resume(&wrap(b"LTTS-f32", data));
});
