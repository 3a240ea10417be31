//! FID statistics files against pytorch-fid (issue 20): files written by pytorch-fid's own code path
//! (`np.savez_compressed(path, mu=…, sigma=…)`, fixtures made by benches/peers/fid_stats.py) read back to
//! the statistics of the same features, FID between them equals pytorch-fid's, our files round-trip, and
//! damaged files are named.

use std::path::{Path, PathBuf};

use gan_eval::stats_file::{UNKNOWN_SAMPLE_COUNT, read_stats_npz, write_stats_npz};
use gan_eval::{FrechetStats, fid};
use ndarray::{Array1, Array2};
use ndarray_npy::{NpzWriter, read_npy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fid_stats")
        .join(name)
}

fn max_abs_diff<D: ndarray::Dimension>(
    a: &ndarray::Array<f64, D>,
    b: &ndarray::Array<f64, D>,
) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn pytorch_fid_files_read_back_to_the_statistics_of_their_features() {
    // b: float64 features, so pytorch-fid's mu and sigma are float64 and must agree to rounding.
    let b: Array2<f64> = read_npy(fixture("features_b.npy")).unwrap();
    let ours = FrechetStats::from_features(b.view()).unwrap();
    let theirs = read_stats_npz(&fixture("peer_b.npz")).unwrap();
    assert_eq!(
        theirs.n, UNKNOWN_SAMPLE_COUNT,
        "pytorch-fid does not store n"
    );
    assert!(max_abs_diff(&theirs.mean, &ours.mean) < 1e-12);
    assert!(max_abs_diff(&theirs.cov, &ours.cov) < 1e-12);
    // a: float32 features; pytorch-fid's mu is then a float32 mean (read exactly, widened), its sigma
    // float64 — equal to ours to f32 rounding and to f64 rounding respectively.
    let a: Array2<f32> = read_npy(fixture("features_a.npy")).unwrap();
    let a = a.mapv(f64::from);
    let ours_a = FrechetStats::from_features(a.view()).unwrap();
    let theirs_a = read_stats_npz(&fixture("peer_a.npz")).unwrap();
    assert!(max_abs_diff(&theirs_a.mean, &ours_a.mean) < 1e-6);
    assert!(max_abs_diff(&theirs_a.cov, &ours_a.cov) < 1e-12);
    // FID between the two files equals pytorch-fid's (scipy sqrtm) value.
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let want = expected["fid_a_b"].as_f64().unwrap();
    let got = fid(&theirs_a, &theirs).unwrap();
    assert!(
        (got - want).abs() <= 1e-9 * want,
        "{got} vs pytorch-fid {want}"
    );
}

#[test]
fn written_files_round_trip_exactly() {
    let b: Array2<f64> = read_npy(fixture("features_b.npy")).unwrap();
    let stats = FrechetStats::from_features(b.view()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.npz");
    write_stats_npz(&stats, &path).unwrap();
    let back = read_stats_npz(&path).unwrap();
    assert_eq!(back.mean, stats.mean);
    assert_eq!(back.cov, stats.cov);
    assert_eq!(back.n, 50);
    // The archive holds exactly pytorch-fid's keys (plus n), as float64.
    let file = std::fs::File::open(&path).unwrap();
    let mut npz = ndarray_npy::NpzReader::new(file).unwrap();
    let mut names = npz.names().unwrap();
    names.sort();
    assert_eq!(names, ["mu", "n", "sigma"]);
    let mu: Array1<f64> = npz.by_name("mu").unwrap();
    assert_eq!(mu, stats.mean);
}

#[test]
fn damaged_statistics_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, arrays: &[(&str, ndarray::ArrayD<f64>)]| {
        let path = dir.path().join(name);
        let mut npz = NpzWriter::new(std::fs::File::create(&path).unwrap());
        for (key, a) in arrays {
            npz.add_array(*key, a).unwrap();
        }
        npz.finish().unwrap();
        path
    };
    let mu = Array1::<f64>::zeros(3).into_dyn();
    let eye = Array2::<f64>::eye(3).into_dyn();
    let mut asym = Array2::<f64>::eye(3);
    asym[[0, 1]] = 0.5;
    let cases = [
        (
            write("no_sigma.npz", &[("mu", mu.clone())]),
            "has no `sigma` array (it holds mu)",
        ),
        (
            write(
                "wrong_shape.npz",
                &[
                    ("mu", mu.clone()),
                    ("sigma", Array2::<f64>::eye(4).into_dyn()),
                ],
            ),
            "covariance",
        ),
        (
            write(
                "asymmetric.npz",
                &[("mu", mu.clone()), ("sigma", asym.into_dyn())],
            ),
            "not symmetric",
        ),
        (
            write(
                "flat_sigma.npz",
                &[
                    ("mu", mu.clone()),
                    ("sigma", Array1::<f64>::zeros(9).into_dyn()),
                ],
            ),
            "array `sigma`",
        ),
    ];
    for (path, needle) in cases {
        let e = read_stats_npz(&path).unwrap_err().to_string();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(e.contains(name) && e.contains(needle), "{e}");
    }
    let mut nan = Array1::<f64>::zeros(3);
    nan[1] = f64::NAN;
    let e = read_stats_npz(&write("nan.npz", &[("mu", nan.into_dyn()), ("sigma", eye)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nan.npz"), "{e}");
    let text = dir.path().join("text.npz");
    std::fs::write(&text, "not a zip").unwrap();
    let e = read_stats_npz(&text).unwrap_err().to_string();
    assert!(
        e.contains("text.npz") && e.contains("not an .npz archive"),
        "{e}"
    );
}
