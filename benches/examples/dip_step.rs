//! Seconds per deep-image-prior iteration (forward with a perturbed code, MSE, backward, Adam, output
//! average, PSNR), the Rust side of `benches/peers/dip_step.py` (same network, side and channels).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p benches --example dip_step -- [iters] [side] [channels]`
//! prints one JSON line; run it interleaved with the peer (docs/performance.md).

use std::time::Instant;

use candle_core::{Device, Tensor};
use generalization::dip::{DipFit, DipParams, DipTask, SkipNetParams};

fn main() -> anyhow::Result<()> {
    nn_core::alloc::retain_freed_memory();
    // As `mathnn` does (docs/performance.md). SAFETY: no other thread exists yet.
    unsafe { nn_core::threads::park_idle_candle_workers() };
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let iters = args.first().copied().unwrap_or(30);
    let side = args.get(1).copied().unwrap_or(128);
    let channels = args.get(2).copied().unwrap_or(32);
    let warmup = 5;
    let target = Tensor::rand(0f32, 1f32, (3, side, side), &Device::Cpu)?;
    let params = DipParams {
        net: SkipNetParams {
            channels,
            ..SkipNetParams::default()
        },
        iterations: iters + warmup,
        backtracking: false,
        ..DipParams::default()
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fit = DipFit::new(&params, DipTask::Denoise, &target, None, &Device::Cpu)?;
    let mut times = Vec::with_capacity(iters);
    for i in 0..iters + warmup {
        let t = Instant::now();
        fit.step()?;
        if i >= warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"benchmark\":\"dip_step\",\"side\":{side},\"channels\":{channels},\"threads\":{},\"iters\":{iters},\"s_per_iter_median\":{:.6},\"s_per_iter_mean\":{mean:.6},\"s_per_iter_min\":{:.6},\"loadavg\":\"{}\"}}",
        rayon::current_num_threads(),
        times[times.len() / 2],
        times[0],
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}
