//! One-class MNIST: train a dense autoencoder on one digit, score every test image by its mean
//! squared reconstruction error, and report the AUROC per class and the mean.
//!
//! `cargo run --release -p latent-anomaly --example one_class_mnist [fashion]`

use latent_anomaly::{Detector, DetectorParams, ImageScore, MapParams, Result, auroc};
use latent_autoencoder::models::MlpAeParams;
use latent_autoencoder::Activation;
use latent_datasets::{FashionMnist, Mnist};
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
    let mut aurocs = Vec::new();
    for k in 0..10u8 {
        let t = Instant::now();
        let split = latent_datasets::one_class_split(&train, &test, k)?;
        let idx: Vec<usize> = (0..split.train.len()).collect();
        let x = split.train.to_tensor4::<f32>(&idx)?.reshape([idx.len(), 784, 1, 1])?;
        let fitted = MlpAeParams::new(vec![784, 128, 32])
            .hidden_activation(Activation::Relu)
            .code_activation(Activation::Identity)
            .epochs(30)
            .batch_size(64)
            .lr(2e-3)
            .seed(u64::from(k))
            .progress(false)
            .check()?
            .fit(&x)?;
        let det = Detector::new(
            fitted.model,
            DetectorParams::new().map(MapParams::new().score(ImageScore::Mean)).batch_size(1000).check()?,
        );
        let scores = det.scores(&x_test.clone().reshape([all.len(), 784, 1, 1])?)?;
        let a = auroc(&scores, &split.test_anomalous)?;
        let t2 = Instant::now();
        let xi = split.train.to_tensor4::<f32>(&idx)?;
        let dict = latent_anomaly::PatchDictionaryParams::new()
            .patch(28)
            .stride(28)
            .atoms(64)
            .lambda(0.5)
            .remove_mean(false)
            .coder(latent_anomaly::PatchCoder::Omp { k: 8 })
            .train_patches(idx.len())
            .epochs(3)
            .seed(u64::from(k))
            .check()?
            .fit(&xi)?;
        let det2 = Detector::new(dict, DetectorParams::new().map(MapParams::new().score(ImageScore::Mean)).batch_size(1000).check()?);
        let s2 = det2.scores(&x_test)?;
        let a2 = auroc(&s2, &split.test_anomalous)?;
        println!("class {k}: AUROC {a:.4} ({:.1}s)  sc {a2:.4} ({:.1}s)", t.elapsed().as_secs_f64(), t2.elapsed().as_secs_f64());
        aurocs.push(a);
    }
    println!("mean AUROC {:.4}", aurocs.iter().sum::<f64>() / aurocs.len() as f64);
    Ok(())
}
