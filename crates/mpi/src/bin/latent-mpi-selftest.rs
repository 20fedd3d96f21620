//! Self-test of [`latent_mpi::MpiComm`] under `mpirun -np N`: the ordered sum equals
//! [`SingleProcess`]'s bit for bit (several pipeline segments, ranks without chunks), broadcast
//! carries any length, and the fingerprint exchange names the rank that differs. Prints
//! `selftest ok` on rank 0.

use latent_mpi::MpiComm;
use latent_optim::collective::{CommError, Communicator, SingleProcess};
use std::error::Error;

fn check(comm: &MpiComm) -> Result<(), Box<dyn Error>> {
    // 5 chunks of 2.5 segments each: order-sensitive values
    let len = latent_mpi::SEGMENT * 5 / 2 + 3;
    let chunk = |c: usize| -> Vec<f64> {
        (0..len).map(|i| ((i * 31 + c * 7) % 17) as f64 * 10f64.powi((c as i32 % 3) * 7) - 1.5).collect()
    };
    for chunks in [5usize, 1, 0] {
        let all: Vec<f64> = (0..chunks).flat_map(chunk).collect();
        let expect = SingleProcess.sum_all_reduce(&all, len)?;
        let mine: Vec<f64> = comm.my_chunks(chunks).flat_map(chunk).collect();
        let got = comm.sum_all_reduce(&mine, len)?;
        if got.iter().map(|v| v.to_bits()).ne(expect.iter().map(|v| v.to_bits())) {
            return Err(format!("ordered sum of {chunks} chunks differs from one process").into());
        }
    }
    for n in [0usize, 5, 100_000] {
        let mut b = if comm.rank() == comm.size() - 1 { (0..n).map(|i| (i % 251) as u8).collect() } else { Vec::new() };
        comm.broadcast(&mut b, comm.size() - 1)?;
        if b.len() != n || b.iter().enumerate().any(|(i, &v)| v != (i % 251) as u8) {
            return Err(format!("broadcast of {n} bytes arrived wrong").into());
        }
    }
    comm.barrier()?;
    comm.agree("same", 0xDEAD_BEEF_0123_4567)?;
    if comm.size() > 1 {
        let fp = if comm.rank() == comm.size() - 1 { 1 } else { 2 };
        match comm.agree("different", fp) {
            Err(CommError::Mismatch { rank, .. }) if rank == comm.size() - 1 => {}
            other => return Err(format!("expected a mismatch naming the last rank, got {other:?}").into()),
        }
    }
    if comm.is_root() {
        println!("selftest ok on {} ranks", comm.size());
    }
    Ok(())
}

fn main() {
    latent_mpi::run(check);
}
