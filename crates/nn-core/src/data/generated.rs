//! A generated stand-in for MNIST: 28×28 grey digit-like glyphs "0".."9", drawn from stroke skeletons
//! (lines, arcs, curves) with thick anti-aliased pens, random affine jitter, a wobbly hand and mild
//! noise. It is deterministic in the seed and carries [`Provenance::Generated`], so results made with
//! it are never mistaken for results on real data.
//!
//! The variation (rotation ±15°, scale 0.8–1.2, aspect and shear, translation ±3 px, stroke width
//! 1.6–3.2 px, wobble, noise) makes the task non-trivial, while a small CNN still learns it to well
//! above 90% test accuracy.

use std::f32::consts::PI;

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::data::{Dataset, Provenance, TrainTest};
use crate::{NnError, Result};

/// Side of a generated image in pixels.
pub const SIZE: usize = 28;

/// Pixel height of a glyph of height 1 at scale 1 (MNIST digits fit a 20×20 box). Glyphs that would
/// leave the frame after jitter are shrunk and moved back inside.
const GLYPH_PX: f32 = 19.0;

/// Seed offset between the train and test halves of [`generated_train_test`].
const TEST_SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;

type Point = (f32, f32);

/// `n + 1` points of the ellipse arc around `(cx, cy)` with radii `(rx, ry)` from angle `a0` to `a1`
/// in degrees; `y` points down, so 90° is the bottom.
fn arc(cx: f32, cy: f32, rx: f32, ry: f32, a0: f32, a1: f32, n: usize) -> Vec<Point> {
    (0..=n)
        .map(|i| {
            let a = (a0 + (a1 - a0) * i as f32 / n as f32) * PI / 180.0;
            (cx + rx * a.cos(), cy + ry * a.sin())
        })
        .collect()
}

/// `n + 1` points of the quadratic Bézier curve `p0 → p2` pulled towards `p1`.
fn bezier(p0: Point, p1: Point, p2: Point, n: usize) -> Vec<Point> {
    (0..=n)
        .map(|i| {
            let t = i as f32 / n as f32;
            let (a, b, c) = ((1.0 - t) * (1.0 - t), 2.0 * (1.0 - t) * t, t * t);
            (
                a * p0.0 + b * p1.0 + c * p2.0,
                a * p0.1 + b * p1.1 + c * p2.1,
            )
        })
        .collect()
}

/// Joins pieces into one polyline.
fn chain(pieces: &[Vec<Point>]) -> Vec<Point> {
    pieces.iter().flatten().copied().collect()
}

/// The strokes (polylines) of `digit` in glyph coordinates: x in about `[-0.35, 0.35]`, y in
/// `[-0.5, 0.5]`, y pointing down.
fn skeleton(digit: u32) -> Vec<Vec<Point>> {
    match digit {
        0 => vec![arc(0.0, 0.0, 0.3, 0.5, 0.0, 360.0, 32)],
        1 => vec![vec![(-0.14, -0.34), (0.02, -0.5), (0.02, 0.5)]],
        2 => vec![chain(&[
            arc(0.0, -0.22, 0.28, 0.28, -165.0, 35.0, 16),
            vec![(-0.3, 0.5), (0.32, 0.5)],
        ])],
        3 => vec![
            arc(0.0, -0.25, 0.25, 0.25, -160.0, 90.0, 16),
            arc(0.0, 0.23, 0.28, 0.27, -90.0, 155.0, 16),
        ],
        4 => vec![vec![(0.14, 0.5), (0.14, -0.5), (-0.32, 0.18), (0.32, 0.18)]],
        5 => vec![chain(&[
            vec![(0.28, -0.5), (-0.2, -0.5), (-0.24, -0.06)],
            arc(0.0, 0.2, 0.3, 0.3, -120.0, 150.0, 18),
        ])],
        6 => vec![
            bezier((0.22, -0.5), (-0.3, -0.35), (-0.27, 0.22), 12),
            arc(0.0, 0.22, 0.27, 0.27, 0.0, 360.0, 24),
        ],
        7 => vec![vec![(-0.3, -0.5), (0.3, -0.5), (-0.06, 0.5)]],
        8 => vec![
            arc(0.0, -0.27, 0.22, 0.23, 0.0, 360.0, 22),
            arc(0.0, 0.23, 0.27, 0.27, 0.0, 360.0, 24),
        ],
        _ => vec![
            arc(0.0, -0.22, 0.27, 0.27, 0.0, 360.0, 24),
            bezier((0.27, -0.22), (0.26, 0.2), (0.08, 0.5), 10),
        ],
    }
}

/// Draws a segment `a → b` with a round pen of width `width` into `img` (maximum blending), with a
/// one-pixel linear anti-aliased edge. Only pixels near the segment are visited.
fn draw_segment(img: &mut [f32], a: Point, b: Point, width: f32) {
    let r = width / 2.0;
    let reach = r + 1.0;
    let x0 = (a.0.min(b.0) - reach).floor().max(0.0) as usize;
    let y0 = (a.1.min(b.1) - reach).floor().max(0.0) as usize;
    let x1 = ((a.0.max(b.0) + reach).ceil().max(0.0) as usize).min(SIZE);
    let y1 = ((a.1.max(b.1) + reach).ceil().max(0.0) as usize).min(SIZE);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    for y in y0..y1 {
        for x in x0..x1 {
            // Pixel centres are at integer + 0.5.
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = if len2 > 0.0 {
                (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (qx, qy) = (a.0 + t * dx - px, a.1 + t * dy - py);
            let cover = (r + 0.5 - (qx * qx + qy * qy).sqrt()).clamp(0.0, 1.0);
            let v = &mut img[y * SIZE + x];
            *v = v.max(cover);
        }
    }
}

/// Renders one jittered glyph of `digit` into a `SIZE × SIZE` buffer of values in `[0, 1]`.
fn render(digit: u32, rng: &mut StdRng, noise: &Normal<f32>) -> Vec<f32> {
    let angle = rng.random_range(-15.0f32..=15.0) * PI / 180.0;
    let scale = rng.random_range(0.8f32..=1.2) * GLYPH_PX;
    let aspect = rng.random_range(0.85f32..=1.15);
    let shear = rng.random_range(-0.2f32..=0.2);
    let (tx, ty) = (
        rng.random_range(-3.0f32..=3.0),
        rng.random_range(-3.0f32..=3.0),
    );
    let width = rng.random_range(1.6f32..=3.2);
    let ink = rng.random_range(0.8f32..=1.0);
    // A smooth random wobble of the hand: low-frequency displacement in glyph units.
    let wob: [f32; 6] = std::array::from_fn(|i| {
        if i % 3 == 2 {
            rng.random_range(0.0..2.0 * PI)
        } else {
            rng.random_range(-0.05f32..=0.05)
        }
    });
    let freq = rng.random_range(2.0f32..=4.0);
    let (sin, cos) = angle.sin_cos();
    // Glyph coordinates to pixel offsets from the centre, before translation.
    let to_offset = |(gx, gy): Point| -> Point {
        let wx = gx + wob[0] * (freq * gy + wob[2]).sin() + wob[1] * (freq * gx).cos();
        let wy = gy + wob[3] * (freq * gx + wob[5]).sin() + wob[4] * (freq * gy).cos();
        let (sx, sy) = ((wx * aspect + shear * wy) * scale, wy * scale);
        (cos * sx - sin * sy, sin * sx + cos * sy)
    };
    let mut strokes: Vec<Vec<Point>> = skeleton(digit)
        .into_iter()
        .map(|s| s.into_iter().map(to_offset).collect())
        .collect();
    // Keep the whole stroke (pen included) off the outer pixel ring: shrink if too large, then limit
    // the translation.
    let centre = SIZE as f32 / 2.0;
    let (lo, hi) = (width / 2.0 + 1.0 - centre, centre - width / 2.0 - 1.0);
    let all = strokes.iter().flatten();
    let (min_x, max_x) = all
        .clone()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (min_y, max_y) = all.fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let fit = ((hi - lo) / (max_x - min_x).max(1e-3))
        .min((hi - lo) / (max_y - min_y).max(1e-3))
        .min(1.0);
    let shift =
        |t: f32, min: f32, max: f32| t.clamp(lo - fit * min, (hi - fit * max).max(lo - fit * min));
    let (tx, ty) = (shift(tx, min_x, max_x), shift(ty, min_y, max_y));
    for p in strokes.iter_mut().flatten() {
        *p = (centre + tx + fit * p.0, centre + ty + fit * p.1);
    }
    let mut img = vec![0f32; SIZE * SIZE];
    for pts in &strokes {
        for seg in pts.windows(2) {
            draw_segment(&mut img, seg[0], seg[1], width);
        }
    }
    for v in &mut img {
        *v = (*v * ink + noise.sample(rng)).clamp(0.0, 1.0);
    }
    img
}

/// `n` generated digit images `[n, 1, 28, 28]` with labels `0..9` (balanced: `n / 10` or one more per
/// class, in shuffled order), classes `"0".."9"`, name `generated` and [`Provenance::Generated`].
/// Deterministic: the same `seed` gives the same data set.
pub fn generated_digits(n: usize, seed: u64) -> Result<Dataset> {
    if n == 0 {
        return Err(NnError::invalid(
            "n",
            "the generated data set needs at least 1 image",
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 0.05)
        .map_err(|e| NnError::invalid("noise", format!("bad noise level: {e}")))?;
    let mut labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    labels.shuffle(&mut rng);
    let mut pixels = Vec::with_capacity(n * SIZE * SIZE);
    for &digit in &labels {
        pixels.extend(render(digit, &mut rng, &noise));
    }
    let images = Tensor::from_vec(pixels, (n, 1, SIZE, SIZE), &Device::Cpu)?;
    let labels = Tensor::from_vec(labels, n, &Device::Cpu)?;
    let classes = (0..10).map(|d| d.to_string()).collect();
    Dataset::new(images, labels, classes, "generated", Provenance::Generated)
}

/// A train set of `n_train` and a test set of `n_test` generated digits, made from different seeds
/// derived from `seed`, named `generated/train` and `generated/test`.
pub fn generated_train_test(n_train: usize, n_test: usize, seed: u64) -> Result<TrainTest> {
    let mut train = generated_digits(n_train, seed)?;
    let mut test = generated_digits(n_test, seed.wrapping_add(TEST_SEED_OFFSET))?;
    train.name = "generated/train".into();
    test.name = "generated/test".into();
    Ok(TrainTest { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_is_drawn_with_soft_edges() {
        let mut img = vec![0f32; SIZE * SIZE];
        draw_segment(&mut img, (4.0, 10.5), (20.0, 10.5), 2.0);
        assert_eq!(img[10 * SIZE + 10], 1.0);
        assert_eq!(img[20 * SIZE + 10], 0.0);
        // Distance 1.0 from the axis with radius 1: half covered.
        assert!((img[9 * SIZE + 10] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn every_digit_has_ink_inside_the_frame() {
        let mut rng = StdRng::seed_from_u64(1);
        let noise = Normal::new(0.0f32, 0.0).unwrap();
        for d in 0..10 {
            for _ in 0..20 {
                let img = render(d, &mut rng, &noise);
                let ink: f32 = img.iter().sum();
                assert!(ink > 25.0, "digit {d} has too little ink: {ink}");
                // Nothing touches the outer border: the glyph fits after jitter.
                let border: f32 = (0..SIZE).map(|i| img[i] + img[(SIZE - 1) * SIZE + i]).sum();
                assert!(border < 1.0, "digit {d} touches the border: {border}");
            }
        }
    }
}
