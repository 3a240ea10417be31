//! Tests of the GAN module: the WGAN-GP penalty's parameter gradient against central finite differences
//! (f64), the second-order guard, exact resume, and configuration errors.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use super::losses::gradient_penalty;
use super::*;
use crate::checkpoint::varmap_tensors;
use crate::data::generated::generated_digits;
use crate::models::SeededVarMap;

fn f64_critic(arch: GanArch, dim: usize, seed: u64) -> (VarMap, Critic) {
    let vars = VarMap::new();
    let vb = SeededVarMap::var_builder(&vars, seed, DType::F64, &Device::Cpu);
    (vars.clone(), Critic::new(arch, dim, vb).unwrap())
}

/// Worst relative error of the autograd gradient of the penalty against central differences over the
/// coordinates `coords` (variable name, flat index), and the number of coordinates checked.
fn penalty_fd_error(arch: GanArch, dim: usize, per_var: usize) -> (f64, usize) {
    let dev = &Device::Cpu;
    let (vars, critic) = f64_critic(arch, dim, 3);
    let data = generated_digits(6, 1)
        .unwrap()
        .images
        .to_dtype(DType::F64)
        .unwrap();
    let real = data.narrow(0, 0, 3).unwrap();
    let fake = data.narrow(0, 3, 3).unwrap().affine(0.7, 0.1).unwrap();
    let eps = Tensor::new(&[0.2f64, 0.55, 0.9], dev).unwrap();
    let penalty = || {
        gradient_penalty(&critic, &real, &fake, &eps)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let grads = gradient_penalty(&critic, &real, &fake, &eps)
        .unwrap()
        .backward()
        .unwrap();
    let mut names: Vec<String> = vars.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    // Biases enter ∇ₓD only through the piecewise-constant LeakyReLU masks (and the last bias not at
    // all), so candle gives them no gradient: their finite differences must then vanish.
    let analytic: Vec<Vec<f64>> = names
        .iter()
        .map(|name| {
            let var = vars.data().lock().unwrap()[name].clone();
            match grads.get(var.as_tensor()) {
                Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                None => vec![0.0; var.elem_count()],
            }
        })
        .collect();
    let scale = analytic.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    let (mut worst, mut checked) = (0f64, 0);
    let h = 1e-5;
    for (name, analytic) in names.iter().zip(&analytic) {
        let var = vars.data().lock().unwrap()[name].clone();
        let theta = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let step = (theta.len() / per_var).max(1);
        for i in (0..theta.len()).step_by(step) {
            let set = |v: f64| {
                let mut t = theta.clone();
                t[i] = v;
                var.set(&Tensor::from_vec(t, var.shape(), dev).unwrap())
                    .unwrap();
            };
            set(theta[i] + h);
            let plus = penalty();
            set(theta[i] - h);
            let minus = penalty();
            set(theta[i]);
            let fd = (plus - minus) / (2.0 * h);
            let err = (fd - analytic[i]).abs() / analytic[i].abs().max(fd.abs()).max(1e-3 * scale);
            worst = worst.max(err);
            checked += 1;
        }
    }
    (worst, checked)
}

#[test]
fn gradient_penalty_gradient_matches_finite_differences() {
    // Acceptance 1: the penalty's gradient w.r.t. every critic parameter (conv critic of width 1: all
    // 347 parameters; MLP critic: about 16 coordinates of each of its 6 tensors) to 1e-5 relative in f64.
    let (worst, checked) = penalty_fd_error(GanArch::Dcgan, 1, usize::MAX);
    assert_eq!(checked, 347);
    println!("conv critic: {checked} coordinates, worst relative error {worst:.2e}");
    assert!(worst < 1e-5, "conv critic: worst relative error {worst:e}");
    let (worst, checked) = penalty_fd_error(GanArch::Mlp, 1, 16);
    assert!(checked > 5 * 16, "{checked}");
    println!("MLP critic: {checked} coordinates, worst relative error {worst:.2e}");
    assert!(worst < 1e-5, "MLP critic: worst relative error {worst:e}");
}

#[test]
fn gradient_penalty_value_by_hand() {
    // penalty = mean over samples of (‖∇ₓD(x̂ᵢ)‖₂ − 1)², with each ∇ₓD(x̂ᵢ) computed separately by one
    // backward of D at the mixed image x̂ᵢ = εᵢ·realᵢ + (1 − εᵢ)·fakeᵢ.
    let (_, critic) = f64_critic(GanArch::Mlp, 1, 9);
    let data = generated_digits(4, 2)
        .unwrap()
        .images
        .to_dtype(DType::F64)
        .unwrap();
    let (real, fake) = (data.narrow(0, 0, 2).unwrap(), data.narrow(0, 2, 2).unwrap());
    let eps = Tensor::new(&[0.25f64, 1.0], &Device::Cpu).unwrap();
    let gp = gradient_penalty(&critic, &real, &fake, &eps)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let mut want = 0.0;
    for (i, e) in [0.25f64, 1.0].iter().enumerate() {
        let x = ((real.narrow(0, i, 1).unwrap() * *e).unwrap()
            + (fake.narrow(0, i, 1).unwrap() * (1.0 - e)).unwrap())
        .unwrap();
        let g = crate::grad::input_gradient(|x| critic.forward(x).unwrap().sum_all(), &x).unwrap();
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            .sqrt();
        want += (norm - 1.0).powi(2) / 2.0;
    }
    assert!((gp - want).abs() < 1e-12 * want.max(1.0), "{gp} vs {want}");
    // Shape errors name the argument.
    let err = gradient_penalty(&critic, &real, &fake, &eps.narrow(0, 0, 1).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("eps"), "{err}");
}

/// Run by [`second_order_guard_refuses_without_the_variable`] in a child process whose environment lacks
/// `CANDLE_GRAD_DO_NOT_DETACH`; a no-op otherwise.
#[test]
fn child_gradient_penalty_without_second_order() {
    if std::env::var("MATHNN_GP_GUARD_CHILD").is_err() {
        return;
    }
    let (_, critic) = f64_critic(GanArch::Mlp, 1, 0);
    let x = generated_digits(2, 0)
        .unwrap()
        .images
        .to_dtype(DType::F64)
        .unwrap();
    let eps = Tensor::new(&[0.5f64, 0.5], &Device::Cpu).unwrap();
    let err = gradient_penalty(&critic, &x, &x, &eps)
        .unwrap_err()
        .to_string();
    assert!(err.contains("CANDLE_GRAD_DO_NOT_DETACH"), "{err}");
    println!("GUARD-REFUSED");
}

#[test]
fn second_order_guard_refuses_without_the_variable() {
    // In this process `.cargo/config.toml` sets CANDLE_GRAD_DO_NOT_DETACH=1, so the guard passes...
    assert!(crate::grad::second_order_enabled());
    // ...and in a process started without it, the penalty refuses to run (the variable is read once per
    // thread, so the only honest way to test the "unset" branch is a fresh process).
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "gan::tests::child_gradient_penalty_without_second_order",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("CANDLE_GRAD_DO_NOT_DETACH")
        .env("MATHNN_GP_GUARD_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("GUARD-REFUSED"),
        "{stdout}"
    );
}

fn small_config(loss: GanLoss, arch: GanArch) -> GanConfig {
    GanConfig {
        batch_size: 8,
        n_critic: 2,
        latent_dim: 16,
        dim: 2,
        samples: 4,
        ..GanConfig::new(loss, arch)
    }
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn all_weights(t: &GanTrainer) -> HashMap<String, Vec<u32>> {
    let (g, d) = t.variables();
    let mut out = HashMap::new();
    for (prefix, vars) in [("g.", g), ("d.", d)] {
        for (k, v) in varmap_tensors(vars).unwrap() {
            let bits = v
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect();
            out.insert(format!("{prefix}{k}"), bits);
        }
    }
    out
}

#[test]
fn resume_continues_bit_identically() {
    // Acceptance 4: N iterations straight vs N/2, a fresh process-like restart from the checkpoint, N/2.
    let data = generated_digits(40, 4).unwrap().images;
    let dev = &Device::Cpu;
    for (loss, arch) in [
        (GanLoss::WganGp, GanArch::Mlp),
        (GanLoss::Wgan, GanArch::Mlp),
        (GanLoss::Gan, GanArch::Mlp),
        (GanLoss::Gan, GanArch::Dcgan),
    ] {
        let config = GanConfig {
            iterations: 6,
            checkpoint_every: 3,
            ..small_config(loss, arch)
        };
        let mut straight = GanTrainer::new(config.clone(), &data, dev).unwrap();
        straight.run(None, None).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let mut first = GanTrainer::new(
            GanConfig {
                iterations: 3,
                ..config.clone()
            },
            &data,
            dev,
        )
        .unwrap();
        first.set_note("fid", &vec![1.5]).unwrap();
        first.run(Some(dir.path()), None).unwrap();
        // Training past the checkpoint without saving (a run killed before its next checkpoint).
        first.step().unwrap();
        drop(first);
        let mut resumed =
            GanTrainer::resume_or_new(config.clone(), &data, dev, dir.path()).unwrap();
        assert_eq!(resumed.iteration(), 3);
        assert_eq!(resumed.note::<Vec<f64>>("fid").unwrap(), Some(vec![1.5]));
        assert_eq!(resumed.note::<Vec<f64>>("absent").unwrap(), None);
        // A note of another type is an error naming the key, not an empty value.
        let err = resumed.note::<String>("fid").unwrap_err().to_string();
        assert!(err.contains("notes.fid"), "{err}");
        assert!(resumed.train_seconds() > 0.0);
        resumed.run(Some(dir.path()), None).unwrap();
        assert_eq!(resumed.iteration(), 6);
        assert!(
            all_weights(&straight) == all_weights(&resumed),
            "{loss:?} {arch:?}: resumed weights differ"
        );
        let a = flat(&straight.fixed_samples().unwrap());
        let b = flat(&resumed.fixed_samples().unwrap());
        assert_eq!(a, b);
        assert_eq!(straight.history(), resumed.history());
        // Only the latest tensor file is kept.
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".safetensors"))
            .collect();
        assert_eq!(files, vec!["checkpoint-it0000006.safetensors".to_string()]);
        // The checkpoint's generator is the trained one.
        let (cfg, g, it) = load_generator(dir.path(), dev).unwrap();
        assert_eq!((cfg.loss, it), (loss, 6));
        let c = flat(&generate(&g, 4, trainer::fixed_sample_seed(&cfg)).unwrap());
        assert_eq!(a, c);
    }
    // Without restoring the optimiser state the continuation differs: the comparison can fail.
    let config = GanConfig {
        iterations: 4,
        ..small_config(GanLoss::Gan, GanArch::Mlp)
    };
    let mut straight = GanTrainer::new(config.clone(), &data, dev).unwrap();
    straight.run(None, None).unwrap();
    let mut other = GanTrainer::new(GanConfig { seed: 1, ..config }, &data, dev).unwrap();
    other.run(None, None).unwrap();
    assert!(all_weights(&straight) != all_weights(&other));
}

#[test]
fn bad_configurations_and_checkpoints_are_clear_errors() {
    let data = generated_digits(16, 0).unwrap().images;
    let dev = &Device::Cpu;
    type Edit = fn(&mut GanConfig);
    let cases: [(GanLoss, Edit, &str); 6] = [
        (GanLoss::Gan, |c| c.batch_size = 0, "batch_size"),
        (GanLoss::Gan, |c| c.n_critic = 0, "n_critic"),
        (GanLoss::WganGp, |c| c.gp_lambda = -1.0, "gp_lambda"),
        (GanLoss::Wgan, |c| c.clip = 0.0, "clip"),
        (
            GanLoss::Gan,
            |c| c.g_optimizer = crate::optim::OptimizerConfig::adam(-1.0),
            "lr",
        ),
        (GanLoss::Gan, |c| c.batch_size = 17, "N ≥ batch_size"),
    ];
    let cases = cases.map(|(loss, edit, needle)| {
        let mut c = small_config(loss, GanArch::Mlp);
        edit(&mut c);
        (c, needle)
    });
    for (config, needle) in cases {
        let err = GanTrainer::new(config, &data, dev)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let err = GanTrainer::new(
        small_config(GanLoss::Gan, GanArch::Mlp),
        &data.narrow(2, 0, 27).unwrap(),
        dev,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("GAN training images"), "{err}");
    // A checkpoint of another configuration is refused, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let mut t = GanTrainer::new(
        GanConfig {
            iterations: 1,
            ..small_config(GanLoss::Gan, GanArch::Mlp)
        },
        &data,
        dev,
    )
    .unwrap();
    t.run(Some(dir.path()), None).unwrap();
    let err = GanTrainer::resume_or_new(
        small_config(GanLoss::Wgan, GanArch::Mlp),
        &data,
        dev,
        dir.path(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("state.json") && err.contains("different configuration"),
        "{err}"
    );
    let err = load_generator(&dir.path().join("nothing"), dev)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a GAN checkpoint"), "{err}");
}

#[test]
fn batch_normalised_generator() {
    let dev = &Device::Cpu;
    // The GAN recipe of the MLP pair normalises its generator; the others and the DCGAN pair do not.
    assert!(GanConfig::new(GanLoss::Gan, GanArch::Mlp).generator_batch_norm);
    assert!(!GanConfig::new(GanLoss::WganGp, GanArch::Mlp).generator_batch_norm);
    assert!(!GanConfig::new(GanLoss::Gan, GanArch::Dcgan).generator_batch_norm);
    let build = |bn: bool| {
        let vars = VarMap::new();
        let vb = SeededVarMap::var_builder(&vars, 3, DType::F32, dev);
        let g = Generator::new(GanArch::Mlp, 100, 32, bn, vb).unwrap();
        (vars, g)
    };
    let (plain_vars, _) = build(false);
    let (bn_vars, g) = build(true);
    // γ and β for the 256-, 512- and 1024-wide layers.
    assert_eq!(
        crate::models::parameter_count(&bn_vars) - crate::models::parameter_count(&plain_vars),
        2 * (256 + 512 + 1024)
    );
    // Batch statistics: an image depends on the other codes of its batch.
    let z = crate::grad::seeded_normal(&[3, 100], DType::F32, dev, 5).unwrap();
    let pair = |i: usize, j: usize| {
        let zz = Tensor::cat(&[z.narrow(0, i, 1).unwrap(), z.narrow(0, j, 1).unwrap()], 0).unwrap();
        flat(&g.forward(&zz).unwrap().get(0).unwrap())
    };
    assert_ne!(pair(0, 1), pair(0, 2));
    let err = g
        .forward(&z.narrow(0, 0, 1).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("at least 2 codes"), "{err}");
    // 501 codes are generated in two batches of 251 and 250, never leaving a single code alone.
    let images = generate(&g, 501, 0).unwrap();
    assert_eq!(images.dims(), &[501, 1, 28, 28]);
    // Not implemented for the DCGAN pair: a clear error, not a silently different model.
    let err = GanTrainer::new(
        GanConfig {
            generator_batch_norm: true,
            ..small_config(GanLoss::Gan, GanArch::Dcgan)
        },
        &generated_digits(16, 0).unwrap().images,
        dev,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("generator_batch_norm"), "{err}");
}
