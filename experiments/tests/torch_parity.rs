//! mathnn's own four classifiers against PyTorch (issue 19): built in PyTorch by
//! `benches/peers/mathnn_torch.py` with seeded random weights (batch-norm statistics randomised) and saved
//! by `benches/peers/export_torch.py`, read with `mathnn import --torch`, they must give PyTorch's logits to
//! 1e-5 relative to the largest logit (f32 on both sides).
//!
//! Needs the fixtures (`~/torch-peer/bin/python benches/peers/export_torch.py`, target/torch-fixtures or
//! MATHNN_TORCH_FIXTURES); run with `cargo test --release -p experiments --test torch_parity --
//! --ignored`. CI skips it (`--skip torch_parity`).

#[allow(dead_code)] // only `mathnn()` is used here
mod common;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

fn fixtures() -> PathBuf {
    std::env::var_os("MATHNN_TORCH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/torch-fixtures")
        })
}

#[test]
#[ignore = "needs the PyTorch fixtures (benches/peers/export_torch.py)"]
fn torch_parity_mathnn_models() {
    let root = tempfile::tempdir().unwrap();
    for kind in ["mlp", "lenet", "vgg-small", "resnet-small"] {
        let file = fixtures().join(format!("mathnn-{kind}.safetensors"));
        let dir = root.path().join(kind);
        let o = common::mathnn()
            .args(["import", "--torch"])
            .arg(&file)
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{kind}: {} — generate the fixtures with benches/peers/export_torch.py",
            String::from_utf8_lossy(&o.stderr)
        );
        let (_, _, model) =
            experiments::runs::classifier::load_trained(&dir, &Device::Cpu).unwrap();
        let io = candle_core::safetensors::load(
            fixtures().join(format!("mathnn-{kind}.io.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        let ours = model.forward_t(&io["x"], false).unwrap();
        let max_abs = |t: &Tensor| -> f64 {
            let t = t.to_dtype(DType::F64).unwrap().abs().unwrap();
            t.max_all().unwrap().to_scalar::<f64>().unwrap()
        };
        let diff = max_abs(&(&ours - &io["logits"]).unwrap());
        let scale = max_abs(&io["logits"]);
        assert!(
            diff / scale < 1e-5,
            "{kind}: logits differ by {:.2e} (relative)",
            diff / scale
        );
        println!("{kind}: logits equal PyTorch's to {:.1e}", diff / scale);
    }
}
