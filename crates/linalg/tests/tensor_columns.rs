//! `Tensor4` ⇄ one-sample-per-column `DMatrix` (the layouts of the networks and of sparse coding).

use latent_linalg::{DMatrix, LinalgError, Tensor4};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn columns_round_trip_and_index_agree(n in 0usize..5, c in 1usize..4, h in 1usize..5, w in 1usize..5) {
        let t = Tensor4::<f64>::from_fn([n, c, h, w], |[a, b, y, x]| (((a * 7 + b) * 11 + y) * 13 + x) as f64).unwrap();
        let m = t.to_columns();
        prop_assert_eq!(m.shape(), (c * h * w, n));
        for a in 0..n {
            for b in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        prop_assert_eq!(m[((b * h + y) * w + x, a)], t.get([a, b, y, x]).unwrap());
                    }
                }
            }
        }
        prop_assert_eq!(Tensor4::from_columns(&m, [c, h, w]).unwrap(), t);
    }
}

#[test]
fn a_sample_shape_that_does_not_fit_the_rows_is_an_error() {
    let m = DMatrix::<f32>::zeros(6, 2);
    let e = Tensor4::from_columns(&m, [1, 2, 2]).unwrap_err();
    assert!(matches!(e, LinalgError::ShapeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("6 rows"), "{e}");
    assert!(Tensor4::from_columns(&m, [usize::MAX, 2, 2]).is_err());
}
