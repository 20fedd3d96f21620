//! Dense products: one function family (alpha/beta, transposes, matrix–vector, batched) over
//! the fastest kernel on this machine.
//!
//! Every product computes `C ← α·op(A)·op(B) + β·C`. Behind it sits the `gemm` crate (runtime CPU
//! feature detection, AVX2/FMA/AVX-512 micro-kernels) sharing the global rayon pool; small
//! products and products issued inside a `serial` section (the per-item work of a parallel
//! loop) stay sequential so that nested parallel code does not oversubscribe the cores. With
//! `β = 0`, `C` is overwritten and any NaN it held is ignored (BLAS semantics). Empty operands are valid (a product with inner
//! dimension 0 is `β·C`), as in NumPy.

use crate::error::{LinalgError, Result, mismatch};
use crate::real::Real;
use nalgebra::{DMatrix, DVector};

/// Whether an operand enters a product as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trans {
    /// As stored.
    #[default]
    N,
    /// Transposed.
    T,
}

/// Products with fewer multiply–adds than this run on one thread.
pub const PARALLEL_THRESHOLD: usize = 48 * 48 * 48;

thread_local! {
    static SERIAL_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Run `f` as the per-item work of a parallel loop: products (and other kernels that ask
/// [`in_serial_section`]) inside it stay on the calling thread. Results do not depend on it;
/// only how the work is split does. Crate-internal: linalg's kernels decide how they split
/// their own work.
pub(crate) fn serial<R>(f: impl FnOnce() -> R) -> R {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            SERIAL_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    SERIAL_DEPTH.with(|d| d.set(d.get() + 1));
    let _guard = Guard;
    f()
}

/// Whether the calling thread is running the per-item work of one of linalg's parallel loops (a
/// convolution's per-image work, say). Code that may be called from there — an optimizer step
/// inside a training loop, for instance — should then not split its own work across threads.
///
/// # Example
/// ```
/// use latent_linalg::product::in_serial_section;
/// assert!(!in_serial_section()); // the main thread is not inside linalg's per-item work
/// ```
pub fn in_serial_section() -> bool {
    SERIAL_DEPTH.with(std::cell::Cell::get) > 0
}

/// Make the calling thread one of the `threads` threads of the global rayon pool (default: the
/// `RAYON_NUM_THREADS` environment variable, else every core), so that a training loop running on
/// it takes part in its own parallel loops instead of waiting for them: with 2 cores, 2 threads
/// in all rather than 2 workers plus a waiting caller. Call it once, early in `main`, before
/// anything else uses rayon.
///
/// # Errors
/// [`LinalgError::InvalidParameter`] when the global pool already exists.
pub fn init_threads(threads: Option<usize>) -> Result<()> {
    let mut b = rayon::ThreadPoolBuilder::new().use_current_thread();
    if let Some(t) = threads {
        b = b.num_threads(t);
    }
    b.build_global().map_err(|e| LinalgError::InvalidParameter {
        op: "init_threads",
        name: "global pool",
        value: e.to_string(),
        reason: "must be called before rayon is first used",
    })
}

/// Default of [`spin_micros`] outside a [`TrainingScope`]: 0, keeping warm is off (see
/// [`keep_warm`] for why).
pub const DEFAULT_SPIN_MICROS: u64 = 0;

/// Default of [`spin_micros`] while a [`TrainingScope`] is open: 5 ms (see [`keep_warm`]).
pub const TRAINING_SPIN_MICROS: u64 = 5_000;

static SPIN_ENV: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
static SPINNERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static TRAINING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How long, in microseconds, [`keep_warm`] keeps the pool's other threads looking for work
/// before they may sleep: the environment variable `LATENT_SPIN_US` when set (read once; at most
/// ten seconds; `0` turns keeping warm off everywhere), else [`TRAINING_SPIN_MICROS`] while a
/// [`TrainingScope`] is open anywhere in the process and [`DEFAULT_SPIN_MICROS`] (off) otherwise.
///
/// # Example
/// ```
/// assert!(latent_linalg::product::spin_micros() <= 10_000_000);
/// ```
pub fn spin_micros() -> u64 {
    let env = *SPIN_ENV.get_or_init(|| {
        std::env::var("LATENT_SPIN_US").ok().and_then(|v| v.trim().parse::<u64>().ok()).map(|v| v.min(10_000_000))
    });
    match env {
        Some(v) => v,
        None if TRAINING.load(std::sync::atomic::Ordering::Relaxed) > 0 => TRAINING_SPIN_MICROS,
        None => DEFAULT_SPIN_MICROS,
    }
}

/// While alive, [`keep_warm`] keeps the pool's other threads awake for
/// [`TRAINING_SPIN_MICROS`] between parallel loops (unless `LATENT_SPIN_US` says otherwise). The
/// training steps of `latent-autoencoder` and `latent-unet` open one: a step is a chain of short
/// parallel loops, the case keeping warm is for. Scopes nest and may be opened on any thread.
///
/// # Example
/// ```
/// use latent_linalg::product::{TRAINING_SPIN_MICROS, TrainingScope, spin_micros};
/// // (outside any scope, and with no other thread in one, it is DEFAULT_SPIN_MICROS: off)
/// if std::env::var("LATENT_SPIN_US").is_err() {
///     let _scope = TrainingScope::new();
///     assert_eq!(spin_micros(), TRAINING_SPIN_MICROS);
/// }
/// ```
#[derive(Debug)]
pub struct TrainingScope(());

impl TrainingScope {
    /// Open a scope (see the type's documentation).
    pub fn new() -> Self {
        TRAINING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TrainingScope(())
    }
}

impl Default for TrainingScope {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TrainingScope {
    fn drop(&mut self) {
        TRAINING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Keep the other threads of the calling thread's rayon pool awake for the next parallel loop,
/// for [`spin_micros`] (5 ms inside a [`TrainingScope`], off elsewhere; `LATENT_SPIN_US` sets
/// it for the whole process).
///
/// Why: rayon lets an idle worker yield 32 times and then sleep on a futex; the next parallel
/// loop must wake it (a system call and a scheduler wake-up). A training step is a chain of
/// parallel loops separated by short sequential work, so the second thread falls asleep and is
/// woken several times per step. OpenMP runtimes spin for the same reason (`GOMP_SPINCOUNT`,
/// `KMP_BLOCKTIME`).
///
/// What it does: when called on a pool's thread 0 (the main thread after [`init_threads`]), it
/// hands the pool one job per other thread (at most) that runs pending
/// rayon work as it appears (`rayon::yield_now`) and returns once it has found none for
/// [`spin_micros`]; then the thread idles as rayon would. Work is split as before, so results do
/// not change; only who waits how changes. linalg's parallel kernels (direct convolutions, the
/// convolutions' GEMM paths, parallel products) call it before their parallel loops.
///
/// Why only in training steps (measured 2026-12-06 on the project's 2-core Zen 4 VM, see
/// `docs/bench-stability.md`): in some periods of minutes a sleeping worker takes long to wake
/// (the hypervisor must reschedule its idle virtual CPU); then `conv_ae_step` ran at 5.1–5.3 ms
/// without spinning and 2.7–2.9 ms with 5 ms of spinning (1 ms was not enough), `ae_mlp` and
/// `unet_step` gained a little; but the sparse-coding solvers (OMP, online dictionary learning,
/// lasso) ran 5–14 % *slower* with spinning, so outside training steps it stays off.
///
/// # Example
/// ```
/// latent_linalg::product::keep_warm(); // off by default; no effect outside a rayon pool thread
/// ```
pub fn keep_warm() {
    keep_warm_for(spin_micros());
}

/// [`keep_warm`] for `micros` microseconds (0: nothing).
fn keep_warm_for(micros: u64) {
    use std::sync::atomic::Ordering;
    if micros == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    // only thread 0 asks (the main thread after `init_threads`): a spinner asked for by another
    // thread could be picked up by thread 0 and hold it back while its own work is ready
    if rayon::current_thread_index() != Some(0) || threads < 2 || in_serial_section() {
        return;
    }
    if SPINNERS.fetch_add(1, Ordering::AcqRel) >= threads - 1 {
        SPINNERS.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            SPINNERS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
    rayon::spawn(move || {
        let _done = Done;
        // picked up by thread 0 itself (it waited for other work and found this): nothing to
        // keep awake here
        if rayon::current_thread_index() == Some(0) {
            return;
        }
        let budget = std::time::Duration::from_micros(micros);
        let mut last = std::time::Instant::now();
        loop {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => last = std::time::Instant::now(),
                Some(rayon::Yield::Idle) if last.elapsed() < budget => std::hint::spin_loop(),
                _ => return,
            }
        }
    });
}

/// A read-only strided matrix view over a slice: element `(i, j)` is at `i·rs + j·cs`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A mutable strided matrix view over a slice: element `(i, j)` is at `i·rs + j·cs`.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)?.checked_add(1)
}

fn check_view(op: &'static str, len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Result<()> {
    match span(rows, cols, rs, cs) {
        Some(s) if s <= len && rs <= isize::MAX as usize && cs <= isize::MAX as usize => Ok(()),
        _ => {
            Err(mismatch(op, format!("a {rows}x{cols} view with strides ({rs}, {cs}) does not fit in {len} elements")))
        }
    }
}

impl<'a, T: Copy> MatRef<'a, T> {
    /// A view with explicit strides; errors when it would reach past the slice.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the view would reach past the slice.
    pub fn new(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Result<Self> {
        check_view("MatRef::new", data.len(), rows, cols, rs, cs)?;
        Ok(Self { data, rows, cols, rs, cs })
    }
    /// A row-major (C order) `rows × cols` view of the first `rows·cols` elements.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the view would reach past the slice.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols.max(1), 1)
    }
    /// A column-major (Fortran/nalgebra order) `rows × cols` view.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the view would reach past the slice.
    pub fn col_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, 1, rows.max(1))
    }
    /// View of an nalgebra matrix (column-major, contiguous).
    pub fn from_dmatrix(m: &'a DMatrix<T>) -> Self
    where
        T: nalgebra::Scalar,
    {
        let (rows, cols) = m.shape();
        Self { data: m.as_slice(), rows, cols, rs: 1, cs: rows.max(1) }
    }
    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    /// Apply `op` (as stored or transposed).
    pub fn op(self, t: Trans) -> Self {
        match t {
            Trans::N => self,
            Trans::T => self.t(),
        }
    }
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.cols
    }
    /// Element `(i, j)`, `None` when out of range.
    pub fn get(&self, i: usize, j: usize) -> Option<T> {
        (i < self.rows && j < self.cols).then(|| self.data[i * self.rs + j * self.cs])
    }
}

impl<'a, T: Copy> MatMut<'a, T> {
    /// A mutable view with explicit strides; errors when it would reach past the slice or
    /// when two elements would alias.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the view would reach past the slice or two elements
    /// would alias.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Result<Self> {
        check_view("MatMut::new", data.len(), rows, cols, rs, cs)?;
        let distinct = (rows <= 1 || rs >= 1) && (cols <= 1 || cs >= 1);
        let ok = distinct && (rows <= 1 || cols <= 1 || cs >= rows * rs || rs >= cols * cs);
        if !ok {
            return Err(mismatch(
                "MatMut::new",
                format!("strides ({rs}, {cs}) alias elements of a {rows}x{cols} view"),
            ));
        }
        Ok(Self { data, rows, cols, rs, cs })
    }
    /// A row-major mutable view.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the view would reach past the slice or two elements
    /// would alias.
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols.max(1), 1)
    }
    /// A column-major mutable view.
    ///
    /// # Errors
    /// [`LinalgError::ShapeMismatch`] when the view would reach past the slice or two elements
    /// would alias.
    pub fn col_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, 1, rows.max(1))
    }
    /// Mutable view of an nalgebra matrix.
    pub fn from_dmatrix(m: &'a mut DMatrix<T>) -> Self
    where
        T: nalgebra::Scalar,
    {
        let (rows, cols) = m.shape();
        Self { data: m.as_mut_slice(), rows, cols, rs: 1, cs: rows.max(1) }
    }
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.cols
    }
}

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    let work = m.saturating_mul(n).saturating_mul(k);
    let threads = rayon::current_num_threads();
    if work < PARALLEL_THRESHOLD || threads < 2 || in_serial_section() {
        gemm::Parallelism::None
    } else {
        keep_warm();
        gemm::Parallelism::Rayon(threads)
    }
}

/// `C ← α·A·B + β·C` on strided views (transpose a view with [`MatRef::t`]).
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `A` is `m×k`, `B` is not `k×n`, or `C` is not `m×n`.
pub fn gemm_view<T: Real>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>) -> Result<()> {
    let (m, k) = (a.rows, a.cols);
    let n = b.cols;
    if b.rows != k || c.rows != m || c.cols != n {
        return Err(mismatch(
            "gemm",
            format!("op(A) is {}x{}, op(B) is {}x{}, C is {}x{}", a.rows, a.cols, b.rows, b.cols, c.rows, c.cols),
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        // C ← β·C
        for j in 0..n {
            for i in 0..m {
                let p = &mut c.data[i * c.rs + j * c.cs];
                *p = if beta == T::zero() { T::zero() } else { beta * *p };
            }
        }
        return Ok(());
    }
    let read_dst = beta != T::zero();
    // SAFETY: the three views were checked to lie within their slices (`check_view`), the
    // destination does not alias itself (`MatMut::new`) and cannot alias the sources (it is a
    // unique borrow). `gemm` computes dst := gemm_alpha·dst + gemm_beta·lhs·rhs, so our
    // (α, β) go in reversed.
    unsafe {
        raw_gemm::<T>(
            kernel_level::<T>(
                crate::simd::max_isa(),
                m,
                n,
                c.cs as isize,
                c.rs as isize,
                a.cs as isize,
                a.rs as isize,
                b.cs as isize,
                b.rs as isize,
            ),
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            c.cs as isize,
            c.rs as isize,
            read_dst,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            beta,
            alpha,
            parallelism(m, n, k),
        );
    }
    Ok(())
}

/// Whether the `gemm` crate's AVX2 + FMA micro-kernels beat its AVX-512 ones for an f32 product
/// on a CPU that runs AVX-512 on 256-bit units (Zen 4), given the product in `gemm`'s normalised
/// form (column-major destination, `m × n`) and the left operand's strides.
///
/// Measured on Zen 4 (`cargo run --release -p latent-linalg --example gemm_shapes`, 375 shapes
/// and orientations, docs/gemm-kernel-choice.md): with a row-major left operand the AVX-512
/// path packs it into 64-row panels with scalar loads and stores 256 bytes apart, and is
/// 1.3–3× slower than the AVX2 path (16-row panels) unless the product is wide (`n ≥ 3m`),
/// where the packing is amortised; with a column-major left operand AVX-512 is as fast or
/// faster. So: the AVX2 kernels for a row-major left operand and `n < 3m`. Not for products of
/// at most 16 × 16 outputs: `gemm` computes those with its unpacked dot-product ("horizontal")
/// kernels, which have nothing to gain and whose lane count sets the rounding, so they keep the
/// CPU's level (and the bits of files written before this choice existed).
pub(crate) fn avx2_kernels_faster_f32(m: usize, n: usize, lhs_cs: isize, lhs_rs: isize) -> bool {
    lhs_cs == 1 && lhs_rs != 1 && m > 1 && n < 3 * m && m * n > 16 * 16
}

/// The micro-kernels' level for a product `dst (m × n) = lhs (m × k) · rhs (k × n)` (strides as
/// [`raw_gemm`] takes them: column stride first) when `isa` is the level in force: `isa` itself,
/// except that a CPU with AVX-512 on 256-bit units (Zen 4) runs an f32 product on the AVX2
/// kernels where [`avx2_kernels_faster_f32`] says they are faster. Results are deterministic
/// for a given CPU kind (the choice depends on the shape and the CPU, never on timing).
#[allow(clippy::too_many_arguments)]
pub(crate) fn kernel_level<T: Real>(
    isa: crate::simd::Isa,
    m: usize,
    n: usize,
    dst_cs: isize,
    dst_rs: isize,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs_cs: isize,
    rhs_rs: isize,
) -> crate::simd::Isa {
    use crate::simd::Isa;
    if isa != Isa::Avx512
        || std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>()
        || !crate::simd::avx512_on_half_width_units()
    {
        return isa;
    }
    // In `gemm`'s normalised form (see `raw_gemm`): a row-major destination is the transposed
    // product, whose left operand is `rhs` transposed.
    let (m, n, lhs_cs, lhs_rs) =
        if dst_cs.abs() < dst_rs.abs() { (n, m, rhs_rs, rhs_cs) } else { (m, n, lhs_cs, lhs_rs) };
    if avx2_kernels_faster_f32(m, n, lhs_cs, lhs_rs) { Isa::Avx2 } else { isa }
}

/// The `gemm` crate's product `dst := alpha·dst + beta·lhs·rhs` (its argument order: column
/// stride before row stride) on the micro-kernels of `isa`. At the CPU's own level
/// ([`crate::simd::detected`], the default) this is `gemm::gemm` itself, which picks the same
/// kernels by its own detection; below it (a cap: [`crate::simd::set_max_isa`], `LATENT_ISA`) it
/// runs the `gemm` crate's AVX2 + FMA (`fma`) or scalar kernels through the same generic driver
/// `gemm::gemm` would use on a CPU of that level, so a capped run computes what such a CPU would.
/// [`gemm_view`] picks `isa` with [`kernel_level`].
///
/// # Safety
/// As `gemm::gemm`: the three operands lie within their allocations for the given sizes and
/// strides (all strides non-negative here), `dst` does not alias `lhs` or `rhs`, and `isa` is
/// one this CPU has.
pub(crate) unsafe fn raw_gemm<T: Real>(
    isa: crate::simd::Isa,
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const T,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const T,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: T,
    beta: T,
    par: gemm::Parallelism,
) {
    use crate::simd::Isa;
    use std::any::TypeId;
    debug_assert!(isa.on_cpu());
    let capped = isa < crate::simd::detected();
    let is_f32 = TypeId::of::<T>() == TypeId::of::<f32>();
    let is_f64 = TypeId::of::<T>() == TypeId::of::<f64>();
    if !capped || !(is_f32 || is_f64) {
        // SAFETY: the caller's contract is `gemm::gemm`'s.
        unsafe {
            gemm::gemm::<T>(
                m, n, k, dst, dst_cs, dst_rs, read_dst, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, alpha, beta, false,
                false, false, par,
            )
        };
        return;
    }
    // `gemm::gemm`'s own normalisation before its dispatch (our strides are never negative):
    // the micro-kernels prefer a column-major destination, so a row-major one is computed as
    // the transposed product.
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs.abs() < dst_rs.abs() {
        (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
    } else {
        (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
    };
    macro_rules! generic {
        ($ty:ident, $simd:expr, $kernels:path, $lanes:expr) => {{
            use $kernels as ukr;
            // SAFETY: `T` is `$ty` (checked by type id above), so the pointer and scalar casts
            // are identities; the operands satisfy the caller's contract; the SIMD token was
            // created for a level this CPU has (`isa.on_cpu()`), as `gemm`'s own kernels do.
            unsafe {
                gemm_common::gemm::gemm_basic_generic::<
                    _,
                    $ty,
                    { $lanes },
                    { ukr::MR_DIV_N * $lanes },
                    { ukr::NR },
                    { ukr::MR_DIV_N },
                    { ukr::H_M },
                    { ukr::H_N },
                >(
                    $simd,
                    m,
                    n,
                    k,
                    dst.cast::<$ty>(),
                    dst_cs,
                    dst_rs,
                    read_dst,
                    lhs.cast::<$ty>(),
                    lhs_cs,
                    lhs_rs,
                    rhs.cast::<$ty>(),
                    rhs_cs,
                    rhs_rs,
                    *(&alpha as *const T).cast::<$ty>(),
                    *(&beta as *const T).cast::<$ty>(),
                    false,
                    false,
                    false,
                    |a, b, c| a * b + c,
                    &ukr::UKR,
                    &ukr::H_UKR,
                    false,
                    par,
                )
            }
        }};
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        let v3 = <gemm_common::simd::V3 as gemm_common::simd::MixedSimd<f32, f32, f32, f32>>::try_new();
        if let Some(v3) = v3 {
            if is_f32 {
                generic!(f32, v3, gemm_f32::microkernel::fma::f32, 8);
            } else {
                generic!(f64, v3, gemm_f64::microkernel::fma::f64, 4);
            }
            return;
        }
    }
    let s = gemm_common::simd::Scalar;
    if is_f32 {
        generic!(f32, s, gemm_f32::microkernel::scalar::f32, 1);
    } else {
        generic!(f64, s, gemm_f64::microkernel::scalar::f64, 1);
    }
}

/// `C ← α·op(A)·op(B) + β·C` on nalgebra matrices.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when the shapes do not fit.
///
/// # Example
/// ```
/// use latent_linalg::{DMatrix, Trans, gemm};
/// let a = DMatrix::<f64>::from_row_slice(2, 3, &[1., 2., 3., 4., 5., 6.]);
/// let mut c = DMatrix::<f64>::zeros(2, 2);
/// gemm(1.0, &a, Trans::N, &a, Trans::T, 0.0, &mut c).unwrap();
/// assert_eq!(c[(0, 0)], 14.0);
/// assert_eq!(c[(1, 0)], 32.0);
/// ```
pub fn gemm<T: Real>(
    alpha: T,
    a: &DMatrix<T>,
    ta: Trans,
    b: &DMatrix<T>,
    tb: Trans,
    beta: T,
    c: &mut DMatrix<T>,
) -> Result<()> {
    gemm_view(alpha, MatRef::from_dmatrix(a).op(ta), MatRef::from_dmatrix(b).op(tb), beta, MatMut::from_dmatrix(c))
}

/// `op(A)·op(B)` as a new matrix.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when the inner dimensions differ.
pub fn matmul<T: Real>(a: &DMatrix<T>, ta: Trans, b: &DMatrix<T>, tb: Trans) -> Result<DMatrix<T>> {
    let m = if ta == Trans::N { a.nrows() } else { a.ncols() };
    let n = if tb == Trans::N { b.ncols() } else { b.nrows() };
    let mut c = DMatrix::<T>::zeros(m, n);
    gemm(T::one(), a, ta, b, tb, T::zero(), &mut c)?;
    Ok(c)
}

/// `y ← α·op(A)·x + β·y`.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `x` or `y` has the wrong length.
pub fn gemv<T: Real>(alpha: T, a: &DMatrix<T>, ta: Trans, x: &DVector<T>, beta: T, y: &mut DVector<T>) -> Result<()> {
    let av = MatRef::from_dmatrix(a).op(ta);
    let (m, k) = (av.rows, av.cols);
    if x.len() != k || y.len() != m {
        return Err(mismatch("gemv", format!("op(A) is {m}x{k}, x has {} elements, y has {}", x.len(), y.len())));
    }
    let xv = MatRef::col_major(x.as_slice(), k, 1)?;
    let yv = MatMut::col_major(y.as_mut_slice(), m, 1)?;
    gemm_view(alpha, av, xv, beta, yv)
}

/// `op(A)·x` as a new vector.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when `x` has the wrong length.
pub fn matvec<T: Real>(a: &DMatrix<T>, ta: Trans, x: &DVector<T>) -> Result<DVector<T>> {
    let m = if ta == Trans::N { a.nrows() } else { a.ncols() };
    let mut y = DVector::<T>::zeros(m);
    gemv(T::one(), a, ta, x, T::zero(), &mut y)?;
    Ok(y)
}

/// Batched products `C_i ← α·op(A_i)·op(B_i) + β·C_i`, run in parallel across the batch (each
/// product sequential), so many small products use all cores.
///
/// # Errors
/// [`LinalgError::ShapeMismatch`] when the batch lengths differ or any product's shapes do not fit
/// (checked for all before any work is done).
pub fn gemm_batched<T: Real>(
    alpha: T,
    a: &[DMatrix<T>],
    ta: Trans,
    b: &[DMatrix<T>],
    tb: Trans,
    beta: T,
    c: &mut [DMatrix<T>],
) -> Result<()> {
    use rayon::prelude::*;
    if a.len() != b.len() || a.len() != c.len() {
        return Err(mismatch("gemm_batched", format!("batch sizes {} (A), {} (B), {} (C)", a.len(), b.len(), c.len())));
    }
    for (i, ((ai, bi), ci)) in a.iter().zip(b).zip(c.iter()).enumerate() {
        let av = MatRef::from_dmatrix(ai).op(ta);
        let bv = MatRef::from_dmatrix(bi).op(tb);
        if av.cols != bv.rows || ci.nrows() != av.rows || ci.ncols() != bv.cols {
            return Err(mismatch(
                "gemm_batched",
                format!(
                    "item {i}: op(A) is {}x{}, op(B) is {}x{}, C is {}x{}",
                    av.rows,
                    av.cols,
                    bv.rows,
                    bv.cols,
                    ci.nrows(),
                    ci.ncols()
                ),
            ));
        }
    }
    c.par_iter_mut()
        .zip(a.par_iter().zip(b.par_iter()))
        .try_for_each(|(ci, (ai, bi))| serial(|| gemm(alpha, ai, ta, bi, tb, beta, ci)))
}

/// Reject NaN and infinities in a slice, naming the operation and operand.
///
/// # Errors
/// [`LinalgError::NonFinite`] with the first offending index.
pub fn check_finite<T: Real>(op: &'static str, what: &'static str, data: &[T]) -> Result<()> {
    match data.iter().position(|v| !v.finite()) {
        Some(index) => Err(LinalgError::NonFinite { op, what, index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{Isa, max_isa};

    /// `C ← α·op(A)·op(B) + β·C` on the micro-kernels of `isa`, through the same argument
    /// mapping as [`gemm_view`].
    fn run<T: Real>(isa: Isa, alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>, par: bool) {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        let par = if par { gemm::Parallelism::Rayon(2) } else { gemm::Parallelism::None };
        // SAFETY: the views were checked by their constructors, `c` is a unique borrow, and the
        // caller passes only levels this CPU has.
        unsafe {
            raw_gemm::<T>(
                isa,
                m,
                n,
                k,
                c.data.as_mut_ptr(),
                c.cs as isize,
                c.rs as isize,
                beta != T::zero(),
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                beta,
                alpha,
                par,
            )
        };
    }

    fn data<T: Real>(len: usize, seed: u64) -> Vec<T> {
        // a small LCG: values in [-1, 1)
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                T::lit(((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0)
            })
            .collect()
    }

    /// Every instruction-set level this CPU has gives the exact product
    /// within rounding (`f32`: 1e-5, `f64`: 1e-13, relative to Σ|a||b|), for row- and
    /// column-major operands and destinations, α/β, edge sizes, serial and parallel; the level in
    /// force ([`max_isa`]: the CPU's, or the `LATENT_ISA` cap) is bit-identical to `gemm_view`.
    fn levels_agree<T: Real>(tol: f64) {
        let levels: Vec<Isa> = [Isa::Scalar, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.on_cpu()).collect();
        for &(m, k, n) in &[(1, 1, 1), (7, 3, 5), (17, 33, 9), (64, 48, 70), (130, 67, 129)] {
            for (row_a, row_c) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_data = data::<T>(m * k, 1);
                let b_data = data::<T>(k * n, 2);
                let c0 = data::<T>(m * n, 3);
                let a =
                    if row_a { MatRef::row_major(&a_data, m, k) } else { MatRef::col_major(&a_data, m, k) }.unwrap();
                let b = MatRef::col_major(&b_data, k, n).unwrap();
                let (alpha, beta) = (T::lit(0.75), T::lit(-0.5));
                let mut bound = vec![0.0f64; m * n];
                let mut exact = vec![0.0f64; m * n];
                for i in 0..m {
                    for j in 0..n {
                        let at = |p: usize| a.get(i, p).unwrap().as_f64();
                        let bt = |p: usize| b.get(p, j).unwrap().as_f64();
                        let idx = if row_c { i * n + j } else { i + j * m };
                        exact[idx] = 0.75 * (0..k).map(|p| at(p) * bt(p)).sum::<f64>() - 0.5 * c0[idx].as_f64();
                        bound[idx] = (0..k).map(|p| (at(p) * bt(p)).abs()).sum::<f64>() + c0[idx].as_f64().abs();
                    }
                }
                fn new_c<T: Copy>(c: &mut [T], m: usize, n: usize, row_c: bool) -> MatMut<'_, T> {
                    if row_c { MatMut::row_major(c, m, n).unwrap() } else { MatMut::col_major(c, m, n).unwrap() }
                }
                let mut reference = c0.clone();
                gemm_view(alpha, a, b, beta, new_c(&mut reference, m, n, row_c)).unwrap();
                for &isa in &levels {
                    for par in [false, true] {
                        let mut c = c0.clone();
                        run(isa, alpha, a, b, beta, new_c(&mut c, m, n, row_c), par);
                        for (idx, v) in c.iter().enumerate() {
                            let err = (v.as_f64() - exact[idx]).abs();
                            assert!(
                                err <= tol * bound[idx].max(1.0),
                                "{isa} {}: ({m},{k},{n}) row_a {row_a} row_c {row_c} par {par}: |{} - {}| = {err}",
                                T::NAME,
                                v.as_f64(),
                                exact[idx]
                            );
                        }
                        let default = kernel_level::<T>(
                            max_isa(),
                            m,
                            n,
                            if row_c { 1 } else { m as isize },
                            if row_c { n as isize } else { 1 },
                            a.cs as isize,
                            a.rs as isize,
                            b.cs as isize,
                            b.rs as isize,
                        );
                        if isa == default && !par {
                            assert_eq!(c, reference, "{isa} is the default path");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_isa_level_computes_the_product_f32() {
        levels_agree::<f32>(1e-5);
    }

    #[test]
    fn every_isa_level_computes_the_product_f64() {
        levels_agree::<f64>(1e-13);
    }

    /// The Zen 4 kernel choice: AVX2 for a row-major left operand unless the product is wide,
    /// in `gemm`'s normalised form (a row-major destination swaps the operands); never for f64
    /// or below AVX-512; and only on a CPU with AVX-512 on 256-bit units.
    #[test]
    fn the_kernel_choice_follows_the_rule() {
        assert!(avx2_kernels_faster_f32(784, 128, 1, 256));
        assert!(!avx2_kernels_faster_f32(256, 1024, 1, 64), "wide: n >= 3m");
        assert!(!avx2_kernels_faster_f32(784, 128, 784, 1), "column-major left operand");
        assert!(!avx2_kernels_faster_f32(1, 128, 1, 256), "one row");
        assert!(!avx2_kernels_faster_f32(12, 8, 1, 8), "at most 16 × 16 outputs");
        assert!(avx2_kernels_faster_f32(17, 16, 1, 8));
        let half = crate::simd::avx512_on_half_width_units();
        let want = if half { Isa::Avx2 } else { Isa::Avx512 };
        // dst col-major (784 × 128) = lhs row-major (784 × 256) · rhs col-major
        assert_eq!(kernel_level::<f32>(Isa::Avx512, 784, 128, 784, 1, 1, 256, 256, 1), want);
        assert_eq!(kernel_level::<f64>(Isa::Avx512, 784, 128, 784, 1, 1, 256, 256, 1), Isa::Avx512);
        assert_eq!(kernel_level::<f32>(Isa::Avx2, 784, 128, 784, 1, 1, 256, 256, 1), Isa::Avx2);
        // the same product transposed, into a row-major destination (128 × 784 = Rᵀ · Lᵀ): its
        // normalised left operand is the right one transposed back (`rhs` cs 256, rs 1 → L)
        assert_eq!(kernel_level::<f32>(Isa::Avx512, 128, 784, 1, 784, 1, 256, 256, 1), want);
        assert_eq!(kernel_level::<f32>(Isa::Avx512, 784, 128, 784, 1, 784, 1, 256, 1), Isa::Avx512);
        if half {
            assert_eq!(crate::simd::detected(), Isa::Avx512);
        }
    }
}

#[cfg(test)]
mod keep_warm_tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Training scopes nest: the spin is [`TRAINING_SPIN_MICROS`] while any is open and back to
    /// [`DEFAULT_SPIN_MICROS`] when the last one closes (no other test of this binary opens one).
    #[test]
    fn training_scopes_nest_and_restore_the_default() {
        if std::env::var("LATENT_SPIN_US").is_ok() {
            return; // the environment overrides both
        }
        assert_eq!(spin_micros(), DEFAULT_SPIN_MICROS);
        let outer = TrainingScope::new();
        let inner = TrainingScope::default();
        assert_eq!(spin_micros(), TRAINING_SPIN_MICROS);
        drop(outer);
        assert_eq!(spin_micros(), TRAINING_SPIN_MICROS);
        drop(inner);
        assert_eq!(spin_micros(), DEFAULT_SPIN_MICROS);
    }

    /// Spinners run pending work (a parallel sum gives the same bits with and without them),
    /// are asked for by thread 0 only, never exceed one per other thread, and all end once no
    /// work comes for their budget.
    #[test]
    fn spinners_run_work_and_end() {
        let v: Vec<f64> = (0..200_000).map(|i| (i as f64).sin()).collect();
        let sum = |v: &[f64]| -> f64 {
            use rayon::prelude::*;
            v.par_chunks(4096).map(|c| c.iter().sum::<f64>()).collect::<Vec<_>>().iter().sum()
        };
        let plain = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(|| sum(&v));
        {
            // this test thread becomes thread 0 of a 2-thread pool, as `init_threads` makes main
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).use_current_thread().build().unwrap();
            assert_eq!(rayon::current_thread_index(), Some(0));
            let mut spun = 0;
            for _ in 0..20 {
                keep_warm_for(2_000);
                spun = spun.max(SPINNERS.load(Ordering::Acquire));
                keep_warm_for(2_000); // a second call while one spins adds none (2 threads)
                assert!(SPINNERS.load(Ordering::Acquire) <= 1);
                assert_eq!(plain.to_bits(), sum(&v).to_bits());
            }
            assert_eq!(spun, 1, "thread 0 asked for a spinner");
            // another pool thread does not ask
            let other = pool.broadcast(|ctx| {
                if ctx.index() == 1 {
                    let before = SPINNERS.load(Ordering::Acquire);
                    keep_warm_for(2_000);
                    Some(SPINNERS.load(Ordering::Acquire) <= before)
                } else {
                    None
                }
            });
            assert!(other.into_iter().flatten().all(|ok| ok));
            let t0 = std::time::Instant::now();
            while SPINNERS.load(Ordering::Acquire) > 0 {
                assert!(t0.elapsed() < std::time::Duration::from_secs(5), "a spinner did not end");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        // outside a pool thread, nothing is spawned
        std::thread::spawn(|| keep_warm_for(2_000)).join().unwrap();
        assert_eq!(SPINNERS.load(Ordering::Acquire), 0);
    }
}
