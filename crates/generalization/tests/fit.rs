//! The fit-until-memorised runner on small generated data: memorisation of random labels, the
//! clean-vs-corrupted ordering, reproducibility, and exact resume from checkpoints.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use generalization::fit::{
    EpochRecord, FitConfig, FitOptions, FitReport, first_epoch_reaching, fit,
};
use generalization::{Corruption, ZhangModel, run_condition};
use nn_core::data::generated::generated_train_test;
use nn_core::data::{Dataset, TrainTest};
use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};

fn data() -> TrainTest {
    generated_train_test(300, 300, 5).unwrap()
}

/// The history without wall-clock times, for equality checks.
fn timeless(report: &FitReport) -> Vec<EpochRecord> {
    report
        .history
        .iter()
        .map(|r| EpochRecord {
            train_seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

/// MLP 1×512 fitted on `train` under `corruption` until memorised (cap `max_epochs`); the test set is
/// evaluated at the last epoch only.
fn memorise(
    train: &Dataset,
    test: &Dataset,
    corruption: Corruption,
    seed: u64,
    max_epochs: usize,
) -> FitReport {
    let config = FitConfig {
        max_epochs,
        test_every: 1000,
        ..FitConfig::default()
    };
    run_condition(
        train,
        test,
        corruption,
        ZhangModel::Mlp1x512,
        seed,
        &config,
        &FitOptions::default(),
        &Device::Cpu,
    )
    .unwrap()
    .fit
}

#[test]
fn random_labels_are_memorised_and_test_accuracy_falls_with_corruption() {
    let d = data();
    let mut test_acc = Vec::new();
    let mut to90 = Vec::new();
    for corruption in Corruption::label_sweep(&[0.0, 0.5, 1.0]) {
        let fit = &memorise(&d.train, &d.test, corruption, 1, 150);
        assert!(
            fit.reached_target,
            "{corruption}: {:?}",
            fit.final_train_accuracy
        );
        assert_eq!(fit.final_train_accuracy, 1.0, "{corruption}");
        assert_eq!(fit.epochs_to_100, Some(fit.epochs));
        assert!(fit.epochs_to_90.unwrap() <= fit.epochs);
        // Test accuracy is measured on the last epoch only (test_every is larger than the run).
        let evaluated: Vec<_> = fit
            .history
            .iter()
            .filter(|h| h.test_accuracy.is_some())
            .collect();
        assert_eq!(evaluated.len(), 1);
        test_acc.push(fit.final_test_accuracy.unwrap());
        to90.push(fit.epochs_to_90.unwrap());
    }
    // True labels generalise, random labels are at chance (10 classes: ≤ 20% as in the spec).
    assert!(test_acc[0] > 0.6, "{test_acc:?}");
    assert!(
        test_acc[0] > test_acc[1] && test_acc[1] > test_acc[2],
        "{test_acc:?}"
    );
    assert!(test_acc[2] <= 0.2, "{test_acc:?}");
    // Fitting noise takes longer than fitting the truth.
    assert!(to90[2] > to90[0], "{to90:?}");
}

fn small_mlp(seed: u64) -> (VarMap, Box<dyn nn_core::models::Classifier>) {
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    let config = ModelConfig {
        mlp_widths: vec![32],
        ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10))
    };
    (varmap, build_model(&config, vb).unwrap())
}

fn random_label_set(d: &TrainTest) -> Dataset {
    generalization::corrupt(&d.train, &d.test, Corruption::RandomLabels, 2)
        .unwrap()
        .train
}

#[test]
fn same_seed_same_curves_and_resume_is_exact() {
    let d = data();
    let train = random_label_set(&d);
    let config = |max_epochs| FitConfig {
        max_epochs,
        batch_size: 64,
        ..FitConfig::default()
    };
    let run = |max_epochs, options: &FitOptions| {
        let (varmap, model) = small_mlp(3);
        let report = fit(
            model.as_ref(),
            &varmap,
            &train,
            Some(&d.test),
            &config(max_epochs),
            options,
        )
        .unwrap();
        let w = varmap.data().lock().unwrap()["fc1.weight"]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        (report, w)
    };
    let (a, wa) = run(6, &FitOptions::default());
    let (b, wb) = run(6, &FitOptions::default());
    assert_eq!(
        a.epochs, 6,
        "random labels are not fitted in 6 epochs by 32 units"
    );
    assert_eq!(timeless(&a), timeless(&b));
    assert_eq!(wa, wb);
    // A different seed of the weights gives different curves: the comparison can fail.
    let (varmap, model) = small_mlp(4);
    let c = fit(
        model.as_ref(),
        &varmap,
        &train,
        Some(&d.test),
        &config(6),
        &FitOptions::default(),
    )
    .unwrap();
    assert_ne!(timeless(&a), timeless(&c));

    // Stop at the cap after 3 epochs (checkpoint every 2, and at the end), then continue to 6.
    let dir = tempfile::tempdir().unwrap();
    let options = FitOptions {
        checkpoint_dir: Some(dir.path().to_path_buf()),
        checkpoint_every: 2,
        progress: None,
    };
    let (first, _) = run(3, &options);
    assert_eq!(first.epochs, 3);
    let (resumed, wr) = run(6, &options);
    assert_eq!(resumed.resumed_after_epoch, Some(3));
    assert_eq!(timeless(&resumed), timeless(&a));
    assert_eq!(wr, wa);
    // A finished run is returned from its checkpoint without training.
    let (again, wg) = run(6, &options);
    assert_eq!(again.resumed_after_epoch, Some(6));
    assert_eq!(timeless(&again), timeless(&a));
    assert_eq!(wg, wa);
    // Another optimiser setting is a different run.
    let (varmap, model) = small_mlp(3);
    let other = FitConfig {
        batch_size: 32,
        ..config(6)
    };
    let err = fit(
        model.as_ref(),
        &varmap,
        &train,
        Some(&d.test),
        &other,
        &options,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("different run") && err.contains("settings"),
        "{err}"
    );
    // So is other data (the true labels instead of random ones).
    let err = fit(
        model.as_ref(),
        &varmap,
        &d.train,
        Some(&d.test),
        &config(6),
        &options,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("different run") && err.contains("data"),
        "{err}"
    );
}

#[test]
fn times_to_fit_count_exact_accuracy() {
    let rec = |epoch: usize, correct: usize| EpochRecord {
        epoch,
        steps: 8 * epoch as u64,
        lr: 1e-3,
        train_loss: 1.0,
        train_loss_eval: 1.0,
        train_accuracy: correct as f64 / 1000.0,
        train_correct: correct,
        test_accuracy: None,
        test_loss: None,
        train_seconds: 0.5,
    };
    let history = vec![
        rec(1, 500),
        rec(2, 899),
        rec(3, 900),
        rec(4, 999),
        rec(5, 1000),
    ];
    assert_eq!(first_epoch_reaching(&history, 1000, 0.9).unwrap().epoch, 3);
    let r = FitReport::from_history(history.clone(), 1000, 1.0, None);
    assert_eq!(r.epochs_to_90, Some(3));
    assert_eq!(r.steps_to_90, Some(24));
    assert_eq!(r.epochs_to_100, Some(5));
    assert!(r.reached_target);
    assert_eq!(r.train_seconds, 2.5);
    let r = FitReport::from_history(history[..4].to_vec(), 1000, 1.0, None);
    assert_eq!(r.epochs_to_100, None);
    assert!(!r.reached_target);
    let r = FitReport::from_history(history[..4].to_vec(), 1000, 0.995, None);
    assert!(r.reached_target, "999/1000 ≥ 99.5%");
}

#[test]
fn bad_input_is_a_clear_error() {
    let d = data();
    let (varmap, model) = small_mlp(0);
    let fit_with = |train: &Dataset, config: &FitConfig| {
        fit(
            model.as_ref(),
            &varmap,
            train,
            None,
            config,
            &FitOptions::default(),
        )
        .unwrap_err()
        .to_string()
    };
    let err = fit_with(
        &d.train,
        &FitConfig {
            target_accuracy: 0.0,
            ..FitConfig::default()
        },
    );
    assert!(err.contains("target_accuracy"), "{err}");
    let err = fit_with(
        &d.train,
        &FitConfig {
            max_epochs: 0,
            ..FitConfig::default()
        },
    );
    assert!(err.contains("max_epochs"), "{err}");
    // NaN pixels.
    let mut bad = d.train.take(10).unwrap();
    let mut px = bad.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    px[3] = f32::NAN;
    bad.images = Tensor::from_vec(px, (10, 1, 28, 28), &Device::Cpu).unwrap();
    let err = fit_with(&bad, &FitConfig::default());
    assert!(
        err.contains("NaN") && err.contains("generated/train"),
        "{err}"
    );
    // Images of the wrong size.
    let small = Dataset::new(
        Tensor::zeros((4, 1, 8, 8), DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros(4, DType::U32, &Device::Cpu).unwrap(),
        d.train.classes.clone(),
        "small",
        nn_core::data::Provenance::Generated,
    )
    .unwrap();
    let err = fit_with(&small, &FitConfig::default());
    assert!(err.contains("1×8×8") && err.contains("1×28×28"), "{err}");
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn mnist_random_labels_are_memorised_at_chance_test_accuracy() {
    use nn_core::data::{DataLocator, DatasetName, load_dataset};
    let data = load_dataset(DatasetName::Mnist, &DataLocator::from_env(None)).unwrap();
    let (train, test) = (data.train.take(500).unwrap(), data.test.take(2000).unwrap());
    let mut acc = Vec::new();
    for corruption in [Corruption::TrueLabels, Corruption::RandomLabels] {
        let fit = memorise(&train, &test, corruption, 0, 300);
        assert_eq!(fit.final_train_accuracy, 1.0, "{corruption}");
        acc.push((fit.final_test_accuracy.unwrap(), fit.epochs_to_100.unwrap()));
    }
    // Clean MNIST generalises (≈ 85% from 500 images); random labels sit at chance and take longer.
    assert!(acc[0].0 > 0.8, "{acc:?}");
    assert!((acc[1].0 - 0.1).abs() < 0.04, "{acc:?}");
    assert!(acc[1].1 > acc[0].1, "{acc:?}");
}
