//! `unet_step` of `../shared/bench/WORKLOADS.md`, on `latent-unet`.
//!
//! Needs `latent-unet` and `latent-linalg` as dependencies of xtask.

use latent_linalg::Tensor4;
use latent_unet::{ParamGuard, SegBatch, SegLoss, UNet, UnetOptimizer, UnetParams};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::time::Instant;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// One training step of a U-Net on a random (8, 1, 64, 64) batch with random 2-class labels:
/// depth 3 (two 2×2 max-poolings), base 16 channels, same padding, two 3×3 conv + ReLU per level,
/// 2×2 stride-2 transposed-conv up, concat skips, 1×1 head; softmax cross-entropy (mean over
/// pixels, as `nn.CrossEntropyLoss`); Adam step (lr 1e-3). Median of 20 steps after 3 warm-up
/// steps, f32.
pub fn unet_step() -> Result<Value, String> {
    let params = UnetParams::new().depth(3).base_channels(16).classes(2).seed(0).check().map_err(err)?;
    let mut net = params.build::<UNet<f32>>().map_err(err)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let images = Tensor4::from_fn([8, 1, 64, 64], |_| rng.random::<f32>()).map_err(err)?;
    let labels: Vec<u8> = (0..8 * 64 * 64).map(|_| rng.random_range(0..2u8)).collect();
    let batch = SegBatch { images, labels, weights: None };
    let mut opt = UnetOptimizer::new(Default::default(), &mut net).map_err(err)?;
    let mut times = Vec::with_capacity(20);
    for k in 0..23 {
        let t0 = Instant::now();
        net.train_step(&batch, SegLoss::CrossEntropy).map_err(err)?;
        opt.step(&mut net, 1e-3).map_err(err)?;
        if k >= 3 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = 0.5 * (times[9] + times[10]);
    Ok(json!({
        "ms_per_step": (median * 1e6).round() / 1e3,
        "batch": 8,
        "size": 64,
        "depth": 3,
        "base_channels": 16,
    }))
}
