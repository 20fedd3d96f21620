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
///
/// `flop` (of one step, [`unet_flop`]): 2 per multiply-add of every convolution — the two 3×3
/// convs per level and in the bottleneck, the 2×2 stride-2 transposed convs (every input pixel
/// through every tap), the decoder's 3×3 convs on the concatenated channels, the 1×1 head — for
/// the forward pass, the same for the weight gradients and for the input gradients except the
/// first conv's. Not counted: biases, ReLU, pooling, concatenation, the loss, Adam.
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
        "dtype": "float32",
        "flop": unet_flop(8, 64, 1, 16, 3, 2),
    }))
}

/// Training-step flop of a same-padded U-Net (see [`unet_step`]): `n` images `size`×`size` with
/// `cin` channels, `depth` levels, `base` channels doubling per level, `classes` outputs.
fn unet_flop(n: usize, size: usize, cin: usize, base: usize, depth: usize, classes: usize) -> f64 {
    let ch = |l: usize| (base << l) as f64;
    let px = |l: usize| ((size >> l) * (size >> l)) as f64;
    let conv3 = |i: f64, o: f64, l: usize| px(l) * i * o * 9.0;
    let d = depth - 1;
    let mut macs = 0.0;
    let mut c = cin as f64;
    for l in 0..=d {
        macs += conv3(c, ch(l), l) + conv3(ch(l), ch(l), l);
        c = ch(l);
    }
    for l in 0..d {
        macs += px(l + 1) * ch(l + 1) * ch(l) * 4.0; // transposed 2×2 up from level l+1
        macs += conv3(2.0 * ch(l), ch(l), l) + conv3(ch(l), ch(l), l);
    }
    macs += px(0) * ch(0) * classes as f64;
    let first = conv3(cin as f64, ch(0), 0);
    2.0 * n as f64 * (3.0 * macs - first)
}

#[cfg(test)]
mod tests {
    /// The U-Net count against the layers written out by hand (per image, forward multiply-adds):
    /// level 0 at 64² (1→16, 16→16), level 1 at 32² (16→32, 32→32), bottleneck at 16² (32→64,
    /// 64→64), up 64→32 from 16², decoder 64→32, 32→32 at 32², up 32→16 from 32², decoder 32→16,
    /// 16→16 at 64², head 16→2 at 64².
    #[test]
    fn unet_flop_counts_every_conv() {
        let fwd: u64 = 4096 * (16 * 9 + 16 * 16 * 9)
            + 1024 * (16 * 32 * 9 + 32 * 32 * 9)
            + 256 * (32 * 64 * 9 + 64 * 64 * 9)
            + 256 * 64 * 32 * 4
            + 1024 * (64 * 32 * 9 + 32 * 32 * 9)
            + 1024 * 32 * 16 * 4
            + 4096 * (32 * 16 * 9 + 16 * 16 * 9)
            + 4096 * 16 * 2;
        let want = 2 * 8 * (3 * fwd - 4096 * 16 * 9);
        assert_eq!(super::unet_flop(8, 64, 1, 16, 3, 2), want as f64);
    }
}
