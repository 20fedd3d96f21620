//! Sparse codes as index→value pairs: the lecture's `s = {0→12; 2→7}`.

use crate::error::{Result, dim};
use latent_linalg::{DMatrix, Real};
use serde::{Deserialize, Serialize};

/// A sparse vector of length `len` stored as sorted `(index, value)` pairs with nonzero values.
/// Its serialized size grows with the number of nonzeros, not with `len`.
///
/// # Example
/// ```
/// use latent_sparse_coding::SparseCode;
/// let s = SparseCode::from_dense(&[12.0f64, 0.0, 7.0, 0.0, 0.0]);
/// assert_eq!(s.pairs().collect::<Vec<_>>(), vec![(0, 12.0), (2, 7.0)]);
/// assert_eq!(s.to_dense(), vec![12.0, 0.0, 7.0, 0.0, 0.0]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseCode<T> {
    len: usize,
    idx: Vec<u32>,
    val: Vec<T>,
}

impl<T: Real> SparseCode<T> {
    /// The nonzeros of a dense vector.
    pub fn from_dense(s: &[T]) -> Self {
        let (idx, val) = s.iter().enumerate().filter(|(_, v)| **v != T::zero()).map(|(i, v)| (i as u32, *v)).unzip();
        Self { len: s.len(), idx, val }
    }

    /// From `(index, value)` pairs; zeros are dropped, pairs are sorted.
    ///
    /// # Errors
    /// [`crate::SparseCodingError::Dimension`] for an index `>= len` or a repeated index.
    pub fn from_pairs(len: usize, pairs: &[(usize, T)]) -> Result<Self> {
        let mut p: Vec<(usize, T)> = pairs.iter().copied().filter(|(_, v)| *v != T::zero()).collect();
        p.sort_by_key(|(i, _)| *i);
        for w in p.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(dim("SparseCode::from_pairs", format!("index {} appears twice", w[0].0)));
            }
        }
        if let Some((i, _)) = p.iter().find(|(i, _)| *i >= len || *i > u32::MAX as usize) {
            return Err(dim("SparseCode::from_pairs", format!("index {i} out of range for length {len}")));
        }
        Ok(Self { len, idx: p.iter().map(|(i, _)| *i as u32).collect(), val: p.iter().map(|(_, v)| *v).collect() })
    }

    /// Dense length.
    pub fn len(&self) -> usize {
        self.len
    }
    /// `true` when the dense length is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Number of nonzeros (‖s‖₀).
    pub fn nnz(&self) -> usize {
        self.idx.len()
    }
    /// `(index, value)` pairs in increasing index order.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, T)> + '_ {
        self.idx.iter().map(|&i| i as usize).zip(self.val.iter().copied())
    }
    /// The dense vector.
    pub fn to_dense(&self) -> Vec<T> {
        let mut s = vec![T::zero(); self.len];
        for (i, v) in self.pairs() {
            s[i] = v;
        }
        s
    }
    /// ‖s‖₁.
    pub fn l1(&self) -> T {
        self.val.iter().fold(T::zero(), |a, v| a + v.abs())
    }
    /// The reconstruction `Ws = Σ_{i: sᵢ≠0} W[:, i]·sᵢ`, touching only the nonzeros' atoms.
    ///
    /// # Errors
    /// [`crate::SparseCodingError::Dimension`] when `W` does not have `len` columns.
    pub fn reconstruct(&self, w: &DMatrix<T>) -> Result<Vec<T>> {
        if w.ncols() != self.len {
            return Err(dim(
                "SparseCode::reconstruct",
                format!("dictionary has {} atoms, code has length {}", w.ncols(), self.len),
            ));
        }
        let d = w.nrows();
        let mut x = vec![T::zero(); d];
        let ws = w.as_slice();
        for (i, v) in self.pairs() {
            for (xe, &a) in x.iter_mut().zip(&ws[i * d..(i + 1) * d]) {
                *xe += a * v;
            }
        }
        Ok(x)
    }
}
