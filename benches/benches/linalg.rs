//! Products and convolution kernels (workloads gemm_1024, gemm shapes, conv2d_fb, and the strided
//! convolutions of conv_ae_step on every kernel path this CPU has).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use latent_benches::{random_matrix, random_tensor};
use latent_linalg::conv::{
    Conv2dSpec, ConvOptions, KernelChoice, conv2d, conv2d_backward_input, conv2d_backward_weight,
};
use latent_linalg::{DMatrix, Real, Trans, gemm};
use std::hint::black_box;

fn bench_gemm<T: Real>(c: &mut Criterion, m: usize, k: usize, n: usize) {
    let a = random_matrix::<T>(m, k, 1);
    let b = random_matrix::<T>(k, n, 2);
    let mut out = DMatrix::<T>::zeros(m, n);
    let mut g = c.benchmark_group("gemm");
    g.throughput(Throughput::Elements((2 * m * n * k) as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new(T::NAME, format!("{m}x{k}x{n}")), |bch| {
        bch.iter(|| gemm(T::one(), black_box(&a), Trans::N, black_box(&b), Trans::N, T::zero(), &mut out).unwrap())
    });
    g.finish();
}

fn gemms(c: &mut Criterion) {
    bench_gemm::<f32>(c, 1024, 1024, 1024);
    bench_gemm::<f64>(c, 1024, 1024, 1024);
    bench_gemm::<f32>(c, 64, 256, 10000);
    bench_gemm::<f64>(c, 64, 256, 10000);
    bench_gemm::<f32>(c, 784, 256, 128);
}

fn conv(c: &mut Criterion) {
    let x = random_tensor::<f32>([64, 16, 28, 28], 3);
    let w = random_tensor::<f32>([32, 16, 3, 3], 4);
    let dy = random_tensor::<f32>([64, 32, 28, 28], 5);
    let b = vec![0.1f32; 32];
    let spec = Conv2dSpec::new(1, 1);
    let mut g = c.benchmark_group("conv2d_fb");
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("f32", "n64_c16_o32_28x28_k3_s1_p1/forward"), |bch| {
        bch.iter(|| conv2d(black_box(&x), &w, Some(&b), &spec).unwrap())
    });
    g.bench_function(BenchmarkId::new("f32", "n64_c16_o32_28x28_k3_s1_p1/forward+backward"), |bch| {
        bch.iter(|| {
            let y = conv2d(black_box(&x), &w, Some(&b), &spec).unwrap();
            let dx = conv2d_backward_input(&dy, &w, (28, 28), &spec).unwrap();
            let dw = conv2d_backward_weight(&x, &dy, (3, 3), &spec).unwrap();
            (y, dx, dw)
        })
    });
    g.finish();
}

/// The stride-2 convolutions of conv_ae_step (batch 64; conv 16→32 3×3 and the conv view of the
/// transposed conv 32→16 4×4), forward + both gradients, on im2col + GEMM and on each direct
/// kernel path the CPU has (AVX2 forced on AVX-512 machines too).
fn conv_strided(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_strided_fb");
    g.sample_size(20);
    for (k, seed) in [(3usize, 6u64), (4, 9)] {
        let x = random_tensor::<f32>([64, 16, 14, 14], seed);
        let w = random_tensor::<f32>([32, 16, k, k], seed + 1);
        let spec = Conv2dSpec::new(2, 1);
        let dy = random_tensor::<f32>([64, 32, 7, 7], seed + 2);
        for kernel in [KernelChoice::Gemm, KernelChoice::DirectAvx512, KernelChoice::DirectAvx2] {
            if !kernel.available::<f32>() {
                continue;
            }
            let opts = ConvOptions::new(kernel);
            let id = format!("n64_c16_o32_14x14_k{k}_s2_p1/{kernel:?}");
            g.bench_function(BenchmarkId::new("f32", id), |bch| {
                bch.iter(|| {
                    let y = opts.conv2d(black_box(&x), &w, None, &spec).unwrap();
                    let dx = opts.conv2d_backward_input(&dy, &w, (14, 14), &spec).unwrap();
                    let dw = opts.conv2d_backward_weight(&x, &dy, (k, k), &spec).unwrap();
                    (y, dx, dw)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, gemms, conv, conv_strided);
criterion_main!(benches);
