//! The bad-input corpus of issue 17: every count flag of every subcommand fed zero, a negative number, a
//! non-number and `u64::MAX`, plus schedules, widths and the cases the issue listed. Each invocation must
//! fail with exactly one `error:` line naming the flag, without a panic or an abort — and before any data
//! or file is touched (the paths below do not exist).

use std::process::Output;

mod common;
use common::{assert_clean_failure, mathnn};

fn run(args: &[&str]) -> Output {
    mathnn().args(args).output().unwrap()
}

/// `(subcommand words and the required arguments, count flags)`.
fn count_flags() -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            vec!["train", "--out", "/nonexistent/r"],
            vec!["--epochs", "--batch-size", "--limit-train", "--limit-test"],
        ),
        (
            vec!["eval", "--checkpoint", "/nonexistent/r"],
            vec!["--limit"],
        ),
        (
            vec!["inception-score", "/nonexistent/p.npy"],
            vec!["--splits"],
        ),
        (
            vec!["kid", "/nonexistent/a.npy", "/nonexistent/b.npy"],
            vec!["--subsets", "--subset-size"],
        ),
        (
            vec!["gs", "/nonexistent/a.npy"],
            vec!["--landmarks", "--i-max", "--n"],
        ),
        (
            vec![
                "rlt",
                "/nonexistent/p.npy",
                "--landmark-indices",
                "/nonexistent/i.npy",
                "--gamma",
                "0",
            ],
            vec!["--i-max"],
        ),
        (vec!["tt-svd", "/nonexistent/t.npy"], vec!["--max-rank"]),
        (
            vec!["cp-als", "/nonexistent/t.npy", "--rank", "2"],
            vec!["--rank", "--iters"],
        ),
        (
            vec!["random-labels"],
            vec![
                "--train-size",
                "--test-size",
                "--max-epochs",
                "--batch-size",
                "--test-every",
            ],
        ),
        (
            vec!["gan", "train", "--out", "/nonexistent/g"],
            vec!["--iters", "--checkpoint-every"],
        ),
        (
            vec![
                "gan",
                "sample",
                "--checkpoint",
                "/nonexistent/g",
                "--out",
                "/nonexistent/s.npy",
            ],
            vec!["--n"],
        ),
        (
            vec!["gan", "evaluate", "--checkpoint", "/nonexistent/g"],
            vec!["--n", "--gs-draws"],
        ),
        (
            vec!["attack", "uap", "--checkpoint", "/nonexistent/c"],
            vec!["--eval", "--images", "--passes", "--chunk"],
        ),
        (
            vec![
                "attack",
                "sv-uap",
                "--checkpoint",
                "/nonexistent/c",
                "--layer",
                "fc1",
            ],
            vec!["--images", "--iters"],
        ),
        (
            vec!["attack", "pgd", "--checkpoint", "/nonexistent/c"],
            vec!["--steps", "--images"],
        ),
        (
            vec!["attack", "deepfool", "--checkpoint", "/nonexistent/c"],
            vec!["--images"],
        ),
        (
            vec!["attack", "substitute", "--checkpoint", "/nonexistent/c"],
            vec!["--rounds", "--tau", "--epochs"],
        ),
        (
            vec![
                "dip",
                "denoise",
                "/nonexistent/x.png",
                "--out",
                "/nonexistent/d",
            ],
            vec!["--side", "--iters"],
        ),
        (
            vec!["hog", "/nonexistent/x.png", "--out", "/nonexistent/h.npy"],
            vec!["--orientations"],
        ),
        (vec!["capacity", "kernel"], vec!["--n", "--test"]),
        (
            vec!["capacity", "random-features"],
            vec!["--n", "--features"],
        ),
        (
            vec!["capacity", "width-sweep"],
            vec!["--max-epochs", "--batch-size", "--widths"],
        ),
        (vec!["capacity", "margin"], vec!["--max-epochs"]),
    ]
}

#[test]
fn every_count_flag_refuses_zero_negative_non_numbers_and_absurd_sizes() {
    let mut invocations = 0;
    for (base, flags) in count_flags() {
        for flag in flags {
            for value in ["0", "-3", "many", "18446744073709551615"] {
                let mut args = base.clone();
                let pair = format!("{flag}={value}");
                args.push(&pair);
                let o = run(&args);
                let err = String::from_utf8_lossy(&o.stderr).to_string();
                assert!(
                    !o.status.success() && o.status.code() == Some(2),
                    "{args:?}: expected clap's usage error (exit 2), got {:?}: {err}",
                    o.status.code()
                );
                assert_clean_failure(o, &[flag]);
                invocations += 1;
            }
        }
    }
    // The issue asks for a corpus of at least 100 invocations.
    assert!(invocations >= 100, "{invocations}");
}

#[test]
fn schedules_and_widths_are_validated_in_one_place() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("r");
    let dir = dir.to_str().unwrap();
    for (schedule, needle) in [
        ("exp:-1", "decay factor -1"),
        ("exp:0", "decay factor 0"),
        ("exp:1.5", "decay factor 1.5"),
        ("exp:nan", "decay factor NaN"),
        ("step:0:0.5", "step period 0"),
        ("step:1:-2", "decay factor -2"),
        ("step:x:0.5", "`x` is not a whole number"),
        ("exp", "expected constant"),
        ("linear:3", "expected constant"),
    ] {
        let arg = format!("--schedule={schedule}");
        for base in [
            vec!["train", "--dataset", "generated", "--out", dir],
            vec!["random-labels", "--dataset", "generated", "--out", dir],
        ] {
            let mut args = base.clone();
            args.push(&arg);
            assert_clean_failure(run(&args), &["--schedule", needle]);
        }
    }
    for widths in ["100000000000", "0", "64,0", "64,x"] {
        let arg = format!("--mlp-widths={widths}");
        assert_clean_failure(
            run(&[
                "train",
                "--dataset",
                "generated",
                "--model",
                "mlp",
                "--out",
                dir,
                &arg,
            ]),
            &["--mlp-widths"],
        );
    }
    // Nothing was written for any of them.
    assert!(!out.path().join("r").join("model.safetensors").exists());
}

#[test]
fn work_too_large_for_memory_is_refused_before_it_starts_and_fid_avoids_the_covariance() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("r");
    // Six hidden layers of 65,536 units: ≈ 26 billion weights, 400+ GB with gradients and Adam.
    let o = run(&[
        "train",
        "--dataset",
        "generated",
        "--model",
        "mlp",
        "--mlp-widths",
        "65536,65536,65536,65536,65536,65536",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_clean_failure(o, &["--mlp-widths", "GB of memory"]);
    assert!(!dir.exists(), "nothing is created for a refused run");
    // FID of 3 samples of 100,000 features: exact through the 3 × 3 Gram matrices (the covariance would
    // take 80 GB), and 0 for a set against itself.
    let path = out.path().join("wide.npy");
    let values: Vec<f64> = (0..300_000u64)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    let wide = ndarray::Array2::from_shape_vec((3, 100_000), values).unwrap();
    ndarray_npy::write_npy(&path, &wide).unwrap();
    let o = run(&[
        "fid",
        path.to_str().unwrap(),
        path.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fid = v["fid"].as_f64().unwrap();
    assert!((0.0..1e-6).contains(&fid), "{v}");
    // A set against itself prints 0, not the rounding artefact "-0.000000".
    let o = run(&["fid", path.to_str().unwrap(), path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("FID = 0.0000"), "{text}");
    // CP-ALS at rank 100,000 needs ten-billion-entry Gram matrices: refused before any allocation.
    let small = out.path().join("small.npy");
    ndarray_npy::write_npy(&small, &ndarray::Array3::from_elem((4, 5, 6), 1.0f64)).unwrap();
    assert_clean_failure(
        run(&["cp-als", small.to_str().unwrap(), "--rank", "100000"]),
        &["--rank 100000", "GB of memory"],
    );
}

#[test]
fn a_run_directory_in_use_is_refused_naming_the_holder() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let held = nn_core::run_lock::RunLock::acquire(&dir).unwrap();
    let d = dir.to_str().unwrap();
    for args in [
        vec![
            "train",
            "--dataset",
            "generated",
            "--epochs",
            "1",
            "--out",
            d,
        ],
        vec!["gan", "train", "--iters", "1", "--out", d],
        vec!["random-labels", "--dataset", "generated", "--out", d],
        vec!["capacity", "margin", "--n", "20", "--out", d],
    ] {
        let pid = std::process::id().to_string();
        assert_clean_failure(run(&args), &["in use by process", &pid]);
    }
    drop(held);
    // Released: the run goes ahead (and the lock file is the only trace of the refused attempts).
    let o = train_generated(d, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `mathnn train` on generated data into `dir`, with `extra` arguments.
fn train_generated(dir: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--dataset",
        "generated",
        "--epochs",
        "1",
        "--limit-train",
        "64",
        "--limit-test",
        "32",
        "--quiet",
        "--out",
        dir,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_directory_of_another_run_or_of_a_users_files_is_refused_unless_forced() {
    let root = tempfile::tempdir().unwrap();
    // A user's folder: refused naming the file; with --force the run goes ahead and leaves it alone.
    let user = root.path().join("user");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("notes.txt"), "mine").unwrap();
    let u = user.to_str().unwrap();
    assert_clean_failure(
        train_generated(u, &[]),
        &[
            "`--out`",
            "holds files no mathnn run wrote (notes.txt)",
            "--force",
        ],
    );
    assert!(!user.join("model.safetensors").exists());
    let o = train_generated(u, &["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(user.join("notes.txt")).unwrap(),
        "mine"
    );

    // A classifier's run given to `gan train` (and the other way round) is refused naming both kinds.
    let classifier = root.path().join("classifier");
    let c = classifier.to_str().unwrap();
    let o = train_generated(c, &["--model", "mlp", "--mlp-widths", "8"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_clean_failure(
        run(&["gan", "train", "--iters", "1", "--quiet", "--out", c]),
        &["holds a `train` run, not a `gan train` run"],
    );
    let gan = root.path().join("gan");
    let g = gan.to_str().unwrap();
    let o = run(&["gan", "train", "--iters", "1", "--quiet", "--out", g]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for args in [
        vec!["random-labels", "--dataset", "generated", "--out", g],
        vec!["capacity", "margin", "--n", "20", "--out", g],
    ] {
        assert_clean_failure(run(&args), &["holds a `gan train` run"]);
    }
    assert_clean_failure(train_generated(g, &[]), &["holds a `gan train` run"]);

    // The same kind with another model and no checkpoint folder: the finished model is not replaced.
    std::fs::remove_dir_all(classifier.join("checkpoint")).unwrap();
    let before = std::fs::read(classifier.join("model.safetensors")).unwrap();
    assert_clean_failure(
        train_generated(c, &["--model", "lenet"]),
        &[
            "holds a run of another model",
            "model.kind: directory \"mlp\", this run \"lenet\"",
        ],
    );
    assert_eq!(
        std::fs::read(classifier.join("model.safetensors")).unwrap(),
        before
    );
    let o = train_generated(c, &["--model", "lenet", "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn damaged_npy_files_are_named_never_a_panic() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("probs.npy");
    let probs = ndarray::Array2::from_elem((20, 10), 0.1f64);
    ndarray_npy::write_npy(&good, &probs).unwrap();
    let valid = std::fs::read(&good).unwrap();
    let bad = dir.path().join("damaged.npy");
    let mut rng = StdRng::seed_from_u64(17);
    let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..25 {
        cases.push(valid[..rng.random_range(0..valid.len())].to_vec());
    }
    for _ in 0..25 {
        // Flips in the header (the first 128 bytes): magic, dtype, shape, order.
        let mut b = valid.clone();
        for _ in 0..rng.random_range(1..=4) {
            let i = rng.random_range(0..128);
            b[i] ^= 1 << rng.random_range(0..8);
        }
        cases.push(b);
    }
    for case in cases {
        std::fs::write(&bad, &case).unwrap();
        let o = run(&["inception-score", bad.to_str().unwrap(), "--splits", "2"]);
        if o.status.success() {
            continue; // a flip the format tolerates (e.g. in padding spaces)
        }
        assert_clean_failure(o, &["damaged.npy"]);
    }
}

#[test]
fn damaged_perturbation_files_are_named_never_a_panic() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = (0..784).map(|i| (i % 7) as f32 * 0.01 - 0.03).collect();
    let saved = |shape: serde_json::Value, values: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({
            "method": "uap", "model": "lenet", "details": {},
            "perturbation": { "shape": shape, "values": values },
        }))
        .unwrap()
    };
    let valid = saved(serde_json::json!([1, 28, 28]), serde_json::json!(values));
    let mut rng = StdRng::seed_from_u64(171);
    let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"{}".to_vec(), b"null".to_vec()];
    for _ in 0..25 {
        cases.push(valid[..rng.random_range(0..valid.len())].to_vec());
    }
    for _ in 0..25 {
        let mut b = valid.clone();
        for _ in 0..rng.random_range(1..=4) {
            let i = rng.random_range(0..b.len());
            b[i] ^= 1 << rng.random_range(0..8);
        }
        cases.push(b);
    }
    // Well-formed JSON with impossible contents: a shape that overflows, one that does not match the
    // values, a negative or zero side, a value beyond f32, a flat vector.
    let huge = serde_json::json!([4294967296u64, 4294967296u64, 2]);
    cases.push(saved(huge, serde_json::json!(values)));
    cases.push(saved(
        serde_json::json!([1, 28, 27]),
        serde_json::json!(values),
    ));
    cases.push(saved(
        serde_json::json!([1, -28, 28]),
        serde_json::json!(values),
    ));
    cases.push(saved(serde_json::json!([0, 28, 28]), serde_json::json!([])));
    cases.push(saved(serde_json::json!([784]), serde_json::json!(values)));
    let mut inf = serde_json::json!(values);
    inf[5] = serde_json::json!(1e300);
    cases.push(saved(serde_json::json!([1, 28, 28]), inf));
    let bad = dir.path().join("damaged.json");
    let missing_model = dir.path().join("no-model");
    let mut named_the_model = 0;
    for case in cases {
        std::fs::write(&bad, &case).unwrap();
        let o = run(&[
            "attack",
            "transfer",
            "--checkpoint",
            missing_model.to_str().unwrap(),
            "--perturbation",
            bad.to_str().unwrap(),
        ]);
        // A flip the format tolerates (a changed digit) leaves a valid perturbation: the run then
        // stops at the missing model instead.
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if err.contains("no-model") && !err.contains("damaged.json") {
            named_the_model += 1;
            assert_clean_failure(o, &["no-model"]);
        } else {
            assert_clean_failure(o, &["--perturbation", "damaged.json"]);
        }
    }
    // Most damaged files are refused by the perturbation check, not the model's.
    assert!(
        named_the_model < 20,
        "{named_the_model} damaged files passed"
    );
}

#[test]
fn errors_name_the_argument_that_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let nan = dir.path().join("nan.npy");
    let mut t = ndarray::Array3::from_elem((4, 5, 6), 0.5f64);
    t[[1, 2, 3]] = f64::NAN;
    ndarray_npy::write_npy(&nan, &t).unwrap();
    assert_clean_failure(
        run(&["cp-als", nan.to_str().unwrap(), "--rank", "2"]),
        &["nan.npy", "`tensor`", "NaN"],
    );
    let points = dir.path().join("points.npy");
    ndarray_npy::write_npy(&points, &ndarray::Array2::from_elem((30, 2), 0.25f64)).unwrap();
    let empty = dir.path().join("none.npy");
    ndarray_npy::write_npy(&empty, &ndarray::Array1::<i64>::zeros(0)).unwrap();
    assert_clean_failure(
        run(&[
            "rlt",
            points.to_str().unwrap(),
            "--landmark-indices",
            empty.to_str().unwrap(),
            "--gamma",
            "0",
        ]),
        &["landmark indices", "0 given"],
    );
    let c = ["--checkpoint", "/nonexistent/c"];
    assert_clean_failure(
        run(&[&["uap", "sv", "--layer", "fc1", "--q", "0"][..], &c].concat()),
        &["'0'", "--q", "norm p ≥ 1"],
    );
    for (defence, needle) in [
        ("bits:-1", "bit depth"),
        ("bits:40", "1..=16"),
        ("median:x", "window"),
        ("blur:3", "expected bits:B"),
    ] {
        let arg = format!("--defence={defence}");
        assert_clean_failure(
            run(&[
                &[
                    "attack",
                    "transfer",
                    "--perturbation",
                    "/nonexistent/p.json",
                    &arg,
                ][..],
                &c,
            ]
            .concat()),
            &["--defence", needle],
        );
    }
    // Parametric flags are parsed by clap before any file or data is touched.
    for (args, needle) in [
        (
            &[
                "attack",
                "substitute",
                "--checkpoint",
                "/nonexistent/c",
                "--substitute=mlp:20x",
            ][..],
            "'mlp:20x' for '--substitute",
        ),
        (
            &["random-labels", "--corruption=labels-p2"][..],
            "'labels-p2' for '--corruption",
        ),
        (
            &["capacity", "kernel", "--bandwidth=wide"][..],
            "'wide' for '--bandwidth",
        ),
    ] {
        assert_clean_failure(run(args), &[needle]);
    }
}

/// Every flag with a closed set of values (issue 18): `--help` lists the values, and any other value is
/// refused naming the flag and listing them again.
#[test]
fn every_choice_flag_lists_its_values_and_refuses_others() {
    let datasets = "mnist, fashion-mnist, pets32, pets64, generated";
    let models = "mlp, lenet, vgg-small, resnet-small";
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["train", "--out", "/nonexistent/r"],
            "--dataset",
            datasets,
        ),
        (vec!["train", "--out", "/nonexistent/r"], "--model", models),
        (
            vec!["train", "--out", "/nonexistent/r"],
            "--optimizer",
            "adam, sgd",
        ),
        (
            vec!["eval", "--checkpoint", "/nonexistent/c"],
            "--dataset",
            datasets,
        ),
        (
            vec!["eval", "--checkpoint", "/nonexistent/c"],
            "--split",
            "test, train",
        ),
        (
            vec!["attack", "train-augmented", "--out", "/nonexistent/r"],
            "--model",
            models,
        ),
        (
            vec!["attack", "train-augmented", "--out", "/nonexistent/r"],
            "--dataset",
            datasets,
        ),
        (
            vec!["random-labels"],
            "--dataset",
            "mnist, fashion-mnist, generated",
        ),
        (vec!["random-labels"], "--optimizer", "adam, sgd"),
        (
            vec!["random-labels"],
            "--model",
            "mlp-1x512, mlp-3x512, lenet",
        ),
        (
            vec!["capacity", "random-features"],
            "--map",
            "fourier, relu",
        ),
        (
            vec!["capacity", "margin"],
            "--model",
            "mlp-1x512, mlp-3x512",
        ),
        (
            vec!["gan", "train", "--out", "/nonexistent/r"],
            "--loss",
            "gan, wgan, wgan-gp",
        ),
        (
            vec!["gan", "train", "--out", "/nonexistent/r"],
            "--arch",
            "mlp, dcgan",
        ),
        (
            vec!["fid", "/nonexistent/a.npy", "/nonexistent/b.npy"],
            "--route",
            "cholesky, eigen-sqrt",
        ),
        (
            vec![
                "dip",
                "denoise",
                "/nonexistent/i.png",
                "--out",
                "/nonexistent/r",
            ],
            "--upsample",
            "bilinear, nearest",
        ),
        (
            vec!["capacity", "width-sweep"],
            "--dataset",
            "mnist, fashion-mnist",
        ),
        (
            vec!["capacity", "margin"],
            "--dataset",
            "mnist, fashion-mnist",
        ),
        (vec!["reproduce"], "--profile", "smoke, quick, full"),
        (vec!["expressivity"], "--profile", "smoke, quick, full"),
    ];
    for (words, flag, values) in cases {
        let command: Vec<&str> = words
            .iter()
            .copied()
            .take_while(|w| !w.starts_with('/') && !w.starts_with('-'))
            .collect();
        let mut help = command.clone();
        help.push("--help");
        let o = run(&help);
        let text = String::from_utf8_lossy(&o.stdout).replace('\n', " ");
        let listed = format!("[possible values: {values}]");
        let described = values
            .split(", ")
            .all(|v| text.contains(&format!("- {v}:")));
        assert!(
            text.contains(&listed) || described,
            "`{} --help` does not list {flag}'s values ({values})",
            command.join(" ")
        );
        let mut bad = words.clone();
        bad.extend_from_slice(&[flag, "no-such-choice"]);
        let o = run(&bad);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_clean_failure(o, &["invalid value 'no-such-choice'", flag]);
        assert!(
            err.contains(&format!("[possible values: {values}]")),
            "{err}"
        );
    }
    // Positional choices: the data set of `data fetch` and `data verify`.
    for sub in ["fetch", "verify"] {
        let o = run(&["data", sub, "cifar"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_clean_failure(o, &["invalid value 'cifar'"]);
        assert!(err.contains(datasets), "{err}");
    }
}

/// The adversarial commands moved from `mathnn uap …` to `mathnn attack …` (issue 18); the old spellings
/// still run for one release but are no longer listed.
#[test]
fn old_attack_spellings_are_hidden_aliases() {
    let help = |words: &[&str]| {
        let o = run(&[words, &["--help"][..]].concat());
        assert!(
            o.status.success(),
            "{words:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let top = help(&[]);
    assert!(
        top.contains("  attack ") && !top.contains("  uap "),
        "{top}"
    );
    let attack = help(&["attack"]);
    for name in [
        "sv-uap",
        "transfer",
        "train-augmented",
        "uap",
        "pgd",
        "deepfool",
        "substitute",
        "layers",
    ] {
        assert!(
            attack.contains(&format!("  {name} ")),
            "`{name}` missing: {attack}"
        );
    }
    for old in ["  sv ", "  eval ", "  train "] {
        assert!(!attack.contains(old), "`{old}` is listed: {attack}");
    }
    // Old and new spellings reach the same command.
    for (old, new) in [
        (&["uap", "sv"][..], &["attack", "sv-uap"][..]),
        (&["uap", "eval"][..], &["attack", "transfer"][..]),
        (&["uap", "train"][..], &["attack", "train-augmented"][..]),
        (&["attack", "sv"][..], &["attack", "sv-uap"][..]),
    ] {
        let body = |t: String| {
            t.split_once("Options:")
                .map(|(_, o)| o.to_string())
                .unwrap_or(t)
        };
        assert_eq!(body(help(old)), body(help(new)), "{old:?} vs {new:?}");
    }
}

/// Issue 20: `mathnn fid-stats` writes pytorch-fid's statistics format and `mathnn fid` takes any mix of
/// features and statistics — pytorch-fid's own files (benches/peers/fid_stats.py) included.
#[test]
fn fid_takes_pytorch_fid_statistics_files_and_writes_them() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/gan-eval/tests/data/fid_stats");
    let file = |name: &str| data.join(name).to_str().unwrap().to_string();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("expected.json")).unwrap())
            .unwrap();
    let want = expected["fid_a_b"].as_f64().unwrap();
    let fid = |a: &str, b: &str| -> f64 {
        let o = run(&["fid", a, b, "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["fid"]
            .as_f64()
            .unwrap()
    };
    // pytorch-fid's two files: its own value.
    assert!((fid(&file("peer_a.npz"), &file("peer_b.npz")) - want).abs() < 1e-9 * want);
    // Features against its statistics (a's float32 mean aside, the same number).
    assert!((fid(&file("features_a.npy"), &file("peer_b.npz")) - want).abs() < 1e-5 * want);
    // Our statistics file of b, against pytorch-fid's of a.
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("b.npz");
    let o = run(&[
        "fid-stats",
        &file("features_b.npy"),
        "--out",
        ours.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!((fid(&file("peer_a.npz"), ours.to_str().unwrap()) - want).abs() < 1e-9 * want);
    // Bad input: another dimension, a features file given as --out, a statistics file without sigma.
    let other = dir.path().join("d3.npy");
    ndarray_npy::write_npy(&other, &ndarray::Array2::from_elem((5, 3), 0.5f64)).unwrap();
    assert_clean_failure(
        run(&["fid", other.to_str().unwrap(), &file("peer_b.npz")]),
        &["d3.npy", "dimension 3", "peer_b.npz", "8"],
    );
    assert_clean_failure(
        run(&[
            "fid-stats",
            &file("features_b.npy"),
            "--out",
            "/nonexistent/x.npy",
        ]),
        &["--out", "expected a .npz"],
    );
    let broken = dir.path().join("broken.npz");
    std::fs::write(&broken, b"PK\x03\x04 not really").unwrap();
    assert_clean_failure(
        run(&["fid", broken.to_str().unwrap(), &file("peer_b.npz")]),
        &["broken.npz"],
    );
}
