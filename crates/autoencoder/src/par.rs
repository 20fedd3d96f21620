//! Element-wise helpers that go parallel on large slices. Element-wise maps give the same bits
//! whatever the split; reductions use fixed-size chunks summed in order, so every result is
//! independent of the number of rayon threads.

use latent_linalg::Real;
use rayon::prelude::*;

/// Element count from which element-wise work goes parallel.
pub(crate) const PAR_MIN: usize = 1 << 15;
/// Fixed chunk length of parallel work.
pub(crate) const CHUNK: usize = 1 << 13;

/// Whether `n` elements go parallel; if so, the pool's other threads are kept awake for the
/// loops that follow (see `latent_linalg::product::keep_warm`).
fn go_parallel(n: usize) -> bool {
    let par = n >= PAR_MIN && rayon::current_num_threads() > 1;
    if par {
        latent_linalg::product::keep_warm();
    }
    par
}

/// `x ← f(x)`.
pub(crate) fn map_inplace<T: Real>(x: &mut [T], f: impl Fn(T) -> T + Sync + Send) {
    if go_parallel(x.len()) {
        x.par_chunks_mut(CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
    } else {
        x.iter_mut().for_each(|v| *v = f(*v));
    }
}

/// `out ← f(a, b)` element-wise.
pub(crate) fn zip2<T: Real>(out: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync + Send) {
    let kernel = |o: &mut [T], a: &[T], b: &[T]| {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = f(a, b);
        }
    };
    if go_parallel(out.len()) {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .zip(b.par_chunks(CHUNK))
            .for_each(|((o, a), b)| kernel(o, a, b));
    } else {
        kernel(out, a, b);
    }
}

/// `x ← f(x, a)` element-wise.
pub(crate) fn zip1<T: Real>(x: &mut [T], a: &[T], f: impl Fn(T, T) -> T + Sync + Send) {
    let kernel = |x: &mut [T], a: &[T]| {
        for (x, &a) in x.iter_mut().zip(a) {
            *x = f(*x, a);
        }
    };
    if go_parallel(x.len()) {
        x.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).for_each(|(x, a)| kernel(x, a));
    } else {
        kernel(x, a);
    }
}

/// `Σ f(aᵢ, bᵢ)` accumulated in `f64`, chunk by chunk in a fixed order.
pub(crate) fn sum2<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> f64 + Sync + Send) -> f64 {
    let kernel = |a: &[T], b: &[T]| -> f64 {
        let mut acc = [0.0f64; 4];
        let mut it = a.chunks_exact(4).zip(b.chunks_exact(4));
        for (ca, cb) in &mut it {
            for l in 0..4 {
                acc[l] += f(ca[l], cb[l]);
            }
        }
        let tail = a.len() / 4 * 4;
        let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for i in tail..a.len().min(b.len()) {
            s += f(a[i], b[i]);
        }
        s
    };
    let parts: Vec<f64> = if go_parallel(a.len()) {
        a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)).map(|(a, b)| kernel(a, b)).collect()
    } else {
        a.chunks(CHUNK).zip(b.chunks(CHUNK)).map(|(a, b)| kernel(a, b)).collect()
    };
    parts.into_iter().sum()
}

/// `Σ f(aᵢ)` in `f64`, chunk by chunk in a fixed order.
pub(crate) fn sum1<T: Real>(a: &[T], f: impl Fn(T) -> f64 + Sync + Send) -> f64 {
    sum2(a, a, |x, _| f(x))
}

/// Column sums of a row-major `rows × cols` matrix added into `out` (length `cols`), row by row
/// in order.
pub(crate) fn add_col_sums<T: Real>(m: &[T], cols: usize, out: &mut [T]) {
    if cols == 0 {
        return;
    }
    for row in m.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// Per-channel sums of an `(N, C, P)` block (`P = H·W`) added into `out` (length `C`), sample by
/// sample in order.
pub(crate) fn add_channel_sums<T: Real>(m: &[T], c: usize, p: usize, out: &mut [T]) {
    if c == 0 || p == 0 {
        return;
    }
    for sample in m.chunks_exact(c * p) {
        for (o, plane) in out.iter_mut().zip(sample.chunks_exact(p)) {
            *o += latent_linalg::ops::sum_lanes(plane);
        }
    }
}
