//! Geometry Score: bars and RLTs equal to gudhi's through the reference pipeline, hand-built complexes
//! and intervals, determinism, the circle-vs-disk anchor, bad input.

use gan_eval::gs::{
    GsConfig, geometry_score, landmark_draw, mean_rlt, relative_living_times, rlt_from_bars,
};
use gan_eval::toy;
use ndarray::{Array2, array};
use serde_json::Value;

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// Cases written by `scripts/make_gs_reference.py` (gudhi 3.13 `WitnessComplex`, reference pipeline).
#[test]
fn one_draw_equals_gudhi_through_the_reference_pipeline() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/gs_reference.json"
    ))
    .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rows: Vec<Vec<f64>> = serde_json::from_value(case["points"].clone()).unwrap();
        let d = rows[0].len();
        let points =
            Array2::from_shape_vec((rows.len(), d), rows.into_iter().flatten().collect()).unwrap();
        let landmarks: Vec<usize> = serde_json::from_value(case["landmarks"].clone()).unwrap();
        let gamma = case["gamma"].as_f64().unwrap();
        // Below GEMM_MIN_DIM the distances are bit-for-bit scipy's; above, the exact route's 16-lane
        // sums differ from cdist's in the last bits only.
        let _ = d;
        let tol = 1e-12;
        for (i_max, key) in [(10, "rlt10"), (100, "rlt100")] {
            let r = relative_living_times(points.view(), &landmarks, gamma, i_max).unwrap();
            let alpha = case["alpha_max"].as_f64().unwrap();
            assert!((r.alpha_max - alpha).abs() <= tol * alpha, "{name}: α");
            assert_eq!(
                r.edges as u64,
                case["edges"].as_u64().unwrap(),
                "{name}: edges"
            );
            assert_eq!(
                r.triangles as u64,
                case["triangles"].as_u64().unwrap(),
                "{name}: triangles"
            );
            let bars: Vec<[f64; 2]> = case["bars"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    let death = b[1].as_f64().unwrap_or(alpha); // "inf" → cut at α_max
                    [b[0].as_f64().unwrap(), death]
                })
                .collect();
            assert_eq!(r.bars.len(), bars.len(), "{name}: number of bars");
            for (ours, theirs) in r.bars.iter().zip(&bars) {
                assert!(
                    close(ours, theirs, tol * alpha.max(1.0)),
                    "{name}: {ours:?} vs {theirs:?}"
                );
            }
            let expected: Vec<f64> = serde_json::from_value(case[key].clone()).unwrap();
            assert!(
                close(&r.rlt, &expected, tol * 10.0),
                "{name} {key}: {:?} vs {expected:?}",
                r.rlt
            );
        }
    }
}

#[test]
fn four_points_on_a_circle_have_one_hole_until_the_diagonals() {
    let p = array![[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]];
    let lm = [0, 1, 2, 3];
    // Max distance 2. γ = 0.25 → α = 0.5 < 2 − √2: the complex is the 4-cycle, one essential bar.
    let r = relative_living_times(p.view(), &lm, 0.25, 3).unwrap();
    assert_eq!((r.edges, r.triangles), (4, 0));
    assert_eq!(r.bars, vec![[0.0, 0.5]]);
    assert_eq!(r.essential, vec![true]);
    assert_eq!(r.rlt, vec![0.0, 1.0, 0.0]);
    // γ = 0.5 → α = 1: both diagonals and all four triangles appear at 2 − √2 and kill the cycle.
    let r = relative_living_times(p.view(), &lm, 0.5, 3).unwrap();
    let death = 2.0 - 2f64.sqrt();
    assert_eq!((r.edges, r.triangles), (6, 4));
    assert_eq!(r.bars.len(), 1);
    assert!(r.bars[0][0] == 0.0 && (r.bars[0][1] - death).abs() < 1e-15);
    assert_eq!(r.essential, vec![false]);
    assert!(close(&r.rlt, &[1.0 - death, death, 0.0], 1e-15));
    // A duplicated landmark adds a vertex at the same place and nothing to H1.
    let r = relative_living_times(p.view(), &[0, 1, 2, 3, 0], 0.25, 3).unwrap();
    assert_eq!(r.bars, vec![[0.0, 0.5]]);
}

#[test]
fn rlt_of_hand_built_intervals() {
    let inf = f64::INFINITY;
    assert_eq!(rlt_from_bars(&[], 1.0, 3).unwrap(), vec![1.0, 0.0, 0.0]);
    // [0, 0.5) and [0.25, ∞→1): one, two, then one interval alive.
    assert_eq!(
        rlt_from_bars(&[[0.0, 0.5], [0.25, inf]], 1.0, 3).unwrap(),
        vec![0.0, 0.75, 0.25]
    );
    // i_max truncation: the piece with two intervals is dropped; the row sums to 0.75.
    assert_eq!(
        rlt_from_bars(&[[0.0, 0.5], [0.25, inf]], 1.0, 2).unwrap(),
        vec![0.0, 0.75]
    );
    // Duplicates count twice; zero-length intervals count for nothing; touching ones do not overlap.
    assert_eq!(
        rlt_from_bars(&[[0.0, 0.5], [0.0, 0.5]], 1.0, 3).unwrap(),
        vec![0.5, 0.0, 0.5]
    );
    assert_eq!(
        rlt_from_bars(&[[0.3, 0.3]], 1.0, 2).unwrap(),
        vec![1.0, 0.0]
    );
    assert_eq!(
        rlt_from_bars(&[[0.0, 0.5], [0.5, 2.0]], 2.0, 2).unwrap(),
        vec![0.0, 1.0]
    );
    assert!(rlt_from_bars(&[[0.5, 0.2]], 1.0, 2).is_err());
    assert!(rlt_from_bars(&[[0.0, 0.2]], 0.0, 2).is_err());
}

#[test]
fn geometry_score_is_the_squared_distance_of_mrlts() {
    assert_eq!(geometry_score(&[1.0, 0.0], &[0.0, 1.0]).unwrap(), 2.0);
    assert_eq!(geometry_score(&[0.3, 0.7], &[0.3, 0.7]).unwrap(), 0.0);
    assert!(geometry_score(&[1.0], &[0.5, 0.5]).is_err());
    assert!(geometry_score(&[f64::NAN], &[0.5]).is_err());
}

#[test]
fn mean_rlt_is_deterministic_and_thread_count_independent() {
    let x = toy::circle(400, 0.05, 3);
    let cfg = GsConfig {
        landmarks: 16,
        gamma: Some(0.1),
        i_max: 10,
        n_draws: 24,
        seed: 9,
    };
    let a = mean_rlt(x.view(), &cfg).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| mean_rlt(x.view(), &cfg).unwrap());
    assert_eq!(a, b);
    let c = mean_rlt(
        x.view(),
        &GsConfig {
            seed: 10,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_ne!(a.mrlt, c.mrlt);
    assert!((a.mrlt.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(a.gamma, 0.1);
    // Default γ = N/640000.
    let d = mean_rlt(
        x.view(),
        &GsConfig {
            gamma: None,
            n_draws: 2,
            ..cfg
        },
    )
    .unwrap();
    assert_eq!(d.gamma, 400.0 / 640000.0);
}

/// In 20-D with many draws, `mean_rlt` computes all point distances once; each draw must equal the
/// one-draw function on the same landmarks.
#[test]
fn precomputed_distances_give_the_same_mrlt_as_single_draws() {
    let x = Array2::from_shape_fn((300, 20), |(i, j)| {
        ((i * 31 + j * 17) % 23) as f64 / 23.0 + 0.01 * ((i * j) % 7) as f64
    });
    let cfg = GsConfig {
        landmarks: 16,
        gamma: Some(0.2),
        i_max: 20,
        n_draws: 40,
        seed: 5,
    };
    let m = mean_rlt(x.view(), &cfg).unwrap();
    let mut sum = vec![0.0; 20];
    for k in 0..cfg.n_draws {
        let idx = landmark_draw(300, 16, 5, k);
        let r = relative_living_times(x.view(), &idx, 0.2, 20).unwrap();
        for (s, v) in sum.iter_mut().zip(&r.rlt) {
            *s += v / cfg.n_draws as f64;
        }
    }
    assert!(close(&m.mrlt, &sum, 1e-9), "{:?} vs {sum:?}", m.mrlt);
    assert!(m.mrlt[0] < 0.99, "not a trivial case: {:?}", m.mrlt);
}

/// The reference notebook's setting (N = 5000, L_0 = 32, γ = 1/8, i_max = 10), with fewer draws to stay
/// fast: the circle has one hole, the disk none, and GS lies near the published 1.83.
#[test]
fn circle_versus_filled_disk_is_far_apart() {
    let circle = toy::circle(5000, 0.05, 0);
    let disk = toy::filled_disk(5000, 1);
    let cfg = GsConfig {
        landmarks: 32,
        gamma: Some(1.0 / 8.0),
        i_max: 10,
        n_draws: 16,
        seed: 0,
    };
    let a = mean_rlt(circle.view(), &cfg).unwrap();
    let b = mean_rlt(disk.view(), &cfg).unwrap();
    assert!(a.mrlt[1] > 0.8, "circle {:?}", a.mrlt);
    assert!(b.mrlt[0] > 0.8, "disk {:?}", b.mrlt);
    let gs = geometry_score(&a.mrlt, &b.mrlt).unwrap();
    assert!((1.4..2.0).contains(&gs), "GS {gs}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let x = toy::circle(10, 0.0, 0);
    let cfg = GsConfig {
        landmarks: 11,
        n_draws: 2,
        ..GsConfig::default()
    };
    let e = mean_rlt(x.view(), &cfg).unwrap_err().to_string();
    assert!(e.contains("landmarks") && e.contains("10"), "{e}");
    let e = relative_living_times(x.view(), &[0, 10], 0.1, 10)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of range"), "{e}");
    assert!(relative_living_times(x.view(), &[0, 1], 0.0, 10).is_err());
    assert!(relative_living_times(x.view(), &[0, 1], f64::NAN, 10).is_err());
    assert!(relative_living_times(x.view(), &[0, 1], 0.1, 0).is_err());
    let mut y = x.clone();
    y[[3, 0]] = f64::NAN;
    assert!(
        relative_living_times(y.view(), &[0, 1], 0.1, 10)
            .unwrap_err()
            .to_string()
            .contains("row 3")
    );
    let same = Array2::<f64>::ones((5, 2));
    assert!(relative_living_times(same.view(), &[0, 1], 0.1, 10).is_err());
    assert!(
        mean_rlt(
            x.view(),
            &GsConfig {
                n_draws: 0,
                landmarks: 4,
                ..GsConfig::default()
            }
        )
        .is_err()
    );
}
