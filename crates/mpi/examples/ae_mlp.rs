//! Data-parallel training of an MLP autoencoder on the shipped MNIST subset
//! (`data/mnist-2k-1k` by default), on every rank of an MPI job:
//!
//! ```text
//! mpirun -np 2 target/release/examples/ae_mlp --out /tmp/ae.bin
//! ```
//!
//! Every rank loads the same images and computes the gradients of its chunks of every global
//! mini-batch; the chunk gradients are summed in chunk order, so the weights and loss curves are
//! bit-identical for any number of ranks. Rank 0 writes `--out` (the model file) and
//! `--state` (training state every epoch; continue with `--resume` on any number of ranks) and
//! prints one JSON line.
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--set` | `mnist-2k-1k` | MNIST folder under `data/` (`mnist-10k-10k`: 10,000 images) |
//! | `--train` | all | training images used |
//! | `--widths` | `784,128,32` | layer widths |
//! | `--epochs` | 3 | epochs |
//! | `--batch` | 64 | global mini-batch |
//! | `--lr` | 1e-3 | Adam learning rate |
//! | `--seed` | 0 | initialisation and shuffling |
//! | `--threads` | 1 | rayon threads per rank |
//! | `--chunk` | 16 | samples per chunk (`TrainParams::distributed_chunk`) |
//! | `--stop-after` | — | stop after this epoch (an interrupted run) |
//! | `--classic` | — | train with the one-process `Trainer::fit` instead (1 rank only): the baseline the distributed path's overhead is measured against |
//! | `--out`, `--state`, `--resume` | — | files (written by rank 0 / read by rank 0 and broadcast) |

use latent_autoencoder::models::{CheckedModel, MlpAeParams};
use latent_autoencoder::train::{Control, EpochContext, Trainer};
use latent_autoencoder::{Autoencoder, ParamGuard};
use latent_datasets::Mnist;
use latent_linalg::Tensor4;
use latent_mpi::{Args, MpiComm, fault_point};
use latent_optim::Communicator;
use std::error::Error;
use std::time::Instant;

fn program(comm: &MpiComm) -> Result<(), Box<dyn Error>> {
    let a = Args::from_env();
    let threads: usize = a.get("--threads", 1)?;
    latent_linalg::product::init_threads(Some(threads))?;
    let mnist = Mnist::from_dir(latent_datasets::data_dir().join(a.get("--set", "mnist-2k-1k".to_string())?))?;
    let n = a.get("--train", usize::MAX)?.min(mnist.train.len());
    let idx: Vec<usize> = (0..n).collect();
    let x: Tensor4<f32> = mnist.train.to_tensor4(&idx)?;
    let widths: Vec<usize> = a
        .get("--widths", "784,128,32".to_string())?
        .split(',')
        .map(|w| w.trim().parse::<usize>().map_err(|e| format!("--widths: {e}")))
        .collect::<Result<_, _>>()?;
    let mut params = MlpAeParams::new(widths)
        .epochs(a.get("--epochs", 3)?)
        .batch_size(a.get("--batch", 64)?)
        .lr(a.get("--lr", 1e-3)?)
        .seed(a.get("--seed", 0)?)
        .progress(!a.flag("--quiet"));
    params.train = params.train.distributed_chunk(a.get("--chunk", latent_autoencoder::train::DISTRIBUTED_CHUNK)?);
    if let Some(path) = a.opt("--state") {
        params.train = params.train.state_checkpoint(path, 1);
    }
    if let Some(path) = a.opt("--resume") {
        params.train = params.train.resume_from(path);
    }
    let params = params.check()?;
    let mut model: Autoencoder<f32> = params.build_for::<f32>([1, 28, 28])?;
    let trainer = Trainer::new(params.train.check_ref()?);
    let stop_after: usize = a.get("--stop-after", usize::MAX)?;
    let mut hook = |ctx: &mut EpochContext<'_, Autoencoder<f32>>| {
        fault_point(comm, ctx.epoch);
        if ctx.epoch >= stop_after { Control::Stop } else { Control::Continue }
    };
    let classic = a.flag("--classic");
    if classic && comm.size() > 1 {
        return Err(format!("--classic runs the one-process trainer: use 1 rank, not {}", comm.size()).into());
    }
    let t0 = Instant::now();
    let report = if classic {
        trainer.fit_with_callbacks(&mut model, &x, None, &mut [&mut hook])?
    } else {
        trainer.fit_distributed(comm, &mut model, &x, None, &mut [&mut hook])?
    };
    let seconds = t0.elapsed().as_secs_f64();
    if comm.is_root() {
        if let Some(out) = a.opt("--out") {
            model.save(&out)?;
        }
        println!(
            "{}",
            serde_json::json!({
                "learner": "ae_mlp", "classic": classic, "chunk": params.train.distributed_chunk, "ranks": comm.size(), "threads_per_rank": threads, "seconds": seconds,
                "train_samples": n, "epochs": report.epochs_run, "steps": report.steps,
                "train_loss": report.train_loss,
            })
        );
    }
    comm.barrier()?;
    Ok(())
}

fn main() {
    latent_mpi::run(program);
}
