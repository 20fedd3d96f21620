//! Time one stride-1 convolution (forward + input and weight gradients) on every kernel
//! `latent-linalg` can run here — im2col + GEMM, the direct AVX-512 / AVX2 kernels, the FFT —
//! for growing square kernels, to see where the FFT starts to pay. Each path is forced through
//! `ConvOptions`; runs alternate between the paths and the minimum of 5 is reported.
//!
//! `cargo run --release -p latent-linalg --example conv_kernels [N C O SIZE]` (defaults 4 8 8 64)
//!
//! With `strided` as the first argument it times instead the strided convolutions of the
//! `conv_ae_step` benchmark (batch 64), each pass on its own — forward, input gradient, weight
//! gradient — in the conv view (a transposed convolution's forward is its conv view's input
//! gradient): im2col + GEMM against the direct kernels' polyphase path, minimum of 20 alternating
//! runs of 10 calls each.
use latent_linalg::Tensor4;
use latent_linalg::conv::{Conv2dSpec, ConvOptions, KernelChoice};
use std::time::Instant;

fn main() -> latent_linalg::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("strided") {
        return strided();
    }
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

/// The strided passes of `conv_ae_step`, per kernel path (see the module documentation).
fn strided() -> latent_linalg::Result<()> {
    let kernels: Vec<KernelChoice> = [KernelChoice::Gemm, KernelChoice::DirectAvx512, KernelChoice::DirectAvx2]
        .into_iter()
        .filter(|k| k.available::<f32>())
        .collect();
    println!("conv view, batch 64, stride 2, padding 1; ms per call (forward / input gradient / weight gradient)");
    let mut total = vec![0.0; kernels.len()];
    // (image channels, outputs, image size, kernel): conv 1→16, conv 16→32, and the conv views of
    // convT 32→16 (image 16 @ 14², output 32 @ 7²) and convT 16→1 (image 1 @ 28², output 16 @ 14²)
    for (c, o, s, k, what) in [
        (1, 16, 28, 3, "conv 1->16"),
        (16, 32, 14, 3, "conv 16->32"),
        (16, 32, 14, 4, "convT 32->16"),
        (1, 16, 28, 4, "convT 16->1"),
    ] {
        let x = Tensor4::<f32>::from_fn([64, c, s, s], |[a, b, i, j]| ((a + b + i * j) % 7) as f32 * 0.1)?;
        let w = Tensor4::<f32>::from_fn([o, c, k, k], |[a, b, i, j]| ((a + b + i * j) % 5) as f32 * 0.01)?;
        let spec = Conv2dSpec::new(2, 1);
        let dy = ConvOptions::default().conv2d(&x, &w, None, &spec)?;
        let mut best = vec![[f64::INFINITY; 3]; kernels.len()];
        for _ in 0..20 {
            for (b, &kernel) in best.iter_mut().zip(&kernels) {
                let opts = ConvOptions::new(kernel);
                for (pass, t) in b.iter_mut().enumerate() {
                    let t0 = Instant::now();
                    for _ in 0..10 {
                        match pass {
                            0 => drop(opts.conv2d(&x, &w, None, &spec)?),
                            1 => drop(opts.conv2d_backward_input(&dy, &w, (s, s), &spec)?),
                            _ => drop(opts.conv2d_backward_weight(&x, &dy, (k, k), &spec)?),
                        }
                    }
                    *t = t.min(t0.elapsed().as_secs_f64() * 1e2);
                }
            }
        }
        let row: Vec<String> = kernels
            .iter()
            .zip(&best)
            .map(|(kc, t)| format!("{kc:?} {:.3} / {:.3} / {:.3}", t[0], t[1], t[2]))
            .collect();
        println!("{what:13} ({c:2}@{s}², {o:2} out, {k}x{k}): {}", row.join("   "));
        for (tot, t) in total.iter_mut().zip(&best) {
            *tot += t.iter().sum::<f64>();
        }
    }
    let row: Vec<String> = kernels.iter().zip(&total).map(|(kc, t)| format!("{kc:?} {t:.3}")).collect();
    println!("sum of the twelve passes: {}", row.join("   "));
    Ok(())
}
