//! Time the 3×3 convolutions of the `unet_step` workload (batch 8) on every convolution kernel
//! `latent-linalg` can run here — im2col + GEMM and the direct AVX-512 / AVX2 kernels — forward
//! and backward (input and weight gradients), each forced for its calls through
//! `ConvOptions`. Runs alternate between the kernels and the minimum of 9 is reported, which is
//! robust against other load on the machine. `auto` is what the U-Net runs.
//!
//! `cargo run --release -p latent-unet --example conv_profile`
use latent_linalg::Tensor4;
use latent_linalg::conv::{Conv2dSpec, ConvOptions, KernelChoice};
use std::time::Instant;

fn ms(f: &mut dyn FnMut() -> latent_linalg::Result<()>) -> latent_linalg::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn main() -> latent_linalg::Result<()> {
    let layers =
        [(1, 16, 64), (16, 16, 64), (16, 32, 32), (32, 32, 32), (32, 64, 16), (64, 64, 16), (64, 32, 32), (32, 16, 64)];
    let kernels: Vec<KernelChoice> =
        [KernelChoice::Auto, KernelChoice::Gemm, KernelChoice::DirectAvx512, KernelChoice::DirectAvx2]
            .into_iter()
            .filter(|k| k.available::<f32>())
            .collect();
    let mut total = vec![0.0; kernels.len()];
    for &(c, o, s) in &layers {
        let x = Tensor4::<f32>::from_fn([8, c, s, s], |[a, b, i, j]| ((a + b + i * j) % 7) as f32)?;
        let w = Tensor4::<f32>::from_fn([o, c, 3, 3], |[a, b, i, j]| ((a + b + i * j) % 5) as f32 * 0.1)?;
        let spec = Conv2dSpec::new(1, 1);
        let y = ConvOptions::default().conv2d(&x, &w, None, &spec)?;
        let mut best = vec![f64::INFINITY; kernels.len()];
        for _ in 0..9 {
            for (k, &kernel) in kernels.iter().enumerate() {
                let opts = ConvOptions::new(kernel);
                let t = ms(&mut || {
                    opts.conv2d(&x, &w, None, &spec)?;
                    opts.conv2d_backward_input(&y, &w, (s, s), &spec)?;
                    opts.conv2d_backward_weight(&x, &y, (3, 3), &spec)?;
                    Ok(())
                })?;
                best[k] = best[k].min(t);
            }
        }
        let row: Vec<String> = kernels.iter().zip(&best).map(|(k, t)| format!("{k:?} {t:6.2} ms")).collect();
        println!("{c:3}->{o:3} @{s:2}: fwd+bwd {}", row.join(", "));
        total.iter_mut().zip(&best).for_each(|(a, b)| *a += b);
    }
    let row: Vec<String> = kernels.iter().zip(&total).map(|(k, t)| format!("{k:?} {t:.1} ms")).collect();
    println!("total: {}", row.join(", "));
    Ok(())
}
