//! The FID Inception port against pytorch-fid itself (issue 19): pytorch-fid's `InceptionV3([3])` with
//! seeded random weights (`benches/peers/export_torch.py`; its own input pipeline: bilinear resize to 299,
//! `align_corners=False`, then `2x − 1`), loaded here from the safetensors file PyTorch wrote, must give
//! the same pool3 features and unbiased logits to 1e-4, relative to the largest magnitude of PyTorch's
//! values — for a batch upsampled to 299 (64×64) and one downsampled (320×320).
//!
//! Not committed (≈ 100 MB): generate with `~/torch-peer/bin/python benches/peers/export_torch.py`, then
//! `cargo test --release -p gan-eval --test torch_parity -- --ignored` (MATHNN_TORCH_FIXTURES names another
//! folder than target/torch-fixtures). CI skips it (`--skip torch_parity`).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use gan_eval::features::{FidInceptionV3, InceptionInput};
use ndarray::Array2;

fn fixtures() -> PathBuf {
    std::env::var_os("MATHNN_TORCH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/torch-fixtures")
        })
}

/// `‖ours − theirs‖∞ / ‖theirs‖∞`.
fn relative_error(ours: &Array2<f64>, theirs: &Tensor) -> f64 {
    let t = theirs
        .to_dtype(candle_core::DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    assert_eq!(ours.len(), t.len());
    let scale = t.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(&t)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

#[test]
#[ignore = "needs the PyTorch fixtures (benches/peers/export_torch.py)"]
fn torch_parity_fid_inception() {
    let dir = fixtures();
    let net = FidInceptionV3::load(&dir.join("fid_inception.safetensors"), &Device::Cpu)
        .unwrap_or_else(|e| {
            panic!("{e} — generate the fixtures with benches/peers/export_torch.py")
        });
    let io: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("fid_inception.io.safetensors"), &Device::Cpu)
            .unwrap();
    let input = InceptionInput::default();
    let out = net.extract(&io["x"], &input, 2).unwrap();
    let e = relative_error(&out.pool3, &io["pool3"]);
    assert!(e < 1e-4, "pool3 (64×64 inputs) differs by {e:.2e}");
    let e = relative_error(&out.logits_unbiased, &io["logits_unbiased"]);
    assert!(e < 1e-4, "unbiased logits differ by {e:.2e}");
    let large = net.extract(&io["x_large"], &input, 1).unwrap();
    let e_large = relative_error(&large.pool3, &io["pool3_large"]);
    assert!(
        e_large < 1e-4,
        "pool3 (320×320 input) differs by {e_large:.2e}"
    );
    println!("FID Inception: logits {e:.1e}, pool3 of a 320×320 input {e_large:.1e} (relative)");
}
