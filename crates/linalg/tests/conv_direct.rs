//! `f32` stride-1 convolutions, which run on the direct AVX-512 kernels where the CPU has them
//! (and on im2col + GEMM elsewhere): forward, input gradient, weight and bias gradients against
//! naive `f64` references, for shapes that exercise partial register blocks (channel counts not
//! multiples of 8 or 4, `C·kh·kw` not a multiple of 6, rows not multiples of 16), every padding
//! from 0 to beyond the kernel (where the input gradient falls back to col2im), and transposed
//! convolutions of stride 1, which use the same kernels. Each path is forced for the call that
//! tests it through `ConvOptions` (no process-wide switch), so tests running in parallel in this
//! binary cannot change each other's path.

use latent_linalg::Tensor4;
use latent_linalg::conv::{Conv2dSpec, ConvOptions, KernelChoice};
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
    naive_strided(x, w, dy, (1, 1), p)
}

/// Naive `f64` forward, input gradient, weight and bias gradients of a convolution of stride `st`.
fn naive_strided(
    x: &Tensor4<f32>,
    w: &Tensor4<f32>,
    dy: &Tensor4<f32>,
    st: (usize, usize),
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
                                let iy = (i * st.0 + u) as isize - p.0 as isize;
                                let ix = (j * st.1 + v) as isize - p.1 as isize;
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

/// Forward with bias, input, weight and bias gradients of one convolution on `kernel` against the
/// naive `f64` sums.
fn all_passes_match_naive(
    xs: [usize; 4],
    ws: [usize; 4],
    st: (usize, usize),
    p: (usize, usize),
    seed: u64,
    kernel: KernelChoice,
) -> Result<(), TestCaseError> {
    let opts = ConvOptions::new(kernel);
    let x = rnd(xs, seed);
    let w = rnd(ws, seed ^ 7);
    let spec = Conv2dSpec { stride: st, pad: p };
    let b: Vec<f32> = (0..ws[0]).map(|i| 0.25 * i as f32 - 0.5).collect();
    let y = opts.conv2d(&x, &w, Some(&b), &spec).unwrap();
    let dy = rnd(y.shape(), seed ^ 9);
    let (want_y, want_dx, want_dw, want_db) = naive_strided(&x, &w, &dy, st, p);
    let want_y: Vec<f64> =
        want_y.iter().enumerate().map(|(k, v)| v + b[(k / (y.h() * y.w())) % ws[0]] as f64).collect();
    let [_, c, kh, kw] = ws;
    check("y", y.as_slice(), &want_y, c * kh * kw)?;
    let dx = opts.conv2d_backward_input(&dy, &w, (xs[2], xs[3]), &spec).unwrap();
    check("dx", dx.as_slice(), &want_dx, ws[0] * kh * kw)?;
    let (dw, db) = opts.conv2d_backward_weight(&x, &dy, (kh, kw), &spec).unwrap();
    check("dw", dw.as_slice(), &want_dw, xs[0] * y.h() * y.w())?;
    check("db", &db, &want_db, xs[0] * y.h() * y.w())
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

/// Every kernel choice this CPU can run for `f32` (the direct AVX-512 and AVX2 kernels both run on
/// an AVX-512 machine).
fn kernels() -> impl Strategy<Value = KernelChoice> {
    let all = [KernelChoice::Auto, KernelChoice::Gemm, KernelChoice::DirectAvx512, KernelChoice::DirectAvx2];
    proptest::sample::select(all.into_iter().filter(|k| k.available::<f32>()).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stride_one_f32_matches_naive((xs, ws, p, seed) in case(), kernel in kernels()) {
        all_passes_match_naive(xs, ws, (1, 1), p, seed, kernel)?;
    }

    #[test]
    fn stride_one_transposed_f32_is_the_input_gradient((xs, ws, p, seed) in case(), kernel in kernels()) {
        // conv_transpose2d (stride 1) of z equals conv2d_backward_input of z.
        let opts = ConvOptions::new(kernel);
        let spec = Conv2dSpec { stride: (1, 1), pad: p };
        let w = rnd(ws, seed ^ 3);
        let (ho, wo) = spec.output_size(xs[2], xs[3], ws[2], ws[3]).unwrap();
        let z = rnd([xs[0], ws[0], ho, wo], seed ^ 5);
        let t = opts.conv_transpose2d(&z, &w, None, &spec, (0, 0));
        prop_assume!(t.is_ok());
        let t = t.unwrap();
        prop_assume!(t.shape() == xs);
        let dx = opts.conv2d_backward_input(&z, &w, (xs[2], xs[3]), &spec).unwrap();
        let tol = 4e-7 * (ws[0] * ws[2] * ws[3]) as f32 + 1e-6;
        for (a, b) in t.as_slice().iter().zip(dx.as_slice()) {
            prop_assert!((a - b).abs() <= 2.0 * tol, "{} vs {}", a, b);
        }
    }
}

prop_compose! {
    fn strided_case()(n in 1usize..4, c in 1usize..11, o in 1usize..19, kh in 1usize..6, kw in 1usize..6,
                      sh in 1usize..4, sw in 1usize..4, ph in 0usize..3, pw in 0usize..3,
                      h in 1usize..30, w in 1usize..40, seed in any::<u64>())
                      -> ([usize; 4], [usize; 4], (usize, usize), (usize, usize), u64) {
        let h = h.max(kh.saturating_sub(2 * ph)).max(1);
        let w = w.max(kw.saturating_sub(2 * pw)).max(1);
        // at least one direction strided (stride 1 × 1 is the case above)
        let (sh, sw) = if sh == 1 && sw == 1 { (2, 2) } else { (sh, sw) };
        ([n, c, h, w], [o, c, kh, kw], (sh, sw), (ph, pw), seed)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Strided convolutions (polyphase direct kernels where the CPU has them): forward, input,
    /// weight and bias gradients against the naive sums, on every kernel choice.
    #[test]
    fn strided_f32_matches_naive((xs, ws, st, p, seed) in strided_case(), kernel in kernels()) {
        all_passes_match_naive(xs, ws, st, p, seed, kernel)?;
    }

    /// Strided transposed convolutions: the forward is the conv view's input gradient, and the
    /// fused backward gives the conv view's forward (dx) and weight gradient (dw).
    #[test]
    fn strided_transposed_f32_agrees_with_the_conv_view((xs, ws, st, p, seed) in strided_case(), kernel in kernels()) {
        let opts = ConvOptions::new(kernel);
        let spec = Conv2dSpec { stride: st, pad: p };
        // conv view: image xs (the transposed output), kernel ws; transposed weight (o, c, kh, kw)
        let w = rnd(ws, seed ^ 3);
        let (ho, wo) = spec.output_size(xs[2], xs[3], ws[2], ws[3]).unwrap();
        let z = rnd([xs[0], ws[0], ho, wo], seed ^ 5);
        let op = ((xs[2] + 2 * p.0 - ws[2]) % st.0, (xs[3] + 2 * p.1 - ws[3]) % st.1);
        let t = opts.conv_transpose2d(&z, &w, None, &spec, op).unwrap();
        prop_assert_eq!(t.shape(), xs);
        let dx = rnd(xs, seed ^ 11);
        let (_, want_t, _, _) = naive_strided(&dx, &w, &z, st, p);
        check("convT", t.as_slice(), &want_t, ws[0] * ws[2] * ws[3])?;
        let (gz, gw) = opts.conv_transpose2d_backward(&z, &w, &dx, &spec, op, true).unwrap();
        let (want_gz, _, want_gw, _) = naive_strided(&dx, &w, &z, st, p);
        check("convT dz", gz.unwrap().as_slice(), &want_gz, ws[1] * ws[2] * ws[3])?;
        check("convT dw", gw.as_slice(), &want_gw, xs[0] * ho * wo)?;
    }
}

/// The direct kernels (AVX-512 and AVX2) and the im2col + GEMM path agree on the benchmark's shape
/// (each direct kernel where this CPU has it), and the default entry points run the best one.
#[test]
fn direct_and_gemm_paths_agree_on_the_benchmark_shape() {
    let x = rnd([6, 16, 28, 28], 1);
    let w = rnd([32, 16, 3, 3], 2);
    let g = rnd([6, 32, 28, 28], 3);
    let b: Vec<f32> = (0..32).map(|i| i as f32 * 0.01).collect();
    let spec = Conv2dSpec::new(1, 1);
    let run = |kernel: KernelChoice| {
        let o = ConvOptions::new(kernel);
        let y = o.conv2d(&x, &w, Some(&b), &spec).unwrap();
        let dx = o.conv2d_backward_input(&g, &w, (28, 28), &spec).unwrap();
        let (dw, db) = o.conv2d_backward_weight(&x, &g, (3, 3), &spec).unwrap();
        (y, dx, dw, db)
    };
    let slow = run(KernelChoice::Gemm);
    // sums of `terms` products of numbers in [−1, 1]: f32 rounding grows at most linearly in `terms`
    let close = |a: &[f32], b: &[f32], terms: usize| {
        a.iter().zip(b).all(|(p, q)| (p - q).abs() as f64 <= 4e-7 * terms as f64 + 1e-6)
    };
    let mut ran = 0;
    for kernel in [KernelChoice::DirectAvx512, KernelChoice::DirectAvx2] {
        if !kernel.available::<f32>() {
            continue;
        }
        ran += 1;
        let fast = run(kernel);
        assert!(close(fast.0.as_slice(), slow.0.as_slice(), 16 * 9), "{kernel:?} y");
        assert!(close(fast.1.as_slice(), slow.1.as_slice(), 32 * 9), "{kernel:?} dx");
        assert!(close(fast.2.as_slice(), slow.2.as_slice(), 6 * 28 * 28), "{kernel:?} dw");
        assert!(close(&fast.3, &slow.3, 6 * 28 * 28), "{kernel:?} db");
        // and the two paths really differ in rounding, so the comparison is not of one path with itself
        assert_ne!(fast.2.as_slice(), slow.2.as_slice(), "{kernel:?}");
    }
    // the default runs the best direct kernel where one exists, bit-identically
    let auto = run(KernelChoice::Auto);
    let best = [KernelChoice::DirectAvx512, KernelChoice::DirectAvx2, KernelChoice::Gemm]
        .into_iter()
        .find(|k| k.available::<f32>())
        .unwrap();
    assert_eq!(auto, run(best));
    // both are far from trivially equal: the outputs are not all zero
    assert!(slow.2.as_slice().iter().any(|v| v.abs() > 1.0));
    #[cfg(target_arch = "x86_64")]
    if latent_linalg::simd::max_isa() == latent_linalg::simd::Isa::Avx512 {
        assert_eq!(ran, 2, "an AVX-512 CPU runs both direct instruction sets");
    }
}

/// A forced direct kernel is an error for `f64` (and on a CPU without its instruction set), not a
/// silent fallback; a forced direct kernel on a shape it does not cover (stride 2) takes GEMM.
#[test]
fn forced_kernels_that_cannot_run_are_errors() {
    let x = Tensor4::<f64>::full([1, 2, 5, 5], 0.5).unwrap();
    let w = Tensor4::<f64>::full([3, 2, 3, 3], 0.25).unwrap();
    let spec = Conv2dSpec::new(1, 1);
    for kernel in [KernelChoice::DirectAvx512, KernelChoice::DirectAvx2] {
        assert!(!kernel.available::<f64>());
        assert!(ConvOptions::new(kernel).conv2d(&x, &w, None, &spec).is_err());
        let xf = rnd([2, 2, 9, 9], 4);
        let wf = rnd([3, 2, 3, 3], 5);
        let s2 = Conv2dSpec::new(2, 1);
        let got = ConvOptions::new(kernel).conv2d(&xf, &wf, None, &s2);
        if kernel.available::<f32>() {
            assert_eq!(got.unwrap(), ConvOptions::new(KernelChoice::Gemm).conv2d(&xf, &wf, None, &s2).unwrap());
        } else {
            assert!(got.is_err());
        }
    }
    assert!(ConvOptions::new(KernelChoice::Gemm).conv2d(&x, &w, None, &spec).is_ok());
}

fn rnd64(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    Tensor4::from_vec(shape, rnd(shape, seed).as_slice().iter().map(|&v| v as f64).collect()).unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The FFT path (`f64`) computes what im2col + GEMM computes, for every pass of `conv2d` and
    /// `conv_transpose2d` (stride 1), any padding including beyond the kernel.
    #[test]
    fn fft_path_matches_gemm((xs, ws, p, seed) in case()) {
        let (fft, gemm) = (ConvOptions::new(KernelChoice::Fft), ConvOptions::new(KernelChoice::Gemm));
        let x = rnd64(xs, seed);
        let w = rnd64(ws, seed ^ 7);
        let spec = Conv2dSpec { stride: (1, 1), pad: p };
        let b: Vec<f64> = (0..ws[0]).map(|i| 0.25 * i as f64 - 0.5).collect();
        let y = fft.conv2d(&x, &w, Some(&b), &spec).unwrap();
        let y_ref = gemm.conv2d(&x, &w, Some(&b), &spec).unwrap();
        prop_assert!(max_diff(y.as_slice(), y_ref.as_slice()) < 1e-10);
        let dy = rnd64(y.shape(), seed ^ 9);
        let dx = fft.conv2d_backward_input(&dy, &w, (xs[2], xs[3]), &spec).unwrap();
        let dx_ref = gemm.conv2d_backward_input(&dy, &w, (xs[2], xs[3]), &spec).unwrap();
        prop_assert!(max_diff(dx.as_slice(), dx_ref.as_slice()) < 1e-10);
        let (dw, db) = fft.conv2d_backward_weight(&x, &dy, (ws[2], ws[3]), &spec).unwrap();
        let (dw_ref, db_ref) = gemm.conv2d_backward_weight(&x, &dy, (ws[2], ws[3]), &spec).unwrap();
        prop_assert!(max_diff(dw.as_slice(), dw_ref.as_slice()) < 1e-10);
        prop_assert_eq!(db, db_ref);
        // transposed convolution: dy plays the input, x the output-side gradient
        let wt = rnd64([ws[0], ws[1], ws[2], ws[3]], seed ^ 11);
        let t = fft.conv_transpose2d(&dy, &wt, None, &spec, (0, 0));
        prop_assume!(t.is_ok());
        let t = t.unwrap();
        let t_ref = gemm.conv_transpose2d(&dy, &wt, None, &spec, (0, 0)).unwrap();
        prop_assert!(max_diff(t.as_slice(), t_ref.as_slice()) < 1e-10);
        let g = rnd64(t.shape(), seed ^ 13);
        let (gx, gw) = fft.conv_transpose2d_backward(&dy, &wt, &g, &spec, (0, 0), true).unwrap();
        let (gx_ref, gw_ref) = gemm.conv_transpose2d_backward(&dy, &wt, &g, &spec, (0, 0), true).unwrap();
        prop_assert!(max_diff(gx.unwrap().as_slice(), gx_ref.unwrap().as_slice()) < 1e-10);
        prop_assert!(max_diff(gw.as_slice(), gw_ref.as_slice()) < 1e-10);
    }
}

/// The FFT path in `f32` agrees with the naive `f64` sums within `f32` rounding, and strided
/// convolutions asked to run on it take im2col + GEMM (bit-identically).
#[test]
fn fft_path_in_f32_and_strided_fallback() {
    let x = rnd([3, 4, 30, 26], 21);
    let w = rnd([5, 4, 11, 11], 22);
    let spec = Conv2dSpec::new(1, 5);
    let fft = ConvOptions::new(KernelChoice::Fft);
    let y = fft.conv2d(&x, &w, None, &spec).unwrap();
    let dy = rnd(y.shape(), 23);
    let (want_y, want_dx, want_dw, _) = naive(&x, &w, &dy, (5, 5));
    let tol = |terms: usize| 4e-7 * terms as f64 + 1e-5;
    assert!(y.as_slice().iter().zip(&want_y).all(|(&a, &b)| (a as f64 - b).abs() <= tol(4 * 121)));
    let dx = fft.conv2d_backward_input(&dy, &w, (30, 26), &spec).unwrap();
    assert!(dx.as_slice().iter().zip(&want_dx).all(|(&a, &b)| (a as f64 - b).abs() <= tol(5 * 121)));
    let (dw, _) = fft.conv2d_backward_weight(&x, &dy, (11, 11), &spec).unwrap();
    assert!(dw.as_slice().iter().zip(&want_dw).all(|(&a, &b)| (a as f64 - b).abs() <= tol(3 * 30 * 26)));
    let s2 = Conv2dSpec::new(2, 1);
    assert_eq!(
        fft.conv2d(&x, &w, None, &s2).unwrap(),
        ConvOptions::new(KernelChoice::Gemm).conv2d(&x, &w, None, &s2).unwrap()
    );
}
