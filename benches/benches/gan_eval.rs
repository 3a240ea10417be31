//! gan-eval kernels: FID from precomputed statistics (d = 64 and 2048, both routes) and one Geometry Score
//! draw (witness distances, complex, H1, RLT) with the reference defaults for N = 2000 points in 2-D and
//! N = 5000 points in 784-D, plus a 16-draw MRLT. Run with `cargo bench -p benches --bench gan_eval`;
//! the Python peers are in `benches/peers/gan_eval.py`, results in docs/performance.md.

use criterion::{Criterion, criterion_group, criterion_main};
use gan_eval::gs::{GsConfig, default_gamma, mean_rlt, relative_living_times};
use gan_eval::{FidRoute, FrechetStats, fid_with_route, stream_seed, toy};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::hint::black_box;
use std::time::Duration;

fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, d), || rng.sample::<f64, _>(StandardNormal))
}

/// Features with a non-trivial covariance: Gaussian rows times a fixed random mixing matrix.
fn features(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mix = gaussian(d, d, 1000 + seed) / (d as f64).sqrt();
    gaussian(n, d, seed).dot(&mix)
}

fn bench_fid(c: &mut Criterion) {
    let mut group = c.benchmark_group("fid");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for d in [64usize, 2048] {
        let n = (2 * d).max(1000);
        let a = FrechetStats::from_features(features(n, d, 1).view()).unwrap();
        let b = FrechetStats::from_features(features(n, d, 2).view()).unwrap();
        for (route, name) in [
            (FidRoute::EigenSqrt, "eigen-sqrt"),
            (FidRoute::Cholesky, "cholesky"),
        ] {
            group.bench_function(format!("d{d}/{name}"), |bch| {
                bch.iter(|| black_box(fid_with_route(&a, &b, route).unwrap()))
            });
        }
    }
    group.finish();
}

fn landmarks(n: usize, l: usize, seed: u64) -> Vec<usize> {
    (0..l as u64)
        .map(|i| (stream_seed(seed, i) % n as u64) as usize)
        .collect()
}

fn bench_gs(c: &mut Criterion) {
    let mut group = c.benchmark_group("gs_draw");
    group.sample_size(20);
    let circle = toy::circle(2000, 0.05, 0);
    let idx = landmarks(2000, 64, 1);
    group.bench_function("n2000_d2_default", |b| {
        b.iter(|| {
            black_box(relative_living_times(circle.view(), &idx, default_gamma(2000), 100).unwrap())
        })
    });
    let idx8 = landmarks(2000, 32, 2);
    group.bench_function("n2000_d2_L32_gamma0.125", |b| {
        b.iter(|| black_box(relative_living_times(circle.view(), &idx8, 0.125, 100).unwrap()))
    });
    let x = gaussian(5000, 784, 3);
    let idx = landmarks(5000, 64, 4);
    group.bench_function("n5000_d784_default", |b| {
        b.iter(|| {
            black_box(relative_living_times(x.view(), &idx, default_gamma(5000), 100).unwrap())
        })
    });
    group.finish();
    let mut group = c.benchmark_group("gs_mrlt");
    group.sample_size(10);
    // 200 draws: enough for `mean_rlt` to compute all point distances once (n_draws · L₀ ≥ 2N).
    let cfg = GsConfig {
        n_draws: 200,
        ..GsConfig::default()
    };
    group.bench_function("n5000_d784_default_200draws", |b| {
        b.iter(|| black_box(mean_rlt(x.view(), &cfg).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench_fid, bench_gs);
criterion_main!(benches);
