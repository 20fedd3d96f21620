//! A narrow `Dataset` trait and a seeded, shuffling mini-batch sampler.

use crate::error::{Result, invalid};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The seeded generator used throughout the crate: ChaCha8 from a `u64` seed.
///
/// The generator is `rand_chacha` 0.9's `ChaCha8Rng`, which implements the traits of **`rand`
/// 0.9** (`rand::Rng`, `rand::SeedableRng`, `random`, `random_range`, …): put
/// `rand = "0.9"` (and `rand_chacha = "0.9"` to name the type) in your `[dependencies]`; the
/// traits of another `rand` major version do not apply to it. latent's `DMatrix` is nalgebra's,
/// built without nalgebra's `rand` feature, so `DMatrix::new_random` does not exist: fill a
/// matrix from the generator with `DMatrix::from_fn`, as below.
///
/// # Example
/// ```
/// use latent_datasets::rng_from_seed;
/// use latent_linalg::DMatrix;
/// use rand::Rng; // rand 0.9
///
/// let mut rng = rng_from_seed(7);
/// let x = DMatrix::<f32>::from_fn(16, 100, |_, _| rng.random_range(-1.0..1.0));
/// let mut again = rng_from_seed(7);
/// assert_eq!(x[(0, 0)], again.random_range(-1.0f32..1.0)); // same seed, same numbers
/// ```
pub fn rng_from_seed(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Indexed access to the samples of a data set.
pub trait Dataset {
    /// One sample.
    type Item;
    /// Number of samples.
    fn len(&self) -> usize;
    /// `true` when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample `i`.
    ///
    /// # Errors
    /// [`crate::DatasetError::OutOfRange`] when `i ≥ len()`; loaders may report I/O or format errors.
    fn get(&self, i: usize) -> Result<Self::Item>;
}

/// Seeded mini-batch sampler: each epoch is a fresh permutation of `0..len` cut into batches.
///
/// The permutation of epoch `e` comes from ChaCha8 seeded with `seed` on stream `e`, so the
/// same `(seed, epoch)` always gives the same batches and different epochs differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSampler {
    len: usize,
    batch_size: usize,
    drop_last: bool,
    seed: u64,
}

impl BatchSampler {
    /// A sampler over `0..len`.
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `len` | number of samples |
    /// | `batch_size` | samples per batch, ≥ 1 |
    /// | `drop_last` | drop a final batch shorter than `batch_size` |
    /// | `seed` | shuffling seed |
    ///
    /// # Errors
    /// [`crate::DatasetError::InvalidParameter`] when `batch_size == 0`.
    ///
    /// # Example
    /// ```
    /// let s = latent_datasets::BatchSampler::new(10, 4, false, 7)?;
    /// let batches: Vec<Vec<usize>> = s.epoch(0).collect();
    /// assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    /// # Ok::<(), latent_datasets::DatasetError>(())
    /// ```
    pub fn new(len: usize, batch_size: usize, drop_last: bool, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(invalid("batch_size", 0, "must be at least 1"));
        }
        Ok(Self { len, batch_size, drop_last, seed })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.len
    }
    /// `true` when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Samples per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        if self.drop_last { self.len / self.batch_size } else { self.len.div_ceil(self.batch_size) }
    }

    /// The shuffled order of epoch `epoch`.
    pub fn permutation(&self, epoch: u64) -> Vec<usize> {
        let mut rng = rng_from_seed(self.seed);
        rng.set_stream(epoch);
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut rng);
        order
    }

    /// The batches (index lists) of epoch `epoch`.
    pub fn epoch(&self, epoch: u64) -> Batches {
        Batches { order: self.permutation(epoch), pos: 0, batch_size: self.batch_size, drop_last: self.drop_last }
    }
}

/// Iterator over the index batches of one epoch (see [`BatchSampler::epoch`]).
#[derive(Debug, Clone)]
pub struct Batches {
    order: Vec<usize>,
    pos: usize,
    batch_size: usize,
    drop_last: bool,
}

impl Iterator for Batches {
    type Item = Vec<usize>;
    fn next(&mut self) -> Option<Vec<usize>> {
        let rest = self.order.len() - self.pos;
        if rest == 0 || (self.drop_last && rest < self.batch_size) {
            return None;
        }
        let end = self.pos + rest.min(self.batch_size);
        let b = self.order[self.pos..end].to_vec();
        self.pos = end;
        Some(b)
    }
}

/// Fetch the samples of one batch.
///
/// # Errors
/// The first error of [`Dataset::get`].
pub fn collect_batch<D: Dataset + ?Sized>(ds: &D, indices: &[usize]) -> Result<Vec<D::Item>> {
    indices.iter().map(|&i| ds.get(i)).collect()
}
