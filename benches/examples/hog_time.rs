//! Per-image and batch times of `classical::hog` in the format of `benches/peers/hog.py`, for interleaved
//! A/B runs against scikit-image on one thread:
//!
//! ```text
//! cargo run --release -p benches --example hog_time -- time 64 2000
//! python3 benches/peers/hog.py time 64 2000
//! cargo run --release -p benches --example hog_time -- batch 10000 28
//! python3 benches/peers/hog.py batch 10000 28
//! ```
//! Both use the default parameters (9 orientations, 8×8 cells, 3×3 blocks, L2-Hys) on uniform random f64
//! images. The rayon pool has one thread unless `RAYON_NUM_THREADS` says otherwise.

use std::time::Instant;

use classical::hog::{HogImage, HogParams, HogWorkspace, hog_batch};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = benches::global_pool_one_thread_by_default()?;
    let params = HogParams::default();
    let mut rng = StdRng::seed_from_u64(0);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["time", size, repeats] => {
            let (size, repeats): (usize, usize) = (size.parse()?, repeats.parse()?);
            let pixels: Vec<f64> = (0..size * size).map(|_| rng.random::<f64>()).collect();
            let image = HogImage::gray(&pixels, size, size)?;
            let mut workspace = HogWorkspace::new(&params)?;
            let mut out = vec![0.0; params.layout(size, size)?.descriptor_len()];
            workspace.extract_into(&image, &mut out)?;
            let started = Instant::now();
            for _ in 0..repeats {
                workspace.extract_into(&image, &mut out)?;
                std::hint::black_box(&out);
            }
            let us = started.elapsed().as_secs_f64() / repeats as f64 * 1e6;
            println!("mathnn hog {size}x{size}: {us:.2} us/image");
        }
        ["batch", count, size] => {
            let (count, size): (usize, usize) = (count.parse()?, size.parse()?);
            let pixels: Vec<f64> = (0..count * size * size)
                .map(|_| rng.random::<f64>())
                .collect();
            let started = Instant::now();
            let features = hog_batch(count, (size, size), &params, |i| {
                HogImage::gray(&pixels[i * size * size..(i + 1) * size * size], size, size)
            })?;
            std::hint::black_box(&features);
            println!(
                "mathnn hog batch {count}x{size}x{size}: {:.3} s ({threads} thread(s))",
                started.elapsed().as_secs_f64()
            );
        }
        _ => anyhow::bail!("usage: hog_time time SIZE REPEATS | hog_time batch COUNT SIZE"),
    }
    Ok(())
}
