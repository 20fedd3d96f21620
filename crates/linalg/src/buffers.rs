//! A per-thread cache of large element buffers, so that training loops, which allocate and free
//! the same activation, gradient and scratch sizes every step, reuse warm memory instead of
//! returning it to the operating system and faulting it in again.
//!
//! [`Tensor4`](crate::Tensor4) storage comes from here and goes back here when a tensor is
//! dropped; the convolution kernels take their scratch matrices from here. Only buffers of at
//! least [`MIN_BYTES`] are cached (the system allocator serves small ones well); each thread keeps
//! at most [`max_bytes`] bytes (default [`DEFAULT_MAX_BYTES`]) in at most [`MAX_BUFFERS`] buffers,
//! dropping the oldest beyond that. A buffer is reused for a request of `n` elements when its
//! capacity is between `n` and `2n`. Contents are never observed: every taker clears or
//! overwrites what it takes, so results do not depend on the cache.
//!
//! Why: with glibc's default policy a step that frees a few megabytes trims the heap, and the next
//! step page-faults every page back in (measured on the conv autoencoder step of
//! `cargo xtask bench conv_ae_step`: 700 page faults per step, a fifth of its time).
//!
//! Crate-internal: only linalg's own kernels and [`Tensor4`](crate::Tensor4) take from and give
//! to the cache; other crates get warm memory through them without seeing it.

use crate::real::Real;
use std::cell::RefCell;
use std::mem::{ManuallyDrop, align_of, size_of};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Smallest buffer (in bytes) that is cached.
pub const MIN_BYTES: usize = 16 << 10;
/// Most buffers cached per thread.
pub const MAX_BUFFERS: usize = 256;
/// Default byte budget per thread.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

static MAX: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_BYTES);

/// Bytes each thread may keep cached (applies from the next [`give`]).
pub fn max_bytes() -> usize {
    MAX.load(Ordering::Relaxed)
}

#[cfg(test)]
/// Set the per-thread byte budget; 0 turns the cache off. Returns the previous value.
pub fn set_max_bytes(bytes: usize) -> usize {
    MAX.swap(bytes, Ordering::Relaxed)
}

/// A cached allocation, kept as a vector of a plain integer type of the same alignment (so that
/// it is freed correctly when evicted).
enum Raw {
    A4(Vec<u32>),
    A8(Vec<u64>),
}

impl Raw {
    fn bytes(&self) -> usize {
        match self {
            Raw::A4(v) => v.capacity() * 4,
            Raw::A8(v) => v.capacity() * 8,
        }
    }
    fn align(&self) -> usize {
        match self {
            Raw::A4(_) => 4,
            Raw::A8(_) => 8,
        }
    }
    /// The allocation as an empty `Vec<T>`; `T` must have this alignment and a size dividing
    /// [`Raw::bytes`] (checked by the caller).
    fn into_vec<T>(self) -> Vec<T> {
        let bytes = self.bytes();
        debug_assert!(align_of::<T>() == self.align() && size_of::<T>() > 0 && bytes.is_multiple_of(size_of::<T>()));
        let ptr = match self {
            Raw::A4(v) => ManuallyDrop::new(v).as_mut_ptr().cast::<T>(),
            Raw::A8(v) => ManuallyDrop::new(v).as_mut_ptr().cast::<T>(),
        };
        // SAFETY: `ptr` was allocated by the global allocator for `bytes` bytes with alignment
        // `align_of::<T>()`; `bytes / size_of::<T>()` elements of `T` occupy exactly those bytes,
        // and the length is 0, so nothing uninitialised is exposed.
        unsafe { Vec::from_raw_parts(ptr, 0, bytes / size_of::<T>()) }
    }
    /// Wrap the allocation of `v` (emptied first); `None` for alignments other than 4 and 8.
    fn from_vec<T>(mut v: Vec<T>) -> Option<Raw> {
        v.clear();
        let bytes = v.capacity() * size_of::<T>();
        let align = align_of::<T>();
        if size_of::<T>() == 0 || !(align == 4 || align == 8) || !bytes.is_multiple_of(align) {
            return None;
        }
        let ptr = ManuallyDrop::new(v).as_mut_ptr();
        // SAFETY: the allocation holds `bytes` bytes with alignment `align`, the same layout as
        // `bytes / align` elements of u32 (align 4) or u64 (align 8); length 0.
        unsafe {
            Some(match align {
                4 => Raw::A4(Vec::from_raw_parts(ptr.cast::<u32>(), 0, bytes / 4)),
                _ => Raw::A8(Vec::from_raw_parts(ptr.cast::<u64>(), 0, bytes / 8)),
            })
        }
    }
}

#[derive(Default)]
struct Cache {
    entries: Vec<Raw>,
    bytes: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// An empty vector with capacity for at least `n` elements, reused from this thread's cache when
/// one of a fitting size is there.
pub fn take<T: Real>(n: usize) -> Vec<T> {
    take_any(n)
}

pub(crate) fn take_any<T>(n: usize) -> Vec<T> {
    let size = size_of::<T>();
    let want = n.saturating_mul(size);
    if size > 0 && want >= MIN_BYTES {
        let hit = CACHE
            .try_with(|c| {
                let mut c = c.try_borrow_mut().ok()?;
                // newest first: the buffer given back last is the warmest
                let i = c.entries.iter().rposition(|e| {
                    let b = e.bytes();
                    e.align() == align_of::<T>() && b.is_multiple_of(size) && b >= want && b / 2 <= want
                })?;
                let e = c.entries.remove(i);
                c.bytes -= e.bytes();
                Some(e.into_vec::<T>())
            })
            .ok()
            .flatten();
        if let Some(v) = hit {
            return v;
        }
    }
    Vec::with_capacity(n)
}

/// A vector of `n` zeros, from the cache when possible.
pub fn zeros<T: Real>(n: usize) -> Vec<T> {
    filled(n, T::zero())
}

/// A vector of `n` copies of `value`, from the cache when possible.
pub fn filled<T: Real>(n: usize, value: T) -> Vec<T> {
    let mut v = take(n);
    v.resize(n, value);
    v
}

/// Hand a vector back to this thread's cache (or free it when it is small or the cache is full).
pub fn give<T: Real>(v: Vec<T>) {
    give_any(v);
}

pub(crate) fn give_any<T>(v: Vec<T>) {
    let bytes = v.capacity().saturating_mul(size_of::<T>());
    let max = max_bytes();
    if bytes < MIN_BYTES || bytes > max {
        return;
    }
    let Some(raw) = Raw::from_vec(v) else { return };
    let _ = CACHE.try_with(move |c| {
        let Ok(mut c) = c.try_borrow_mut() else { return };
        while !c.entries.is_empty() && (c.bytes + bytes > max || c.entries.len() >= MAX_BUFFERS) {
            let old = c.entries.remove(0);
            c.bytes -= old.bytes();
        }
        c.bytes += bytes;
        c.entries.push(raw);
    });
}

#[cfg(test)]
/// Free every buffer cached by this thread.
pub fn clear() {
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.entries.clear();
            c.bytes = 0;
        }
    });
}

#[cfg(test)]
/// Bytes cached by this thread.
pub fn cached_bytes() -> usize {
    CACHE.try_with(|c| c.try_borrow().map_or(0, |c| c.bytes)).unwrap_or(0)
}

/// A scratch vector that goes back to the cache when dropped.
#[derive(Debug, Default)]
pub struct Scratch<T: Real>(Vec<T>);

impl<T: Real> Scratch<T> {
    #[cfg(test)]
    /// An empty scratch vector (takes nothing from the cache until [`Scratch::zeroed`]).
    pub fn new() -> Self {
        Self(Vec::new())
    }
    #[cfg(test)]
    /// The vector resized to `n` elements, all zero (reusing the current or a cached buffer).
    pub fn zeroed(&mut self, n: usize) -> &mut Vec<T> {
        self.reserve(n);
        self.0.clear();
        self.0.resize(n, T::zero());
        &mut self.0
    }
    /// The vector resized to `n` elements, for a caller that overwrites all of them: elements
    /// kept from earlier use may hold stale values, new ones are zero.
    pub fn resized(&mut self, n: usize) -> &mut Vec<T> {
        self.reserve(n);
        self.0.resize(n, T::zero());
        &mut self.0
    }
    /// Swap in a cached buffer of capacity `n` when the current one is too small (contents are
    /// not carried over: both callers set every element they use).
    fn reserve(&mut self, n: usize) {
        if self.0.capacity() < n {
            give(std::mem::replace(&mut self.0, take(n)));
        }
    }
}

impl<T: Real> Drop for Scratch<T> {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The budget is global: tests that change it or rely on it run one at a time.
    static LOCK: Mutex<()> = Mutex::new(());

    fn bytes_of<T>(n: usize) -> usize {
        n * size_of::<T>()
    }

    #[test]
    fn reuses_fitting_buffers_only() {
        let _g = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clear();
        let v: Vec<f32> = take(100_000);
        let p = v.as_ptr();
        give(v);
        assert_eq!(cached_bytes(), bytes_of::<f32>(100_000));
        // a different element type does not take it
        let d: Vec<f64> = take(50_000);
        assert_ne!(d.as_ptr().cast::<f32>(), p);
        // far smaller requests do not take it
        let s: Vec<f32> = take(10_000);
        assert_ne!(s.as_ptr(), p);
        let w: Vec<f32> = take(60_000);
        assert_eq!(w.as_ptr(), p);
        assert!(w.is_empty());
        assert_eq!(cached_bytes(), 0);
    }

    #[test]
    fn budget_and_small_buffers() {
        let _g = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clear();
        give(vec![0f32; 10]);
        assert_eq!(cached_bytes(), 0);
        let old = set_max_bytes(bytes_of::<f32>(150_000));
        give(vec![0f32; 100_000]);
        give(vec![0f32; 100_000]);
        assert_eq!(cached_bytes(), bytes_of::<f32>(100_000));
        set_max_bytes(0);
        give(vec![0f32; 100_000]);
        assert_eq!(cached_bytes(), bytes_of::<f32>(100_000));
        set_max_bytes(old);
        clear();
        assert_eq!(cached_bytes(), 0);
    }

    #[test]
    fn scratch_zeroes_and_returns() {
        let _g = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clear();
        let mut s = Scratch::<f64>::new();
        s.zeroed(40_000).iter_mut().for_each(|e| *e = 1.0);
        assert!(s.zeroed(30_000).iter().all(|&e| e == 0.0));
        drop(s);
        assert!(cached_bytes() >= bytes_of::<f64>(40_000));
        clear();
    }
}
