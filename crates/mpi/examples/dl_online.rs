//! Data-parallel online dictionary learning (Mairal et al. 2009) on whitened 8×8 patches of the
//! shipped natural images, on every rank of an MPI job:
//!
//! ```text
//! mpirun -np 2 target/release/examples/dl_online --out /tmp/dict.bin
//! ```
//!
//! Every rank builds the same patches (seeded) and codes its share of every global mini-batch;
//! the statistics A, B are summed in chunk order, so the dictionary is bit-identical for any
//! number of ranks. Rank 0 writes `--out` (a `FittedDictionary`) and `--save-state` (the learner
//! state for a warm restart with `--resume`, on any number of ranks) and prints one JSON line.
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--patches` | 20000 | patches drawn from the images |
//! | `--patch` | 8 | patch side |
//! | `--atoms` | 64 | dictionary size |
//! | `--lambda` | 0.15 | ℓ1 weight |
//! | `--batch` | 256 | global mini-batch |
//! | `--epochs` | 1 | passes |
//! | `--seed` | 0 | seed of patches, initialisation, shuffling |
//! | `--no-shuffle` | — | keep the signal order (every epoch the same batches) |
//! | `--threads` | 1 | rayon threads per rank |
//! | `--stop-after` | — | stop after this many mini-batches (an interrupted run) |
//! | `--classic` | — | learn with the one-process `OnlineLearner::fit` instead (1 rank only): the baseline the distributed path's overhead is measured against |
//! | `--out`, `--save-state`, `--resume` | — | files (written by rank 0 / read by rank 0 and broadcast) |

use latent_datasets::patches::{extract_random_patches, whiten_1f};
use latent_datasets::{GrayImage, data_dir, load_image_folder};
use latent_linalg::DMatrix;
use latent_mpi::{Args, MpiComm, fault_point};
use latent_optim::Communicator;
use latent_sparse_coding::{Callback, OnlineLearner, OnlineParams, OnlineState, ParamGuard};
use std::error::Error;
use std::ops::ControlFlow;
use std::time::Instant;

fn patches(count: usize, p: usize, seed: u64) -> Result<DMatrix<f64>, Box<dyn Error>> {
    let images: Vec<GrayImage> =
        load_image_folder(data_dir().join("natural-gray"))?.into_iter().map(|(_, i)| i).collect();
    let white: Vec<GrayImage> = images.iter().map(|i| whiten_1f(i, 0.4)).collect::<Result<_, _>>()?;
    let mut ps = extract_random_patches(&white, p, p, count, seed)?;
    ps.remove_mean();
    let m: DMatrix<f64> = ps.to_dmatrix_cols();
    let sd = (m.iter().map(|v| v * v).sum::<f64>() / m.len() as f64).sqrt().max(1e-12);
    Ok(m / sd)
}

fn program(comm: &MpiComm) -> Result<(), Box<dyn Error>> {
    let a = Args::from_env();
    let threads: usize = a.get("--threads", 1)?;
    latent_linalg::product::init_threads(Some(threads))?;
    let seed: u64 = a.get("--seed", 0)?;
    let x = patches(a.get("--patches", 20_000)?, a.get("--patch", 8)?, seed)?;
    let params = OnlineParams::new(a.get("--atoms", 64)?, a.get("--lambda", 0.15)?)
        .batch_size(a.get("--batch", 256)?)
        .epochs(a.get("--epochs", 1)?)
        .seed(seed)
        .shuffle(!a.flag("--no-shuffle"))
        .progress(!a.flag("--quiet"))
        .check()?;
    let mut learner = OnlineLearner::from(params);
    if let Some(path) = a.opt("--resume") {
        // rank 0 reads its checkpoint and broadcasts it
        let mut bytes =
            if comm.is_root() { std::fs::read(&path).map_err(|e| format!("{path}: {e}"))? } else { Vec::new() };
        comm.broadcast(&mut bytes, 0)?;
        learner = learner.with_state(OnlineState::from_bytes(&bytes)?)?;
    }
    let stop_after: usize = a.get("--stop-after", usize::MAX)?;
    let mut seen = 0;
    let cb: Callback<'_, f64> = Box::new(|_| {
        seen += 1;
        fault_point(comm, seen);
        if seen >= stop_after { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    let classic = a.flag("--classic");
    if classic && comm.size() > 1 {
        return Err(format!("--classic runs the one-process learner: use 1 rank, not {}", comm.size()).into());
    }
    let t0 = Instant::now();
    let fit = if classic { learner.fit(&x, Some(cb))? } else { learner.fit_distributed(comm, &x, Some(cb))? };
    let seconds = t0.elapsed().as_secs_f64();
    if comm.is_root() {
        if let Some(out) = a.opt("--out") {
            fit.save(&out)?;
        }
        if let (Some(path), Some(st)) = (a.opt("--save-state"), learner.state()) {
            st.save(&path)?;
        }
        println!(
            "{}",
            serde_json::json!({
                "learner": "dl_online", "classic": classic, "ranks": comm.size(), "threads_per_rank": threads, "seconds": seconds,
                "signals": x.ncols(), "batches": fit.iterations, "resampled": fit.resampled,
                "last_batch_objective": fit.history.last(),
            })
        );
    }
    comm.barrier()?;
    Ok(())
}

fn main() {
    latent_mpi::run(program);
}
