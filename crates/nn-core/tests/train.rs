//! The training loop on generated data: it learns, it is deterministic, it resumes exactly, and it fails
//! loudly on divergence or on a checkpoint of another run.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use nn_core::NnError;
use nn_core::data::{Dataset, TrainTest, generated_train_test};
use nn_core::models::{Classifier, InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};
use nn_core::optim::OptimizerConfig;
use nn_core::train::{TrainConfig, TrainOptions, TrainReport, evaluate, train};

fn data() -> TrainTest {
    let d = generated_train_test(1200, 400, 3).unwrap();
    TrainTest {
        train: d.train,
        test: d.test,
    }
}

fn model(kind: ModelKind, seed: u64) -> (VarMap, Box<dyn Classifier>) {
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let cfg = ModelConfig {
        mlp_widths: vec![128],
        ..ModelConfig::new(kind, InputSpec::new(1, 28, 28, 10))
    };
    (varmap, build_model(&cfg, vb).unwrap())
}

fn run(
    kind: ModelKind,
    epochs: usize,
    dir: Option<&std::path::Path>,
    d: &TrainTest,
) -> (VarMap, TrainReport) {
    let (varmap, m) = model(kind, 1);
    let cfg = TrainConfig {
        epochs,
        seed: 9,
        ..TrainConfig::default()
    };
    let opts = TrainOptions {
        checkpoint_dir: dir.map(|p| p.to_path_buf()),
        progress: None,
    };
    let report = train(m.as_ref(), &varmap, &d.train, Some(&d.test), &cfg, &opts).unwrap();
    (varmap, report)
}

fn weights(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
    let data = varmap.data().lock().unwrap();
    let mut v: Vec<(String, Vec<f32>)> = data
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn mlp_learns_generated_digits() {
    let d = data();
    let (_, report) = run(ModelKind::Mlp, 4, None, &d);
    let first = &report.history[0];
    let last = report.history.last().unwrap();
    assert!(last.train_loss < first.train_loss, "{report:?}");
    assert!(
        last.test_accuracy.unwrap() > 0.8,
        "test accuracy {:?}",
        last.test_accuracy
    );
}

#[test]
fn same_seed_same_run_and_resume_is_exact() {
    let d = data();
    let (a, ra) = run(ModelKind::Mlp, 3, None, &d);
    let (b, rb) = run(ModelKind::Mlp, 3, None, &d);
    assert_eq!(weights(&a), weights(&b));
    assert_eq!(
        ra.history.iter().map(|m| m.train_loss).collect::<Vec<_>>(),
        rb.history.iter().map(|m| m.train_loss).collect::<Vec<_>>()
    );

    // "Kill" after epoch 1 (a run asked for one epoch), then ask for three in the same directory.
    let dir = tempfile::tempdir().unwrap();
    let (_, r1) = run(ModelKind::Mlp, 1, Some(dir.path()), &d);
    assert_eq!(r1.resumed_after_epoch, None);
    let (c, rc) = run(ModelKind::Mlp, 3, Some(dir.path()), &d);
    assert_eq!(rc.resumed_after_epoch, Some(1));
    assert_eq!(rc.history.len(), 3);
    assert_eq!(
        weights(&a),
        weights(&c),
        "resumed run differs from the uninterrupted one"
    );
    assert_eq!(
        ra.history.last().unwrap().test_accuracy,
        rc.history.last().unwrap().test_accuracy
    );
    // Only the newest weights file is kept.
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.contains(&"weights-epoch3.safetensors".to_string())
            && !files.contains(&"weights-epoch1.safetensors".to_string()),
        "{files:?}"
    );
}

#[test]
fn resume_restores_batch_norm_statistics_and_optimizer_state() {
    let d = TrainTest {
        train: data().train.take(300).unwrap(),
        test: data().test.take(100).unwrap(),
    };
    let (a, _) = run(ModelKind::ResnetSmall, 2, None, &d);
    let dir = tempfile::tempdir().unwrap();
    run(ModelKind::ResnetSmall, 1, Some(dir.path()), &d);
    let (b, rb) = run(ModelKind::ResnetSmall, 2, Some(dir.path()), &d);
    assert_eq!(rb.resumed_after_epoch, Some(1));
    assert_eq!(weights(&a), weights(&b));
}

/// The error of resuming the MLP run in `dir` (seed 9) with `epochs` and `batch_size`.
fn resume_error(dir: &std::path::Path, d: &TrainTest, epochs: usize, batch_size: usize) -> String {
    let (varmap, m) = model(ModelKind::Mlp, 1);
    let cfg = TrainConfig {
        epochs,
        seed: 9,
        batch_size,
        ..TrainConfig::default()
    };
    let opts = TrainOptions {
        checkpoint_dir: Some(dir.to_path_buf()),
        progress: None,
    };
    train(m.as_ref(), &varmap, &d.train, None, &cfg, &opts)
        .unwrap_err()
        .to_string()
}

#[test]
fn checkpoint_of_another_run_is_refused() {
    let d = data();
    let dir = tempfile::tempdir().unwrap();
    run(ModelKind::Mlp, 1, Some(dir.path()), &d);
    let err = resume_error(dir.path(), &d, 2, 32);
    assert!(
        err.contains("different run") && err.contains("state.json"),
        "{err}"
    );
    // Only the fields that differ are named, not the whole configuration.
    assert!(
        err.contains("batch_size: checkpoint 64, this run 32") && !err.contains("eval_batch_size"),
        "{err}"
    );
}

#[test]
fn nan_weights_and_unknown_state_versions_are_refused_on_resume() {
    let d = data();
    let resume = |dir: &std::path::Path| resume_error(dir, &d, 2, 64);
    // A weight file with one NaN: the error names the file and the tensor.
    let dir = tempfile::tempdir().unwrap();
    run(ModelKind::Mlp, 1, Some(dir.path()), &d);
    let weights = dir.path().join("weights-epoch1.safetensors");
    let mut tensors =
        nn_core::checkpoint::load_tensors(&weights, &candle_core::Device::Cpu).unwrap();
    let key = tensors
        .keys()
        .find(|k| k.ends_with("fc1.weight"))
        .unwrap()
        .clone();
    let t = &tensors[&key];
    let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[7] = f32::NAN;
    let damaged = candle_core::Tensor::from_vec(v, t.dims(), &candle_core::Device::Cpu).unwrap();
    tensors.insert(key.clone(), damaged);
    nn_core::checkpoint::save_tensors(&tensors, &weights).unwrap();
    let err = resume(dir.path());
    assert!(
        err.contains(&key) && err.contains("non-finite") && err.contains("weights-epoch1"),
        "{err}"
    );
    // A state.json from a newer format: refused with both versions.
    let dir = tempfile::tempdir().unwrap();
    run(ModelKind::Mlp, 1, Some(dir.path()), &d);
    let state = dir.path().join("state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replacen("\"format\": 1", "\"format\": 7", 1)).unwrap();
    let err = resume(dir.path());
    assert!(
        err.contains("version 7") && err.contains("version 1"),
        "{err}"
    );
}

#[test]
fn asking_for_fewer_epochs_than_a_run_has_done_is_an_error() {
    let d = data();
    let dir = tempfile::tempdir().unwrap();
    run(ModelKind::Mlp, 2, Some(dir.path()), &d);
    let err = resume_error(dir.path(), &d, 1, 64);
    assert!(err.contains("already trained 2 epochs"), "{err}");
}

#[test]
fn divergence_is_an_error_not_a_nan_model() {
    let d = data();
    let (varmap, m) = model(ModelKind::Mlp, 1);
    let cfg = TrainConfig {
        epochs: 3,
        optimizer: OptimizerConfig::sgd(1e12, 0.9),
        ..TrainConfig::default()
    };
    let err = train(
        m.as_ref(),
        &varmap,
        &d.train,
        None,
        &cfg,
        &TrainOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, NnError::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("diverged"));
}

#[test]
fn mismatched_data_is_an_error() {
    let (varmap, m) = model(ModelKind::Mlp, 1);
    let images = Tensor::zeros((4, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 1, 0, 1], &Device::Cpu).unwrap();
    let pets_like = Dataset::new(
        images,
        labels,
        vec!["cat".into(), "dog".into()],
        "pets",
        nn_core::data::Provenance::Real,
    )
    .unwrap();
    let err = train(
        m.as_ref(),
        &varmap,
        &pets_like,
        None,
        &TrainConfig::default(),
        &TrainOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("3×32×32") && err.contains("1×28×28"), "{err}");
    let err = evaluate(m.as_ref(), &pets_like, 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("evaluation set"), "{err}");
}

#[test]
fn evaluation_confusion_matrix_is_consistent() {
    let d = data();
    let (_, m) = model(ModelKind::Mlp, 1);
    let e = evaluate(m.as_ref(), &d.test, 64).unwrap();
    let total: u64 = e.confusion.iter().flatten().sum();
    assert_eq!(total as usize, d.test.len());
    let diag: u64 = (0..10).map(|i| e.confusion[i][i]).sum();
    assert!((e.accuracy - diag as f64 / total as f64).abs() < 1e-12);
    assert!(e.loss.is_finite() && e.loss > 0.0);
}
