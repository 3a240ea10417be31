//! Seeded planar point clouds with known topology, for the Geometry Score: a noisy circle (one hole),
//! two disjoint circles (two holes), a figure eight (two holes sharing a point) and a filled disk (none).
//!
//! Each returns an `n × 2` array; the same seed gives the same cloud. Angles and radii are uniform;
//! `noise` is the standard deviation of isotropic Gaussian jitter added to every point.
//!
//! ```
//! let c = gan_eval::toy::circle(100, 0.0, 7);
//! assert_eq!(c.dim(), (100, 2));
//! assert!(c.rows().into_iter().all(|p| ((p[0] * p[0] + p[1] * p[1]).sqrt() - 1.0).abs() < 1e-12));
//! ```

use std::f64::consts::TAU;

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

fn cloud(
    n: usize,
    seed: u64,
    noise: f64,
    mut point: impl FnMut(&mut StdRng) -> [f64; 2],
) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Array2::zeros((n, 2));
    for i in 0..n {
        let [x, y] = point(&mut rng);
        let (ex, ey): (f64, f64) = (
            StandardNormal.sample(&mut rng),
            StandardNormal.sample(&mut rng),
        );
        out[[i, 0]] = x + noise * ex;
        out[[i, 1]] = y + noise * ey;
    }
    out
}

/// `n` points on the unit circle (uniform angle) plus Gaussian noise of standard deviation `noise`.
pub fn circle(n: usize, noise: f64, seed: u64) -> Array2<f64> {
    cloud(n, seed, noise, |rng| {
        let t = rng.random::<f64>() * TAU;
        [t.cos(), t.sin()]
    })
}

/// `n` points on two unit circles centred at (±1.5, 0) (each point picks a circle at random), plus noise.
pub fn two_circles(n: usize, noise: f64, seed: u64) -> Array2<f64> {
    cloud(n, seed, noise, |rng| {
        let t = rng.random::<f64>() * TAU;
        let cx = if rng.random::<bool>() { 1.5 } else { -1.5 };
        [cx + t.cos(), t.sin()]
    })
}

/// `n` points on a figure eight: two unit circles centred at (±1, 0), touching at the origin, plus noise.
pub fn figure_eight(n: usize, noise: f64, seed: u64) -> Array2<f64> {
    cloud(n, seed, noise, |rng| {
        let t = rng.random::<f64>() * TAU;
        if rng.random::<bool>() {
            [1.0 - t.cos(), t.sin()]
        } else {
            [-1.0 + t.cos(), t.sin()]
        }
    })
}

/// `n` points uniform in the unit disk (no noise).
pub fn filled_disk(n: usize, seed: u64) -> Array2<f64> {
    cloud(n, seed, 0.0, |rng| {
        let t = rng.random::<f64>() * TAU;
        let r = rng.random::<f64>().sqrt();
        [r * t.cos(), r * t.sin()]
    })
}
