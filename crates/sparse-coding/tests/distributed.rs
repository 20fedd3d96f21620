//! Data-parallel online dictionary learning over the in-process thread communicator: the same
//! seed and data give bit-identical dictionaries, statistics and histories on 1, 2 and 3 ranks,
//! with forgetting, dead-atom resampling and warm restarts; ranks that disagree are refused.

use latent_linalg::DMatrix;
use latent_optim::collective::{CommError, Communicator, SingleProcess, run_threads};
use latent_sparse_coding::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(d: usize, n: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    DMatrix::from_fn(
        d,
        n,
        |i, _| if rng.random::<f64>() < 0.4 { rng.random::<f64>() * (1.0 + i as f64) - 0.5 } else { 0.0 },
    )
}

fn bits(m: &DMatrix<f64>) -> Vec<u64> {
    m.iter().map(|v| v.to_bits()).collect()
}

fn state_bits(l: &OnlineLearner<f64>) -> (Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>) {
    let s = l.state().unwrap();
    (bits(&s.dictionary), bits(&s.stats.a), bits(&s.stats.b), s.history.iter().map(|v| v.to_bits()).collect())
}

#[test]
fn online_learning_is_bit_identical_on_1_2_3_ranks() {
    let x = data(10, 700, 3);
    // 40 atoms for 10-dimensional sparse data: some atoms die and are resampled
    for forgetting in [true, false] {
        let params =
            OnlineParams::new(40, 2.5).batch_size(200).epochs(2).forgetting(forgetting).seed(5).check().unwrap();
        let mut one = OnlineLearner::from(params.clone());
        let fit1 = one.fit_distributed(&SingleProcess, &x, None).unwrap();
        assert_eq!(fit1.iterations, 8);
        assert!(fit1.resampled > 0, "the test should exercise dead-atom resampling");
        for ranks in [1, 2, 3] {
            let got = run_threads(ranks, |c| {
                let mut l = OnlineLearner::from(params.clone());
                let f = l.fit_distributed(&c, &x, None).unwrap();
                (state_bits(&l), f.resampled)
            });
            for (r, (s, resampled)) in got.into_iter().enumerate() {
                assert_eq!(s, state_bits(&one), "{ranks} ranks, rank {r}, forgetting {forgetting}");
                assert_eq!(resampled, fit1.resampled);
            }
        }
    }
}

/// A run stopped after 3 mini-batches on 2 ranks, saved by rank 0 and resumed on 3 ranks ends
/// exactly where an uninterrupted single-process run ends.
#[test]
fn warm_restart_with_another_rank_count_matches_an_uninterrupted_run() {
    let x = data(8, 500, 11);
    let params = OnlineParams::new(12, 0.1).batch_size(100).epochs(1).seed(2).shuffle(false).check().unwrap();
    let mut whole = OnlineLearner::from(params.clone());
    whole.fit_distributed(&SingleProcess, &x, None).unwrap();

    let path = std::env::temp_dir().join(format!("latent-dist-online-{}.state", std::process::id()));
    let first = x.columns(0, 300).into_owned();
    let rest = x.columns(300, 200).into_owned();
    let p1 = OnlineParams::new(12, 0.1).batch_size(100).epochs(1).seed(2).shuffle(false).check().unwrap();
    run_threads(2, |c| {
        let mut l = OnlineLearner::from(p1.clone());
        l.fit_distributed(&c, &first, None).unwrap();
        if c.rank() == 0 {
            l.state().unwrap().save(&path).unwrap();
        }
    });
    let resumed = run_threads(3, |c| {
        let st = OnlineState::<f64>::load(&path).unwrap();
        let mut l = OnlineLearner::from(p1.clone()).with_state(st).unwrap();
        l.fit_distributed(&c, &rest, None).unwrap();
        state_bits(&l)
    });
    std::fs::remove_file(&path).ok();
    for r in resumed {
        assert_eq!(r, state_bits(&whole));
    }
}

#[test]
fn ranks_that_disagree_are_refused_naming_the_rank() {
    let x = data(6, 120, 1);
    let y = data(6, 120, 2);
    let params = OnlineParams::new(5, 0.1).batch_size(50).check().unwrap();
    let got = run_threads(3, |c| {
        let mine = if c.rank() == 2 { &y } else { &x };
        OnlineLearner::from(params.clone()).fit_distributed(&c, mine, None).map(|_| ())
    });
    for g in got {
        match g {
            Err(SparseCodingError::Collective(CommError::Mismatch { rank, what, .. })) => {
                assert_eq!(rank, 2);
                assert!(what.contains("training signals"), "{what}");
            }
            other => panic!("expected a mismatch naming rank 2, got {other:?}"),
        }
    }
    let other = OnlineParams::new(5, 0.2).batch_size(50).check().unwrap();
    let got = run_threads(2, |c| {
        let p = if c.rank() == 1 { other.clone() } else { params.clone() };
        OnlineLearner::from(p).fit_distributed(&c, &x, None).map(|_| ())
    });
    for g in got {
        assert!(
            matches!(&g, Err(SparseCodingError::Collective(CommError::Mismatch { rank: 1, what, .. })) if what.contains("parameters")),
            "{g:?}"
        );
    }
}

/// The distributed path learns as well as the classic one (only the last bits differ).
#[test]
fn distributed_and_classic_paths_agree_closely() {
    let x = data(8, 400, 9);
    let params = OnlineParams::new(10, 0.1).batch_size(100).epochs(1).seed(4).check().unwrap();
    let classic = params.clone().fit(&x).unwrap();
    let dist = OnlineLearner::from(params).fit_distributed(&SingleProcess, &x, None).unwrap();
    let diff = (&classic.dictionary - &dist.dictionary).abs().max();
    assert!(diff < 1e-8, "max abs difference {diff}");
}
