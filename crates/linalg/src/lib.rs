#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod buffers;
pub mod conv;
mod conv_direct;
mod conv_fft;
mod conv_strided;
pub mod error;
pub mod fft;
pub mod filter;

pub mod ops;
pub mod persist;
pub mod pool;

pub mod product;
pub mod real;
pub mod simd;
pub mod tensor;

pub use error::{LinalgError, Result};
pub use nalgebra::{self, DMatrix, DVector};
pub use product::{MatMut, MatRef, Trans, check_finite, gemm, gemm_batched, gemm_view, gemv, matmul, matvec};
pub use real::Real;
pub use tensor::Tensor4;
