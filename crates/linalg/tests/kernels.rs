//! Conv/pool/upsample/crop kernels: naive references and exact adjoints (<y, Kx> = <Kᵀy, x>).

use latent_linalg::conv::{
    Conv2dSpec, conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight, conv2d, conv2d_backward_input, conv2d_backward_weight,
};
use latent_linalg::fft::{ConvMode, Fft2, Plane, convolve2d_direct, convolve2d_fft, correlate2d};
use latent_linalg::pool::*;
use latent_linalg::{LinalgError, Tensor4};
use proptest::prelude::*;

fn rnd(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    let mut s = seed.wrapping_add(0x9E3779B97F4A7C15);
    Tensor4::from_fn(shape, |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
    .unwrap()
}

fn dot(a: &Tensor4<f64>, b: &Tensor4<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| x * y).sum()
}

fn naive_conv(x: &Tensor4<f64>, w: &Tensor4<f64>, b: &[f64], s: &Conv2dSpec) -> Tensor4<f64> {
    let [n, c, h, wd] = x.shape();
    let [o, _, kh, kw] = w.shape();
    let (ho, wo) = s.output_size(h, wd, kh, kw).unwrap();
    Tensor4::from_fn([n, o, ho, wo], |[ni, oi, i, j]| {
        let mut acc = b[oi];
        for ci in 0..c {
            for u in 0..kh {
                for v in 0..kw {
                    let iy = (i * s.stride.0 + u) as isize - s.pad.0 as isize;
                    let ix = (j * s.stride.1 + v) as isize - s.pad.1 as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                        acc += w.get([oi, ci, u, v]).unwrap() * x.get([ni, ci, iy as usize, ix as usize]).unwrap();
                    }
                }
            }
        }
        acc
    })
    .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

prop_compose! {
    fn conv_case()(n in 1usize..4, c in 1usize..4, o in 1usize..4, kh in 1usize..5, kw in 1usize..5,
                   s in 1usize..4, p in 0usize..3, extra_h in 0usize..6, extra_w in 0usize..6, seed in any::<u64>())
                   -> ([usize; 4], [usize; 4], Conv2dSpec, u64) {
        let h = (kh + extra_h).saturating_sub(2 * p).max(1);
        let w = (kw + extra_w).saturating_sub(2 * p).max(1);
        ([n, c, h.max(kh.saturating_sub(2 * p)).max(1), w.max(kw.saturating_sub(2 * p)).max(1)], [o, c, kh, kw], Conv2dSpec::new(s, p), seed)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn conv_forward_matches_naive((xs, ws, spec, seed) in conv_case()) {
        let x = rnd(xs, seed);
        let w = rnd(ws, seed ^ 1);
        let b: Vec<f64> = (0..ws[0]).map(|i| i as f64 * 0.1 - 0.2).collect();
        let y = conv2d(&x, &w, Some(&b), &spec).unwrap();
        let want = naive_conv(&x, &w, &b, &spec);
        prop_assert_eq!(y.shape(), want.shape());
        for (a, b) in y.as_slice().iter().zip(want.as_slice()) {
            prop_assert!(close(*a, *b), "{} vs {}", a, b);
        }
    }

    #[test]
    fn conv_backward_is_exact_adjoint((xs, ws, spec, seed) in conv_case()) {
        let x = rnd(xs, seed);
        let w = rnd(ws, seed ^ 1);
        let y = conv2d(&x, &w, None, &spec).unwrap();
        let dy = rnd(y.shape(), seed ^ 2);
        // input adjoint: <dy, K_w x> = <K_wᵀ dy, x>
        let dx = conv2d_backward_input(&dy, &w, (xs[2], xs[3]), &spec).unwrap();
        prop_assert!(close(dot(&dy, &y), dot(&dx, &x)));
        // weight adjoint: <dy, K_x w> = <dW, w>
        let (dw, db) = conv2d_backward_weight(&x, &dy, (ws[2], ws[3]), &spec).unwrap();
        prop_assert!(close(dot(&dy, &y), dot(&dw, &w)));
        // bias gradient is the per-channel sum of dy
        for (o, g) in db.iter().enumerate() {
            let s: f64 = (0..xs[0]).flat_map(|n| dy.sample(n).unwrap()[o * y.h() * y.w()..(o + 1) * y.h() * y.w()].to_vec()).sum();
            prop_assert!(close(*g, s));
        }
    }

    #[test]
    fn conv_transpose_is_adjoint_of_conv((xs, ws, spec, seed) in conv_case(), opad in 0usize..3) {
        // conv_transpose2d with weight (C_in_t = O, C_out_t = C) is the adjoint of conv2d with weight (O, C).
        let x = rnd(xs, seed);
        let w = rnd(ws, seed ^ 1);
        let y = conv2d(&x, &w, None, &spec).unwrap();
        let op = (opad.min(spec.stride.0 - 1), opad.min(spec.stride.1 - 1));
        let size = latent_linalg::conv::conv_transpose2d_output_size(y.h(), y.w(), ws[2], ws[3], &spec, op);
        prop_assume!(size.is_ok());
        let (th, tw) = size.unwrap();
        let z = rnd([xs[0], ws[0], y.h(), y.w()], seed ^ 3);
        let t = conv_transpose2d(&z, &w, None, &spec, op).unwrap();
        prop_assert_eq!(t.shape(), [xs[0], ws[1], th, tw]);
        if (th, tw) == (xs[2], xs[3]) {
            prop_assert!(close(dot(&z, &y), dot(&t, &x)));
        }
        // its own backward passes are exact adjoints too
        let g = rnd(t.shape(), seed ^ 4);
        let dz = conv_transpose2d_backward_input(&g, &w, (y.h(), y.w()), &spec, op).unwrap();
        prop_assert!(close(dot(&g, &t), dot(&dz, &z)));
        let (dw, db) = conv_transpose2d_backward_weight(&z, &g, (ws[2], ws[3]), &spec, op).unwrap();
        prop_assert!(close(dot(&g, &t), dot(&dw, &w)));
        // the fused backward gives the same bits
        let (fdx, fdw) = conv_transpose2d_backward(&z, &w, &g, &spec, op, true).unwrap();
        prop_assert_eq!(fdx.as_ref(), Some(&dz));
        prop_assert_eq!(&fdw, &dw);
        let (none, fdw2) = conv_transpose2d_backward(&z, &w, &g, &spec, op, false).unwrap();
        prop_assert!(none.is_none());
        prop_assert_eq!(&fdw2, &dw);
        let bias: Vec<f64> = (0..ws[1]).map(|i| 0.3 * i as f64 + 0.1).collect();
        let tb = conv_transpose2d(&z, &w, Some(&bias), &spec, op).unwrap();
        let diff: f64 = tb.as_slice().iter().zip(t.as_slice()).zip(g.as_slice()).map(|((a, b), gg)| (a - b) * gg).sum();
        let via_db: f64 = db.iter().zip(&bias).map(|(a, b)| a * b).sum();
        prop_assert!(close(diff, via_db));
    }

    #[test]
    fn pooling_and_upsampling_adjoints(n in 1usize..3, c in 1usize..3, h in 2usize..12, w in 2usize..12, k in 1usize..4, s in 1usize..4, f in 1usize..4, seed in any::<u64>()) {
        let k = k.min(h).min(w);
        let x = rnd([n, c, h, w], seed);
        let y = avg_pool2d(&x, (k, k), (s, s)).unwrap();
        let dy = rnd(y.shape(), seed ^ 1);
        let dx = avg_pool2d_backward(&dy, x.shape(), (k, k), (s, s)).unwrap();
        prop_assert!(close(dot(&dy, &y), dot(&dx, &x)));

        // max pool: backward is the adjoint of the linear map "pick the argmax" at fixed argmax
        let (ym, arg) = max_pool2d(&x, (k, k), (s, s)).unwrap();
        let dym = rnd(ym.shape(), seed ^ 2);
        let dxm = max_pool2d_backward(&dym, &arg, x.shape()).unwrap();
        prop_assert!(close(dot(&dym, &ym), dot(&dxm, &x)));
        for (i, v) in ym.as_slice().iter().enumerate() {
            let plane = i / (ym.h() * ym.w());
            prop_assert_eq!(*v, x.as_slice()[plane * h * w + arg[i] as usize]);
        }

        let u = upsample_nearest(&x, (f, f + 1)).unwrap();
        let du = rnd(u.shape(), seed ^ 3);
        let back = upsample_nearest_backward(&du, (f, f + 1)).unwrap();
        prop_assert!(close(dot(&du, &u), dot(&back, &x)));

        let (bh, bw) = (h * f + 1, w * 2);
        let ub = upsample_bilinear(&x, (bh, bw)).unwrap();
        let dub = rnd(ub.shape(), seed ^ 4);
        let backb = upsample_bilinear_backward(&dub, (h, w)).unwrap();
        prop_assert!(close(dot(&dub, &ub), dot(&backb, &x)));

        let (ch, cw) = (h - h / 3, w - w / 2);
        let cr = center_crop(&x, (ch, cw)).unwrap();
        let dcr = rnd(cr.shape(), seed ^ 5);
        let backc = center_crop_backward(&dcr, (h, w)).unwrap();
        prop_assert!(close(dot(&dcr, &cr), dot(&backc, &x)));

        let x2 = rnd([n, c + 1, h, w], seed ^ 6);
        let cat = concat_channels(&x, &x2).unwrap();
        let (a, b) = split_channels(&cat, c).unwrap();
        prop_assert_eq!(a, x.clone());
        prop_assert_eq!(b, x2);
    }

    #[test]
    fn fft_convolution_equals_direct(h in 1usize..20, w in 1usize..20, kh in 1usize..8, kw in 1usize..8, seed in any::<u64>()) {
        let x = Plane::new(h, w, rnd([1, 1, h, w], seed).into_vec()).unwrap();
        let k = Plane::new(kh, kw, rnd([1, 1, kh, kw], seed ^ 9).into_vec()).unwrap();
        for mode in [ConvMode::Full, ConvMode::Same, ConvMode::Valid] {
            let d = convolve2d_direct(&x, &k, mode);
            let f = convolve2d_fft(&x, &k, mode);
            match (d, f) {
                (Ok(d), Ok(f)) => {
                    prop_assert_eq!((d.h, d.w), (f.h, f.w));
                    for (a, b) in d.data.iter().zip(&f.data) {
                        prop_assert!((a - b).abs() < 1e-9, "{} vs {}", a, b);
                    }
                }
                (Err(_), Err(_)) => prop_assert!(mode == ConvMode::Valid && (kh > h || kw > w)),
                _ => prop_assert!(false, "direct and FFT disagree on validity"),
            }
        }
    }
}

#[test]
fn correlation_matches_conv2d() {
    let x = rnd([1, 1, 70, 80], 3);
    let w = rnd([1, 1, 9, 11], 4);
    let y = conv2d(&x, &w, None, &Conv2dSpec::default()).unwrap();
    let c = correlate2d(
        &Plane::new(70, 80, x.as_slice().to_vec()).unwrap(),
        &Plane::new(9, 11, w.as_slice().to_vec()).unwrap(),
        ConvMode::Valid,
    )
    .unwrap();
    assert_eq!((c.h, c.w), (y.h(), y.w()));
    for (a, b) in c.data.iter().zip(y.as_slice()) {
        assert!((a - b).abs() < 1e-9);
    }
}

#[test]
fn fft_round_trip() {
    for (h, w) in [(1, 1), (5, 8), (16, 9), (33, 17)] {
        let x = rnd([1, 1, h, w], 11).into_vec();
        let p = Fft2::<f64>::new(h, w).unwrap();
        let back = p.inverse(&p.forward(&x).unwrap()).unwrap();
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}

#[test]
fn bad_shapes_are_typed_errors() {
    let x = rnd([2, 3, 5, 5], 1);
    let w_wrong_c = rnd([4, 2, 3, 3], 2);
    assert!(matches!(conv2d(&x, &w_wrong_c, None, &Conv2dSpec::default()), Err(LinalgError::ShapeMismatch { .. })));
    let w_big = rnd([4, 3, 7, 7], 2);
    assert!(matches!(conv2d(&x, &w_big, None, &Conv2dSpec::default()), Err(LinalgError::ShapeMismatch { .. })));
    let w = rnd([4, 3, 3, 3], 2);
    assert!(matches!(
        conv2d(&x, &w, None, &Conv2dSpec { stride: (0, 1), pad: (0, 0) }),
        Err(LinalgError::InvalidParameter { .. })
    ));
    assert!(matches!(conv2d(&x, &w, Some(&[1.0; 3]), &Conv2dSpec::default()), Err(LinalgError::ShapeMismatch { .. })));
    let dy_wrong = rnd([2, 4, 2, 2], 3);
    assert!(conv2d_backward_input(&dy_wrong, &w, (5, 5), &Conv2dSpec::default()).is_err());
    assert!(conv2d_backward_weight(&x, &dy_wrong, (3, 3), &Conv2dSpec::default()).is_err());
    assert!(max_pool2d(&x, (6, 6), (1, 1)).is_err());
    assert!(avg_pool2d(&x, (0, 2), (1, 1)).is_err());
    assert!(center_crop(&x, (6, 5)).is_err());
    assert!(concat_channels(&x, &rnd([2, 3, 4, 5], 1)).is_err());
    assert!(Tensor4::from_vec([2, 2, 2, 2], vec![0.0f64; 15]).is_err());
    assert!(Tensor4::<f64>::zeros([usize::MAX, 2, 1, 1]).is_err());
    assert!(Plane::<f64>::new(0, 3, vec![]).is_err());
}

#[test]
fn conv_is_bit_identical_on_one_and_two_threads() {
    let x = rnd([9, 5, 13, 11], 21).as_slice().iter().map(|&v| v as f32).collect::<Vec<_>>();
    let x = Tensor4::from_vec([9, 5, 13, 11], x).unwrap();
    let w =
        Tensor4::from_vec([6, 5, 3, 3], rnd([6, 5, 3, 3], 22).as_slice().iter().map(|&v| v as f32).collect()).unwrap();
    let spec = Conv2dSpec::new(1, 1);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let y = conv2d(&x, &w, None, &spec).unwrap();
            let dx = conv2d_backward_input(&y, &w, (13, 11), &spec).unwrap();
            let (dw, db) = conv2d_backward_weight(&x, &y, (3, 3), &spec).unwrap();
            (y, dx, dw, db)
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn strided_and_transposed_convs_are_bit_identical_on_one_and_two_threads() {
    let f32s =
        |t: Tensor4<f64>| Tensor4::from_vec(t.shape(), t.as_slice().iter().map(|&v| v as f32).collect()).unwrap();
    let x = f32s(rnd([9, 5, 14, 14], 31));
    let w = f32s(rnd([6, 5, 3, 3], 32));
    let wt = f32s(rnd([6, 5, 4, 4], 33));
    let spec = Conv2dSpec::new(2, 1);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let y = conv2d(&x, &w, None, &spec).unwrap();
            let dx = conv2d_backward_input(&y, &w, (14, 14), &spec).unwrap();
            let (dw, db) = conv2d_backward_weight(&x, &y, (3, 3), &spec).unwrap();
            // transposed: (9, 6, 7, 7) → (9, 5, 14, 14)
            let t = conv_transpose2d(&y, &wt, None, &spec, (0, 0)).unwrap();
            let (tdx, tdw) = conv_transpose2d_backward(&y, &wt, &t, &spec, (0, 0), true).unwrap();
            (y, dx, dw, db, t, tdx, tdw)
        })
    };
    assert_eq!(run(1), run(2));
}

/// Naive max pooling: per window, the first maximum in row-major order, a NaN beating numbers
/// (the first NaN wins).
fn naive_max_pool(x: &Tensor4<f32>, k: usize, s: usize) -> (Vec<f32>, Vec<u32>) {
    let [n, c, h, w] = x.shape();
    let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
    let (mut y, mut a) = (Vec::new(), Vec::new());
    for p in 0..n * c {
        let xp = &x.as_slice()[p * h * w..(p + 1) * h * w];
        for i in 0..ho {
            for j in 0..wo {
                let mut cand: Vec<usize> = Vec::new();
                for u in 0..k {
                    for v in 0..k {
                        cand.push((i * s + u) * w + j * s + v);
                    }
                }
                let best = cand.iter().copied().find(|&q| xp[q].is_nan()).unwrap_or_else(|| {
                    let m = cand.iter().map(|&q| xp[q]).fold(f32::NEG_INFINITY, f32::max);
                    cand.iter().copied().find(|&q| xp[q] == m).unwrap()
                });
                y.push(xp[best]);
                a.push(best as u32);
            }
        }
    }
    (y, a)
}

proptest! {
    #[test]
    fn max_pool_matches_naive_with_ties_and_nans(n in 1usize..3, c in 1usize..4, h in 2usize..11, w in 2usize..11,
                                                  k in 1usize..4, s in 1usize..4, nans in 0usize..3, seed in any::<u64>()) {
        let k = k.min(h).min(w);
        // few distinct values, so that windows hold ties
        let mut x = Tensor4::<f32>::from_fn([n, c, h, w], |[a, b, i, j]| {
            ((a * 31 + b * 17 + i * 7 + j * 3 + seed as usize) % 4) as f32 - 1.0
        }).unwrap();
        let len = x.len();
        for t in 0..nans {
            x.as_mut_slice()[(seed as usize).wrapping_mul(2654435761).wrapping_add(t * 97) % len] = f32::NAN;
        }
        for (kk, ss) in [(k, s), (2.min(h).min(w), 2)] {
            let (y, arg) = max_pool2d(&x, (kk, kk), (ss, ss)).unwrap();
            let (wy, wa) = naive_max_pool(&x, kk, ss);
            prop_assert_eq!(&arg, &wa);
            for (g, e) in y.as_slice().iter().zip(&wy) {
                prop_assert!(g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()));
            }
        }
    }
}
