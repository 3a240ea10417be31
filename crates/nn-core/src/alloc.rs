//! Process-wide allocator tuning for training loops.
//!
//! A training step allocates and frees the same few hundred tensor buffers every step. glibc serves
//! blocks above its mmap threshold (128 KiB at first) with fresh `mmap`s and gives them back on `free`,
//! and trims the heap top back to the OS, so every step page-faults its activations and gradients in
//! again: a quarter of a LeNet step on one core went to the kernel's page-fault path (perf, 2026-12-04).
//! [`retain_freed_memory`] raises both thresholds so freed buffers are reused from the heap.

/// Makes glibc keep freed blocks of up to 32 MiB (its maximum mmap threshold on 64-bit) in the heap and
/// stop trimming the heap below 1 GiB of free space. Call once, early in `main`; a no-op on other C
/// libraries and platforms. Returns whether the settings took effect.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; both values are in their documented ranges.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
