//! Every product against a naive reference on random shapes, transposes and alpha/beta.

use latent_linalg::{DMatrix, DVector, LinalgError, MatMut, MatRef, Trans, gemm, gemm_batched, gemv, matmul};
use proptest::prelude::*;

fn naive(a: &DMatrix<f64>, ta: Trans, b: &DMatrix<f64>, tb: Trans) -> DMatrix<f64> {
    let a = if ta == Trans::T { a.transpose() } else { a.clone() };
    let b = if tb == Trans::T { b.transpose() } else { b.clone() };
    let mut c = DMatrix::zeros(a.nrows(), b.ncols());
    for i in 0..a.nrows() {
        for j in 0..b.ncols() {
            let mut s = 0.0;
            for k in 0..a.ncols() {
                s += a[(i, k)] * b[(k, j)];
            }
            c[(i, j)] = s;
        }
    }
    c
}

fn mat(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    DMatrix::from_fn(rows, cols, |_, _| {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

fn trans() -> impl Strategy<Value = Trans> {
    prop_oneof![Just(Trans::N), Just(Trans::T)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn gemm_matches_naive(m in 1usize..70, n in 1usize..70, k in 1usize..70, ta in trans(), tb in trans(),
                          alpha in -2.0f64..2.0, beta in prop_oneof![Just(0.0f64), -1.5f64..1.5], seed in any::<u64>()) {
        let a = if ta == Trans::N { mat(m, k, seed) } else { mat(k, m, seed) };
        let b = if tb == Trans::N { mat(k, n, seed ^ 1) } else { mat(n, k, seed ^ 1) };
        let c0 = mat(m, n, seed ^ 2);
        let mut c = c0.clone();
        gemm(alpha, &a, ta, &b, tb, beta, &mut c).unwrap();
        let want = naive(&a, ta, &b, tb) * alpha + c0 * beta;
        for (x, y) in c.iter().zip(want.iter()) {
            prop_assert!((x - y).abs() <= 1e-10 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn gemm_f32_matches_naive(m in 1usize..40, n in 1usize..40, k in 1usize..200, seed in any::<u64>()) {
        let a = mat(m, k, seed);
        let b = mat(k, n, seed ^ 7);
        let mut c = DMatrix::<f32>::zeros(m, n);
        gemm(1.0f32, &a.map(|v| v as f32), Trans::N, &b.map(|v| v as f32), Trans::N, 0.0, &mut c).unwrap();
        let want = naive(&a, Trans::N, &b, Trans::N);
        for (x, y) in c.iter().zip(want.iter()) {
            prop_assert!((*x as f64 - y).abs() <= 1e-4 * (1.0 + (k as f64).sqrt()), "{x} vs {y}");
        }
    }

    #[test]
    fn gemv_matches_naive(m in 1usize..60, k in 1usize..60, ta in trans(), alpha in -2.0f64..2.0, beta in -1.0f64..1.0, seed in any::<u64>()) {
        let a = if ta == Trans::N { mat(m, k, seed) } else { mat(k, m, seed) };
        let x = DVector::from_column_slice(mat(k, 1, seed ^ 3).as_slice());
        let y0 = DVector::from_column_slice(mat(m, 1, seed ^ 4).as_slice());
        let mut y = y0.clone();
        gemv(alpha, &a, ta, &x, beta, &mut y).unwrap();
        let xm = DMatrix::from_column_slice(k, 1, x.as_slice());
        let want = naive(&a, ta, &xm, Trans::N) * alpha + DMatrix::from_column_slice(m, 1, y0.as_slice()) * beta;
        for (p, q) in y.iter().zip(want.iter()) {
            prop_assert!((p - q).abs() <= 1e-10 * (1.0 + q.abs()));
        }
    }

    #[test]
    fn batched_matches_single(count in 0usize..6, m in 1usize..20, n in 1usize..20, k in 1usize..20, seed in any::<u64>()) {
        let a: Vec<_> = (0..count).map(|i| mat(k, m, seed ^ i as u64)).collect();
        let b: Vec<_> = (0..count).map(|i| mat(k, n, seed ^ (100 + i as u64))).collect();
        let mut c: Vec<_> = (0..count).map(|_| DMatrix::zeros(m, n)).collect();
        gemm_batched(1.0, &a, Trans::T, &b, Trans::N, 0.0, &mut c).unwrap();
        for i in 0..count {
            let want = naive(&a[i], Trans::T, &b[i], Trans::N);
            for (p, q) in c[i].iter().zip(want.iter()) {
                prop_assert!((p - q).abs() <= 1e-10 * (1.0 + q.abs()));
            }
        }
    }
}

#[test]
fn row_vector_times_column_vector_and_back() {
    let r = mat(1, 50, 1);
    let c = mat(50, 1, 2);
    let inner = matmul(&r, Trans::N, &c, Trans::N).unwrap();
    assert_eq!(inner.shape(), (1, 1));
    assert!((inner[(0, 0)] - naive(&r, Trans::N, &c, Trans::N)[(0, 0)]).abs() < 1e-12);
    let outer = matmul(&c, Trans::N, &r, Trans::N).unwrap();
    assert_eq!(outer.shape(), (50, 50));
    assert!((outer - naive(&c, Trans::N, &r, Trans::N)).abs().max() < 1e-12);
}

#[test]
fn large_parallel_product_matches_naive() {
    let a = mat(130, 150, 5);
    let b = mat(150, 170, 6);
    let c = matmul(&a, Trans::N, &b, Trans::N).unwrap();
    assert!((c - naive(&a, Trans::N, &b, Trans::N)).abs().max() < 1e-9);
}

#[test]
fn shape_mismatch_is_an_error() {
    let a = mat(3, 4, 1);
    let b = mat(5, 2, 2);
    let mut c = DMatrix::zeros(3, 2);
    let e = gemm(1.0, &a, Trans::N, &b, Trans::N, 0.0, &mut c).unwrap_err();
    assert!(matches!(e, LinalgError::ShapeMismatch { op: "gemm", .. }), "{e}");
    let mut wrong_c = DMatrix::zeros(2, 2);
    assert!(gemm(1.0, &a, Trans::N, &a, Trans::T, 0.0, &mut wrong_c).is_err());
    let x = DVector::zeros(3);
    let mut y = DVector::zeros(3);
    assert!(matches!(gemv(1.0, &a, Trans::N, &x, 0.0, &mut y), Err(LinalgError::ShapeMismatch { .. })));
    let mut cs = vec![DMatrix::zeros(3, 3)];
    assert!(
        gemm_batched(1.0, &[a.clone(), a.clone()], Trans::N, std::slice::from_ref(&a), Trans::T, 0.0, &mut cs).is_err()
    );
}

#[test]
fn empty_products_follow_numpy() {
    // k = 0: C = beta * C
    let a = DMatrix::<f64>::zeros(3, 0);
    let b = DMatrix::<f64>::zeros(0, 2);
    let mut c = DMatrix::from_element(3, 2, 2.0);
    gemm(1.0, &a, Trans::N, &b, Trans::N, 0.5, &mut c).unwrap();
    assert!(c.iter().all(|&v| v == 1.0));
    // m = 0: nothing to do
    let e = matmul(&DMatrix::<f64>::zeros(0, 4), Trans::N, &mat(4, 3, 1), Trans::N).unwrap();
    assert_eq!(e.shape(), (0, 3));
}

#[test]
fn beta_zero_ignores_nan_in_c() {
    let a = mat(4, 4, 1);
    let mut c = DMatrix::from_element(4, 4, f64::NAN);
    gemm(1.0, &a, Trans::N, &a, Trans::N, 0.0, &mut c).unwrap();
    assert!(c.iter().all(|v| v.is_finite()));
}

#[test]
fn views_reject_out_of_bounds_and_aliasing() {
    let data = vec![0.0f64; 10];
    assert!(MatRef::row_major(&data, 3, 4).is_err());
    assert!(MatRef::new(&data, 2, 5, 5, 1).is_ok());
    let mut d = vec![0.0f64; 10];
    assert!(MatMut::new(&mut d, 2, 2, 1, 1).is_err());
    assert!(MatMut::new(&mut d, 3, 3, 0, 1).is_err());
    assert!(MatMut::row_major(&mut d, 2, 5).is_ok());
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let a = mat(200, 300, 9).map(|v| v as f32);
    let b = mat(300, 250, 10).map(|v| v as f32);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| matmul(&a, Trans::N, &b, Trans::N).unwrap())
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.as_slice(), two.as_slice());
}
