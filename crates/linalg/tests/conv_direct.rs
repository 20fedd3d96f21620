//! `f32` stride-1 convolutions, which run on the direct AVX-512 kernels where the CPU has them
//! (and on im2col + GEMM elsewhere): forward, input gradient, weight and bias gradients against
//! naive `f64` references, for shapes that exercise partial register blocks (channel counts not
//! multiples of 8 or 4, `C·kh·kw` not a multiple of 6, rows not multiples of 16), every padding
//! from 0 to beyond the kernel (where the input gradient falls back to col2im), and transposed
//! convolutions of stride 1, which use the same kernels.

use latent_linalg::Tensor4;
use latent_linalg::conv::{
    Conv2dSpec, conv_transpose2d, conv2d, conv2d_backward_input, conv2d_backward_weight, force_avx2_direct_kernels,
    set_direct_kernels,
};
use proptest::prelude::*;

fn rnd(shape: [usize; 4], seed: u64) -> Tensor4<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    Tensor4::from_fn(shape, |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    })
    .unwrap()
}

fn at(t: &Tensor4<f32>, i: [usize; 4]) -> f64 {
    t.get(i).unwrap() as f64
}

/// Naive `f64` forward, input gradient and weight gradient of a stride-1 convolution.
fn naive(
    x: &Tensor4<f32>,
    w: &Tensor4<f32>,
    dy: &Tensor4<f32>,
    p: (usize, usize),
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let [n, c, h, wd] = x.shape();
    let [o, _, kh, kw] = w.shape();
    let [_, _, ho, wo] = dy.shape();
    let mut y = vec![0.0; n * o * ho * wo];
    let mut dx = vec![0.0; n * c * h * wd];
    let mut dw = vec![0.0; o * c * kh * kw];
    let mut db = vec![0.0; o];
    for ni in 0..n {
        for oi in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let g = at(dy, [ni, oi, i, j]);
                    db[oi] += g;
                    for ci in 0..c {
                        for u in 0..kh {
                            for v in 0..kw {
                                let iy = (i + u) as isize - p.0 as isize;
                                let ix = (j + v) as isize - p.1 as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    let (iy, ix) = (iy as usize, ix as usize);
                                    let wv = at(w, [oi, ci, u, v]);
                                    let xv = at(x, [ni, ci, iy, ix]);
                                    y[((ni * o + oi) * ho + i) * wo + j] += wv * xv;
                                    dx[((ni * c + ci) * h + iy) * wd + ix] += wv * g;
                                    dw[((oi * c + ci) * kh + u) * kw + v] += g * xv;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (y, dx, dw, db)
}

/// `|a − b| ≤ tol · terms` for sums of `terms` products of numbers in [−1, 1].
fn check(what: &str, got: &[f32], want: &[f64], terms: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{} length", what);
    let tol = 4e-7 * terms as f64 + 1e-6;
    for (k, (&a, &b)) in got.iter().zip(want).enumerate() {
        prop_assert!((a as f64 - b).abs() <= tol, "{} [{}]: {} vs {} (tol {})", what, k, a, b, tol);
    }
    Ok(())
}

prop_compose! {
    fn case()(n in 1usize..4, c in 1usize..11, o in 1usize..19, kh in 1usize..6, kw in 1usize..6,
              ph in 0usize..4, pw in 0usize..4, h in 1usize..23, w in 1usize..37, seed in any::<u64>())
              -> ([usize; 4], [usize; 4], (usize, usize), u64) {
        // padded input at least as large as the kernel
        let h = h.max(kh.saturating_sub(2 * ph)).max(1);
        let w = w.max(kw.saturating_sub(2 * pw)).max(1);
        ([n, c, h, w], [o, c, kh, kw], (ph, pw), seed)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stride_one_f32_matches_naive((xs, ws, p, seed) in case(), avx2 in any::<bool>()) {
        // half the cases on the AVX2 kernels (where the CPU has AVX-512 too); other tests in this
        // binary may run meanwhile on either set, which computes the same values
        let previous = force_avx2_direct_kernels(avx2);
        let x = rnd(xs, seed);
        let w = rnd(ws, seed ^ 7);
        let spec = Conv2dSpec { stride: (1, 1), pad: p };
        let b: Vec<f32> = (0..ws[0]).map(|i| 0.25 * i as f32 - 0.5).collect();
        let y = conv2d(&x, &w, Some(&b), &spec).unwrap();
        let dy = rnd(y.shape(), seed ^ 9);
        let (want_y, want_dx, want_dw, want_db) = naive(&x, &w, &dy, p);
        let want_y: Vec<f64> = want_y.iter().enumerate().map(|(k, v)| v + b[(k / (y.h() * y.w())) % ws[0]] as f64).collect();
        let [_, c, kh, kw] = ws;
        check("y", y.as_slice(), &want_y, c * kh * kw)?;
        let dx = conv2d_backward_input(&dy, &w, (xs[2], xs[3]), &spec).unwrap();
        check("dx", dx.as_slice(), &want_dx, ws[0] * kh * kw)?;
        let (dw, db) = conv2d_backward_weight(&x, &dy, (kh, kw), &spec).unwrap();
        check("dw", dw.as_slice(), &want_dw, xs[0] * y.h() * y.w())?;
        check("db", &db, &want_db, xs[0] * y.h() * y.w())?;
        force_avx2_direct_kernels(previous);
    }

    #[test]
    fn stride_one_transposed_f32_is_the_input_gradient((xs, ws, p, seed) in case()) {
        // conv_transpose2d (stride 1) of z equals conv2d_backward_input of z.
        let spec = Conv2dSpec { stride: (1, 1), pad: p };
        let w = rnd(ws, seed ^ 3);
        let (ho, wo) = spec.output_size(xs[2], xs[3], ws[2], ws[3]).unwrap();
        let z = rnd([xs[0], ws[0], ho, wo], seed ^ 5);
        let t = conv_transpose2d(&z, &w, None, &spec, (0, 0));
        prop_assume!(t.is_ok());
        let t = t.unwrap();
        prop_assume!(t.shape() == xs);
        let dx = conv2d_backward_input(&z, &w, (xs[2], xs[3]), &spec).unwrap();
        let tol = 4e-7 * (ws[0] * ws[2] * ws[3]) as f32 + 1e-6;
        for (a, b) in t.as_slice().iter().zip(dx.as_slice()) {
            prop_assert!((a - b).abs() <= 2.0 * tol, "{} vs {}", a, b);
        }
    }
}

/// The direct kernels (AVX-512 and AVX2) and the im2col + GEMM path agree on the benchmark's shape
/// (on a CPU without AVX-512 the first two runs both take the AVX2 kernels).
#[test]
fn direct_and_gemm_paths_agree_on_the_benchmark_shape() {
    let x = rnd([6, 16, 28, 28], 1);
    let w = rnd([32, 16, 3, 3], 2);
    let g = rnd([6, 32, 28, 28], 3);
    let b: Vec<f32> = (0..32).map(|i| i as f32 * 0.01).collect();
    let spec = Conv2dSpec::new(1, 1);
    let run = || {
        let y = conv2d(&x, &w, Some(&b), &spec).unwrap();
        let dx = conv2d_backward_input(&g, &w, (28, 28), &spec).unwrap();
        let (dw, db) = conv2d_backward_weight(&x, &g, (3, 3), &spec).unwrap();
        (y, dx, dw, db)
    };
    let previous = set_direct_kernels(false);
    let slow = run();
    set_direct_kernels(true);
    let fast = run();
    let was = force_avx2_direct_kernels(true);
    let avx2 = run();
    force_avx2_direct_kernels(was);
    set_direct_kernels(previous);
    // sums of `terms` products of numbers in [−1, 1]: f32 rounding grows at most linearly in `terms`
    let close = |a: &[f32], b: &[f32], terms: usize| {
        a.iter().zip(b).all(|(p, q)| (p - q).abs() as f64 <= 4e-7 * terms as f64 + 1e-6)
    };
    assert!(close(fast.0.as_slice(), slow.0.as_slice(), 16 * 9));
    assert!(close(fast.1.as_slice(), slow.1.as_slice(), 32 * 9));
    assert!(close(fast.2.as_slice(), slow.2.as_slice(), 6 * 28 * 28));
    assert!(close(&fast.3, &slow.3, 6 * 28 * 28));
    assert!(close(avx2.0.as_slice(), slow.0.as_slice(), 16 * 9));
    assert!(close(avx2.1.as_slice(), slow.1.as_slice(), 32 * 9));
    assert!(close(avx2.2.as_slice(), slow.2.as_slice(), 6 * 28 * 28));
    // and both are far from trivially equal: the outputs are not all zero
    assert!(fast.2.as_slice().iter().any(|v| v.abs() > 1.0));
}
