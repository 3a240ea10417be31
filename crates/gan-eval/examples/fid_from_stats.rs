//! Times `gan_eval::fid` from two statistics files in memory (the half of `mathnn fid` after reading), for
//! the side-by-side with pytorch-fid's `calculate_frechet_distance` in `benches/peers/fid_speed.py`.
//!
//! `cargo run --release -p gan-eval --example fid_from_stats -- A.npz B.npz [REPS]` prints one line of JSON:
//! the FID, the median and every time in seconds, and the rayon thread count (`RAYON_NUM_THREADS`).

use std::path::Path;
use std::time::Instant;

use gan_eval::fid;
use gan_eval::stats_file::read_stats_npz;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [a, b, rest @ ..] = args.as_slice() else {
        return Err("usage: fid_from_stats A.npz B.npz [REPS]".into());
    };
    let reps: usize = rest.first().map_or(Ok(3), |r| r.parse())?;
    let (a, b) = (read_stats_npz(Path::new(a))?, read_stats_npz(Path::new(b))?);
    let mut times = Vec::new();
    let mut value = f64::NAN;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        value = fid(&a, &b)?;
        times.push(t.elapsed().as_secs_f64());
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{{\"fid\": {value:?}, \"median_s\": {:?}, \"times_s\": {times:?}, \"threads\": {}}}",
        sorted[sorted.len() / 2],
        rayon::current_num_threads()
    );
    Ok(())
}
