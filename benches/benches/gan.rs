//! One WGAN-GP critic step (real and generated batch, critic loss, gradient penalty by double backward,
//! Adam update) and one generator step, batch 64, for the MLP pair and the DCGAN pair (DIM 32) of
//! `nn_core::gan`. Run with `RAYON_NUM_THREADS=1 cargo bench -p benches --bench gan` and record the thread
//! count and the machine's load with the numbers. Needs `CANDLE_GRAD_DO_NOT_DETACH=1` (set by the
//! workspace's `.cargo/config.toml`; the critic step fails with a clear error otherwise).

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use nn_core::data::generated::generated_digits;
use nn_core::gan::{GanArch, GanConfig, GanLoss, GanTrainer};

fn bench_gan_steps(c: &mut Criterion) {
    let data = generated_digits(256, 0).unwrap().images;
    let mut group = c.benchmark_group("wgan_gp_step_batch64");
    group.sample_size(10);
    for arch in [GanArch::Mlp, GanArch::Dcgan] {
        let config = GanConfig::new(GanLoss::WganGp, arch);
        let mut trainer = GanTrainer::new(config, &data, &Device::Cpu).unwrap();
        group.bench_function(format!("{}_critic_step_with_gp", arch.as_str()), |b| {
            b.iter(|| trainer.critic_step(0).unwrap())
        });
        group.bench_function(format!("{}_generator_step", arch.as_str()), |b| {
            b.iter(|| trainer.generator_step().unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gan_steps);
criterion_main!(benches);
