//! `mathnn export --torch` / `mathnn import --torch` end to end, without torch: a trained classifier
//! exported and imported back evaluates to exactly the same numbers, the file carries PyTorch's extra
//! batch-norm counters and the model's configuration, and bad files get one clear line. (Parity with
//! PyTorch itself is checked by hand with benches/peers/mathnn_torch.py; docs/interop.md.)

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_clean_failure, mathnn};

fn run(args: &[&str]) -> Output {
    mathnn().args(args).output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn train(dir: &Path, model: &str) {
    ok(run(&[
        "train",
        "--dataset",
        "generated",
        "--model",
        model,
        "--epochs",
        "1",
        "--limit-train",
        "64",
        "--limit-test",
        "48",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]));
}

/// `mathnn eval`'s JSON without the fields that name the directory or the data's origin.
fn eval(dir: &Path) -> serde_json::Value {
    let out = ok(run(&[
        "eval",
        "--checkpoint",
        dir.to_str().unwrap(),
        "--dataset",
        "generated",
        "--limit",
        "48",
    ]));
    let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("checkpoint");
    o.remove("data_provenance");
    v
}

#[test]
fn export_then_import_gives_the_same_evaluation() {
    let root = tempfile::tempdir().unwrap();
    for model in ["lenet", "resnet-small"] {
        let trained = root.path().join(model);
        train(&trained, model);
        let file = root.path().join(format!("{model}.safetensors"));
        let out = ok(run(&[
            "export",
            "--torch",
            "--checkpoint",
            trained.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ]));
        assert!(out.contains(model), "{out}");
        // The PyTorch layout: batch norm's step counter is there (strict load_state_dict needs it), the
        // configuration is in the metadata.
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]);
        assert!(text.contains("mathnn_model"), "{model}: no metadata");
        assert_eq!(
            text.contains("stem.bn.num_batches_tracked"),
            model == "resnet-small",
            "{model}"
        );
        let back = root.path().join(format!("{model}-back"));
        ok(run(&[
            "import",
            "--torch",
            file.to_str().unwrap(),
            "--out",
            back.to_str().unwrap(),
        ]));
        let (a, b) = (eval(&trained), eval(&back));
        assert_eq!(a, b, "{model}: evaluations differ");
        assert!(
            a["confusion"].is_array() || a.get("accuracy").is_some(),
            "{a}"
        );
        // A second import into the same directory is refused without --force, allowed with it.
        let again = [
            "import",
            "--torch",
            file.to_str().unwrap(),
            "--out",
            back.to_str().unwrap(),
        ];
        assert_clean_failure(run(&again), &["--out", "already holds a model", "--force"]);
        let mut forced = again.to_vec();
        forced.push("--force");
        ok(run(&forced));
    }
}

#[test]
fn import_refuses_files_it_cannot_rebuild() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let out = out.to_str().unwrap();
    // Not a safetensors file.
    let junk = root.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file at all").unwrap();
    assert_clean_failure(
        run(&["import", "--torch", junk.to_str().unwrap(), "--out", out]),
        &["junk.safetensors", "not a safetensors file"],
    );
    // A checkpoint of `mathnn train` has no configuration metadata.
    let trained = root.path().join("lenet");
    train(&trained, "lenet");
    let plain = trained.join("model.safetensors");
    assert_clean_failure(
        run(&["import", "--torch", plain.to_str().unwrap(), "--out", out]),
        &["model.safetensors", "mathnn_model"],
    );
    // A missing file.
    assert_clean_failure(
        run(&[
            "import",
            "--torch",
            "/nonexistent/x.safetensors",
            "--out",
            out,
        ]),
        &["/nonexistent/x.safetensors"],
    );
    // Export from a directory that is no checkpoint.
    assert_clean_failure(
        run(&[
            "export",
            "--torch",
            "--checkpoint",
            "/nonexistent/run",
            "--out",
            out,
        ]),
        &["--checkpoint", "/nonexistent/run"],
    );
    assert!(!Path::new(out).exists(), "a refused import wrote {out}");
}

#[test]
fn sv_uap_torchvision_names_a_folder_without_enough_photos() {
    let root = tempfile::tempdir().unwrap();
    let photos = root.path().join("photos");
    std::fs::create_dir_all(photos.join("class_a")).unwrap();
    std::fs::write(photos.join("class_a/readme.txt"), "not a photo").unwrap();
    assert_clean_failure(
        run(&[
            "attack",
            "sv-uap-torchvision",
            "--torchvision",
            "vgg16",
            "--weights",
            "/nonexistent/vgg16.safetensors",
            "--image-dir",
            photos.to_str().unwrap(),
        ]),
        &["--image-dir", "0 photos", "--fit 64"],
    );
    assert_clean_failure(
        run(&[
            "attack",
            "sv-uap-torchvision",
            "--torchvision",
            "vgg17",
            "--weights",
            "w",
            "--image-dir",
            "d",
        ]),
        &["--torchvision", "vgg17"],
    );
}
