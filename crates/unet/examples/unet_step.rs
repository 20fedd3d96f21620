//! The `unet_step` benchmark workload of `../shared/bench/WORKLOADS.md`: U-Net depth 3 (two
//! poolings), base 16 channels, same padding, 2 classes, softmax cross-entropy, one Adam step on
//! a random (8, 1, 64, 64) batch; prints the median ms/step of 20 steps after 3 warm-up steps.
//!
//! `cargo run --release -p latent-unet --example unet_step [STEPS]`

use latent_linalg::Tensor4;
use latent_unet::ParamGuard;
use latent_unet::{SegBatch, SegLoss, UNet, UnetOptimizer, UnetParams};
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn main() -> Result<(), latent_unet::UnetError> {
    // the main thread takes part in the parallel loops (see latent_linalg::product::init_threads)
    latent_linalg::product::init_threads(None)?;
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut net = UnetParams::new().depth(3).base_channels(16).classes(2).check()?.build::<UNet<f32>>()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let images = Tensor4::from_fn([8, 1, 64, 64], |_| rng.random::<f32>())?;
    let labels: Vec<u8> = (0..8 * 64 * 64).map(|_| rng.random_range(0..2u8)).collect();
    let batch = SegBatch { images, labels, weights: None };
    let mut opt = UnetOptimizer::new(Default::default(), &mut net)?;
    let mut times = Vec::new();
    for k in 0..steps + 3 {
        let t0 = Instant::now();
        net.train_step(&batch, SegLoss::CrossEntropy)?;
        opt.step(&mut net, 1e-3)?;
        if k >= 3 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let m = times.len() / 2;
    let median = if times.len() % 2 == 0 { 0.5 * (times[m - 1] + times[m]) } else { times[m] };
    println!(
        "unet_step: median {median:.2} ms/step over {} steps (min {:.2}, max {:.2})",
        times.len(),
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}
