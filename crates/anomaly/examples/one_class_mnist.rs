//! One-class MNIST (or Fashion-MNIST): train on one class, test on all, score every test image
//! by its mean squared reconstruction error, and report the AUROC per class and the mean for a
//! dense autoencoder and a whole-image sparse-coding dictionary.
//!
//! `cargo run --release -p latent-anomaly --example one_class_mnist [fashion]`

use latent_anomaly::ParamGuard;
use latent_anomaly::{
    Detector, DetectorParams, ImageScore, MapParams, PatchCoder, PatchDictionaryParams, Result, auroc,
};
use latent_autoencoder::Activation;
use latent_autoencoder::models::MlpAeParams;
use latent_datasets::{FashionMnist, Mnist, one_class_split};
use std::time::Instant;

fn main() -> Result<()> {
    let fashion = std::env::args().nth(1).as_deref() == Some("fashion");
    let (train, test) = if fashion {
        let f = FashionMnist::load_default()?;
        (f.train, f.test)
    } else {
        let m = Mnist::load_default()?;
        (m.train, m.test)
    };
    let all: Vec<usize> = (0..test.len()).collect();
    let x_test = test.to_tensor4::<f32>(&all)?;
    let flat_test = x_test.clone().reshape([test.len(), 784, 1, 1])?;
    let params = || DetectorParams::new().map(MapParams::new().score(ImageScore::Mean)).batch_size(1000).check();
    let (mut ae_aurocs, mut sc_aurocs) = (Vec::new(), Vec::new());
    for k in 0..10u8 {
        let t = Instant::now();
        let split = one_class_split(&train, &test, k)?;
        let idx: Vec<usize> = (0..split.train.len()).collect();
        let x = split.train.to_tensor4::<f32>(&idx)?;
        // dense autoencoder 784-128-32-128-784
        let fitted = MlpAeParams::new(vec![784, 128, 32])
            .code_activation(Activation::Identity)
            .epochs(30)
            .batch_size(64)
            .lr(2e-3)
            .seed(u64::from(k))
            .progress(false)
            .check()?
            .fit(&x.clone().reshape([idx.len(), 784, 1, 1])?)?;
        let ae = auroc(&Detector::new(fitted.model, params()?).scores(&flat_test)?, &split.test_anomalous)?;
        // whole images coded with 8 of 64 atoms learned on the normal class
        let dict = PatchDictionaryParams::new()
            .patch(28)
            .stride(28)
            .atoms(64)
            .lambda(0.5)
            .remove_mean(false)
            .coder(PatchCoder::Omp { k: 8 })
            .train_patches(idx.len())
            .epochs(3)
            .seed(u64::from(k))
            .check()?
            .fit(&x)?;
        let sc = auroc(&Detector::new(dict, params()?).scores(&x_test)?, &split.test_anomalous)?;
        println!(
            "normal class {k}: AUROC autoencoder {ae:.4}, sparse coding {sc:.4} ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
        ae_aurocs.push(ae);
        sc_aurocs.push(sc);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!("mean AUROC: autoencoder {:.4}, sparse coding {:.4}", mean(&ae_aurocs), mean(&sc_aurocs));
    Ok(())
}
