//! `mathnn hog` end to end against the scikit-image fixtures of `crates/classical/tests/fixtures/hog`
//! (written by `benches/peers/hog.py`): .npy (grey, RGB) and PNG input give scikit-image's descriptor bit
//! for bit; bad input is one clear error line.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{assert_clean_failure, mathnn};

use candle_core::{Device, Tensor};
use ndarray::{Array1, Array2, Array3};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/classical/tests/fixtures/hog")
        .join(name)
}

fn read_vec(path: &Path) -> Vec<f64> {
    Array1::<f64>::read_npy(std::fs::File::open(path).unwrap())
        .unwrap()
        .to_vec()
}

fn run(args: &[&str]) -> Output {
    mathnn().arg("hog").args(args).output().unwrap()
}

fn assert_success(o: &Output) {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn grey_rgb_and_png_equal_scikit_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.npy");
    let o = out.to_str().unwrap();
    // uint8 .npy, L1 norm, 4×4 cells, 2×2 blocks.
    let image = fixture("u8_26x30.npy");
    let r = run(&[
        image.to_str().unwrap(),
        "--pixels-per-cell",
        "4,4",
        "--cells-per-block",
        "2,2",
        "--block-norm",
        "L1",
        "--out",
        o,
    ]);
    assert_success(&r);
    assert_eq!(read_vec(&out), read_vec(&fixture("u8_26x30.l1.npy")));
    // f64 RGB, rectangular cells and blocks, 7 orientations, channels last.
    let rgb = fixture("rgb25x23.npy");
    let r = run(&[
        rgb.to_str().unwrap(),
        "--orientations",
        "7",
        "--pixels-per-cell",
        "5,3",
        "--cells-per-block",
        "2,3",
        "--channel-axis",
        "-1",
        "--out",
        o,
    ]);
    assert_success(&r);
    assert_eq!(read_vec(&out), read_vec(&fixture("rgb25x23.rect.npy")));
    // The same uint8 image as a PNG (8-bit values, not rescaled), with sqrt and L1-sqrt.
    let pixels = Array2::<u8>::read_npy(std::fs::File::open(&image).unwrap()).unwrap();
    let (h, w) = pixels.dim();
    let scaled: Vec<f32> = pixels.iter().map(|&v| f32::from(v) / 255.0).collect();
    let png = dir.path().join("img.png");
    nn_core::data::image_io::save_image(
        &Tensor::from_vec(scaled, (1, h, w), &Device::Cpu).unwrap(),
        &png,
    )
    .unwrap();
    let vis = dir.path().join("vis.png");
    let r = run(&[
        png.to_str().unwrap(),
        "--orientations",
        "8",
        "--pixels-per-cell",
        "5,4",
        "--cells-per-block",
        "1,2",
        "--block-norm",
        "L1-sqrt",
        "--transform-sqrt",
        "--out",
        o,
        "--visualise",
        vis.to_str().unwrap(),
    ]);
    assert_success(&r);
    assert_eq!(read_vec(&out), read_vec(&fixture("u8_26x30.sqrtl1s.npy")));
    assert!(vis.exists());
    // The visualisation as raw f64 equals scikit-image's.
    let vis_npy = dir.path().join("vis.npy");
    let r = run(&[
        image.to_str().unwrap(),
        "--pixels-per-cell",
        "4",
        "--cells-per-block",
        "2",
        "--out",
        o,
        "--visualize",
        vis_npy.to_str().unwrap(),
    ]);
    assert_success(&r);
    let ours = Array2::<f64>::read_npy(std::fs::File::open(&vis_npy).unwrap()).unwrap();
    let theirs =
        Array2::<f64>::read_npy(std::fs::File::open(fixture("u8_26x30.hys.vis.npy")).unwrap())
            .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.npy");
    let o = out.to_str().unwrap();
    let rgb = fixture("rgb25x23.npy");
    let rgb = rgb.to_str().unwrap();
    assert_clean_failure(
        run(&[rgb, "--pixels-per-cell", "4", "--out", o]),
        &["3-D", "--channel-axis"],
    );
    assert_clean_failure(
        run(&[rgb, "--channel-axis", "1", "--out", o]),
        &["--channel-axis 1"],
    );
    let grey = fixture("gray29x23.npy");
    let grey = grey.to_str().unwrap();
    assert_clean_failure(run(&[grey, "--out", o]), &["too small", "24 rows"]);
    assert_clean_failure(
        run(&[grey, "--orientations", "0", "--out", o]),
        &["orientations"],
    );
    let bad_norm = run(&[grey, "--block-norm", "L3", "--out", o]);
    assert!(!bad_norm.status.success());
    assert!(String::from_utf8_lossy(&bad_norm.stderr).contains("L2-Hys"));
    assert_clean_failure(
        run(&["/nonexistent/x.npy", "--out", o]),
        &["/nonexistent/x.npy"],
    );
    // NaN pixel: scikit-image would return NaN features silently.
    let mut nan = Array2::<f64>::zeros((30, 30));
    nan[[3, 4]] = f64::NAN;
    let nan_path = dir.path().join("nan.npy");
    nan.write_npy(std::fs::File::create(&nan_path).unwrap())
        .unwrap();
    assert_clean_failure(
        run(&[nan_path.to_str().unwrap(), "--out", o]),
        &["row 3, col 4", "finite"],
    );
    // An int64 array is not a supported pixel type.
    let ints = Array3::<i64>::zeros((30, 30, 3));
    let int_path = dir.path().join("ints.npy");
    ints.write_npy(std::fs::File::create(&int_path).unwrap())
        .unwrap();
    assert_clean_failure(
        run(&[int_path.to_str().unwrap(), "--out", o]),
        &["float64, float32 or uint8"],
    );
    // Writing over the input is refused.
    assert_clean_failure(run(&[grey, "--out", grey]), &["input image"]);
    assert!(!out.exists(), "no output after failures");
}
