//! HOG (`classical::hog`, scikit-image's defaults) on one 64×64 and one 128×128 f64 image, and on a batch
//! of 1,000 28×28 images, on one thread. The scikit-image side of the ratio is `benches/peers/hog.py`
//! (`time 64 2000`, `time 128 300`, `batch 10000 28`); `benches/examples/hog_time.rs` prints ours in the
//! same format for interleaved A/B runs. Run with `cargo bench -p benches --bench classical`.

use classical::hog::{HogImage, HogParams, HogWorkspace, hog_batch};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn bench_hog(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let params = HogParams::default();
    let mut rng = StdRng::seed_from_u64(0);
    for size in [64usize, 128] {
        let pixels: Vec<f64> = (0..size * size).map(|_| rng.random::<f64>()).collect();
        let image = HogImage::gray(&pixels, size, size).unwrap();
        let mut workspace = HogWorkspace::new(&params).unwrap();
        let mut out = vec![0.0; params.layout(size, size).unwrap().descriptor_len()];
        c.bench_function(&format!("hog {size}x{size} defaults"), |b| {
            b.iter(|| workspace.extract_into(&image, &mut out).unwrap())
        });
    }
    let (count, side) = (1_000usize, 28usize);
    let pixels: Vec<f64> = (0..count * side * side)
        .map(|_| rng.random::<f64>())
        .collect();
    c.bench_function("hog batch 1000x28x28 defaults, 1 thread", |b| {
        b.iter(|| {
            pool.install(|| {
                hog_batch(count, (side, side), &params, |i| {
                    HogImage::gray(&pixels[i * side * side..(i + 1) * side * side], side, side)
                })
                .unwrap()
            })
        })
    });
}

criterion_group!(benches, bench_hog);
criterion_main!(benches);
