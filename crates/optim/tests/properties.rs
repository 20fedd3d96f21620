//! Property tests: Moreau identities, prox optimality, lasso closed forms for ISTA/FISTA,
//! descent of SGD/Adam/AdamW on strongly convex quadratics, the gradient checker, schedules and
//! optimizer-state serialisation. Fixed seed and 64 cases per property.

use latent_linalg::{DMatrix, DVector};
use latent_optim::gradcheck::{GradCheck, check_gradient, check_objective, check_vjp};
use latent_optim::objective::{LeastSquares, Objective, Quadratic, SeparableQuadratic};
use latent_optim::optimizer::{Adam, AdamParams, AdamW, AdamWParams, Optimizer, Sgd, SgdParams};
use latent_optim::prox::{BoxConstraint, GroupL2, L0, L1, L1NonNeg, L2Ball, Prox, ProxConjugate, Zero};
use latent_optim::schedule::{CosineAnnealing, LinearWarmup, Schedule, StepDecay, warmup_cosine};
use latent_optim::solver::{ProxGradParams, StopReason, fista, ista};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x0_1a7e_4701),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn vec_f64(max_len: usize, range: f64) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-range..range, 1..=max_len)
}

/// max |prox_{t g}(x) + t·prox_{g*/t}(x/t) − x| / (1 + |x|).
fn moreau_error<P: ProxConjugate<f64>>(g: &P, x: &[f64], t: f64) -> f64 {
    let mut p = x.to_vec();
    g.prox(&mut p, t).unwrap();
    let mut q: Vec<f64> = x.iter().map(|v| v / t).collect();
    g.prox_conjugate(&mut q, 1.0 / t).unwrap();
    x.iter().zip(p.iter().zip(&q)).map(|(x, (p, q))| (p + t * q - x).abs() / (1.0 + x.abs())).fold(0.0, f64::max)
}

/// Disjoint groups from a permutation of `0..n`, cut into chunks; the last `free` indices stay
/// ungrouped.
fn groups_from(perm: &[usize], cuts: &[usize], free: usize) -> Vec<Vec<usize>> {
    let used = &perm[..perm.len() - free.min(perm.len())];
    let mut out = Vec::new();
    let mut start = 0;
    let mut k = 0;
    while start < used.len() {
        let len = 1 + cuts[k % cuts.len()] % 4;
        let end = (start + len).min(used.len());
        out.push(used[start..end].to_vec());
        start = end;
        k += 1;
    }
    out
}

fn group_strategy() -> impl Strategy<Value = (Vec<f64>, Vec<Vec<usize>>)> {
    (1usize..16)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(-5.0..5.0f64, n),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                prop::collection::vec(0usize..8, 1..6),
                0usize..3,
            )
        })
        .prop_map(|(x, perm, cuts, free)| {
            let groups = groups_from(&perm, &cuts, free);
            (x, groups)
        })
}

fn box_strategy() -> impl Strategy<Value = (f64, f64)> {
    (-3.0..3.0f64, 0.0..4.0f64, 0u8..4).prop_map(|(lo, width, kind)| match kind {
        0 => (lo, lo + width),
        1 => (f64::NEG_INFINITY, lo + width),
        2 => (lo, f64::INFINITY),
        _ => (lo, lo), // degenerate box: a single point per coordinate
    })
}

/// Sizes `(m, n)` and `m·n + extra(m, n)` entries in `[-1, 1)`.
fn matrix_and_extra(
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    extra: fn(usize, usize) -> usize,
) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (rows, cols)
        .prop_flat_map(move |(m, n)| (Just(m), Just(n), prop::collection::vec(-1.0..1.0f64, m * n + extra(m, n))))
}

/// Value of the prox subproblem `g(z) + ‖z − x‖²/(2t)`.
fn prox_objective<P: Prox<f64>>(g: &P, z: &[f64], x: &[f64], t: f64) -> f64 {
    g.value(z) + z.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / (2.0 * t)
}

/// The prox output beats (up to rounding) `x` itself, 0, and nearby random perturbations.
fn assert_prox_minimises<P: Prox<f64>>(g: &P, x: &[f64], t: f64, dirs: &[f64]) -> Result<(), TestCaseError> {
    let mut p = x.to_vec();
    g.prox(&mut p, t).unwrap();
    let best = prox_objective(g, &p, x, t);
    prop_assert!(best.is_finite());
    let zero = vec![0.0; x.len()];
    let mut candidates = vec![x.to_vec(), zero];
    for scale in [1e-3, 1e-1, 1.0] {
        candidates.push(p.iter().enumerate().map(|(i, v)| v + scale * dirs[i % dirs.len()]).collect());
    }
    for c in &candidates {
        let mut feasible = c.clone();
        // compare only with feasible points (infeasible ones have value +inf anyway)
        if !g.value(&feasible).is_finite() {
            feasible = c.clone();
        }
        let v = prox_objective(g, &feasible, x, t);
        prop_assert!(best <= v + 1e-9 * (1.0 + v.abs()), "prox value {best} > candidate value {v}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    // ------------------------------------------------------------------ Moreau identities

    #[test]
    fn moreau_l1(x in vec_f64(24, 5.0), lambda in 0.0..3.0f64, t in 0.01..4.0f64) {
        let g = L1::new(lambda).unwrap();
        prop_assert!(moreau_error(&g, &x, t) < 1e-12);
        // equivalently x = soft(x, tλ) + clip(x, −tλ, tλ)
        let mut p = x.clone();
        g.prox(&mut p, t).unwrap();
        for (xi, pi) in x.iter().zip(&p) {
            let clip = xi.clamp(-t * lambda, t * lambda);
            prop_assert!((pi + clip - xi).abs() <= 1e-12 * (1.0 + xi.abs()));
        }
    }

    #[test]
    fn moreau_l1_f32(x in prop::collection::vec(-5.0..5.0f32, 1..24), lambda in 0.0..3.0f64, t in 0.05..4.0f32) {
        let g = L1::new(lambda).unwrap();
        let mut p = x.clone();
        g.prox(&mut p, t).unwrap();
        let mut q: Vec<f32> = x.iter().map(|v| v / t).collect();
        g.prox_conjugate(&mut q, 1.0 / t).unwrap();
        for i in 0..x.len() {
            prop_assert!((p[i] + t * q[i] - x[i]).abs() <= 1e-5 * (1.0 + x[i].abs()));
        }
    }

    #[test]
    fn moreau_l1_nonneg(x in vec_f64(24, 5.0), lambda in 0.0..3.0f64, t in 0.01..4.0f64) {
        prop_assert!(moreau_error(&L1NonNeg::new(lambda).unwrap(), &x, t) < 1e-12);
    }

    #[test]
    fn moreau_group_l2((x, groups) in group_strategy(), lambda in 0.0..3.0f64, t in 0.01..4.0f64) {
        let g = GroupL2::new(lambda, groups).unwrap();
        prop_assert!(moreau_error(&g, &x, t) < 1e-12);
    }

    #[test]
    fn moreau_box(x in vec_f64(24, 8.0), (lo, hi) in box_strategy(), t in 0.01..4.0f64) {
        prop_assert!(moreau_error(&BoxConstraint::new(lo, hi).unwrap(), &x, t) < 1e-12);
    }

    #[test]
    fn moreau_ball(x in vec_f64(24, 5.0), r in 0.0..6.0f64, t in 0.01..4.0f64) {
        prop_assert!(moreau_error(&L2Ball::new(r).unwrap(), &x, t) < 1e-12);
    }

    #[test]
    fn moreau_zero(x in vec_f64(8, 5.0), t in 0.01..4.0f64) {
        prop_assert!(moreau_error(&Zero, &x, t) == 0.0);
    }

    // ------------------------------------------------------------------ prox optimality

    #[test]
    fn prox_minimises_its_subproblem(
        x in prop::collection::vec(-4.0..4.0f64, 6),
        dirs in prop::collection::vec(-1.0..1.0f64, 6),
        lambda in 0.0..2.0f64,
        t in 0.05..3.0f64,
        (lo, hi) in box_strategy(),
    ) {
        assert_prox_minimises(&L1::new(lambda).unwrap(), &x, t, &dirs)?;
        assert_prox_minimises(&L1NonNeg::new(lambda).unwrap(), &x, t, &dirs)?;
        assert_prox_minimises(&L0::new(lambda).unwrap(), &x, t, &dirs)?;
        assert_prox_minimises(&GroupL2::new(lambda, vec![vec![0, 3], vec![1, 2, 5]]).unwrap(), &x, t, &dirs)?;
        assert_prox_minimises(&L2Ball::new(lambda).unwrap(), &x, t, &dirs)?;
        assert_prox_minimises(&BoxConstraint::new(lo, hi).unwrap(), &x, t, &dirs)?;
    }

    #[test]
    fn l0_keeps_exactly_entries_above_threshold(x in vec_f64(24, 3.0), lambda in 0.0..2.0f64, t in 0.05..3.0f64) {
        let mut p = x.clone();
        L0::new(lambda).unwrap().prox(&mut p, t).unwrap();
        let thr = (2.0 * lambda * t).sqrt();
        for (xi, pi) in x.iter().zip(&p) {
            prop_assert_eq!(*pi, if xi.abs() > thr { *xi } else { 0.0 });
        }
    }

    // ------------------------------------------------------------------ ISTA / FISTA

    #[test]
    fn solvers_reach_separable_lasso_closed_form(
        wb in prop::collection::vec((0.1..10.0f64, -5.0..5.0f64), 1..24),
        lambda in 0.0..2.0f64,
    ) {
        let (w, b): (Vec<f64>, Vec<f64>) = wb.into_iter().unzip();
        let f = SeparableQuadratic::new(w.clone(), b.clone()).unwrap();
        let g = L1::new(lambda).unwrap();
        let want: Vec<f64> = w.iter().zip(&b).map(|(w, b)| latent_linalg::ops::soft(*b, lambda / w)).collect();
        let x0 = vec![0.0; w.len()];
        let base = ProxGradParams::new().tol(1e-13).max_iter(20_000);
        let fixed = base.step(1.0 / f.lipschitz());
        let runs = [
            ("fista fixed", fista(&f, &g, &x0, &fixed).unwrap()),
            ("fista fixed no restart", fista(&f, &g, &x0, &fixed.restart(false)).unwrap()),
            ("fista backtracking", fista(&f, &g, &x0, &base.backtracking(1.0, 2.0)).unwrap()),
            ("ista fixed", ista(&f, &g, &x0, &fixed).unwrap()),
            ("ista backtracking", ista(&f, &g, &x0, &base.backtracking(1.0, 1.5)).unwrap()),
        ];
        for (name, res) in &runs {
            prop_assert!(res.converged(), "{name}: {:?} after {}", res.stop, res.iterations);
            for (a, e) in res.x.iter().zip(&want) {
                prop_assert!((a - e).abs() <= 1e-8 * (1.0 + e.abs()), "{name}: {:?} vs {:?}", res.x, want);
            }
            prop_assert_eq!(res.history.len(), res.iterations + 1);
            prop_assert!(res.history.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn fista_reaches_nonneg_lasso_closed_form_f32(
        wb in prop::collection::vec((0.5..4.0f32, -3.0..3.0f32), 1..16),
        lambda in 0.0..1.0f64,
    ) {
        let (w, b): (Vec<f32>, Vec<f32>) = wb.into_iter().unzip();
        let f = SeparableQuadratic::new(w.clone(), b.clone()).unwrap();
        let g = L1NonNeg::new(lambda).unwrap();
        let params = ProxGradParams::new().tol(1e-6).max_iter(5000).step(1.0 / f.lipschitz() as f64);
        let res = fista(&f, &g, &vec![0.0f32; w.len()], &params).unwrap();
        prop_assert!(res.converged());
        for i in 0..w.len() {
            let want = (b[i] - lambda as f32 / w[i]).max(0.0);
            prop_assert!((res.x[i] - want).abs() <= 1e-4 * (1.0 + want.abs()), "{:?}", res.x);
        }
    }

    #[test]
    fn fista_with_identity_quadratic_returns_the_prox(
        (b, groups) in group_strategy(),
        lambda in 0.0..2.0f64,
        (lo, hi) in box_strategy(),
    ) {
        // min ½‖x − b‖² + g(x) is solved by prox_g(b).
        let f = SeparableQuadratic::new(vec![1.0; b.len()], b.clone()).unwrap();
        let ops: Vec<Box<dyn Prox<f64> + Sync>> = vec![
            Box::new(GroupL2::new(lambda, groups).unwrap()),
            Box::new(L2Ball::new(lambda).unwrap()),
            Box::new(BoxConstraint::new(lo, hi).unwrap()),
            Box::new(L1NonNeg::new(lambda).unwrap()),
        ];
        for g in &ops {
            let mut want = b.clone();
            g.prox(&mut want, 1.0).unwrap();
            let res = fista(&f, g, &vec![0.0; b.len()], &ProxGradParams::new().tol(1e-12)).unwrap();
            prop_assert!(res.converged());
            for (a, e) in res.x.iter().zip(&want) {
                prop_assert!((a - e).abs() < 1e-9, "{:?} vs {:?}", res.x, want);
            }
        }
    }

    #[test]
    fn fista_least_squares_meets_optimality_conditions(
        (m, n, entries) in matrix_and_extra(2..8, 2..8, |m, _| m),
        lambda in 0.01..1.0f64,
    ) {
        let a = DMatrix::from_column_slice(m, n, &entries[..m * n]);
        let f = LeastSquares::new(a, entries[m * n..].to_vec()).unwrap();
        let params = ProxGradParams::new().tol(1e-14).max_iter(100_000);
        let res = fista(&f, &L1::new(lambda).unwrap(), &vec![0.0; n], &params).unwrap();
        prop_assert!(res.converged());
        let mut grad = vec![0.0; n];
        f.value_grad(&res.x, &mut grad);
        for (x, g) in res.x.iter().zip(&grad) {
            if *x == 0.0 {
                prop_assert!(g.abs() <= lambda + 1e-6, "{g}");
            } else {
                prop_assert!((g + lambda * x.signum()).abs() <= 1e-6, "{x} {g}");
            }
        }
    }

    #[test]
    fn iteration_cap_never_claims_convergence(b in vec_f64(8, 5.0), cap in 1usize..4) {
        let f = SeparableQuadratic::new(vec![1.0; b.len()], b.clone()).unwrap();
        let params = ProxGradParams::new().max_iter(cap).tol(0.0);
        let res = ista(&f, &L1::new(0.1).unwrap(), &vec![0.0; b.len()], &params).unwrap();
        // with tol = 0 only an exact fixed point (zero change) may be reported as convergence
        match res.stop {
            StopReason::Converged { change, .. } => {
                prop_assert_eq!(change, 0.0);
                prop_assert!(res.iterations <= cap);
            }
            StopReason::MaxIterations => prop_assert_eq!(res.iterations, cap),
        }
        // a problem that cannot be solved exactly in `cap` steps always reports the cap
        let slow = SeparableQuadratic::new(vec![1.0; b.len()], b.iter().map(|v| v + 10.0).collect()).unwrap();
        let params = ProxGradParams::new().step(0.3).max_iter(cap).tol(1e-12);
        let res = ista(&slow, &Zero, &vec![0.0; b.len()], &params).unwrap();
        prop_assert_eq!(res.stop, StopReason::MaxIterations);
        prop_assert!(!res.converged());
        prop_assert_eq!(res.iterations, cap);
    }
}

// ---------------------------------------------------------------------- optimizers

/// Random strongly convex quadratic `½xᵀAx − bᵀx`, `A = MᵀM + μI`, with its minimum value and a
/// start point at distance 1..3 from the minimiser.
fn quadratic_problem() -> impl Strategy<Value = (Quadratic<f64>, Vec<f64>, f64)> {
    (2usize..8)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(-1.0..1.0f64, n * n),
                prop::collection::vec(-2.0..2.0f64, n),
                prop::collection::vec(-1.0..1.0f64, n),
                0.1..1.0f64,
                1.0..3.0f64,
            )
        })
        .prop_filter("start direction must not vanish", |(_, _, d, _, _)| d.iter().map(|v| v * v).sum::<f64>() > 1e-2)
        .prop_map(|(m, b, d, mu, dist)| {
            let n = b.len();
            let m = DMatrix::from_column_slice(n, n, &m);
            let a = m.transpose() * &m + DMatrix::identity(n, n) * mu;
            let a = (&a + a.transpose()) * 0.5;
            let xstar = a.clone().cholesky().unwrap().solve(&DVector::from_column_slice(&b));
            let fstar = -0.5 * xstar.dot(&DVector::from_column_slice(&b));
            let dn = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            let x0 = xstar.iter().zip(&d).map(|(x, d)| x + dist * d / dn).collect();
            (Quadratic::new(a, b).unwrap(), x0, fstar)
        })
}

fn run<O: Optimizer<f64>>(
    opt: &O,
    f: &Quadratic<f64>,
    x0: &[f64],
    steps: usize,
    lr: impl Fn(usize) -> f64,
) -> Vec<f64> {
    let mut x = x0.to_vec();
    let mut g = vec![0.0; x.len()];
    let mut state = opt.init_state(x.len());
    let mut values = vec![f.value(&x)];
    for k in 0..steps {
        f.value_grad(&x, &mut g);
        opt.step(&mut x, &g, &mut state, lr(k)).unwrap();
        values.push(f.value(&x));
    }
    values
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sgd_decreases_strongly_convex_quadratics((f, x0, fstar) in quadratic_problem()) {
        let l = f.lipschitz() * 1.01;
        let gap0 = f.value(&x0) - fstar;
        prop_assert!(gap0 > 0.0);
        // plain SGD with step 1/L decreases monotonically
        let plain = run(&Sgd::new(SgdParams::new()).unwrap(), &f, &x0, 300, |_| 1.0 / l);
        for w in plain.windows(2) {
            prop_assert!(w[1] <= w[0] + 1e-12 * w[0].abs(), "{} -> {}", w[0], w[1]);
        }
        prop_assert!(plain[300] - fstar <= 0.5 * gap0);
        let heavy = Sgd::new(SgdParams::new().momentum(0.9)).unwrap();
        let nesterov = Sgd::new(SgdParams::new().momentum(0.9).nesterov(true)).unwrap();
        for opt in [heavy, nesterov] {
            let v = run(&opt, &f, &x0, 300, |_| 0.1 / l);
            prop_assert!(v[300] - fstar <= 0.1 * gap0, "{:?}: {} vs {}", opt.params(), v[300] - fstar, gap0);
        }
    }

    #[test]
    fn adam_and_adamw_decrease_strongly_convex_quadratics((f, x0, fstar) in quadratic_problem()) {
        let gap0 = f.value(&x0) - fstar;
        let sched = CosineAnnealing::new(0.05, 0.0, 1000).unwrap();
        let adam = run(&Adam::new(AdamParams::new()).unwrap(), &f, &x0, 1000, |k| sched.lr(k));
        prop_assert!(adam[1000] - fstar <= 0.1 * gap0, "{} vs {}", adam[1000] - fstar, gap0);
        let adamw = run(&AdamW::new(AdamWParams::new().weight_decay(1e-4)).unwrap(), &f, &x0, 1000, |k| sched.lr(k));
        prop_assert!(adamw[1000] - fstar <= 0.1 * gap0, "{} vs {}", adamw[1000] - fstar, gap0);
    }

    #[test]
    fn optimizer_states_round_trip_through_json(
        grads in prop::collection::vec(prop::collection::vec(-3.0..3.0f64, 5), 1..6),
        x0 in prop::collection::vec(-2.0..2.0f64, 5),
    ) {
        fn check<O: Optimizer<f64>>(opt: &O, grads: &[Vec<f64>], x0: &[f64]) -> Result<(), TestCaseError>
        where
            O::State: PartialEq,
        {
            let mut x = x0.to_vec();
            let mut st = opt.init_state(5);
            for g in grads {
                opt.step(&mut x, g, &mut st, 0.05).unwrap();
            }
            let json = serde_json::to_string(&st).unwrap();
            let mut back: O::State = serde_json::from_str(&json).unwrap();
            prop_assert!(back == st);
            // resuming from the restored state is bit-identical
            let mut y = x.clone();
            opt.step(&mut x, &grads[0], &mut st, 0.05).unwrap();
            opt.step(&mut y, &grads[0], &mut back, 0.05).unwrap();
            prop_assert_eq!(x, y);
            Ok(())
        }
        check(&Sgd::new(SgdParams::new().momentum(0.9).nesterov(true).weight_decay(0.01)).unwrap(), &grads, &x0)?;
        check(&Sgd::new(SgdParams::new()).unwrap(), &grads, &x0)?;
        check(&Adam::new(AdamParams::new().weight_decay(0.01)).unwrap(), &grads, &x0)?;
        check(&AdamW::new(AdamWParams::new()).unwrap(), &grads, &x0)?;
        // f32 state too
        let adam = Adam::new(AdamParams::new()).unwrap();
        let mut x32: Vec<f32> = x0.iter().map(|v| *v as f32).collect();
        let mut st32 = Optimizer::<f32>::init_state(&adam, 5);
        for g in &grads {
            let g32: Vec<f32> = g.iter().map(|v| *v as f32).collect();
            adam.step(&mut x32, &g32, &mut st32, 0.05).unwrap();
        }
        let back: latent_optim::AdamState<f32> = serde_json::from_str(&serde_json::to_string(&st32).unwrap()).unwrap();
        prop_assert_eq!(back, st32);
    }

    // ------------------------------------------------------------------ gradient checker

    #[test]
    fn gradcheck_passes_right_and_catches_wrong_gradients(
        (f, x0, _) in quadratic_problem(),
        idx in 0usize..8,
        delta in prop_oneof![-2.0..-0.2f64, 0.2..2.0f64],
    ) {
        let opts = GradCheck::default();
        let ok = check_objective(&f, &x0, &opts).unwrap();
        prop_assert!(ok.passes(1e-5), "{ok}");
        let mut g = vec![0.0; x0.len()];
        f.value_grad(&x0, &mut g);
        let i = idx % x0.len();
        g[i] += delta * (1.0 + g[i].abs());
        let rep = check_gradient(|x: &[f64]| f.value(x), &x0, &g, &opts).unwrap();
        prop_assert!(!rep.passes(1e-3), "{rep}");
        prop_assert_eq!(rep.worst_index, i);
    }

    #[test]
    fn gradcheck_vjp_of_a_tanh_layer(
        (m, n, entries) in matrix_and_extra(1..6, 1..6, |m, n| m + n),
    ) {
        // y = tanh(A x), dx = Aᵀ (dy ⊙ (1 − y²))
        let a = DMatrix::from_column_slice(m, n, &entries[..m * n]);
        let x = &entries[m * n..m * n + n];
        let dy = &entries[m * n + n..];
        let fwd = |z: &[f64]| (&a * DVector::from_column_slice(z)).map(f64::tanh).as_slice().to_vec();
        let y = fwd(x);
        let s = DVector::from_iterator(m, dy.iter().zip(&y).map(|(d, y)| d * (1.0 - y * y)));
        let dx = (a.transpose() * s).as_slice().to_vec();
        let rep = check_vjp(fwd, x, dy, &dx, &GradCheck::default()).unwrap();
        prop_assert!(rep.passes(1e-5), "{rep}");
        // flip the sign of the largest entry: must be caught there
        let (k, big) = dx
            .iter()
            .enumerate()
            .fold((0, 0.0f64), |(bk, bv), (k, v)| if v.abs() > bv { (k, v.abs()) } else { (bk, bv) });
        prop_assume!(big > 1e-3);
        let mut wrong = dx.clone();
        wrong[k] = -wrong[k];
        let rep = check_vjp(fwd, x, dy, &wrong, &GradCheck::default()).unwrap();
        prop_assert!(!rep.passes(1e-2), "{rep}");
        prop_assert_eq!(rep.worst_index, k);
    }

    // ------------------------------------------------------------------ schedules

    #[test]
    fn schedules_hit_documented_values(
        base in 0.0..1.0f64,
        frac in 0.0..1.0f64,
        half in 1usize..200,
        warmup in 1usize..50,
        gamma in 0.05..1.0f64,
        step_size in 1usize..20,
        start in 0.0..1.0f64,
    ) {
        let min = base * frac;
        let period = 2 * half;
        let cos = CosineAnnealing::new(base, min, period).unwrap();
        prop_assert!((cos.lr(0) - base).abs() <= 1e-15);
        prop_assert!((cos.lr(half) - 0.5 * (base + min)).abs() <= 1e-12);
        prop_assert_eq!(cos.lr(period), min);
        prop_assert_eq!(cos.lr(period + 17), min);
        for s in 0..period {
            prop_assert!(cos.lr(s + 1) <= cos.lr(s) + 1e-15);
        }

        let sd = StepDecay::new(base, gamma, step_size).unwrap();
        for k in 0..5 {
            let want = base * gamma.powi(k as i32);
            prop_assert!((sd.lr(k * step_size) - want).abs() <= 1e-15);
            prop_assert!((sd.lr(k * step_size + step_size - 1) - want).abs() <= 1e-15);
        }

        let wu = LinearWarmup::new(warmup, cos).unwrap().start(start).unwrap();
        prop_assert!((wu.lr(0) - start * base).abs() <= 1e-15);
        prop_assert!((wu.lr(warmup) - base).abs() <= 1e-15);
        for s in 0..warmup {
            let want = base * (start + (1.0 - start) * s as f64 / warmup as f64);
            prop_assert!((wu.lr(s) - want).abs() <= 1e-12);
        }
        prop_assert!((wu.lr(warmup + half) - 0.5 * (base + min)).abs() <= 1e-12);

        let wc = warmup_cosine(base, min, warmup, warmup + period).unwrap();
        prop_assert_eq!(wc.lr(0), 0.0);
        prop_assert!((wc.lr(warmup) - base).abs() <= 1e-15);
        prop_assert_eq!(wc.lr(warmup + period), min);
        for s in 0..warmup + period + 5 {
            prop_assert!((0.0..=base).contains(&wc.lr(s)));
        }
    }
}
