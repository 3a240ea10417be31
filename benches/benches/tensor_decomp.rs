//! TT-SVD, TT arithmetic and rounding, and CP-ALS, on the same inputs as
//! `benches/peers/tensor_decomp.py` (ttpy / TensorLy / numpy). Run with
//! `cargo bench -p benches --bench tensor_decomp`.
//!
//! faer runs single-threaded here (`Par::Seq`), as the peers run with one BLAS thread; the printed
//! header records it. The measurement is the **CPU time of the benchmarking thread** (first field of
//! `/proc/thread-self/schedstat`, nanoseconds; wall time where that file is missing), the same quantity
//! as the peers' process CPU seconds: on a shared machine wall time mostly measures the neighbours.
//! Inputs (spec §10):
//! * smooth: `1/(1 + Σ_k x_k)` with `x_k = i_k/(n−1)`, on 4^10 (2^20 entries) and 10^7 (7 modes of 10);
//! * Gaussian: i.i.d. N(0, 1) on the same shapes;
//! * TT d = 20, n = 10, r = 20 with N(0, 1) cores: add, Hadamard (rank 400), dot, norm, round(Y + Y),
//!   round(Hadamard) back to rank 20;
//! * CP-ALS on a 100×100×100 tensor (rank 10 + 1e-3 noise), rank 10, 100 sweeps (tol 0).

use std::sync::OnceLock;
use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use tensor_decomp::TensorTrain;
use tensor_decomp::cp::{CpInit, CpTensor, cp_als};

/// CPU nanoseconds of the calling thread, or wall nanoseconds since the first call when
/// `/proc/thread-self/schedstat` is unavailable.
fn thread_cpu_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| START.get_or_init(Instant::now).elapsed().as_nanos() as u64)
}

/// Criterion measurement: CPU time of the benchmarking thread.
struct ThreadCpu;

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e-3, "µs cpu")
        } else if typical < 1e9 {
            (1e-6, "ms cpu")
        } else {
            (1e-9, "s cpu")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "ns cpu"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn smooth(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let s: f64 = (0..shape.len())
            .map(|k| i[k] as f64 / (shape[k] - 1) as f64)
            .sum();
        1.0 / (1.0 + s)
    })
}

fn gaussian(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || StandardNormal.sample(&mut rng))
}

fn random_tt(d: usize, n: usize, r: usize, seed: u64) -> TensorTrain {
    let mut rng = StdRng::seed_from_u64(seed);
    let cores = (0..d)
        .map(|k| {
            let r0 = if k == 0 { 1 } else { r };
            let r1 = if k == d - 1 { 1 } else { r };
            Array3::from_shape_simple_fn((r0, n, r1), || StandardNormal.sample(&mut rng))
        })
        .collect();
    TensorTrain::from_cores(cores).unwrap()
}

fn header() {
    faer::set_global_parallelism(faer::Par::Seq);
    eprintln!("tensor_decomp benches: faer single-threaded (Par::Seq); thread CPU time");
}

fn bench_tt_svd(c: &mut Criterion<ThreadCpu>) {
    header();
    let mut group = c.benchmark_group("tt_svd");
    group.sample_size(10);
    let inputs = [("4^10", vec![4usize; 10]), ("10^7", vec![10usize; 7])];
    for (name, shape) in &inputs {
        let s = smooth(shape);
        let g = gaussian(shape, 0);
        group.bench_function(BenchmarkId::new("smooth_eps1e-8", name), |b| {
            b.iter(|| TensorTrain::tt_svd(&s, 1e-8, None).unwrap())
        });
        group.bench_function(BenchmarkId::new("smooth_cap16", name), |b| {
            b.iter(|| TensorTrain::tt_svd(&s, 0.0, Some(16)).unwrap())
        });
        group.bench_function(BenchmarkId::new("gaussian_cap10", name), |b| {
            b.iter(|| TensorTrain::tt_svd(&g, 0.0, Some(10)).unwrap())
        });
    }
    group.finish();
}

fn bench_tt_ops(c: &mut Criterion<ThreadCpu>) {
    header();
    let y = random_tt(20, 10, 20, 1);
    let z = random_tt(20, 10, 20, 2);
    let sum = y.add(&y).unwrap();
    let had = y.hadamard(&z).unwrap();
    let mut group = c.benchmark_group("tt_d20_n10_r20");
    group.sample_size(20);
    group.bench_function("add", |b| b.iter(|| y.add(&z).unwrap()));
    group.bench_function("dot", |b| b.iter(|| y.dot(&z).unwrap()));
    group.bench_function("norm", |b| b.iter(|| y.norm()));
    group.bench_function("round_sum_40_to_20", |b| {
        b.iter(|| sum.round(1e-10, None).unwrap())
    });
    group.sample_size(10);
    group.bench_function("hadamard_400", |b| b.iter(|| y.hadamard(&z).unwrap()));
    group.bench_function("round_hadamard_400_to_20", |b| {
        b.iter(|| had.round(1e-10, Some(20)).unwrap())
    });
    group.finish();
}

fn bench_cp_als(c: &mut Criterion<ThreadCpu>) {
    header();
    let mut rng = StdRng::seed_from_u64(3);
    let factors: Vec<Array2<f64>> = (0..3)
        .map(|_| Array2::from_shape_simple_fn((100, 10), || StandardNormal.sample(&mut rng)))
        .collect();
    let clean = CpTensor::new(vec![1.0; 10], factors)
        .unwrap()
        .full()
        .unwrap();
    let noise = gaussian(&[100, 100, 100], 4);
    let scale = 1e-3 * clean.iter().map(|x| x * x).sum::<f64>().sqrt()
        / noise.iter().map(|x| x * x).sum::<f64>().sqrt();
    let x = &clean + &(noise * scale);
    let mut group = c.benchmark_group("cp_als");
    group.sample_size(10);
    group.bench_function("100^3_rank10_100sweeps", |b| {
        b.iter(|| {
            let fit = cp_als(&x, 10, 100, CpInit::Random { seed: 0 }, 0.0).unwrap();
            assert_eq!(fit.iterations, 100);
            fit
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_tt_svd, bench_tt_ops, bench_cp_als
}
criterion_main!(benches);
