//! `mathnn capacity` end to end on generated data (no data set needed): JSON output of each subcommand and
//! one clear error line for bad arguments.

use std::process::Output;

mod common;
use common::{assert_clean_failure, mathnn};

fn capacity(args: &[&str]) -> Output {
    mathnn().arg("capacity").args(args).output().unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn each_subcommand_reports_json_on_generated_data() {
    let t1 = json(&capacity(&[
        "theorem1", "--n", "60", "--test", "30", "--json",
    ]));
    assert_eq!(t1["data"], "generated data");
    assert_eq!(t1["result"]["weights"], 2 * 60 + 784);
    assert_eq!(t1["result"]["train_accuracy"], 1.0);
    assert!(t1["result"]["max_train_residual"].as_f64().unwrap() < 1e-8);
    let rf = json(&capacity(&[
        "random-features",
        "--n",
        "40",
        "--test",
        "20",
        "--features",
        "10,40,200",
        "--lambdas",
        "0,0.1",
        "--json",
    ]));
    let points = rf["result"][1].as_array().unwrap();
    assert_eq!(points.len(), 6);
    // Past the threshold the minimum-norm solution fits the training set.
    let last = &points[4];
    assert_eq!(last["features"], 200);
    assert_eq!(last["lambda"], 0.0);
    assert_eq!(last["train_error"], 0.0);
    let k = json(&capacity(&[
        "kernel", "--n", "50", "--test", "20", "--json",
    ]));
    let fits = k["result"][1].as_array().unwrap();
    assert_eq!(fits.len(), 2);
    assert!(fits[1]["rkhs_norm"].as_f64().unwrap() > fits[0]["rkhs_norm"].as_f64().unwrap());
}

#[test]
fn width_sweep_and_margin_report_json_and_resume_from_their_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ws");
    let args = [
        "width-sweep",
        "--n",
        "60",
        "--test",
        "30",
        "--widths",
        "2,64",
        "--noise",
        "0,0.2",
        "--max-epochs",
        "3",
        "--quiet",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let first = json(&capacity(&args));
    let points = first["result"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(points[1]["width"], 64);
    assert_eq!(points[1]["parameters"], 64 * 785 + 10 * 65);
    assert!(points[3]["labels_changed"].as_u64().unwrap() > 0);
    assert!(out.join("results.json").is_file());
    // A second call finds every run finished in its checkpoint and reports the same numbers.
    let again = json(&capacity(&args));
    assert_eq!(again["result"], first["result"]);

    let m_out = dir.path().join("margin");
    let m = json(&capacity(&[
        "margin",
        "--n",
        "50",
        "--test",
        "20",
        "--levels",
        "0,1",
        "--max-epochs",
        "2",
        "--quiet",
        "--json",
        "--out",
        m_out.to_str().unwrap(),
    ]));
    let runs = m["result"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        let gap = r["train_accuracy"].as_f64().unwrap() - r["test_accuracy"].as_f64().unwrap();
        assert!((r["gap"].as_f64().unwrap() - gap).abs() < 1e-12);
        assert!(r["margin"]["spectral"]["complexity"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn bad_arguments_are_one_clear_line() {
    for (args, needle) in [
        (
            vec!["kernel", "--n", "20", "--bandwidth", "-1"],
            "--bandwidth",
        ),
        (
            vec!["random-features", "--n", "20", "--map", "sigmoid"],
            "'sigmoid' for '--map",
        ),
        (
            vec!["random-features", "--n", "20", "--features", "5,5"],
            "strictly increasing",
        ),
        (
            vec!["theorem1", "--dataset", "pets32"],
            "[possible values: mnist, fashion-mnist]",
        ),
        (vec!["theorem1", "--n", "0"], "--n"),
        (
            vec!["width-sweep", "--n", "20", "--noise", "0.95"],
            "--noise 0.95",
        ),
        (
            vec!["width-sweep", "--n", "20", "--widths", "4,0"],
            "--widths",
        ),
        (
            vec!["width-sweep", "--n", "20", "--max-epochs", "0"],
            "--max-epochs",
        ),
        (vec!["width-sweep", "--n", "20", "--lr=-1"], "--lr"),
        (
            vec!["margin", "--n", "20", "--model", "lenet"],
            "'lenet' for '--model",
        ),
        (
            vec!["margin", "--n", "20", "--levels", "0,1.5"],
            "--levels 1.5",
        ),
        (vec!["margin", "--n", "20", "--quantile", "1"], "--quantile"),
        (vec!["margin", "--n", "20", "--model", "resnet"], "resnet"),
    ] {
        assert_clean_failure(capacity(&args), &[needle]);
    }
}
