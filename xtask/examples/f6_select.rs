//! Model selection for F6 on a held-out split of the 10k embedded MNIST training digits: train
//! on the first `N − V` training digits, report MSE per pixel on the last `V` (never on the test
//! digits). Each argument is one configuration, `key=value` pairs separated by `;`:
//! `w=784,256,64,32` (encoder widths), `ep=60`, `lr=2e-3`, `wd=0` (AdamW decoupled weight decay,
//! 0: Adam), `do=0` (dropout after hidden layers), `noise=0` (Gaussian input-noise std),
//! `mask=0` (masking-noise fraction), `bs=128`, `seed=0`, `val=1500`, `ntrain` (train on the first
//! `ntrain` digits only, as the `--quick` run's 2k set; default: all `N − V`).
//!
//! `cargo run --release -p xtask --example f6_select -- "w=784,256,64,32" "w=784,256,128,32;wd=1e-4"`

use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::train::OptimizerKind;
use latent_autoencoder::{Activation, CheckedModel, LrSchedule, NoiseModel, ParamGuard};
use latent_datasets::Mnist;
use latent_optim::optimizer::AdamWParams;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = Mnist::load_default()?;
    for spec in std::env::args().skip(1) {
        let mut widths = vec![784usize, 256, 64, 32];
        let mut ntrain: Option<usize> = None;
        let (mut ep, mut lr, mut wd, mut dropout, mut noise, mut mask, mut bs, mut seed, mut val) =
            (60usize, 2e-3f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 128usize, 0u64, 1500usize);
        for kv in spec.split(';').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or("key=value")?;
            match k {
                "w" => widths = v.split(',').map(str::parse).collect::<Result<_, _>>()?,
                "ep" => ep = v.parse()?,
                "lr" => lr = v.parse()?,
                "wd" => wd = v.parse()?,
                "do" => dropout = v.parse()?,
                "noise" => noise = v.parse()?,
                "mask" => mask = v.parse()?,
                "bs" => bs = v.parse()?,
                "seed" => seed = v.parse()?,
                "val" => val = v.parse()?,
                "ntrain" => ntrain = Some(v.parse()?),
                _ => return Err(format!("unknown key {k}").into()),
            }
        }
        let n = m.train.len();
        let train = m.train.to_tensor4::<f32>(&(0..ntrain.unwrap_or(n - val).min(n - val)).collect::<Vec<_>>())?;
        let valid = m.train.to_tensor4::<f32>(&(n - val..n).collect::<Vec<_>>())?;
        let mut p = MlpAeParams::new(widths.clone())
            .code_activation(Activation::Identity)
            .lr(lr)
            .schedule(LrSchedule::Cosine { min_lr: lr * 0.01 })
            .batch_size(bs)
            .epochs(ep)
            .seed(seed)
            .progress(false)
            .dropout(dropout);
        if wd > 0.0 {
            p = p.optimizer(OptimizerKind::AdamW(AdamWParams::new().weight_decay(wd)));
        }
        if noise > 0.0 {
            p = p.denoising(NoiseModel::Gaussian { std: noise });
        } else if mask > 0.0 {
            p = p.denoising(NoiseModel::Masking { fraction: mask });
        }
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let fitted = p.check()?.fit_validated(&train, Some(&valid))?;
        let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        let mean = |d| -> Result<f64, Box<dyn std::error::Error>> {
            let e = fitted.model.reconstruction_errors(d)?;
            Ok(e.iter().map(|&v| v as f64).sum::<f64>() / e.len() as f64)
        };
        let (tr, va) = (mean(&train)?, mean(&valid)?);
        let vl = &fitted.report.val_loss;
        let (best_ep, best) =
            vl.iter().enumerate().fold((0, f64::INFINITY), |b, (i, &v)| if v < b.1 { (i + 1, v) } else { b });
        let curve: Vec<String> = vl.iter().step_by(10).map(|v| format!("{v:.5}")).collect();
        println!(
            "{spec:<40} train {tr:.5} val {va:.5} gap {:+.5} | best val {best:.5} @ep {best_ep} | val every 10 ep [{}] | {secs:.1} s wall, {cpu:.1} s CPU",
            va - tr,
            curve.join(" ")
        );
    }
    Ok(())
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own and pass by a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}
