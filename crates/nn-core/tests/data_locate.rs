//! Finding data sets on disk: search order, error messages, and `verify`.

use std::path::Path;

use nn_core::NnError;
use nn_core::data::{DataLocator, DatasetName, default_mirrors, verify};

/// Creates `<root>/<subdir>/` with empty files of the given names.
fn fake(root: &Path, subdir: &str, names: &[&str]) {
    let dir = root.join(subdir);
    std::fs::create_dir_all(&dir).unwrap();
    for n in names {
        std::fs::write(dir.join(n), b"").unwrap();
    }
}

fn mnist_names() -> Vec<&'static str> {
    DatasetName::Mnist.files().iter().map(|f| f.name).collect()
}

#[test]
fn search_order_is_data_dir_then_env_then_cache() {
    let t = tempfile::tempdir().unwrap();
    let (d, e, c) = (t.path().join("d"), t.path().join("e"), t.path().join("c"));
    for root in [&d, &e, &c] {
        std::fs::create_dir_all(root).unwrap();
    }
    let locator = DataLocator {
        data_dir: Some(d.clone()),
        env_dir: Some(e.clone()),
        cache_dir: Some(c.clone()),
    };
    fake(&c, "oxford-pets", &["oxford_pets_370_32x32.bin"]);
    assert_eq!(
        locator.locate(DatasetName::Pets32).unwrap(),
        c.join("oxford-pets")
    );
    fake(&e, "oxford-pets", &["oxford_pets_370_32x32.bin"]);
    assert_eq!(
        locator.locate(DatasetName::Pets32).unwrap(),
        e.join("oxford-pets")
    );
    fake(&d, "oxford-pets", &["oxford_pets_370_32x32.bin"]);
    assert_eq!(
        locator.locate(DatasetName::Pets32).unwrap(),
        d.join("oxford-pets")
    );
    // pets64 needs its own file, present nowhere.
    let err = locator.locate(DatasetName::Pets64).unwrap_err();
    assert!(matches!(err, NnError::DataNotFound { .. }), "{err:?}");
    // An incomplete directory is skipped in favour of a complete one further down.
    let names = mnist_names();
    fake(&d, "mnist", &names[..3]);
    fake(&c, "mnist", &names);
    assert_eq!(locator.locate(DatasetName::Mnist).unwrap(), c.join("mnist"));
}

#[test]
fn not_found_lists_every_place_with_what_is_missing_and_a_hint() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("given");
    let names = mnist_names();
    fake(&d, "mnist", &names[..3]);
    let locator = DataLocator {
        data_dir: Some(d.clone()),
        env_dir: Some(t.path().join("env")),
        cache_dir: Some(t.path().join("cache")),
    };
    let err = locator.locate(DatasetName::Mnist).unwrap_err().to_string();
    assert!(err.starts_with("data set `mnist` not found"), "{err}");
    for place in [
        d.join("mnist"),
        t.path().join("env/mnist"),
        t.path().join("cache/mnist"),
    ] {
        assert!(
            err.contains(&place.display().to_string()),
            "{place:?} missing from: {err}"
        );
    }
    assert!(
        err.contains("missing t10k-labels-idx1-ubyte.gz") && err.contains("no such directory"),
        "{err}"
    );
    assert!(
        err.contains("run `mathnn data fetch mnist` or pass --data-dir / set MATHNN_DATA"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");

    let err = locator.locate(DatasetName::Pets64).unwrap_err().to_string();
    assert!(
        err.contains("oxford-pets")
            && err.contains("not downloadable")
            && !err.contains("data fetch"),
        "{err}"
    );

    let empty = DataLocator::default();
    let err = empty
        .locate(DatasetName::FashionMnist)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fashion-mnist") && err.contains("nowhere"),
        "{err}"
    );
}

#[test]
fn a_missing_data_dir_is_an_error_naming_the_flag() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no-such-dir");
    let locator = DataLocator {
        data_dir: Some(missing.clone()),
        env_dir: None,
        cache_dir: None,
    };
    let err = locator.locate(DatasetName::Mnist).unwrap_err();
    assert!(matches!(err, NnError::InvalidArgument { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("--data-dir") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
    let file = t.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let locator = DataLocator {
        data_dir: Some(file),
        env_dir: None,
        cache_dir: None,
    };
    let err = locator.locate(DatasetName::Mnist).unwrap_err().to_string();
    assert!(
        err.contains("--data-dir") && err.contains("is not a directory"),
        "{err}"
    );
    let err = locator
        .locate(DatasetName::Generated)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("generated") && err.contains("no files"),
        "{err}"
    );
}

#[test]
fn unknown_dataset_name_lists_the_valid_ones() {
    let err = "cifar-10".parse::<DatasetName>().unwrap_err();
    assert!(matches!(err, NnError::InvalidArgument { .. }), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("`cifar-10`"), "{err}");
    for d in DatasetName::ALL {
        assert!(err.contains(d.as_str()), "{err}");
    }
    assert_eq!(
        "pets64".parse::<DatasetName>().unwrap(),
        DatasetName::Pets64
    );
    assert_eq!(
        "fashion-mnist".parse::<DatasetName>().unwrap().subdir(),
        "fashion-mnist"
    );
    assert_eq!(DatasetName::Pets32.subdir(), "oxford-pets");
}

#[test]
fn mirrors_exist_only_for_downloadable_sets() {
    assert_eq!(
        default_mirrors(DatasetName::Mnist),
        vec![
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/"
        ]
    );
    assert_eq!(
        default_mirrors(DatasetName::FashionMnist),
        vec!["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    );
    for d in [
        DatasetName::Pets32,
        DatasetName::Pets64,
        DatasetName::Generated,
    ] {
        assert!(default_mirrors(d).is_empty(), "{d}");
    }
}

#[test]
fn verify_reports_missing_wrong_size_and_wrong_hash() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let f = DatasetName::Pets32.files()[0];
    let status = verify(dir, DatasetName::Pets32).unwrap();
    assert_eq!(status.len(), 1);
    assert!(!status[0].ok && status[0].reason == "missing", "{status:?}");
    std::fs::write(dir.join(f.name), b"short").unwrap();
    let status = verify(dir, DatasetName::Pets32).unwrap();
    assert_eq!(
        status[0].reason,
        format!("size is 5 bytes, expected {}", f.bytes)
    );
    std::fs::write(dir.join(f.name), vec![0u8; f.bytes as usize]).unwrap();
    let status = verify(dir, DatasetName::Pets32).unwrap();
    assert!(!status[0].ok, "{status:?}");
    assert!(
        status[0]
            .reason
            .starts_with(&format!("sha256 mismatch: expected {}, found ", f.sha256)),
        "{status:?}"
    );
    let json = serde_json::to_value(&status[0]).unwrap();
    assert_eq!(json["name"], f.name);
    assert_eq!(json["ok"], false);
    assert!(verify(dir, DatasetName::Generated).unwrap().is_empty());
    let err = verify(&dir.join("nope"), DatasetName::Mnist)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("not a directory"),
        "{err}"
    );
}

#[test]
fn a_pets_file_cut_to_whole_records_is_refused_with_its_count() {
    use nn_core::data::load::load_dataset;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("oxford-pets");
    std::fs::create_dir_all(&dir).unwrap();
    // 100 whole records (2 label bytes + 3·32·32 pixels): a valid file, but not the data set.
    let record: Vec<u8> = [0u8, 1]
        .into_iter()
        .chain(std::iter::repeat_n(7u8, 3 * 32 * 32))
        .collect();
    let bytes: Vec<u8> = record
        .iter()
        .copied()
        .cycle()
        .take(100 * record.len())
        .collect();
    std::fs::write(dir.join("oxford_pets_370_32x32.bin"), bytes).unwrap();
    let locator = DataLocator {
        data_dir: Some(root.path().to_path_buf()),
        env_dir: None,
        cache_dir: None,
    };
    let err = load_dataset(DatasetName::Pets32, &locator)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("oxford_pets_370_32x32.bin")
            && err.contains("holds 100 images")
            && err.contains("370"),
        "{err}"
    );
}
