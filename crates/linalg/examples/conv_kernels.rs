//! Time one stride-1 convolution (forward + input and weight gradients) on every kernel
//! `latent-linalg` can run here — im2col + GEMM, the direct AVX-512 / AVX2 kernels, the FFT —
//! for growing square kernels, to see where the FFT starts to pay. Each path is forced through
//! `ConvOptions`; runs alternate between the paths and the minimum of 5 is reported.
//!
//! `cargo run --release -p latent-linalg --example conv_kernels [N C O SIZE]` (defaults 4 8 8 64)
use latent_linalg::Tensor4;
use latent_linalg::conv::{Conv2dSpec, ConvOptions, KernelChoice};
use std::time::Instant;

fn main() -> latent_linalg::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let [n, c, o, s] = match args[..] {
        [n, c, o, s] => [n, c, o, s],
        _ => [4, 8, 8, 64],
    };
    let kernels: Vec<KernelChoice> =
        [KernelChoice::Gemm, KernelChoice::DirectAvx512, KernelChoice::DirectAvx2, KernelChoice::Fft]
            .into_iter()
            .filter(|k| k.available::<f32>())
            .collect();
    println!("x ({n}, {c}, {s}, {s}), {o} outputs, same padding; ms per forward + both gradients");
    for k in [3, 5, 7, 9, 11, 15, 21, 31] {
        let x = Tensor4::<f32>::from_fn([n, c, s, s], |[a, b, i, j]| ((a + b + i * j) % 7) as f32 * 0.1)?;
        let w = Tensor4::<f32>::from_fn([o, c, k, k], |[a, b, i, j]| ((a + b + i * j) % 5) as f32 * 0.01)?;
        let spec = Conv2dSpec::new(1, k / 2);
        let dy = ConvOptions::default().conv2d(&x, &w, None, &spec)?;
        let mut best = vec![f64::INFINITY; kernels.len()];
        for _ in 0..5 {
            for (b, &kernel) in best.iter_mut().zip(&kernels) {
                let opts = ConvOptions::new(kernel);
                let t = Instant::now();
                opts.conv2d(&x, &w, None, &spec)?;
                opts.conv2d_backward_input(&dy, &w, (s, s), &spec)?;
                opts.conv2d_backward_weight(&x, &dy, (k, k), &spec)?;
                *b = b.min(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let row: Vec<String> = kernels.iter().zip(&best).map(|(k, t)| format!("{k:?} {t:8.2}")).collect();
        println!("{k:2}x{k:<2}: {}", row.join("  "));
    }
    Ok(())
}
