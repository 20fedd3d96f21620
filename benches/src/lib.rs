//! Shared fixtures for the criterion benchmarks: seeded inputs built outside the timed closures.

use latent_linalg::{DMatrix, Real, Tensor4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded uniform(−0.5, 0.5) matrix.
pub fn random_matrix<T: Real>(rows: usize, cols: usize, seed: u64) -> DMatrix<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    DMatrix::from_fn(rows, cols, |_, _| T::lit(rng.random::<f64>() - 0.5))
}

/// A seeded uniform(−0.5, 0.5) tensor.
pub fn random_tensor<T: Real>(shape: [usize; 4], seed: u64) -> Tensor4<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor4::from_fn(shape, |_| T::lit(rng.random::<f64>() - 0.5)).expect("benchmark shapes are valid")
}
