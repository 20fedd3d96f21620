//! Convolutional sparse coding: the operator, the solvers against each other and against a
//! brute-force lasso, masks, determinism and input validation.

use latent_conv_coding::{
    AdmmParams, Backend, Boundary, ConvCodingError, ConvOperator, Csc, CscParams, Filters, FistaParams, ParamGuard,
    StopReason, Tensor4,
};
use latent_linalg::DMatrix;
use latent_sparse_coding::{CoordinateDescent, Encoder};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_tensor(shape: [usize; 4], seed: u64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor4::from_fn(shape, |_| rng.random::<f64>() - 0.5).unwrap()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// ⟨A s, r⟩ = ⟨s, Aᴴ r⟩ for both backends and both boundaries, and both backends agree.
    #[test]
    fn adjoint_is_exact(
        m in 1usize..4, c in 1usize..3, kh in 1usize..5, kw in 1usize..5,
        dh in 0usize..6, dw in 0usize..6, k in 1usize..3, seed in 0u64..1000, zero_pad in any::<bool>(),
    ) {
        let (h, w) = (kh + dh, kw + dw);
        let b = if zero_pad { Boundary::ZeroPad } else { Boundary::Periodic };
        let f = Filters::<f64>::random(m, c, kh, kw, seed).unwrap();
        let fft = ConvOperator::new(&f, h, w, b, Backend::Fft).unwrap();
        let dir = ConvOperator::new(&f, h, w, b, Backend::Direct).unwrap();
        let (mh, mw) = fft.map_size();
        let s = random_tensor([k, m, mh, mw], seed + 1);
        let r = random_tensor([k, c, h, w], seed + 2);
        for op in [&fft, &dir] {
            let as_ = op.apply(&s).unwrap();
            let ar = op.adjoint(&r).unwrap();
            let (lhs, rhs) = (dot(as_.as_slice(), r.as_slice()), dot(s.as_slice(), ar.as_slice()));
            prop_assert!((lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()), "{lhs} vs {rhs}");
        }
        let (a1, a2) = (fft.apply(&s).unwrap(), dir.apply(&s).unwrap());
        for (x, y) in a1.as_slice().iter().zip(a2.as_slice()) {
            prop_assert!((x - y).abs() < 1e-10);
        }
        let (g1, g2) = (fft.adjoint(&r).unwrap(), dir.adjoint(&r).unwrap());
        for (x, y) in g1.as_slice().iter().zip(g2.as_slice()) {
            prop_assert!((x - y).abs() < 1e-10);
        }
    }
}

/// The operator matches the documented formulas on a hand-checked example.
#[test]
fn operator_matches_the_definition() {
    // one 2×2 filter, 3×4 image
    let f = Filters::from_vec(1, 1, 2, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut s = Tensor4::<f64>::zeros([1, 1, 3, 4]).unwrap();
    *s.get_mut([0, 0, 2, 3]).unwrap() = 1.0;
    let x = ConvOperator::new(&f, 3, 4, Boundary::Periodic, Backend::Fft).unwrap().apply(&s).unwrap();
    // x[i, j] = Σ d[u, v] s[(i − u) mod 3, (j − v) mod 4]: the impulse at (2, 3) spreads to (2..4, 3..5) mod
    let expect = [[4.0, 0.0, 0.0, 3.0], [0.0; 4], [2.0, 0.0, 0.0, 1.0]];
    for i in 0..3 {
        for j in 0..4 {
            assert!((x.get([0, 0, i, j]).unwrap() - expect[i][j]).abs() < 1e-12, "({i},{j})");
        }
    }
    // zero padding: maps 4×5, no wrap-around; map (0, 0) places the filter's top-left tap at (−1, −1)
    let mut s = Tensor4::<f64>::zeros([1, 1, 4, 5]).unwrap();
    *s.get_mut([0, 0, 0, 0]).unwrap() = 1.0;
    let x = ConvOperator::new(&f, 3, 4, Boundary::ZeroPad, Backend::Direct).unwrap().apply(&s).unwrap();
    assert_eq!(x.get([0, 0, 0, 0]), Some(4.0));
    assert_eq!(x.as_slice().iter().filter(|v| **v != 0.0).count(), 1);
}

fn problem(m: usize, c: usize, kh: usize, kw: usize, h: usize, w: usize, seed: u64) -> (Filters<f64>, Tensor4<f64>) {
    let f = Filters::<f64>::random(m, c, kh, kw, seed).unwrap();
    // a sparse synthetic image plus noise
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 7);
    let (mh, mw) = (h, w);
    let s = Tensor4::from_fn([1, m, mh, mw], |_| {
        if rng.random::<f64>() < 0.05 { rng.random::<f64>() * 2.0 - 1.0 } else { 0.0 }
    })
    .unwrap();
    let mut x = ConvOperator::new(&f, h, w, Boundary::Periodic, Backend::Fft).unwrap().apply(&s).unwrap();
    x.as_mut_slice().iter_mut().for_each(|v| *v += 0.05 * (rng.random::<f64>() - 0.5));
    (f, x)
}

fn admm(lambda: f64) -> CscParams<f64> {
    CscParams::new(lambda).max_iter(3000).tol(1e-7)
}

fn fista(lambda: f64, domain: Backend) -> CscParams<f64> {
    CscParams::new(lambda).max_iter(5000).tol(1e-10).fista(FistaParams::default().domain(domain))
}

/// ADMM and FISTA (frequency and spatial) reach the same objective, for every problem variant.
#[test]
fn admm_and_fista_agree() {
    let cases: Vec<(&str, CscParams<f64>, usize)> = vec![
        ("periodic", admm(0.1), 1),
        ("zero pad", admm(0.1).boundary(Boundary::ZeroPad), 1),
        ("non-negative", admm(0.1).nonneg(true), 1),
        ("map weights", admm(0.1).map_weights(vec![0.5, 1.0, 2.0]), 1),
        ("two channels", admm(0.05), 2),
        ("two channels, zero pad", admm(0.05).boundary(Boundary::ZeroPad), 2),
    ];
    for (seed, (name, p, c)) in cases.into_iter().enumerate() {
        let (f, x) = problem(3, c, 4, 3, 12, 10, seed as u64);
        let a = Csc::from(p.clone().check().unwrap()).encode(&f, &x).unwrap();
        assert!(a.info[0].stop.converged(), "{name}: ADMM did not converge");
        for domain in [Backend::Fft, Backend::Direct] {
            let mut q = fista(p.lambda, domain).boundary(p.boundary).nonneg(p.nonneg);
            q.map_weights = p.map_weights.clone();
            let b = Csc::from(q.check().unwrap()).encode(&f, &x).unwrap();
            let (oa, ob) = (a.objective(), b.objective());
            assert!((oa - ob).abs() <= 1e-4 * ob, "{name} ({domain:?}): ADMM {oa} vs FISTA {ob}");
        }
        // the reported objective is the objective of the returned maps
        let direct = Csc::from(p.clone().check().unwrap()).objective(&f, &x, &a.maps, None).unwrap()[0];
        assert!((direct - a.objective()).abs() <= 1e-9 * direct, "{name}: reported {} vs {direct}", a.objective());
    }
}

/// The explicit circulant dictionary: column (m, p, q) is the image of a unit impulse in map m.
fn circulant(f: &Filters<f64>, h: usize, w: usize, b: Boundary) -> DMatrix<f64> {
    let op = ConvOperator::new(f, h, w, b, Backend::Direct).unwrap();
    let (mh, mw) = op.map_size();
    let m = f.count();
    let c = f.channels();
    let mut d = DMatrix::zeros(c * h * w, m * mh * mw);
    for col in 0..m * mh * mw {
        let mut s = Tensor4::zeros([1, m, mh, mw]).unwrap();
        s.as_mut_slice()[col] = 1.0;
        let x = op.apply(&s).unwrap();
        d.column_mut(col).copy_from_slice(x.as_slice());
    }
    d
}

/// On tiny problems both solvers match a brute-force lasso on the explicit circulant dictionary.
#[test]
fn solvers_match_brute_force_lasso() {
    for (seed, boundary) in [(1u64, Boundary::Periodic), (2, Boundary::ZeroPad)] {
        let (f, x) = problem(2, 1, 3, 3, 6, 5, seed);
        let lambda = 0.05;
        let d = circulant(&f, 6, 5, boundary);
        let (s_cd, info) =
            CoordinateDescent::new(lambda).tol(1e-14).max_iter(100_000).encode(&d, x.as_slice(), None).unwrap();
        let r = &d * DMatrix::from_column_slice(s_cd.len(), 1, &s_cd)
            - DMatrix::from_column_slice(x.len(), 1, x.as_slice());
        let obj_cd = 0.5 * r.norm_squared() + lambda * s_cd.iter().map(|v| v.abs()).sum::<f64>();
        assert!((obj_cd - info.objective).abs() < 1e-10);
        let a = Csc::from(admm(lambda).tol(1e-9).max_iter(20000).boundary(boundary).check().unwrap())
            .encode(&f, &x)
            .unwrap();
        let b = Csc::from(fista(lambda, Backend::Fft).boundary(boundary).check().unwrap()).encode(&f, &x).unwrap();
        for (name, o, maps) in [("ADMM", a.objective(), &a.maps), ("FISTA", b.objective(), &b.maps)] {
            assert!((o - obj_cd).abs() <= 1e-6 * obj_cd, "{boundary:?} {name}: {o} vs lasso {obj_cd}");
            let err = maps.as_slice().iter().zip(&s_cd).map(|(u, v)| (u - v).abs()).fold(0.0, f64::max);
            assert!(err < 2e-3, "{boundary:?} {name}: maps differ from the lasso solution by {err}");
        }
    }
}

/// Masked-out pixels do not influence the solution, and the mask weights the data term.
#[test]
fn mask_excludes_its_pixels() {
    let (f, x) = problem(3, 1, 3, 3, 10, 10, 5);
    let mask = Tensor4::from_fn(
        [1, 1, 10, 10],
        |[_, _, i, j]| if (i * 10 + j) % 3 == 0 || (3..6).contains(&i) { 0.0 } else { 1.0 },
    )
    .unwrap();
    let mut x2 = x.clone();
    for (v, mv) in x2.as_mut_slice().iter_mut().zip(mask.as_slice()) {
        if *mv == 0.0 {
            *v = 1e3;
        }
    }
    for p in
        [admm(0.1).max_iter(300), fista(0.1, Backend::Fft).max_iter(300), fista(0.1, Backend::Direct).max_iter(300)]
    {
        let coder = Csc::from(p.tol(0.0).check().unwrap());
        let a = coder.encode_with(&f, &x, Some(&mask), None).unwrap();
        let b = coder.encode_with(&f, &x2, Some(&mask), None).unwrap();
        let diff = a.maps.as_slice().iter().zip(b.maps.as_slice()).map(|(u, v)| (u - v).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-9, "masked pixels changed the maps by {diff}");
        assert!((a.objective() - b.objective()).abs() < 1e-9 * a.objective());
        // and without the mask the corrupted pixels do matter
        let c = coder.encode(&f, &x2).unwrap();
        assert!(c.objective() > 10.0 * a.objective());
    }
}

/// Bit-identical results on 1 and 2 rayon threads.
#[test]
fn deterministic_across_thread_counts() {
    let f = Filters::<f32>::random(6, 2, 5, 4, 3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = Tensor4::from_fn([3, 2, 40, 36], |_| rng.random::<f32>() - 0.5).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut out = Vec::new();
            for p in [
                CscParams::new(0.05f32).max_iter(40).history(true),
                CscParams::new(0.05f32).max_iter(40).boundary(Boundary::ZeroPad),
                CscParams::new(0.05f32).max_iter(40).fista(FistaParams::default()),
                CscParams::new(0.05f32).max_iter(20).fista(FistaParams::default().domain(Backend::Direct)),
            ] {
                let c = Csc::from(p.check().unwrap()).encode(&f, &x).unwrap();
                out.push((c.maps.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), c.objective().to_bits()));
            }
            out
        })
    };
    assert_eq!(run(1), run(2));
}

/// Bad input is a typed error, never a panic.
#[test]
fn bad_input_is_a_typed_error() {
    let f = Filters::<f64>::random(2, 1, 5, 5, 0).unwrap();
    let x = random_tensor([1, 1, 8, 8], 1);
    let small = random_tensor([1, 1, 4, 8], 1);
    let coder = Csc::from(CscParams::new(0.1).check().unwrap());
    assert!(matches!(coder.encode(&f, &small), Err(ConvCodingError::Shape { .. })));
    let mut nan = x.clone();
    nan.as_mut_slice()[5] = f64::NAN;
    assert!(matches!(coder.encode(&f, &nan), Err(ConvCodingError::NonFinite { what: "images", index: 5 })));
    let e = CscParams::new(-0.1).check().unwrap_err();
    assert!(matches!(e, ConvCodingError::InvalidParameter { name: "lambda", .. }), "{e}");
    assert!(e.to_string().contains("-0.1"));
    assert!(matches!(CscParams::new(f64::NAN).check(), Err(ConvCodingError::InvalidParameter { name: "lambda", .. })));
    assert!(matches!(
        CscParams::new(0.1).max_iter(0).check(),
        Err(ConvCodingError::InvalidParameter { name: "max_iter", .. })
    ));
    assert!(matches!(
        CscParams::new(0.1).admm(AdmmParams::default().relax(2.5)).check(),
        Err(ConvCodingError::InvalidParameter { name: "relax", .. })
    ));
    assert!(matches!(
        Csc::from(CscParams::new(0.1).map_weights(vec![1.0]).check().unwrap()).encode(&f, &x),
        Err(ConvCodingError::InvalidParameter { name: "map_weights", .. })
    ));
    let three = random_tensor([1, 3, 8, 8], 2);
    assert!(matches!(coder.encode(&f, &three), Err(ConvCodingError::Shape { .. })));
    let neg_mask = Tensor4::full([1, 1, 8, 8], -1.0).unwrap();
    assert!(matches!(coder.encode_with(&f, &x, Some(&neg_mask), None), Err(ConvCodingError::InvalidParameter { .. })));
    let wrong_warm = random_tensor([1, 2, 9, 9], 3);
    assert!(matches!(coder.encode_with(&f, &x, None, Some(&wrong_warm)), Err(ConvCodingError::Shape { .. })));
    assert!(matches!(
        Filters::<f64>::from_vec(1, 1, 2, 2, vec![0.0, f64::INFINITY, 0.0, 0.0]),
        Err(ConvCodingError::NonFinite { .. })
    ));
    assert!(matches!(ConvOperator::new(&f, 3, 9, Boundary::ZeroPad, Backend::Fft), Err(ConvCodingError::Shape { .. })));
}

/// The FISTA gradient `Aᴴ(A s − x)` is the gradient of `½‖A s − x‖²` (checked with the shared
/// finite-difference checker), with both backends.
#[test]
fn data_term_gradient_passes_gradcheck() {
    let (f, x) = problem(2, 2, 3, 2, 6, 5, 11);
    for b in [Boundary::Periodic, Boundary::ZeroPad] {
        for backend in [Backend::Fft, Backend::Direct] {
            let op = ConvOperator::new(&f, 6, 5, b, backend).unwrap();
            let (mh, mw) = op.map_size();
            let s = random_tensor([1, 2, mh, mw], 3);
            let value = |v: &[f64]| {
                let t = Tensor4::from_vec([1, 2, mh, mw], v.to_vec()).unwrap();
                let r = op.apply(&t).unwrap();
                0.5 * r.as_slice().iter().zip(x.as_slice()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
            };
            let mut res = op.apply(&s).unwrap();
            res.as_mut_slice().iter_mut().zip(x.as_slice()).for_each(|(a, b)| *a -= b);
            let grad = op.adjoint(&res).unwrap();
            let rep =
                latent_optim::check_gradient(value, s.as_slice(), grad.as_slice(), &latent_optim::GradCheck::new())
                    .unwrap();
            assert!(rep.passes(1e-6), "{b:?} {backend:?}: {rep:?}");
        }
    }
}

/// SPORCO's filter layout round-trips and the diagnostics are filled in.
#[test]
fn layouts_and_diagnostics() {
    let hwm: Vec<f64> = (0..3 * 2 * 4).map(f64::from).collect();
    let f = Filters::from_hwm(3, 2, 4, &hwm).unwrap();
    assert_eq!(f.filter(1).unwrap()[..2], [1.0, 5.0]);
    assert_eq!(f.to_hwm(), hwm);
    let (f, x) = problem(3, 1, 3, 3, 12, 12, 2);
    let c = Csc::from(CscParams::new(0.1).history(true).max_iter(50).tol(0.0).check().unwrap()).encode(&f, &x).unwrap();
    let i = &c.info[0];
    assert_eq!((i.iterations, i.history.len(), i.stop), (50, 50, StopReason::MaxIterations));
    assert!(i.primal_residual < 0.1 && i.dual_residual < 0.1 && i.rho > 0.0);
    assert!(i.history.last().unwrap().objective < i.history[0].objective);
    assert!((i.objective - i.data_fidelity - i.regularizer).abs() < 1e-12);
    let rec = c.reconstruct(&f).unwrap();
    assert_eq!(rec.shape(), x.shape());
}
