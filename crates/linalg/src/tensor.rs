//! `Tensor4`: a contiguous (N, C, H, W) array with checked shapes.

use crate::error::{Result, mismatch};
use crate::real::Real;
use serde::{Deserialize, Serialize};

/// A dense 4-D tensor in (N, C, H, W) order (row-major: W varies fastest).
///
/// Storage comes from and returns to the per-thread buffer cache (crate-private `buffers`), so that
/// loops allocating the same sizes every step reuse warm memory.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor4<T> {
    shape: [usize; 4],
    data: Vec<T>,
}

impl<T: Clone> Clone for Tensor4<T> {
    fn clone(&self) -> Self {
        let mut data = crate::buffers::take_any(self.data.len());
        data.extend_from_slice(&self.data);
        Self { shape: self.shape, data }
    }
}

impl<T> Drop for Tensor4<T> {
    fn drop(&mut self) {
        crate::buffers::give_any(std::mem::take(&mut self.data));
    }
}

fn numel(op: &'static str, shape: [usize; 4]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| mismatch(op, format!("shape {shape:?} overflows usize")))
}

impl<T: Real> Tensor4<T> {
    /// A tensor of zeros.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`](crate::LinalgError::ShapeMismatch) when the element count overflows.
    pub fn zeros(shape: [usize; 4]) -> Result<Self> {
        let n = numel("Tensor4::zeros", shape)?;
        Ok(Self { shape, data: crate::buffers::zeros(n) })
    }

    /// A tensor filled with `v`.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`](crate::LinalgError::ShapeMismatch) when the element count overflows.
    pub fn full(shape: [usize; 4], v: T) -> Result<Self> {
        let n = numel("Tensor4::full", shape)?;
        Ok(Self { shape, data: crate::buffers::filled(n, v) })
    }

    /// Wrap a vector in (N, C, H, W) order.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`](crate::LinalgError::ShapeMismatch) when `data.len()` is not the product of `shape`.
    pub fn from_vec(shape: [usize; 4], data: Vec<T>) -> Result<Self> {
        let n = numel("Tensor4::from_vec", shape)?;
        if n != data.len() {
            return Err(mismatch(
                "Tensor4::from_vec",
                format!("shape {shape:?} needs {n} elements, got {}", data.len()),
            ));
        }
        Ok(Self { shape, data })
    }

    /// Build from a function of the index.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`](crate::LinalgError::ShapeMismatch) when the element count overflows.
    pub fn from_fn(shape: [usize; 4], mut f: impl FnMut([usize; 4]) -> T) -> Result<Self> {
        let n = numel("Tensor4::from_fn", shape)?;
        let mut data = crate::buffers::take(n);
        for a in 0..shape[0] {
            for b in 0..shape[1] {
                for c in 0..shape[2] {
                    for d in 0..shape[3] {
                        data.push(f([a, b, c, d]));
                    }
                }
            }
        }
        Ok(Self { shape, data })
    }

    /// A batch from a matrix with one sample per column — the layout of sparse coding and
    /// dictionary learning (`d × n`, `d = C·H·W`) — as an `(n, C, H, W)` tensor. Column `j` is
    /// sample `j`, read in (C, H, W) row-major order (`c·H·W + y·W + x`), so
    /// [`Tensor4::to_columns`] gives the matrix back exactly. The data are copied once: a
    /// column-major matrix stores its columns one after the other, as the tensor stores samples.
    ///
    /// | parameter | meaning |
    /// |---|---|
    /// | `m` | `d × n` matrix, one flattened sample per column |
    /// | `chw` | `[C, H, W]` of one sample, `C·H·W = d` |
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`](crate::LinalgError::ShapeMismatch) when `C·H·W` differs
    /// from the number of rows (or overflows).
    ///
    /// # Example
    /// ```
    /// use latent_linalg::{DMatrix, Tensor4};
    /// // two 2×2 "images", one per column
    /// let m = DMatrix::<f32>::from_column_slice(4, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    /// let t = Tensor4::from_columns(&m, [1, 2, 2])?;
    /// assert_eq!(t.shape(), [2, 1, 2, 2]);
    /// assert_eq!(t.get([1, 0, 0, 1]), Some(6.0)); // sample 1, row 0, column 1
    /// assert_eq!(t.to_columns(), m);
    /// # Ok::<(), latent_linalg::LinalgError>(())
    /// ```
    pub fn from_columns(m: &crate::DMatrix<T>, chw: [usize; 3]) -> Result<Self> {
        let [c, h, w] = chw;
        let d = numel("Tensor4::from_columns", [1, c, h, w])?;
        if d != m.nrows() {
            return Err(mismatch(
                "Tensor4::from_columns",
                format!("sample shape {chw:?} has {d} elements, the matrix has {} rows", m.nrows()),
            ));
        }
        let mut data = crate::buffers::take(m.len());
        data.extend_from_slice(m.as_slice());
        Self::from_vec([m.ncols(), c, h, w], data)
    }

    /// The batch as a `C·H·W × N` matrix with one flattened sample per column (the layout of
    /// sparse coding and dictionary learning); the inverse of [`Tensor4::from_columns`].
    ///
    /// # Example
    /// ```
    /// use latent_linalg::Tensor4;
    /// let t = Tensor4::<f64>::from_fn([3, 2, 2, 2], |[n, c, y, x]| (n * 8 + c * 4 + y * 2 + x) as f64)?;
    /// let m = t.to_columns();
    /// assert_eq!(m.shape(), (8, 3));
    /// assert_eq!(m[(5, 1)], 13.0); // sample 1, channel 1, row 0, column 1
    /// assert_eq!(Tensor4::from_columns(&m, [2, 2, 2])?, t);
    /// # Ok::<(), latent_linalg::LinalgError>(())
    /// ```
    pub fn to_columns(&self) -> crate::DMatrix<T> {
        crate::DMatrix::from_column_slice(self.sample_len(), self.n(), &self.data)
    }

    /// (N, C, H, W).
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }
    /// Batch size N.
    pub fn n(&self) -> usize {
        self.shape[0]
    }
    /// Channels C.
    pub fn c(&self) -> usize {
        self.shape[1]
    }
    /// Height H.
    pub fn h(&self) -> usize {
        self.shape[2]
    }
    /// Width W.
    pub fn w(&self) -> usize {
        self.shape[3]
    }
    /// Total number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// `true` when some dimension is zero.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// The storage, (N, C, H, W) order.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }
    /// The storage, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }
    /// Give up the storage.
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.data)
    }
    /// Elements of one sample (C·H·W).
    pub fn sample_len(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }
    /// Per-sample mean squared difference `‖xₙ − yₙ‖² / (C·H·W)` against `other` (accumulated in
    /// `f64`): the reconstruction error of every reconstructor in latent.
    ///
    /// # Errors
    /// [`crate::LinalgError::ShapeMismatch`] when `other` does not have as many elements.
    pub fn per_sample_mse(&self, other: &Self) -> Result<Vec<T>> {
        if other.len() != self.len() {
            return Err(mismatch("per_sample_mse", format!("{:?} against {:?}", self.shape(), other.shape())));
        }
        let d = self.sample_len();
        if d == 0 {
            return Ok(vec![T::zero(); self.n()]);
        }
        Ok(self
            .as_slice()
            .chunks_exact(d)
            .zip(other.as_slice().chunks_exact(d))
            .map(|(a, b)| {
                let s: f64 = a.iter().zip(b).map(|(&u, &v)| (u - v).as_f64().powi(2)).sum();
                T::lit(s / d as f64)
            })
            .collect())
    }
    /// One sample's (C, H, W) block; `None` when `n` is out of range.
    pub fn sample(&self, n: usize) -> Option<&[T]> {
        let l = self.sample_len();
        (n < self.shape[0]).then(|| &self.data[n * l..(n + 1) * l])
    }
    /// One sample's block, mutable.
    pub fn sample_mut(&mut self, n: usize) -> Option<&mut [T]> {
        let l = self.sample_len();
        (n < self.shape[0]).then(move || &mut self.data[n * l..(n + 1) * l])
    }
    /// Flat index of `[n, c, h, w]`, `None` when out of range.
    pub fn index(&self, i: [usize; 4]) -> Option<usize> {
        let s = self.shape;
        (i[0] < s[0] && i[1] < s[1] && i[2] < s[2] && i[3] < s[3])
            .then(|| ((i[0] * s[1] + i[1]) * s[2] + i[2]) * s[3] + i[3])
    }
    /// Element at `[n, c, h, w]`, `None` when out of range.
    pub fn get(&self, i: [usize; 4]) -> Option<T> {
        self.index(i).map(|k| self.data[k])
    }
    /// Mutable element at `[n, c, h, w]`.
    pub fn get_mut(&mut self, i: [usize; 4]) -> Option<&mut T> {
        self.index(i).map(move |k| &mut self.data[k])
    }
    /// Same data, new shape with the same element count.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`](crate::LinalgError::ShapeMismatch) when the counts differ.
    pub fn reshape(mut self, shape: [usize; 4]) -> Result<Self> {
        Self::from_vec(shape, std::mem::take(&mut self.data))
    }
    /// Reject NaN/Inf.
    ///
    /// # Errors
    /// [`LinalgError::NonFinite`](crate::LinalgError::NonFinite) naming the operation and the first bad index.
    pub fn check_finite(&self, op: &'static str, what: &'static str) -> Result<()> {
        crate::product::check_finite(op, what, &self.data)
    }
    /// Apply `f` element-wise in place.
    pub fn map_inplace(&mut self, f: impl Fn(T) -> T) {
        self.data.iter_mut().for_each(|v| *v = f(*v));
    }
    /// Error unless `self` has exactly `shape`.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`](crate::LinalgError::ShapeMismatch) naming `op` and both shapes.
    pub fn expect_shape(&self, op: &'static str, shape: [usize; 4]) -> Result<()> {
        if self.shape != shape {
            return Err(mismatch(op, format!("expected shape {shape:?}, got {:?}", self.shape)));
        }
        Ok(())
    }
}
