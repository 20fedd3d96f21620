//! Public encode/fit entry points fed arbitrary shapes and values (NaN, Inf, huge, tiny, empty):
//! they must return a result or a typed error, never panic.
#![no_main]
use arbitrary::Arbitrary;
use latent_linalg::DMatrix;
use latent_sparse_coding::*;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    d: u8,
    h: u8,
    n: u8,
    lambda: f64,
    k: u8,
    which: u8,
    values: Vec<f64>,
}

fuzz_target!(|inp: Input| {
    let (d, h, n) = (inp.d as usize % 9, inp.h as usize % 13, inp.n as usize % 7);
    let get = |i: usize| inp.values.get(i % inp.values.len().max(1)).copied().unwrap_or(0.5);
    let w = DMatrix::from_fn(d, h, |i, j| get(i * 31 + j));
    let x = DMatrix::from_fn(d, n, |i, j| get(1000 + i * 17 + j));
    let xs: Vec<f64> = (0..d).map(|i| get(2000 + i)).collect();
    let lam = inp.lambda;
    let k = inp.k as usize % 10;
    match inp.which % 9 {
        0 => drop(Lars::new(lam).encode_batch(&w, &x, None)),
        1 => drop(CoordinateDescent::new(lam).max_iter(50).encode_batch(&w, &x, None)),
        2 => drop(ProxGradient::fista(lam).max_iter(50).encode(&w, &xs, None)),
        3 => drop(FeatureSign::new(lam).encode(&w, &xs, None)),
        4 => drop(Omp::new(k).rule(OmpRule::OrderRecursive).encode_batch(&w, &x, None)),
        5 => drop(Iht::new(L0Rule::Sparsity(k)).encode(&w, &xs, None)),
        6 => drop(Threshold(ThresholdRule::TopK(k)).encode(&w, &xs, None)),
        7 => {
            if let Ok(l) = BatchParams::new(h, lam).max_iter(2).check() {
                let _ = l.fit(&x);
            }
        }
        _ => {
            if let Ok(l) = OnlineParams::new(h, lam).batch_size(3).check() {
                let _ = l.fit(&x);
            }
        }
    }
});
