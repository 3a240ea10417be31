use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use super::*;

fn build(kind: ModelKind, input: InputSpec, seed: u64) -> (VarMap, Box<dyn Classifier>) {
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let model = build_model(&ModelConfig::new(kind, input), vb).unwrap();
    (varmap, model)
}

#[test]
fn parameter_counts_match_hand_formulas() {
    let mnist = InputSpec::new(1, 28, 28, 10);
    // 784·512+512 + 512·512+512 + 512·10+10
    assert_eq!(parameter_count(&build(ModelKind::Mlp, mnist, 0).0), 669_706);
    // (25·20+20) + (20·25·50+50) + (800·500+500) + (500·10+10)
    assert_eq!(
        parameter_count(&build(ModelKind::Lenet, mnist, 0).0),
        431_080
    );
    // VGG on 32×32×3: convs 3→16,16→16,16→32,32→32,32→64,64→64 (+biases), fc 64·4·4→128, 128→10
    let vgg = (3 * 16 + 16 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 9
        + (16 + 16 + 32 + 32 + 64 + 64)
        + (1024 * 128 + 128)
        + (128 * 10 + 10);
    assert_eq!(
        parameter_count(&build(ModelKind::VggSmall, InputSpec::new(3, 32, 32, 10), 0).0),
        vgg
    );
}

#[test]
fn every_model_gives_logits_and_named_activations() {
    for kind in ModelKind::ALL {
        for input in [
            InputSpec::new(1, 28, 28, 10),
            InputSpec::new(3, 32, 32, 2),
            InputSpec::new(3, 64, 64, 2),
        ] {
            let (_, model) = build(kind, input, 1);
            let x = Tensor::rand(
                0f32,
                1f32,
                (2, input.channels, input.height, input.width),
                &Device::Cpu,
            )
            .unwrap();
            let acts = model.forward_activations(&x, false).unwrap();
            let (last, logits) = acts.last().unwrap();
            assert_eq!(last, "logits");
            assert_eq!(
                logits.dims(),
                &[2, input.num_classes],
                "{kind} on {input:?}"
            );
            let names = model.layer_names().unwrap();
            assert_eq!(names.len(), acts.len());
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                names.len(),
                "{kind}: duplicate layer names {names:?}"
            );
            let direct = model.forward_t(&x, false).unwrap();
            let diff = (direct - logits)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(diff, 0.0);
        }
    }
}

#[test]
fn same_seed_same_weights() {
    let input = InputSpec::new(1, 28, 28, 10);
    let x = Tensor::rand(0f32, 1f32, (3, 1, 28, 28), &Device::Cpu).unwrap();
    let out = |seed| {
        build(ModelKind::Lenet, input, seed)
            .1
            .forward_t(&x, false)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    };
    assert_eq!(out(5), out(5));
    assert_ne!(out(5), out(6));
}

#[test]
fn bad_configurations_are_errors() {
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
    let err = build_model(
        &ModelConfig::new(ModelKind::Lenet, InputSpec::new(1, 8, 8, 10)),
        vb.clone(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("at least 16×16"), "{err}");
    let err = build_model(
        &ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 8, 8, 1)),
        vb,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("num_classes"), "{err}");
    let err = "transformer".parse::<ModelKind>().unwrap_err();
    assert!(
        err.to_string().contains("unknown model `transformer`"),
        "{err}"
    );
    let (_, model) = build(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10), 0);
    let x = Tensor::zeros((1, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
    assert!(model.forward_to(&x, "relu1", false).is_ok());
    let err = model.forward_to(&x, "conv9", false).unwrap_err();
    assert!(err.to_string().contains("no layer `conv9`"), "{err}");
}

#[test]
fn resnet_small_without_batch_norm_has_biased_convolutions_only() {
    let mnist = InputSpec::new(1, 28, 28, 10);
    let config = ModelConfig::new(ModelKind::ResnetSmall, mnist).with_batch_norm(false);
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
    let model = build_model(&config, vb).unwrap();
    assert_eq!(model.config(), &config);
    let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
    assert!(names.iter().all(|n| !n.contains(".bn.")), "{names:?}");
    // 3×3 convs 1→16 (stem), 16→16 ×2, 16→32, 32→32, 32→64, 64→64; 1×1 shortcuts 16→32, 32→64; each
    // with a bias; fc 64→10.
    let convs = (16 + 16 * 16 * 2 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 9 + 16 * 32 + 32 * 64;
    let biases = 16 + 16 * 2 + 32 * 2 + 64 * 2 + 32 + 64;
    assert_eq!(parameter_count(&varmap), convs + biases + 64 * 10 + 10);
    let x = Tensor::rand(0f32, 1.0, (2, 1, 28, 28), &Device::Cpu).unwrap();
    let names: Vec<String> = model
        .forward_activations(&x, false)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["stem", "stage1", "stage2", "stage3", "pool", "logits"]
    );
    // Training and evaluation mode agree: nothing depends on batch statistics.
    let a = model.forward_t(&x, true).unwrap();
    let b = model.forward_t(&x, false).unwrap();
    let d: f32 = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert_eq!(d, 0.0);
    // Checkpoints written before the option existed load as batch-norm models.
    let old =
        r#"{"kind":"resnet-small","input":{"channels":1,"height":28,"width":28,"num_classes":10}}"#;
    let old: ModelConfig = serde_json::from_str(old).unwrap();
    assert!(old.batch_norm);
}
