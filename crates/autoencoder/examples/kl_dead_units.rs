//! Diagnostics for dead units of the sparse ReLU autoencoder with the KL firing-rate term, in the
//! setting of figure F5 (784-128, bias, L1 λ = 0.05, ρ = 0.05, 10 000 training and 5 000 test
//! digits, 8 epochs, batch 100, lr 2e-3): dead units on the training and test images, the least
//! active unit, and with `KL_DIAG_VERBOSE=1`, after every epoch, the units that fire on fewer than
//! 20 training images with their pre-activation mean, sd and maximum, their smooth rate ρ̂ (mean
//! over batches of 100), and the KL and reconstruction + L1 gradients on their bias; at the end
//! the quantiles of the dead units' pre-activations. This is how the former temperature τ = 0.25
//! was found to let units die while reading ρ̂ ≈ ρ.
//!
//! `cargo run --release -p latent-autoencoder --example kl_dead_units -- SEED WEIGHT [TAU]`

use latent_autoencoder::loss::{DEFAULT_KL_TEMPERATURE, KlSparsity, kl_firing_rates, kl_sparsity_penalty};
use latent_autoencoder::models::SparseReluAeParams;
use latent_autoencoder::train::{Control, EpochContext, Trainer};
use latent_autoencoder::{Autoencoder, Encoder, Layer, ParamGuard, ParamKind, Tensor4, Trainable};

struct Stats {
    fires: Vec<usize>,
    mu: Vec<f64>,
    sd: Vec<f64>,
    max: Vec<f64>,
    rho_hat: Vec<f64>,
    // mean over batches of |dKL/db_c| (sum over batch of dz)
    gb: Vec<f64>,
}

fn stats(model: &Autoencoder<f32>, x: &Tensor4<f32>, kl: &KlSparsity) -> Stats {
    let z = model.encoder().infer(x).unwrap();
    let [n, c, _, _] = z.shape();
    let zs = z.as_slice();
    let mut st = Stats {
        fires: vec![0; c],
        mu: vec![0.0; c],
        sd: vec![0.0; c],
        max: vec![f64::NEG_INFINITY; c],
        rho_hat: vec![0.0; c],
        gb: vec![0.0; c],
    };
    for j in 0..c {
        let v: Vec<f64> = (0..n).map(|i| zs[i * c + j] as f64).collect();
        st.fires[j] = v.iter().filter(|a| **a > 0.0).count();
        let mu = v.iter().sum::<f64>() / n as f64;
        st.mu[j] = mu;
        st.sd[j] = (v.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / n as f64).sqrt();
        st.max[j] = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    // ρ̂ per batch of 100, averaged; and the KL gradient on each unit's bias
    let nb = n / 100;
    for b in 0..nb {
        let zb = Tensor4::from_vec([100, c, 1, 1], zs[b * 100 * c..(b + 1) * 100 * c].to_vec()).unwrap();
        let mut g = Tensor4::zeros([100, c, 1, 1]).unwrap();
        kl_sparsity_penalty(kl, &zb, Some(&mut g)).unwrap();
        let rates = kl_firing_rates(kl, &zb).unwrap();
        for j in 0..c {
            st.rho_hat[j] += rates[j] / nb as f64;
            st.gb[j] += (0..100).map(|i| g.as_slice()[i * c + j] as f64).sum::<f64>() / nb as f64;
        }
    }
    st
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).map_or(Ok(0), |s| s.parse())?;
    let weight: f64 = args.get(2).map_or(Ok(2.0), |s| s.parse())?;
    let tau: f64 = args.get(3).map_or(Ok(DEFAULT_KL_TEMPERATURE), |s| s.parse())?;
    let m = latent_datasets::Mnist::load_default()?;
    let x = m.train.to_tensor4::<f32>(&(0..10000).collect::<Vec<_>>())?.reshape([10000, 784, 1, 1])?;
    let test = m.test.to_tensor4::<f32>(&(0..5000).collect::<Vec<_>>())?.reshape([5000, 784, 1, 1])?;
    let mut p = SparseReluAeParams::new(784, 128)
        .lambda(0.05)
        .kl(0.05, weight)
        .kl_temperature(tau)
        .bias(true)
        .epochs(8)
        .batch_size(100)
        .lr(2e-3);
    p.train.seed = seed;
    p.train.progress = false;
    let kl = KlSparsity::new(0.05, weight.max(1e-9)).temperature(tau);
    let checked = p.clone().check()?;
    let mut model: Autoencoder<f32> = checked.build()?;
    let trainer = Trainer::new(p.train.clone().check()?);
    let verbose = std::env::var("KL_DIAG_VERBOSE").is_ok();
    let mut cb = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
        if !verbose {
            return Control::Continue;
        }
        let st = stats(ctx.model, &x, &kl);
        let dead: Vec<usize> = (0..128).filter(|&j| st.fires[j] == 0).collect();
        let rare: Vec<usize> = (0..128).filter(|&j| st.fires[j] > 0 && st.fires[j] < 20).collect();
        println!("epoch {} loss {:.4}: dead on train {:?}, rare(<20) {:?}", ctx.epoch, ctx.train_loss, dead, rare);
        for &j in dead.iter().chain(&rare) {
            println!(
                "   unit {j:3}: fires {:4}  mu {:+.3} sd {:.3} max {:+.3} (max-mu)/sd {:.2}  rho_hat(batch) {:.4}  dKL/db {:+.2e}",
                st.fires[j],
                st.mu[j],
                st.sd[j],
                st.max[j],
                (st.max[j] - st.mu[j]) / st.sd[j],
                st.rho_hat[j],
                st.gb[j]
            );
        }
        // gradient on each unit's encoder bias, over the batches in order: total (train_step) and KL part
        let mut m = ctx.model.clone();
        let (mut gt, mut gk, mut gt2) = (vec![0.0f64; 128], vec![0.0f64; 128], vec![0.0f64; 128]);
        for b in 0..100 {
            let xb = Tensor4::from_vec([100, 784, 1, 1], x.as_slice()[b * 78400..(b + 1) * 78400].to_vec()).unwrap();
            m.train_step(&xb).unwrap();
            let gb: Vec<f64> = m
                .params()
                .into_iter()
                .find(|p| p.kind == ParamKind::Bias)
                .unwrap()
                .grad
                .iter()
                .map(|v| *v as f64)
                .collect();
            let z = m.encoder().infer(&xb).unwrap();
            let mut g = Tensor4::zeros(z.shape()).unwrap();
            kl_sparsity_penalty(&kl, &z, Some(&mut g)).unwrap();
            for j in 0..128 {
                let k: f64 = (0..100).map(|i| g.as_slice()[i * 128 + j] as f64).sum();
                let kk = if weight > 0.0 { k } else { 0.0 };
                gk[j] += kk / 100.0;
                gt[j] += (gb[j] - kk) / 100.0;
                gt2[j] += (gb[j] - kk).powi(2) / 100.0;
            }
        }
        for &j in dead.iter().chain(&rare).take(6) {
            println!(
                "   unit {j:3}: bias grad per batch: recon+L1 mean {:+.2e} rms {:.2e}, KL mean {:+.2e}",
                gt[j],
                gt2[j].sqrt(),
                gk[j]
            );
        }
        let alive: Vec<usize> = (0..128).filter(|&j| st.fires[j] >= 20).collect();
        let mean_rh = alive.iter().map(|&j| st.rho_hat[j]).sum::<f64>() / alive.len().max(1) as f64;
        let mean_fr = alive.iter().map(|&j| st.fires[j] as f64 / 10000.0).sum::<f64>() / alive.len().max(1) as f64;
        let mean_gb = alive.iter().map(|&j| st.gb[j].abs()).sum::<f64>() / alive.len().max(1) as f64;
        println!(
            "   alive units: mean rho_hat {mean_rh:.4}, mean true firing rate {mean_fr:.4}, mean |dKL/db| {mean_gb:.2e}"
        );
        Control::Continue
    };
    trainer.fit_with_callbacks(&mut model, &x, None, &mut [&mut cb])?;
    let dt = model.dead_units(&test, 500, 0.0)?;
    let dx = model.dead_units(&x, 500, 0.0)?;
    let sc = model.encode(&test)?;
    let active = sc.as_slice().iter().filter(|v| **v > 0.0).count() as f64 / sc.len() as f64;
    let mse: f32 = model.reconstruction_errors(&test)?.iter().sum::<f32>() / test.n() as f32;
    println!(
        "final: dead test {:?}, dead train {:?}; least active unit fires on {} train / {} test images; test active {:.4}, mse {:.5}",
        dt.dead_units(),
        dx.dead_units(),
        dx.counts().iter().min().unwrap(),
        dt.counts().iter().min().unwrap(),
        active,
        mse
    );
    {
        let z = model.encoder().infer(&x)?;
        for &j in dx.dead_units().iter() {
            let mut v: Vec<f64> = (0..10000).map(|i| z.as_slice()[i * 128 + j] as f64).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            let mu = v.iter().sum::<f64>() / 1e4;
            let sd = (v.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / 1e4).sqrt();
            let qs: Vec<String> = [0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0]
                .iter()
                .map(|q| format!("{q}:{:+.3}", v[((q * 9999.0) as usize).min(9999)] / sd))
                .collect();
            let near = |w: f64| v.iter().filter(|a| **a > -w * sd).count() as f64 / 1e4;
            println!(
                "   unit {j} z/sd quantiles {}; frac within 0.1/0.25/0.5 sd of 0: {:.3} {:.3} {:.3}",
                qs.join(" "),
                near(0.1),
                near(0.25),
                near(0.5)
            );
        }
    }
    let st = stats(&model, &test, &kl);
    for &j in dt.dead_units().iter() {
        println!(
            "   test unit {j:3}: train fires {:4}  test mu {:+.3} sd {:.3} max {:+.3}",
            dx.counts()[j],
            st.mu[j],
            st.sd[j],
            st.max[j]
        );
    }
    Ok(())
}
