//! The `mathnn` binary end to end: bad input gives one clear line and a non-zero exit code (never a
//! panic), a killed training run resumes, `eval` and `reproduce --profile smoke` work on generated data.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{assert_clean_failure, mathnn};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn idx_header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

/// A fake MNIST directory (raw IDX bytes under the canonical .gz names; the reader sniffs gzip by magic).
fn fake_mnist(root: &Path, n_train: u32, n_train_labels: u32, image_magic: u32, truncate: usize) {
    let dir = root.join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let images = |n: u32| {
        let mut v = idx_header(image_magic, &[n, 28, 28]);
        v.extend((0..n as usize * 784).map(|i| (i % 251) as u8));
        v
    };
    let labels = |n: u32| {
        let mut v = idx_header(0x801, &[n]);
        v.extend((0..n).map(|i| (i % 10) as u8));
        v
    };
    let mut train = images(n_train);
    train.truncate(train.len() - truncate);
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), train).unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte.gz"),
        labels(n_train_labels),
    )
    .unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), images(20)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), labels(20)).unwrap();
}

fn train_cmd(data_dir: &Path, out: &Path) -> Command {
    let mut c = mathnn();
    c.args([
        "train",
        "--dataset",
        "mnist",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--quiet",
        "--data-dir",
    ])
    .arg(data_dir)
    .arg("--out")
    .arg(out);
    c
}

#[test]
fn fake_data_trains_so_the_bad_cases_below_fail_for_their_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), 50, 50, 0x803, 0);
    let o = train_cmd(dir.path(), &dir.path().join("run"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn truncated_idx_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), 50, 50, 0x803, 100);
    let o = train_cmd(dir.path(), &dir.path().join("run"))
        .output()
        .unwrap();
    assert_clean_failure(o, &["train-images-idx3-ubyte.gz", "truncated"]);
}

#[test]
fn wrong_magic_names_the_file_and_the_magic() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), 50, 50, 0x0000_0804, 0);
    let o = train_cmd(dir.path(), &dir.path().join("run"))
        .output()
        .unwrap();
    assert_clean_failure(o, &["train-images-idx3-ubyte.gz", "magic"]);
}

#[test]
fn labels_shorter_than_images_names_both_counts() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), 50, 40, 0x803, 0);
    let o = train_cmd(dir.path(), &dir.path().join("run"))
        .output()
        .unwrap();
    assert_clean_failure(o, &["train-labels-idx1-ubyte.gz", "50", "40"]);
}

#[test]
fn images_of_the_wrong_side_name_the_file_and_both_sizes() {
    // Issue 17: 27 × 27 training images blamed the good test file and named no path.
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), 50, 50, 0x803, 0);
    let mut small = idx_header(0x803, &[50, 27, 27]);
    small.extend((0..50 * 27 * 27).map(|i| (i % 251) as u8));
    std::fs::write(dir.path().join("mnist/train-images-idx3-ubyte.gz"), small).unwrap();
    let o = train_cmd(dir.path(), &dir.path().join("run"))
        .output()
        .unwrap();
    assert_clean_failure(o, &["train-images-idx3-ubyte.gz", "27", "28"]);
}

#[test]
fn missing_data_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = train_cmd(&dir.path().join("no-such-dir"), &dir.path().join("run"))
        .output()
        .unwrap();
    assert_clean_failure(o, &["--data-dir", "no-such-dir"]);
}

#[test]
fn data_not_found_anywhere_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let o = mathnn()
        .args(["train", "--dataset", "fashion-mnist", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_clean_failure(o, &["fashion-mnist", "mathnn data fetch"]);
}

#[test]
fn unknown_model_and_dataset_names_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let o = mathnn()
        .args([
            "train",
            "--dataset",
            "generated",
            "--model",
            "transformer",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_clean_failure(o, &["transformer", "lenet"]);
    let o = mathnn()
        .args(["train", "--dataset", "cifar1000", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_clean_failure(o, &["cifar1000", "fashion-mnist"]);
    let o = mathnn()
        .args(["reproduce", "--profile", "huge"])
        .output()
        .unwrap();
    assert_clean_failure(o, &["--profile", "huge"]);
    // Only ResNet-small has batch norm to switch off.
    let o = mathnn()
        .args([
            "attack",
            "train-augmented",
            "--model",
            "lenet",
            "--no-batch-norm",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_clean_failure(o, &["--no-batch-norm", "resnet-small", "lenet"]);
}

#[test]
fn killed_training_resumes_from_its_checkpoint_and_eval_reads_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "train",
        "--dataset",
        "generated",
        "--model",
        "mlp",
        "--mlp-widths",
        "256",
        "--epochs",
        "4",
        "--limit-train",
        "4000",
        "--limit-test",
        "500",
        "--quiet",
    ];
    let mut child = mathnn()
        .args(args)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = out.join("checkpoint").join("state.json");
    let started = Instant::now();
    while !state.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint after 300 s"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let o = mathnn().args(args).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["epochs"].as_array().unwrap().len(), 4);
    let resumed = metrics["resumed_after_epoch"].as_u64();
    assert!(
        resumed.is_some_and(|e| (1..=4).contains(&e)),
        "did not resume: {metrics}"
    );
    assert_eq!(metrics["data_provenance"], "generated data");

    // The uninterrupted run ends with the same test accuracy.
    let fresh = dir.path().join("fresh");
    let o = mathnn()
        .args(args)
        .arg("--out")
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let fresh_metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fresh.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(
        metrics["final_test_accuracy"],
        fresh_metrics["final_test_accuracy"]
    );

    let o = mathnn()
        .args([
            "eval",
            "--dataset",
            "generated",
            "--limit",
            "500",
            "--checkpoint",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(eval["accuracy"], metrics["final_test_accuracy"]);
    assert_eq!(eval["data_provenance"], "generated data");
    assert_eq!(eval["confusion"].as_array().unwrap().len(), 10);

    let o = mathnn()
        .args(["eval", "--checkpoint"])
        .arg(dir.path().join("nothing"))
        .output()
        .unwrap();
    assert_clean_failure(o, &["--checkpoint", "nothing"]);
}

#[test]
fn reproduce_smoke_without_data_falls_back_to_labelled_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let results = dir.path().join("results");
    let o = mathnn()
        .env("MATHNN_CACHE", &cache)
        .args(["reproduce", "--profile", "smoke", "--quiet", "--out"])
        .arg(&results)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("GENERATED"), "{}", stderr(&o));
    // No data and no network: one attempt per downloadable data set, one warning each, then the fallback.
    for name in ["mnist", "fashion-mnist"] {
        let warned = format!("warning: could not fetch {name}:");
        assert_eq!(stderr(&o).matches(&warned).count(), 1, "{}", stderr(&o));
    }
    let report = std::fs::read_to_string(results.join("REPORT.md")).unwrap();
    assert!(report.contains("GENERATED data"), "{report}");
    let result: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.join("classifier-baseline/result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["data"], "generated data");
    assert!(
        results
            .join("classifier-baseline/test_accuracy.svg")
            .exists()
    );
}

#[test]
fn a_checkpoint_without_its_config_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let o = mathnn()
        .args(["attack", "layers", "--checkpoint"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_clean_failure(o, &["config.json"]);
    // The io::Error is both in the message and its source; it is printed once.
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

/// A 64×48 RGB PNG written with the project's own writer.
fn small_png(path: &Path, h: usize, w: usize) {
    let v: Vec<f32> = (0..3 * h * w).map(|i| (i % 97) as f32 / 97.0).collect();
    let t = candle_core::Tensor::from_vec(v, (3, h, w), &candle_core::Device::Cpu).unwrap();
    nn_core::data::image_io::save_image(&t, path).unwrap();
}

#[test]
fn deep_image_prior_bad_input_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img.png");
    small_png(&img, 72, 96);
    let out = dir.path().join("out");
    let dip = |args: &[&str]| {
        let mut c = mathnn();
        c.arg("dip")
            .args(args)
            .arg("--out")
            .arg(&out)
            .arg("--quiet");
        c.output().unwrap()
    };
    let img_s = img.to_str().unwrap();
    assert_clean_failure(
        dip(&["denoise", "/nonexistent/photo.png", "--sigma", "25"]),
        &["IMAGE", "/nonexistent/photo.png"],
    );
    // 72×96 is not divisible by 32 without --side; --side 40 is not a multiple of 32.
    assert_clean_failure(
        dip(&["denoise", img_s, "--sigma", "25"]),
        &["divisible by 32", "--side"],
    );
    assert_clean_failure(
        dip(&["denoise", img_s, "--side", "40"]),
        &["--side 40", "multiple of 32"],
    );
    assert_clean_failure(
        dip(&["denoise", img_s, "--side", "96", "--sigma", "25"]),
        &["--side 96", "smaller side 72"],
    );
    assert_clean_failure(
        dip(&["denoise", img_s, "--side", "64", "--sigma=-1"]),
        &["sigma"],
    );
    let mask = dir.path().join("mask.png");
    small_png(&mask, 16, 16);
    assert_clean_failure(
        dip(&[
            "inpaint",
            img_s,
            "--side",
            "64",
            "--mask",
            mask.to_str().unwrap(),
            "--iters",
            "2",
        ]),
        &["mask"],
    );
    assert_clean_failure(
        dip(&["inpaint", img_s, "--side", "64", "--iters", "2"]),
        &["--mask", "--missing"],
    );
    // A good run writes its images and resumes to a larger budget.
    let denoise32 = |extra: &[&str]| {
        let base = ["denoise", img_s, "--side", "64", "--sigma", "25"];
        dip(&[&base[..], extra].concat())
    };
    let ok = denoise32(&["--iters", "3", "--channels", "4"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    for f in [
        "restored.png",
        "corrupted.png",
        "history.json",
        "psnr.svg",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let again = denoise32(&["--iters", "5", "--channels", "4"]);
    assert!(stderr(&again).contains("resuming"), "{}", stderr(&again));
    // Other settings in the same directory are refused, not overwritten.
    assert_clean_failure(
        denoise32(&["--iters", "5", "--channels", "8"]),
        &["other settings"],
    );
}

/// A loopback HTTP server standing in for the data mirrors: `GET /<data set>/<file>` answers the file of
/// `root/<data set>/`, anything else 404. Serves until the test process ends.
fn serve_directory(root: std::path::PathBuf) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let file = root.join(path.trim_start_matches('/'));
            let (status, body) = match (path.contains(".."), std::fs::read(&file)) {
                (false, Ok(body)) => ("200 OK", body),
                _ => ("404 Not Found", b"not found".to_vec()),
            };
            let mut stream = reader.into_inner();
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|_| stream.write_all(&body));
        }
    });
    base
}

/// Issue 18: on a machine with network and an empty cache, the main job fetches the data it needs
/// (checksummed) and runs on real data. A loopback server serves the real files in place of the mirrors.
#[test]
#[ignore = "needs MATHNN_DATA"]
fn reproduce_fetches_missing_data_into_the_cache_and_uses_it() {
    let data = std::path::PathBuf::from(std::env::var("MATHNN_DATA").expect("MATHNN_DATA"));
    let mirror = format!("{}/{{name}}/", serve_directory(data));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let results = dir.path().join("results");
    let run = |offline: bool| {
        let mut c = mathnn();
        c.env("MATHNN_CACHE", &cache)
            .env("MATHNN_MIRROR", &mirror)
            .args([
                "reproduce",
                "--profile",
                "smoke",
                "--only",
                "classifier-baseline",
                "--quiet",
            ]);
        if offline {
            c.arg("--offline");
        }
        c.arg("--out").arg(&results).output().unwrap()
    };
    let data_of = || -> serde_json::Value {
        let bytes = std::fs::read(results.join("classifier-baseline/result.json")).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["data"].clone()
    };
    // --offline: nothing is fetched, the run falls back to generated data.
    let o = run(true);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("fetching"), "{}", stderr(&o));
    assert_eq!(data_of(), "generated data");
    assert!(!cache.exists());
    // Online: both data sets are fetched and verified, and the experiment runs on them.
    let o = run(false);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["mnist", "fashion-mnist"] {
        assert!(
            stderr(&o).contains(&format!("{name}: verified files in")),
            "{}",
            stderr(&o)
        );
        assert!(cache.join(name).join("train-images-idx3-ubyte.gz").exists());
    }
    assert_eq!(data_of(), "real data");
    // A second run finds the cache and fetches nothing.
    let o = run(false);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("fetching"), "{}", stderr(&o));
}
