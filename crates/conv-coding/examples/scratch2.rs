use latent_conv_coding::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
fn synthetic(truth: &Filters<f64>, k: usize, h: usize, w: usize, seed: u64, dens: f64) -> Tensor4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = truth.count();
    let s = Tensor4::from_fn([k, m, h, w], |_| if rng.random::<f64>() < dens { rng.random::<f64>() * 2.0 - 1.0 } else { 0.0 }).unwrap();
    let mut x = ConvOperator::new(truth, h, w, Boundary::Periodic, Backend::Fft).unwrap().apply(&s).unwrap();
    x.as_mut_slice().iter_mut().for_each(|v| *v += 0.01 * (rng.random::<f64>() - 0.5));
    x
}
fn main() {
    let truth = Filters::<f64>::random(4, 1, 5, 5, 1).unwrap();
    for dens in [0.02, 0.005] {
        let x = synthetic(&truth, 4, 32, 32, 2, dens);
        let coder = CscParams::new(0.05).max_iter(300).check().unwrap();
        let oracle = coder.encode(&truth, &x).unwrap().objective();
        for solver in [DictSolver::default(), DictSolver::Fista { eta: 2.0 }] {
            for (ci, di) in [(1, 1), (10, 5)] {
                let mut p = CdlParams::new(4, (5, 5), 0.05);
                p.iterations = 100; p.code_iters = ci; p.dict_iters = di; p.dict_solver = solver; p.seed = 3;
                let fit = p.check().unwrap().fit(&x).unwrap();
                let h: Vec<String> = fit.history.iter().step_by(10).map(|s| format!("{:.2}", s.objective)).collect();
                let recode = coder.encode(&fit.filters, &x).unwrap().objective();
                println!("dens {dens} oracle {oracle:.3} {:?} ci {ci} di {di}: recode {recode:.3} hist {}", matches!(solver, DictSolver::Fista{..}), h.join(" "));
            }
        }
    }
}
