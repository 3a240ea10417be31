//! The torchvision ports against PyTorch itself (issue 19): VGG-16, VGG-19 and ResNet-50 built by
//! torchvision with seeded random weights (`benches/peers/export_torch.py`), loaded here from the
//! safetensors file PyTorch wrote. In f32 the logits must equal PyTorch's to 1e-4; in f64 on both sides
//! logits and input gradients must agree to rounding (1e-9 / 1e-8). Errors are relative to the largest
//! magnitude of PyTorch's values.
//!
//! The fixtures are ≈ 1.2 GB and not committed: generate them with
//! `~/torch-peer/bin/python benches/peers/export_torch.py` (writes target/torch-fixtures, or pass a folder
//! and set MATHNN_TORCH_FIXTURES), then run `cargo test --release -p adversarial --test torch_parity --
//! --ignored`. CI skips them (`--skip torch_parity`).

use std::collections::HashMap;
use std::path::PathBuf;

use adversarial::net::Net;
use adversarial::torchvision::{TorchArch, TorchOptions, load_torchvision};
use candle_core::{DType, Device, Tensor};

fn fixtures() -> PathBuf {
    std::env::var_os("MATHNN_TORCH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/torch-fixtures")
        })
}

fn load(file: &str) -> HashMap<String, Tensor> {
    let path = fixtures().join(file);
    candle_core::safetensors::load(&path, &Device::Cpu).unwrap_or_else(|e| {
        panic!(
            "{}: {e} — generate the fixtures with benches/peers/export_torch.py",
            path.display()
        )
    })
}

/// `‖ours − theirs‖∞ / ‖theirs‖∞`.
fn relative_error(ours: &Tensor, theirs: &Tensor) -> f64 {
    let a = ours.to_dtype(DType::F64).unwrap();
    let b = theirs.to_dtype(DType::F64).unwrap();
    let diff = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
    let scale = b.abs().unwrap().max_all().unwrap();
    diff.to_scalar::<f64>().unwrap() / scale.to_scalar::<f64>().unwrap()
}

/// `∂ Σ_i logit_i[class_i] / ∂x` of `net`: one one-hot cotangent row per image.
fn input_gradient(net: &Net, x: &Tensor, classes: &[i64], dtype: DType) -> Tensor {
    let (n, k) = (x.dim(0).unwrap(), net.layer_shape("logits").unwrap()[0]);
    let mut onehot = vec![0f64; n * k];
    for (i, &c) in classes.iter().enumerate() {
        onehot[i * k + c as usize] = 1.0;
    }
    let u = Tensor::from_vec(onehot, (n, k), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
    net.vjp(&x.to_dtype(dtype).unwrap(), &u, "logits").unwrap()
}

fn check(arch: TorchArch) {
    let name = arch.as_str();
    let net = load_torchvision(
        arch,
        &fixtures().join(format!("{name}.safetensors")),
        &TorchOptions::default(),
    )
    .unwrap();
    let io = load(&format!("{name}.io.safetensors"));
    let x = &io["x"];
    let classes = io["class"].to_vec1::<i64>().unwrap();

    // f32, as users run it: logits to 1e-4.
    let logits = net.forward_to(x, "logits").unwrap();
    let e = relative_error(&logits, &io["logits"]);
    assert!(e < 1e-4, "{name}: f32 logits differ by {e:.2e} (relative)");

    // f64 on both sides: the same function to rounding, logits and input gradient.
    let net64 = net.to_dtype(DType::F64).unwrap();
    let x64 = x.to_dtype(DType::F64).unwrap();
    let logits64 = net64.forward_to(&x64, "logits").unwrap();
    let e = relative_error(&logits64, &io["logits64"]);
    assert!(e < 1e-9, "{name}: f64 logits differ by {e:.2e} (relative)");
    let grad64 = input_gradient(&net64, &x64, &classes, DType::F64);
    let e64 = relative_error(&grad64, &io["grad64"]);
    assert!(
        e64 < 1e-8,
        "{name}: f64 input gradients differ by {e64:.2e} (relative)"
    );

    // f32 input gradient: with random weights it is ill-conditioned — PyTorch's own f32 gradient is
    // 0.6–1.3 % from its f64 one, and ours (another summation order in the convolutions) 1.4–8.5 % — so
    // 1e-3 cannot be met by either side; the f64 comparison above is the exact one, and this is a sanity
    // bound against the f64 reference (a wrong layer or sign gives errors of order 1).
    let grad = input_gradient(&net, x, &classes, DType::F32);
    let ours = relative_error(&grad, &io["grad64"]);
    let theirs = relative_error(&io["grad"], &io["grad64"]);
    assert!(
        ours < 0.15,
        "{name}: f32 input gradient {ours:.2e} from the f64 reference (PyTorch's f32: {theirs:.2e})"
    );
    println!(
        "{name}: logits f32 ok, f64 logits {e:.1e}, f64 gradient {e64:.1e}; f32 gradient {ours:.1e} \
         from f64 (PyTorch's f32 {theirs:.1e})"
    );
}

#[test]
#[ignore = "needs the PyTorch fixtures (benches/peers/export_torch.py, ≈ 1.2 GB)"]
fn torch_parity_vgg16() {
    check(TorchArch::Vgg16);
}

#[test]
#[ignore = "needs the PyTorch fixtures (benches/peers/export_torch.py, ≈ 1.2 GB)"]
fn torch_parity_vgg19() {
    check(TorchArch::Vgg19);
}

#[test]
#[ignore = "needs the PyTorch fixtures (benches/peers/export_torch.py, ≈ 1.2 GB)"]
fn torch_parity_resnet50() {
    check(TorchArch::Resnet50);
}
