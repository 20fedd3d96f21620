//! The built-in layers.

pub mod batchnorm;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod noise;
pub mod pool;
pub mod shape;

use latent_linalg::{Real, Tensor4};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Resize a gradient accumulator to `n` zeros when its length differs (lazy allocation after
/// construction or deserialisation).
pub(crate) fn ensure_len<T: Real>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.clear();
        v.resize(n, T::zero());
    }
}

/// `n` values drawn from `U(−bound, bound)`.
pub(crate) fn init_uniform<T: Real>(rng: &mut ChaCha8Rng, n: usize, bound: f64) -> Vec<T> {
    (0..n).map(|_| T::lit((rng.random::<f64>() * 2.0 - 1.0) * bound)).collect()
}

/// Check that a deserialised tensor's storage matches its shape.
pub(crate) fn check_tensor<T: Real>(what: &'static str, t: &Tensor4<T>, shape: [usize; 4]) -> crate::Result<()> {
    let need = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if t.shape() != shape || need != Some(t.as_slice().len()) {
        return Err(crate::error::format_err(format!(
            "{what}: expected shape {shape:?}, found shape {:?} with {} values",
            t.shape(),
            t.as_slice().len()
        )));
    }
    Ok(())
}
