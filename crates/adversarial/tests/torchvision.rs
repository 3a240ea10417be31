//! VGG-16/19 and ResNet-50 in torchvision layout: parameter counts equal torchvision's, random-weight
//! networks run batched at small inputs with the expected shapes, safetensors round trip, clear errors.

use adversarial::net::LogitModel;
use adversarial::torchvision::{
    TorchArch, TorchOptions, load_torchvision, parameter_count, random_weights, torchvision_net,
};
use candle_core::{DType, Device};

#[test]
fn parameter_counts_match_torchvision() {
    // torchvision.models.{vgg16, vgg19, resnet50}(): sum(p.numel() for p in m.parameters()).
    let opts = TorchOptions::default();
    assert_eq!(
        parameter_count(TorchArch::Vgg16, &opts).unwrap(),
        138_357_544
    );
    assert_eq!(
        parameter_count(TorchArch::Vgg19, &opts).unwrap(),
        143_667_240
    );
    assert_eq!(
        parameter_count(TorchArch::Resnet50, &opts).unwrap(),
        25_557_032
    );
}

fn small(h: usize) -> TorchOptions {
    TorchOptions {
        height: h,
        width: h,
        num_classes: 10,
        width_divisor: 16,
        fc_width: 24,
        ..Default::default()
    }
}

#[test]
fn random_weight_networks_have_the_expected_shapes() {
    for arch in TorchArch::ALL {
        for h in [32, 48] {
            let opts = small(h);
            let w = random_weights(arch, &opts, 0).unwrap();
            let net = torchvision_net(arch, &w, &opts, "random").unwrap();
            let x = nn_core::grad::seeded_normal(&[3, 3, h, h], DType::F32, &Device::Cpu, h as u64)
                .unwrap()
                .affine(0.25, 0.5)
                .unwrap();
            let logits = net.logits(&x).unwrap();
            assert_eq!(logits.dims(), &[3, 10], "{}", arch.as_str());
            // Batching does not change per-image results.
            let one = net.logits(&x.narrow(0, 1, 1).unwrap()).unwrap();
            let diff = (one - logits.narrow(0, 1, 1).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let scale = logits
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            // Relative: GEMM blocking differs between batch sizes, so only rounding may differ.
            assert!(diff <= 1e-5 * scale.max(1.0), "{diff} vs scale {scale}");
            let names = net.layer_names();
            match arch {
                TorchArch::Resnet50 => {
                    // PyTorch output sizes: ⌊(s + 2p − k)/stride⌋ + 1.
                    let down = |s: usize, k: usize, p: usize| (s + 2 * p - k) / 2 + 1;
                    let stem = down(h, 7, 3);
                    let pool = down(stem, 3, 1);
                    let l4 = down(down(down(pool, 3, 1), 3, 1), 3, 1);
                    assert_eq!(net.layer_shape("stem").unwrap(), vec![4, stem, stem]);
                    assert_eq!(net.layer_shape("maxpool").unwrap(), vec![4, pool, pool]);
                    assert_eq!(net.layer_shape("layer1.2").unwrap(), vec![16, pool, pool]);
                    assert_eq!(net.layer_shape("layer4.2").unwrap(), vec![128, l4, l4]);
                    // stem, maxpool, 3 + 4 + 6 + 3 blocks, avgpool, logits.
                    assert_eq!(names.len(), 2 + 16 + 2);
                }
                _ => {
                    assert_eq!(
                        net.layer_shape("block2_pool").unwrap(),
                        vec![8, h / 4, h / 4]
                    );
                    // Adaptive pooling to 7×7 whatever the input size.
                    assert_eq!(net.layer_shape("avgpool").unwrap(), vec![32, 7, 7]);
                    let convs = names.iter().filter(|n| n.contains("_conv")).count();
                    assert_eq!(convs, if arch == TorchArch::Vgg16 { 13 } else { 16 });
                }
            }
            assert_eq!(names.last().map(String::as_str), Some("logits"));
        }
    }
}

#[test]
fn safetensors_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(32);
    let w = random_weights(TorchArch::Resnet50, &opts, 1).unwrap();
    let path = dir.path().join("resnet50.safetensors");
    candle_core::safetensors::save(&w, &path).unwrap();
    let loaded = load_torchvision(TorchArch::Resnet50, &path, &opts).unwrap();
    let direct = torchvision_net(TorchArch::Resnet50, &w, &opts, "memory").unwrap();
    let x = nn_core::grad::seeded_normal(&[2, 3, 32, 32], DType::F32, &Device::Cpu, 9)
        .unwrap()
        .affine(0.25, 0.5)
        .unwrap();
    let d = (loaded.logits(&x).unwrap() - direct.logits(&x).unwrap()).unwrap();
    assert_eq!(
        d.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        0.0
    );

    // Wrong options for these weights: the error names the tensor and both shapes.
    let e = load_torchvision(
        TorchArch::Resnet50,
        &path,
        &TorchOptions {
            width_divisor: 8,
            ..opts
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("conv1.weight") && e.contains("resnet50.safetensors"),
        "{e}"
    );
    let mut partial = w.clone();
    partial.remove("layer3.1.bn2.running_var");
    let e = torchvision_net(TorchArch::Resnet50, &partial, &opts, "partial")
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer3.1.bn2.running_var"), "{e}");
    let e = load_torchvision(
        TorchArch::Vgg16,
        &dir.path().join("nope.safetensors"),
        &opts,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope.safetensors"), "{e}");
    assert!("vgg11".parse::<TorchArch>().is_err());
}
