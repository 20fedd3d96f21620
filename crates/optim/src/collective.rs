//! Collectives for data-parallel learning: the narrow [`Communicator`] trait the learners see,
//! the single-process implementation used by default ([`SingleProcess`]) and an in-process group
//! of threads ([`ThreadComm`]) that runs several ranks' logic in one process (tests, and a way to
//! check bit-identity without MPI). The MPI implementation lives in the separate `latent-mpi`
//! crate.
//!
//! # Bit-identity over rank counts
//!
//! A learner splits every global mini-batch into fixed-size **chunks** whose partition depends on
//! the batch only, never on the number of ranks. Rank `r` of `p` computes the contiguous block
//! of chunks [`chunk_range`]`(chunks, r, p)` and hands their partial results (each a vector of
//! the same length) to [`Communicator::sum_all_reduce`], whose contract is an **ordered** sum:
//! `((0 + c₀) + c₁) + … + c_{k−1}` over all chunks of all ranks, in chunk order, in `f64`. Every
//! implementation must produce exactly these bits (a gather followed by the ordered fold, or a
//! pipelined chain from rank 0 to rank `p − 1`), never a tree reduction whose order depends on
//! `p`. So 1, 2 or 3 ranks give the same sums, and the same learner state after every step.
//!
//! # Example
//! ```
//! use latent_optim::collective::{Communicator, SingleProcess, ThreadComm, chunk_range};
//! // two chunks of length 2
//! let chunks = [[1.0, 1e16], [1.0, -1e16]];
//! let single = SingleProcess.sum_all_reduce(&[1.0, 1e16, 1.0, -1e16], 2)?;
//! let threads = std::thread::scope(|s| {
//!     let hs: Vec<_> = ThreadComm::group(2)
//!         .into_iter()
//!         .map(|c| s.spawn(move || {
//!             let mine = chunk_range(2, c.rank(), c.size());
//!             let local: Vec<f64> = chunks[mine].iter().flatten().copied().collect();
//!             c.sum_all_reduce(&local, 2)
//!         }))
//!         .collect();
//!     hs.into_iter().map(|h| h.join().unwrap()).collect::<Result<Vec<_>, _>>()
//! })?;
//! assert_eq!(threads[0], single);
//! assert_eq!(threads[1], single);
//! # Ok::<(), latent_optim::collective::CommError>(())
//! ```

use std::ops::Range;
use std::sync::{Arc, Barrier, Mutex};

/// What can go wrong in a collective operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommError {
    /// The transport failed (MPI error, a peer that went away).
    #[error("collective {op} failed on rank {rank}: {detail}")]
    Transport {
        /// The collective.
        op: &'static str,
        /// The rank that saw the failure.
        rank: usize,
        /// What happened.
        detail: String,
    },
    /// A rank's contribution does not fit (e.g. a length that is not a multiple of the chunk
    /// length, or lengths that differ between ranks).
    #[error("collective {op} on rank {rank}: {detail}")]
    Length {
        /// The collective.
        op: &'static str,
        /// The rank whose contribution is wrong.
        rank: usize,
        /// What disagrees.
        detail: String,
    },
    /// Ranks disagree on something they must share (parameters, data, model): found by the
    /// start-up fingerprint exchange ([`Communicator::agree`]).
    #[error("rank {rank} disagrees with rank 0 about the {what}: fingerprint {theirs:016x} instead of {ours:016x}")]
    Mismatch {
        /// What was compared.
        what: String,
        /// The first rank that differs from rank 0.
        rank: usize,
        /// Rank 0's fingerprint.
        ours: u64,
        /// That rank's fingerprint.
        theirs: u64,
    },
}

/// `Result` with [`CommError`].
pub type CommResult<T> = std::result::Result<T, CommError>;

/// The contiguous block of chunks rank `rank` of `size` computes: chunks
/// `⌊k·r/p⌋ .. ⌊k·(r+1)/p⌋`. The blocks cover `0..chunks` in rank order (some may be empty when
/// there are more ranks than chunks).
pub fn chunk_range(chunks: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let rank = rank.min(size - 1);
    (chunks * rank / size)..(chunks * (rank + 1) / size)
}

/// The collectives a data-parallel learner needs.
///
/// | method | required | meaning |
/// |---|---|---|
/// | `rank`, `size` | yes | this process's rank in `0..size` |
/// | `sum_all_reduce` | yes | the ordered chunk sum (see the [module docs](self)) on every rank |
/// | `broadcast` | yes | root's bytes to every rank |
/// | `barrier` | yes | wait for every rank |
/// | `agree` | provided | start-up fingerprint exchange: refuse ranks that disagree |
/// | `is_root`, `my_chunks` | provided | `rank == 0`; [`chunk_range`] for this rank |
///
/// All ranks must call the same collectives in the same order. A rank that fails between
/// collectives must end the job (the MPI driver aborts it), or the others wait for it.
pub trait Communicator {
    /// This process's rank, in `0..size()`.
    fn rank(&self) -> usize;

    /// Number of ranks.
    fn size(&self) -> usize;

    /// The ordered sum of every rank's chunk partials. `local` holds this rank's chunks (its
    /// block of [`chunk_range`], possibly none), each `chunk_len` values, concatenated; the
    /// result (on every rank, `chunk_len` values) is `((0 + c₀) + c₁) + …` over all chunks of all
    /// ranks in rank, then chunk, order, added in `f64` — the same bits whatever the number of
    /// ranks.
    ///
    /// # Errors
    /// [`CommError::Length`] when `local.len()` is not a multiple of `chunk_len` (or ranks pass
    /// different `chunk_len`), [`CommError::Transport`] when the transport fails.
    fn sum_all_reduce(&self, local: &[f64], chunk_len: usize) -> CommResult<Vec<f64>>;

    /// Replace `bytes` on every rank by `root`'s (resized to its length).
    ///
    /// # Errors
    /// [`CommError::Transport`]; [`CommError::Length`] for a `root` outside `0..size()`.
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> CommResult<()>;

    /// Wait until every rank has called it.
    ///
    /// # Errors
    /// [`CommError::Transport`].
    fn barrier(&self) -> CommResult<()>;

    /// `true` on rank 0 (the rank that writes files and draws progress bars).
    fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// This rank's block of `chunks` chunks ([`chunk_range`]).
    fn my_chunks(&self, chunks: usize) -> Range<usize> {
        chunk_range(chunks, self.rank(), self.size())
    }

    /// Start-up check that every rank has the same `fingerprint` of `what` (parameters, data
    /// shape and hash, model hash): rank 0's value is broadcast and every rank compares; the
    /// ranks then learn, through an ordered sum of flags, the first rank that differs.
    ///
    /// # Errors
    /// [`CommError::Mismatch`] on **every** rank, naming the first rank whose fingerprint
    /// differs from rank 0's and both values; transport errors.
    fn agree(&self, what: &str, fingerprint: u64) -> CommResult<()> {
        let mut root = fingerprint.to_le_bytes().to_vec();
        self.broadcast(&mut root, 0)?;
        let ours = u64::from_le_bytes(root.as_slice().try_into().map_err(|_| CommError::Length {
            op: "agree",
            rank: self.rank(),
            detail: format!("rank 0 sent {} bytes, expected 8", root.len()),
        })?);
        // One chunk per rank: [differs, fingerprint high 32 bits, low 32 bits], exact in f64.
        let differs = fingerprint != ours;
        let me = [f64::from(u8::from(differs)), (fingerprint >> 32) as f64, (fingerprint & 0xFFFF_FFFF) as f64];
        // Every rank's flag lands in its own slot: a one-hot vector per rank, summed in order.
        let p = self.size();
        let mut local = vec![0.0; 3 * p];
        local[3 * self.rank()..3 * self.rank() + 3].copy_from_slice(&me);
        let all = self.sum_all_reduce(&local, 3 * p)?;
        for r in 0..p {
            if all[3 * r] != 0.0 {
                let theirs = ((all[3 * r + 1] as u64) << 32) | all[3 * r + 2] as u64;
                return Err(CommError::Mismatch { what: what.to_string(), rank: r, ours, theirs });
            }
        }
        Ok(())
    }
}

impl<C: Communicator + ?Sized> Communicator for &C {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn sum_all_reduce(&self, local: &[f64], chunk_len: usize) -> CommResult<Vec<f64>> {
        (**self).sum_all_reduce(local, chunk_len)
    }
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> CommResult<()> {
        (**self).broadcast(bytes, root)
    }
    fn barrier(&self) -> CommResult<()> {
        (**self).barrier()
    }
}

/// The ordered fold `((0 + c₀) + c₁) + …` of `chunk_len`-long chunks concatenated in `data`,
/// added into `acc` (whose length is `chunk_len`). The one summation every implementation of
/// [`Communicator::sum_all_reduce`] uses.
///
/// # Errors
/// [`CommError::Length`] when `data.len()` is not a multiple of `acc.len()`.
pub fn fold_chunks(acc: &mut [f64], data: &[f64], rank: usize) -> CommResult<()> {
    let n = acc.len();
    if n == 0 {
        return if data.is_empty() {
            Ok(())
        } else {
            Err(CommError::Length { op: "sum_all_reduce", rank, detail: "chunk length 0 with data".into() })
        };
    }
    if !data.len().is_multiple_of(n) {
        return Err(CommError::Length {
            op: "sum_all_reduce",
            rank,
            detail: format!("{} values are not whole chunks of {n}", data.len()),
        });
    }
    for chunk in data.chunks_exact(n) {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    Ok(())
}

/// This rank's contribution to [`Communicator::sum_all_reduce`], built chunk by chunk as the
/// learner computes its chunks, so a learner need not hold them all.
///
/// The ordered sum starts from zero and adds chunk 0 first, so the rank whose block starts at
/// chunk 0 (rank 0, or every rank of one) **folds** its chunks as they come into one vector —
/// `((0 + c₀) + c₁) + …`, exactly the bits the collective would produce for them — and hands
/// that single prefix to the collective (whose `0 + prefix` is exact: the prefix is never `−0`).
/// The other ranks cannot add before they receive the prefix, so they keep their chunks until
/// the sum. One process ([`SingleProcess`]) therefore needs one vector of `chunk_len` values per
/// step, not one per chunk, and the result is the same bits for any number of ranks.
///
/// | method | meaning |
/// |---|---|
/// | [`ChunkPartials::new`] | for this rank's block of `chunks` chunks of `chunk_len` values |
/// | [`ChunkPartials::begin_chunk`] | the next chunk of the block starts |
/// | [`ChunkPartials::extend_mapped`], [`ChunkPartials::push`] | its values, in order |
/// | [`ChunkPartials::sum_all_reduce`] | the ordered sum over all ranks |
///
/// # Example
/// ```
/// use latent_optim::collective::{ChunkPartials, Communicator, SingleProcess, run_threads};
/// let chunks: [[f32; 2]; 3] = [[1.0, 1e8], [1.0, -1e8], [0.5, 3.0]];
/// let sum = |c: &dyn Communicator| {
///     let mut parts = ChunkPartials::new(c, chunks.len(), 3);
///     for k in c.my_chunks(chunks.len()) {
///         parts.begin_chunk();
///         parts.extend_mapped(&chunks[k], |v| f64::from(v) * 0.5);
///         parts.push(k as f64);
///     }
///     parts.sum_all_reduce(c)
/// };
/// let one = sum(&SingleProcess)?;
/// assert_eq!(one, vec![1.25, 1.5, 3.0]);
/// for r in run_threads(3, |c| sum(&c)) {
///     assert_eq!(r?, one);
/// }
/// # Ok::<(), latent_optim::collective::CommError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkPartials {
    chunk_len: usize,
    /// This rank's block starts at chunk 0: fold into `data` (`chunk_len` values).
    fold: bool,
    data: Vec<f64>,
    /// Values written into the current chunk.
    at: usize,
    /// Chunks begun.
    chunks: usize,
    /// The first chunk whose length was wrong, and that length.
    bad: Option<(usize, usize)>,
}

impl ChunkPartials {
    /// Partials for `comm`'s block ([`Communicator::my_chunks`]) of `chunks` chunks, each
    /// `chunk_len` values.
    pub fn new(comm: &dyn Communicator, chunks: usize, chunk_len: usize) -> Self {
        let mine = comm.my_chunks(chunks);
        let fold = mine.start == 0 && !mine.is_empty();
        let data = if fold { vec![0.0; chunk_len] } else { Vec::with_capacity(mine.len() * chunk_len) };
        ChunkPartials { chunk_len, fold, data, at: 0, chunks: 0, bad: None }
    }

    /// `true` when this rank folds its chunks into one vector as they come (its block starts at
    /// chunk 0).
    pub fn folds(&self) -> bool {
        self.fold
    }

    fn close_chunk(&mut self) {
        if self.chunks > 0 && self.at != self.chunk_len && self.bad.is_none() {
            self.bad = Some((self.chunks - 1, self.at));
        }
    }

    /// The next chunk of this rank's block starts (chunks come in block order).
    pub fn begin_chunk(&mut self) {
        self.close_chunk();
        self.chunks += 1;
        self.at = 0;
    }

    /// Append `f(v)` for every `v` of `src` to the current chunk.
    pub fn extend_mapped<S: Copy>(&mut self, src: &[S], f: impl Fn(S) -> f64) {
        if self.fold {
            let end = (self.at + src.len()).min(self.chunk_len);
            let dst = &mut self.data[self.at.min(end)..end];
            for (a, &v) in dst.iter_mut().zip(src) {
                *a += f(v);
            }
        } else {
            self.data.extend(src.iter().map(|&v| f(v)));
        }
        self.at += src.len();
    }

    /// Append one value to the current chunk.
    pub fn push(&mut self, v: f64) {
        self.extend_mapped(&[v], |v| v);
    }

    /// The ordered sum ([`Communicator::sum_all_reduce`]) of every rank's chunks: `chunk_len`
    /// values on every rank, the same bits as the collective on the chunks themselves.
    ///
    /// # Errors
    /// [`CommError::Length`] when a chunk did not get exactly `chunk_len` values; the
    /// collective's errors.
    pub fn sum_all_reduce(mut self, comm: &dyn Communicator) -> CommResult<Vec<f64>> {
        self.close_chunk();
        if let Some((k, got)) = self.bad {
            return Err(CommError::Length {
                op: "sum_all_reduce",
                rank: comm.rank(),
                detail: format!("chunk {k} of this rank has {got} values, not {}", self.chunk_len),
            });
        }
        if self.fold && self.chunks == 0 {
            self.data.clear();
        }
        comm.sum_all_reduce(&self.data, self.chunk_len)
    }
}

/// One process, rank 0 of 1: every collective is local. The default of every learner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_all_reduce(&self, local: &[f64], chunk_len: usize) -> CommResult<Vec<f64>> {
        let mut acc = vec![0.0; chunk_len];
        fold_chunks(&mut acc, local, 0)?;
        Ok(acc)
    }
    fn broadcast(&self, _bytes: &mut Vec<u8>, root: usize) -> CommResult<()> {
        if root != 0 {
            return Err(CommError::Length { op: "broadcast", rank: 0, detail: format!("root {root} of 1 rank") });
        }
        Ok(())
    }
    fn barrier(&self) -> CommResult<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct Shared {
    barrier: Barrier,
    floats: Mutex<Vec<Vec<f64>>>,
    bytes: Mutex<Vec<u8>>,
}

/// One rank of an in-process group of threads ([`ThreadComm::group`]): the collectives go
/// through shared memory with the same ordered-sum contract as MPI, so a test can run 2 or 3
/// "ranks" as threads and compare their results bit for bit with one process. Every rank must
/// run on its own thread; a rank that panics leaves the others waiting (tests only).
#[derive(Debug, Clone)]
pub struct ThreadComm {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl ThreadComm {
    /// `size` connected ranks (`size >= 1`; 0 is taken as 1), rank `i` at index `i`.
    pub fn group(size: usize) -> Vec<ThreadComm> {
        let size = size.max(1);
        let shared = Arc::new(Shared {
            barrier: Barrier::new(size),
            floats: Mutex::new(vec![Vec::new(); size]),
            bytes: Mutex::new(Vec::new()),
        });
        (0..size).map(|rank| ThreadComm { rank, size, shared: Arc::clone(&shared) }).collect()
    }

    fn poisoned(&self, op: &'static str) -> CommError {
        CommError::Transport { op, rank: self.rank, detail: "another rank panicked".into() }
    }
}

impl Communicator for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn sum_all_reduce(&self, local: &[f64], chunk_len: usize) -> CommResult<Vec<f64>> {
        let op = "sum_all_reduce";
        {
            let mut slots = self.shared.floats.lock().map_err(|_| self.poisoned(op))?;
            slots[self.rank] = local.to_vec();
        }
        self.shared.barrier.wait();
        let result = {
            let slots = self.shared.floats.lock().map_err(|_| self.poisoned(op))?;
            let mut acc = vec![0.0; chunk_len];
            slots.iter().enumerate().try_for_each(|(r, s)| fold_chunks(&mut acc, s, r)).map(|()| acc)
        };
        self.shared.barrier.wait();
        result
    }
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> CommResult<()> {
        let op = "broadcast";
        if root >= self.size {
            return Err(CommError::Length {
                op,
                rank: self.rank,
                detail: format!("root {root} of {} ranks", self.size),
            });
        }
        if self.rank == root {
            *self.shared.bytes.lock().map_err(|_| self.poisoned(op))? = bytes.clone();
        }
        self.shared.barrier.wait();
        if self.rank != root {
            bytes.clone_from(&*self.shared.bytes.lock().map_err(|_| self.poisoned(op))?);
        }
        self.shared.barrier.wait();
        Ok(())
    }
    fn barrier(&self) -> CommResult<()> {
        self.shared.barrier.wait();
        Ok(())
    }
}

/// Run `f` on every rank of a [`ThreadComm`] group of `size` threads and collect the results in
/// rank order (a panic in a rank is resumed on the caller).
pub fn run_threads<R: Send>(size: usize, f: impl Fn(ThreadComm) -> R + Sync) -> Vec<R> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = ThreadComm::group(size).into_iter().map(|c| s.spawn(move || f(c))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// FNV-1a 64-bit hash of bytes: the fingerprints exchanged by [`Communicator::agree`].
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A fingerprint of numbers for [`Communicator::agree`] (a data set's shape and values): four
/// independent multiply–xor lanes over 64-bit words, folded with [`fnv1a`] at the end. Each step
/// is a bijection of its lane, so changing any one word changes the result; it is several times
/// faster than byte-wise [`fnv1a`] on large data. Not a cryptographic hash.
///
/// # Example
/// ```
/// use latent_optim::collective::Fingerprint;
/// let data = [0.5f32, 1.0, -2.0, 3.5, 7.0];
/// let mut a = Fingerprint::new();
/// a.word(data.len() as u64);
/// a.words(&data, |v| u64::from(v.to_bits()));
/// let mut b = Fingerprint::new();
/// b.word(data.len() as u64);
/// b.words(&[0.5f32, 1.0, -2.0, 3.5, 7.5], |v| u64::from(v.to_bits()));
/// assert_ne!(a.finish(), b.finish());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    lanes: [u64; 4],
    words: u64,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprint {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    /// An empty fingerprint.
    pub fn new() -> Self {
        Fingerprint {
            lanes: [0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4, 0x2325_cbf2_9ce4_8422, 0x9ce4_8422_2325_cbf2],
            words: 0,
        }
    }

    /// Add one word.
    pub fn word(&mut self, w: u64) {
        let lane = &mut self.lanes[(self.words % 4) as usize];
        *lane = (*lane ^ w).wrapping_mul(Self::K);
        self.words += 1;
    }

    /// Add `bits(v)` for every `v` of `values`, in order.
    pub fn words<V: Copy>(&mut self, values: &[V], bits: impl Fn(V) -> u64) {
        let mut rest = values;
        // align to lane 0 so the four-lane loop below sees words in the order `word` would
        while !self.words.is_multiple_of(4) {
            let Some((&v, tail)) = rest.split_first() else { return };
            self.word(bits(v));
            rest = tail;
        }
        let mut quads = rest.chunks_exact(4);
        for q in &mut quads {
            for (lane, &v) in self.lanes.iter_mut().zip(q) {
                *lane = (*lane ^ bits(v)).wrapping_mul(Self::K);
            }
        }
        self.words += (rest.len() / 4 * 4) as u64;
        for &v in quads.remainder() {
            self.word(bits(v));
        }
    }

    /// The 64-bit fingerprint.
    pub fn finish(&self) -> u64 {
        let mut bytes = [0u8; 40];
        for (i, l) in self.lanes.iter().chain([&self.words]).enumerate() {
            bytes[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
        }
        fnv1a(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_ranges_cover_in_rank_order() {
        for chunks in 0..20 {
            for size in 1..6 {
                let mut next = 0;
                for r in 0..size {
                    let range = chunk_range(chunks, r, size);
                    assert_eq!(range.start, next);
                    next = range.end;
                }
                assert_eq!(next, chunks);
            }
        }
    }

    /// Sums whose value depends on the order of addition come out the same on 1, 2, 3 ranks.
    #[test]
    fn ordered_sum_is_bit_identical_over_rank_counts() {
        let chunks: Vec<Vec<f64>> = (0..7)
            .map(|c| (0..5).map(|i| ((c * 31 + i * 7) % 13) as f64 * 10f64.powi((c % 4) * 5) - 3.3).collect())
            .collect();
        let flat: Vec<f64> = chunks.iter().flatten().copied().collect();
        let one = SingleProcess.sum_all_reduce(&flat, 5).unwrap();
        for size in 1..=4 {
            let results = run_threads(size, |c| {
                let mine: Vec<f64> = chunks[c.my_chunks(chunks.len())].iter().flatten().copied().collect();
                c.sum_all_reduce(&mine, 5).unwrap()
            });
            for r in results {
                assert_eq!(
                    r.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    one.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Chunks built with `ChunkPartials` (folded on the rank that holds chunk 0, kept on the
        /// others) sum to the bits of the collective on the chunks themselves, for 1–4 ranks,
        /// with cancellation, signed zeros and values of very different magnitude.
        #[test]
        fn chunk_partials_match_the_ordered_sum(
            k in 0usize..7,
            len in 1usize..6,
            raw in proptest::collection::vec((-3i32..4, -30i32..30, proptest::bool::ANY), 42),
        ) {
            let chunks: Vec<Vec<f32>> = (0..k)
                .map(|c| (0..len).map(|i| {
                    let (m, e, neg_zero) = raw[(c * len + i) % raw.len()];
                    if neg_zero && m == 0 { -0.0 } else { m as f32 * 2f32.powi(e) }
                }).collect())
                .collect();
            let weight = 1.0 / 3.0;
            let flat: Vec<f64> = chunks.iter()
                .flat_map(|c| c.iter().map(|&v| f64::from(v) * weight).chain([c.len() as f64]))
                .collect();
            let one = SingleProcess.sum_all_reduce(&flat, len + 1).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for size in 1..=4 {
                let results = run_threads(size, |c| {
                    let mut parts = ChunkPartials::new(&c, k, len + 1);
                    for j in c.my_chunks(k) {
                        parts.begin_chunk();
                        parts.extend_mapped(&chunks[j], |v| f64::from(v) * weight);
                        parts.push(len as f64);
                    }
                    parts.sum_all_reduce(&c).unwrap()
                });
                for r in results {
                    proptest::prop_assert_eq!(bits(&r), bits(&one));
                }
            }
        }
    }

    #[test]
    fn chunk_partials_refuse_a_chunk_of_the_wrong_length() {
        for size in 1..=2 {
            let out = run_threads(size, |c| {
                let mut parts = ChunkPartials::new(&c, 2, 3);
                for _ in c.my_chunks(2) {
                    parts.begin_chunk();
                    parts.extend_mapped(&[1.0f64, 2.0], |v| v);
                }
                // every rank calls the collective; the short chunks are refused before it
                parts.sum_all_reduce(&c)
            });
            for r in out {
                assert!(matches!(r, Err(CommError::Length { op: "sum_all_reduce", .. })), "{r:?}");
            }
        }
    }

    #[test]
    fn fingerprint_sees_every_word_and_its_place() {
        let data: Vec<u64> = (0..23).map(|i| i * 0x1234_5678_9abc).collect();
        let whole = {
            let mut f = Fingerprint::new();
            f.words(&data, |v| v);
            f.finish()
        };
        // fed in pieces of any size: the same value
        for cut in 0..data.len() {
            let single = (cut + 3).min(data.len());
            let mut f = Fingerprint::new();
            f.words(&data[..cut], |v| v);
            for &v in &data[cut..single] {
                f.word(v);
            }
            f.words(&data[single..], |v| v);
            assert_eq!(f.finish(), whole, "cut {cut}");
        }
        for i in 0..data.len() {
            let mut changed = data.clone();
            changed[i] ^= 1 << (i % 64);
            let mut f = Fingerprint::new();
            f.words(&changed, |v| v);
            assert_ne!(f.finish(), whole, "word {i}");
        }
        let mut swapped = data.clone();
        swapped.swap(0, 4);
        let mut f = Fingerprint::new();
        f.words(&swapped, |v| v);
        assert_ne!(f.finish(), whole);
    }

    #[test]
    fn broadcast_and_agree() {
        let out = run_threads(3, |c| {
            let mut b = if c.rank() == 1 { b"hello".to_vec() } else { Vec::new() };
            c.broadcast(&mut b, 1).unwrap();
            c.barrier().unwrap();
            let same = c.agree("parameters", 42);
            let diff = c.agree("data", if c.rank() == 2 { 7 } else { 9 });
            (b, same, diff)
        });
        for (b, same, diff) in out {
            assert_eq!(b, b"hello");
            assert_eq!(same, Ok(()));
            assert_eq!(diff, Err(CommError::Mismatch { what: "data".into(), rank: 2, ours: 9, theirs: 7 }));
        }
        assert!(SingleProcess.agree("x", u64::MAX).is_ok());
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(matches!(SingleProcess.sum_all_reduce(&[1.0, 2.0, 3.0], 2), Err(CommError::Length { .. })));
        assert!(SingleProcess.broadcast(&mut Vec::new(), 1).is_err());
        assert_eq!(SingleProcess.sum_all_reduce(&[], 3).unwrap(), vec![0.0; 3]);
    }
}
