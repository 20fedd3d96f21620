//! Sparse-coding encoders and learners on seeded synthetic data of the lasso_encode /
//! dl_online shapes (64-dimensional signals, 256 unit-norm atoms).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use latent_benches::random_matrix;
use latent_linalg::DMatrix;
use latent_sparse_coding::{CoordinateDescent, Encoder, Lars, Omp, OmpRule, OnlineParams, ParamGuard};
use std::hint::black_box;

fn dictionary(d: usize, h: usize) -> DMatrix<f64> {
    let mut w = random_matrix::<f64>(d, h, 11);
    latent_linalg::ops::normalize_columns(&mut w, 0.0).expect("finite");
    w
}

fn encoders(c: &mut Criterion) {
    let (d, h, n) = (64, 256, 2000);
    let w = dictionary(d, h);
    let x = random_matrix::<f64>(d, n, 12);
    let mut g = c.benchmark_group("encode_batch");
    g.sample_size(10);
    let lam = 0.1;
    g.bench_function(BenchmarkId::new("lars", format!("d{d}_h{h}_n{n}_lambda{lam}")), |b| {
        b.iter(|| Lars::new(lam).encode_batch(black_box(&w), &x, None).unwrap())
    });
    g.bench_function(BenchmarkId::new("cd", format!("d{d}_h{h}_n{n}_lambda{lam}")), |b| {
        b.iter(|| CoordinateDescent::new(lam).encode_batch(black_box(&w), &x, None).unwrap())
    });
    for (name, rule) in [("omp", OmpRule::Classic), ("ormp", OmpRule::OrderRecursive)] {
        g.bench_function(BenchmarkId::new(name, format!("d{d}_h{h}_n{n}_k10")), |b| {
            b.iter(|| Omp::new(10).rule(rule).encode_batch(black_box(&w), &x, None).unwrap())
        });
    }
    g.finish();
}

fn online(c: &mut Criterion) {
    let x = random_matrix::<f64>(64, 5120, 13);
    let mut g = c.benchmark_group("dl_online");
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("mairal", "d64_h256_n5120_batch256_lambda0.3"), |b| {
        b.iter(|| OnlineParams::new(256, 0.3).check().unwrap().fit(black_box(&x)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, encoders, online);
criterion_main!(benches);
