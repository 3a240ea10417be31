//! candle's CPU worker threads, tuned for training loops that mix candle's ops with nn-core's.
//!
//! candle 0.11 runs its elementwise ops on its own "barrier pool" (one worker per core but one), whose
//! workers spin 25,000 times after every job before they park. A training step alternates candle's ops
//! with nn-core's ops on the rayon pool, so on a 2-core machine the spinning worker held a core that
//! rayon's threads needed: 16 % of a 2-thread LeNet step's samples were that spin, and parking at once
//! made 2-thread steps 10–30 % faster (docs/performance.md). One thread has no barrier-pool workers.

/// Worker threads of the rayon pool nn-core's ops run on (`RAYON_NUM_THREADS`, else one per core): the
/// number results record beside their timings.
pub fn worker_threads() -> usize {
    rayon::current_num_threads()
}

/// The variable candle 0.11 reads once, when its barrier pool starts.
pub const CANDLE_SPIN_LIMIT_VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// Makes candle's barrier-pool workers park as soon as their job is done, unless the user has set
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` already. Returns whether it set the variable.
///
/// # Safety
/// Sets an environment variable, which is only sound while no other thread exists: call it first thing in
/// `main` (before any candle op, which would also start the pool with its default).
pub unsafe fn park_idle_candle_workers() -> bool {
    if std::env::var_os(CANDLE_SPIN_LIMIT_VAR).is_some() {
        return false;
    }
    // SAFETY: the caller guarantees that no other thread exists yet.
    unsafe { std::env::set_var(CANDLE_SPIN_LIMIT_VAR, "0") };
    true
}
