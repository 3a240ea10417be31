//! gan-eval kernels: FID from precomputed statistics (d = 64 and 2048, both routes) and one Geometry Score
//! draw (witness distances, complex, H1, RLT) with the reference defaults for N = 2000 points in 2-D and
//! N = 5000 points in 784-D, plus 200- and 1000-draw MRLTs (the prepared route: all point distances once,
//! then per draw; `gs_mrlt_cpu` in process CPU time). Run with
//! `RAYON_NUM_THREADS=1 cargo bench -p benches --bench gan_eval` (one draw is single-threaded: rayon
//! parallelises over draws); the Python peers are in `benches/peers/gan_eval.py`, results in
//! docs/performance.md.
//!
//! The GS draws are timed twice: `gs_draw` in wall time, `gs_draw_cpu` in CPU time of the benchmarking
//! thread (`CLOCK_THREAD_CPUTIME_ID`, reported by criterion as if it were wall time), the quantity the
//! peer script measures with `time.thread_time()`: on a shared machine wall time mostly measures the
//! neighbours.

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

/// A Linux CPU-time clock (`clock_gettime`).
fn cpu_clock(clock: i32) -> Duration {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec (two 64-bit fields on 64-bit Linux).
    let rc = unsafe { clock_gettime(clock, &mut t) };
    assert_eq!(rc, 0, "clock_gettime({clock}) failed");
    Duration::new(t.sec as u64, t.nsec as u32)
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Duration {
    cpu_clock(3)
}

/// CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`): `mean_rlt` runs its draws on rayon's
/// workers, not on the benchmarking thread.
fn process_cpu() -> Duration {
    cpu_clock(2)
}

fn landmarks(n: usize, l: usize, seed: u64) -> Vec<usize> {
    (0..l as u64)
        .map(|i| (stream_seed(seed, i) % n as u64) as usize)
        .collect()
}

fn bench_gs(c: &mut Criterion) {
    let circle = toy::circle(2000, 0.05, 0);
    let idx2 = landmarks(2000, 64, 1);
    let idx8 = landmarks(2000, 32, 2);
    let x = gaussian(5000, 784, 3);
    let idx7 = landmarks(5000, 64, 4);
    type Case<'a> = (&'a str, &'a Array2<f64>, &'a [usize], f64);
    let cases: [Case; 3] = [
        ("n2000_d2_default", &circle, &idx2, default_gamma(2000)),
        ("n2000_d2_L32_gamma0.125", &circle, &idx8, 0.125),
        ("n5000_d784_default", &x, &idx7, default_gamma(5000)),
    ];
    println!(
        "gs_draw: RAYON_NUM_THREADS={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    for (group_name, cpu) in [("gs_draw", false), ("gs_draw_cpu", true)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(20);
        for &(name, pts, idx, gamma) in &cases {
            let draw = || black_box(relative_living_times(pts.view(), idx, gamma, 100).unwrap());
            group.bench_function(name, |b| {
                if cpu {
                    b.iter_custom(|iters| {
                        let t0 = thread_cpu();
                        for _ in 0..iters {
                            draw();
                        }
                        thread_cpu() - t0
                    })
                } else {
                    b.iter(draw)
                }
            });
        }
        group.finish();
    }
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
    // The prepared route in process CPU time (run with RAYON_NUM_THREADS=1): 200 and 1000 draws; the
    // amortised cost of one draw is (t₁₀₀₀ − t₂₀₀)/800, the distance precomputation cancelling.
    let mut group = c.benchmark_group("gs_mrlt_cpu");
    group.sample_size(10);
    for n_draws in [200usize, 1000] {
        let cfg = GsConfig {
            n_draws,
            ..GsConfig::default()
        };
        group.bench_function(format!("n5000_d784_default_{n_draws}draws"), |b| {
            b.iter_custom(|iters| {
                let t0 = process_cpu();
                for _ in 0..iters {
                    black_box(mean_rlt(x.view(), &cfg).unwrap());
                }
                process_cpu() - t0
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_fid, bench_gs);
criterion_main!(benches);
