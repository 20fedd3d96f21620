//! MPI for latent's data-parallel learners: [`MpiComm`] implements
//! [`latent_optim::Communicator`] over Open MPI (through rsmpi, the `mpi` crate), and [`run`]
//! is the driver every MPI program of latent uses: it initialises MPI, runs the program on
//! every rank and, when a rank fails, prints the error **naming the rank** and calls
//! `MPI_Abort`, so `mpirun` ends the whole job instead of leaving the other ranks waiting.
//!
//! This crate is outside the root workspace (it needs `libopenmpi-dev` and `libclang-dev` to
//! build); `cargo xtask distributed-check` builds and runs it. The learners themselves only see
//! the trait: `OnlineLearner::fit_distributed` and `Trainer::fit_distributed` take any
//! `&dyn Communicator`.
//!
//! # The ordered sum on MPI
//! [`Communicator::sum_all_reduce`] must add the chunk partials in chunk order, whatever the
//! number of ranks (`MPI_Allreduce` may add in any order). [`MpiComm`] runs a **pipelined
//! chain**: the vector is cut into segments of [`SEGMENT`] values; rank 0 adds its chunks to
//! zeros and sends each segment to rank 1, which adds its chunks in order and passes it on, …;
//! the last rank holds the ordered sum and broadcasts it (`MPI_Bcast`). Each rank sends and
//! receives about `2·len` values per call (like a ring all-reduce), and the pipeline adds
//! `(p − 1)` segment latencies.
//!
//! # Example
//! ```no_run
//! use latent_optim::Communicator;
//! latent_mpi::run(|comm| {
//!     println!("rank {} of {}", comm.rank(), comm.size());
//!     let s = comm.sum_all_reduce(&[comm.rank() as f64], 1)?;
//!     assert_eq!(s[0], (0..comm.size()).sum::<usize>() as f64);
//!     Ok(())
//! });
//! ```

use latent_optim::collective::{CommError, CommResult, Communicator};
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Destination, Root, Source};
use std::error::Error;

/// Values per message of the pipelined chain (256 KiB of `f64`).
pub const SEGMENT: usize = 1 << 15;

/// The world communicator of an MPI job.
pub struct MpiComm {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiComm").field("rank", &self.rank).field("size", &self.size).finish_non_exhaustive()
    }
}

impl MpiComm {
    /// Wrap an MPI communicator.
    pub fn new(world: SimpleCommunicator) -> Self {
        let rank = usize::try_from(world.rank()).unwrap_or(0);
        let size = usize::try_from(world.size()).unwrap_or(1).max(1);
        Self { world, rank, size }
    }

    /// End the whole job with `code` (`MPI_Abort`): every rank is killed by `mpirun`.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    fn peer(&self, rank: usize) -> mpi::topology::Process<'_> {
        // ranks are < size <= i32::MAX by construction
        self.world.process_at_rank(rank as i32)
    }
}

impl Communicator for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_all_reduce(&self, local: &[f64], chunk_len: usize) -> CommResult<Vec<f64>> {
        if chunk_len == 0 && !local.is_empty() || chunk_len > 0 && !local.len().is_multiple_of(chunk_len) {
            return Err(CommError::Length {
                op: "sum_all_reduce",
                rank: self.rank,
                detail: format!("{} values are not whole chunks of {chunk_len}", local.len()),
            });
        }
        let (r, p) = (self.rank, self.size);
        let mut acc = vec![0.0f64; chunk_len];
        let mut start = 0;
        while start < chunk_len {
            let end = (start + SEGMENT).min(chunk_len);
            let seg = &mut acc[start..end];
            if r > 0 {
                self.peer(r - 1).receive_into(seg);
            }
            if chunk_len > 0 {
                for chunk in local.chunks_exact(chunk_len) {
                    for (a, &v) in seg.iter_mut().zip(&chunk[start..end]) {
                        *a += v;
                    }
                }
            }
            if r + 1 < p {
                self.peer(r + 1).send(&*seg);
            }
            start = end;
        }
        if p > 1 && chunk_len > 0 {
            self.peer(p - 1).broadcast_into(&mut acc[..]);
        }
        Ok(acc)
    }

    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> CommResult<()> {
        if root >= self.size {
            return Err(CommError::Length {
                op: "broadcast",
                rank: self.rank,
                detail: format!("root {root} of {} ranks", self.size),
            });
        }
        let mut len = bytes.len() as u64;
        self.peer(root).broadcast_into(&mut len);
        let len = usize::try_from(len).map_err(|_| CommError::Transport {
            op: "broadcast",
            rank: self.rank,
            detail: format!("{len} bytes do not fit in memory"),
        })?;
        if self.rank != root {
            bytes.clear();
            bytes.resize(len, 0);
        }
        if len > 0 {
            self.peer(root).broadcast_into(&mut bytes[..]);
        }
        Ok(())
    }

    fn barrier(&self) -> CommResult<()> {
        self.world.barrier();
        Ok(())
    }
}

/// Initialise MPI, run `program` on this rank, finalise. When `program` fails, print
/// `latent-mpi: rank R of P failed: <error>` on stderr and `MPI_Abort` the job (exit code 1),
/// so `mpirun` stops every rank. Returns normally only on success (after MPI is finalised).
///
/// Open MPI's defaults also end the job when a rank is killed (a signal, `std::process::abort`,
/// an out-of-memory kill): `mpirun` notices the dead process and kills the others.
pub fn run<F>(program: F)
where
    F: FnOnce(&MpiComm) -> Result<(), Box<dyn Error>>,
{
    let Some(universe) = mpi::initialize() else {
        eprintln!("latent-mpi: MPI was already initialised");
        std::process::exit(1);
    };
    let comm = MpiComm::new(universe.world());
    if let Err(e) = program(&comm) {
        eprintln!("latent-mpi: rank {} of {} failed: {e}", comm.rank(), comm.size());
        comm.abort(1);
    }
    drop(universe);
}

/// Fault injection for tests of the failure path: when the environment has
/// `LATENT_MPI_FAULT_RANK=<this rank>` and `LATENT_MPI_FAULT_STEP=<step>` (default 1), the rank
/// prints a note and dies with `std::process::abort()` at that step, as a crashed node would
/// (with `LATENT_MPI_FAULT_SIGNAL=9` it sends itself `SIGKILL` instead, as `kill -9` would; with
/// `LATENT_MPI_FAULT_SIGNAL=error` it fails as a rank whose program returns an error: message
/// naming the rank, then `MPI_Abort` while the other ranks wait in a collective).
/// Call it once per step (mini-batch or epoch) from a learner's callback.
pub fn fault_point(comm: &MpiComm, step: usize) {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<usize>().ok());
    if var("LATENT_MPI_FAULT_RANK") == Some(comm.rank()) && step == var("LATENT_MPI_FAULT_STEP").unwrap_or(1) {
        if std::env::var("LATENT_MPI_FAULT_SIGNAL").is_ok_and(|v| v.trim() == "error") {
            // the path of a rank whose program returns an error while the others wait
            eprintln!("latent-mpi: rank {} of {} failed: injected error at step {step}", comm.rank(), comm.size());
            comm.abort(1);
        }
        eprintln!("latent-mpi: rank {} dies at step {step} (LATENT_MPI_FAULT_RANK)", comm.rank());
        if var("LATENT_MPI_FAULT_SIGNAL") == Some(9) {
            // as `kill -9` from outside: no handler, no message from the process itself
            let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        }
        std::process::abort();
    }
}

/// Command-line flags `--name value` of the examples (no external parser).
#[derive(Debug, Clone)]
pub struct Args(Vec<String>);

impl Args {
    /// The process's arguments.
    pub fn from_env() -> Self {
        Self(std::env::args().skip(1).collect())
    }

    /// The value after `--name`, parsed, or `default`.
    ///
    /// # Errors
    /// A message naming the flag when the value does not parse.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.0.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => {
                let v = self.0.get(i + 1).ok_or_else(|| format!("{name} needs a value"))?;
                v.parse().map_err(|_| format!("{name}: cannot parse {v:?}"))
            }
        }
    }

    /// The value after `--name`, if given.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1).cloned())
    }

    /// `true` when the flag `name` is present.
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}
