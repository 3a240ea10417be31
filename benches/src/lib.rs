//! criterion benchmarks of the mathnn workspace live in `benches/`; this library holds what several of the
//! benches and examples share.

/// Builds rayon's global pool with `RAYON_NUM_THREADS` threads, or one when it is unset (the peer scripts
/// run on one thread), and returns the count.
pub fn global_pool_one_thread_by_default() -> anyhow::Result<usize> {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    Ok(threads)
}
