//! Where a training step's time goes: forward, loss, backward and optimiser update, timed separately
//! for each model on a batch of 64 MNIST-sized images (median over the steps, after warm-up).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p benches --example step_breakdown -- [steps] [models…]`
//! prints one JSON line per model; the thread count is that of the rayon pool. Like `mathnn`, it first calls
//! `nn_core::alloc::retain_freed_memory()`; set `MATHNN_KEEP_MALLOC=1` to measure without it (the A/B of
//! docs/performance.md). It also makes candle's idle workers park at once (`nn_core::threads`), unless
//! `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use nn_core::layers::cross_entropy;
use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};
use nn_core::optim::{Optimizer, OptimizerConfig};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os("MATHNN_KEEP_MALLOC").is_none() {
        nn_core::alloc::retain_freed_memory();
    }
    // As `mathnn` does; set CANDLE_BARRIER_POOL_SPIN_LIMIT to measure another value (docs/performance.md).
    // SAFETY: no other thread exists yet.
    unsafe { nn_core::threads::park_idle_candle_workers() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let kinds: Vec<ModelKind> = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    } else {
        ModelKind::ALL.to_vec()
    };
    let device = Device::Cpu;
    let x = Tensor::rand(0f32, 1f32, (64, 1, 28, 28), &device)?;
    let y = Tensor::from_vec((0..64u32).map(|i| i % 10).collect::<Vec<_>>(), 64, &device)?;
    for kind in kinds {
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &device);
        let model = build_model(&ModelConfig::new(kind, InputSpec::new(1, 28, 28, 10)), vb)?;
        let mut opt = Optimizer::new(OptimizerConfig::adam(1e-3), &varmap)?;
        let (mut fwd, mut bwd, mut upd, mut total) = (vec![], vec![], vec![], vec![]);
        for step in 0..steps + 5 {
            let t0 = Instant::now();
            let logits = model.forward_t(&x, true)?;
            let loss = cross_entropy(&logits, &y)?;
            let t1 = Instant::now();
            let grads = loss.backward()?;
            let t2 = Instant::now();
            opt.step(&grads)?;
            let t3 = Instant::now();
            drop(grads);
            if step >= 5 {
                fwd.push((t1 - t0).as_secs_f64() * 1e3);
                bwd.push((t2 - t1).as_secs_f64() * 1e3);
                upd.push((t3 - t2).as_secs_f64() * 1e3);
                total.push((t3 - t0).as_secs_f64() * 1e3);
            }
        }
        println!(
            "{{\"model\":\"{kind}\",\"threads\":{},\"steps\":{steps},\"forward_ms\":{:.3},\"backward_ms\":{:.3},\"optimizer_ms\":{:.3},\"step_ms\":{:.3}}}",
            rayon::current_num_threads(),
            median(&mut fwd),
            median(&mut bwd),
            median(&mut upd),
            median(&mut total)
        );
    }
    Ok(())
}
