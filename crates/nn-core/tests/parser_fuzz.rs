//! Every file parser of nn-core fed damaged bytes (issue 17): truncated copies of a valid file, copies with
//! flipped bits, random bytes and an empty file. None may panic; each either parses (a flipped pixel is
//! still an image) or returns an error that names the file. Seeded: the same cases every run.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use candle_core::{Device, Tensor};
use nn_core::checkpoint::{RunState, load_tensors, read_json, save_tensors};
use nn_core::data::cifar::load_cifar_binary;
use nn_core::data::idx::{read_idx_images, read_idx_labels};
use nn_core::data::image_io::{load_image, load_image_u8, save_image};
use nn_core::data::load::load_sklearn_digits;
use nn_core::train::{EpochMetrics, TrainConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Damaged variants of `valid`: the empty file, 30 truncations, 30 copies with 1–8 flipped bits and 10
/// random byte strings.
fn damaged(valid: &[u8], seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cases = vec![("empty".to_string(), Vec::new())];
    for _ in 0..30 {
        let len = rng.random_range(0..valid.len());
        cases.push((format!("truncated to {len} bytes"), valid[..len].to_vec()));
    }
    for _ in 0..30 {
        let mut bytes = valid.to_vec();
        let flips = rng.random_range(1..=8);
        for _ in 0..flips {
            let i = rng.random_range(0..bytes.len());
            bytes[i] ^= 1 << rng.random_range(0..8);
        }
        cases.push((format!("{flips} bits flipped"), bytes));
    }
    for _ in 0..10 {
        let len = rng.random_range(1..2 * valid.len());
        cases.push((
            format!("{len} random bytes"),
            (0..len).map(|_| rng.random()).collect(),
        ));
    }
    cases
}

/// Writes each damaged variant to `dir/name` and parses it with `parse`: no panic, and any error names
/// the file. Returns how many variants parsed.
fn fuzz<T>(
    dir: &Path,
    name: &str,
    valid: &[u8],
    seed: u64,
    parse: impl Fn(&Path) -> nn_core::Result<T>,
) -> usize {
    // The valid file itself parses.
    let path = dir.join(name);
    std::fs::write(&path, valid).unwrap();
    assert!(
        parse(&path).is_ok(),
        "{name}: the valid file does not parse"
    );
    let mut parsed = 0;
    for (what, bytes) in damaged(valid, seed) {
        std::fs::write(&path, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| parse(&path))) {
            Err(_) => panic!("{name} ({what}): the parser panicked"),
            Ok(Ok(_)) => parsed += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(name),
                    "{name} ({what}): the error does not name the file: {msg}"
                );
            }
        }
    }
    parsed
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

#[test]
fn idx_files() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 251) as u8).collect();
    fuzz(
        dir.path(),
        "images-idx3-ubyte",
        &idx(0x0803, &[3, 28, 28], &pixels),
        1,
        read_idx_images,
    );
    fuzz(
        dir.path(),
        "labels-idx1-ubyte",
        &idx(0x0801, &[5], &[0, 1, 2, 3, 4]),
        2,
        read_idx_labels,
    );
}

#[test]
fn cifar_style_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let record = |label: u8| {
        let mut r = vec![label];
        r.extend((0..3 * 8 * 8).map(|i| (i * 7 % 256) as u8));
        r
    };
    let valid: Vec<u8> = (0..4).flat_map(|l| record(l as u8)).collect();
    let classes: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    fuzz(dir.path(), "batch.bin", &valid, 3, |p| {
        load_cifar_binary(p, 1, 0, (3, 8, 8), classes.clone(), "fuzz")
    });
}

#[test]
fn safetensors_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valid.safetensors");
    let mut tensors = HashMap::new();
    tensors.insert(
        "fc1.weight".to_string(),
        Tensor::arange(0f32, 24.0, &Device::Cpu)
            .unwrap()
            .reshape((4, 6))
            .unwrap(),
    );
    tensors.insert(
        "fc1.bias".to_string(),
        Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    save_tensors(&tensors, &path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    fuzz(dir.path(), "model.safetensors", &valid, 4, |p| {
        load_tensors(p, &Device::Cpu)
    });
}

#[test]
fn png_and_jpeg_images() {
    let dir = tempfile::tempdir().unwrap();
    let image = Tensor::arange(0f32, 3.0 * 16.0 * 12.0, &Device::Cpu)
        .unwrap()
        .reshape((3, 16, 12))
        .unwrap()
        .affine(1.0 / 576.0, 0.0)
        .unwrap();
    let png = dir.path().join("valid.png");
    save_image(&image, &png).unwrap();
    let valid = std::fs::read(&png).unwrap();
    fuzz(dir.path(), "photo.png", &valid, 5, load_image_u8);
    fuzz(dir.path(), "photo.png", &valid, 6, load_image);
    // A JPEG written by the image crate.
    let rgb = image::RgbImage::from_fn(16, 12, |x, y| {
        image::Rgb([(x * 15) as u8, (y * 20) as u8, 90])
    });
    let jpeg = dir.path().join("valid.jpg");
    rgb.save(&jpeg).unwrap();
    let valid = std::fs::read(&jpeg).unwrap();
    fuzz(dir.path(), "photo.jpg", &valid, 7, load_image_u8);
}

#[test]
fn checkpoint_state_json_and_digits_csv() {
    let dir = tempfile::tempdir().unwrap();
    let state = serde_json::json!({
        "format": 1,
        "model": nn_core::models::ModelConfig::new(
            nn_core::models::ModelKind::Mlp,
            nn_core::models::InputSpec::new(1, 28, 28, 10)
        ),
        "config": TrainConfig::default(),
        "data": "generated:64",
        "epochs_done": 0,
        "steps": 0,
        "weights": "weights-epoch0.safetensors",
        "history": []
    });
    let valid = serde_json::to_vec_pretty(&state).unwrap();
    fuzz(dir.path(), "state.json", &valid, 8, |p| {
        read_json::<RunState<TrainConfig, EpochMetrics>>(p)
    });
    // scikit-learn digits: gzip CSV of 64 pixel counts and a label.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for label in 0..3 {
        let row: Vec<String> = (0..64).map(|i| ((i + label) % 17).to_string()).collect();
        writeln!(gz, "{},{label}", row.join(",")).unwrap();
    }
    let valid = gz.finish().unwrap();
    fuzz(dir.path(), "digits.csv.gz", &valid, 9, load_sklearn_digits);
}
