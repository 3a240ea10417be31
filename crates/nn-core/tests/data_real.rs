//! The real data sets of `$MATHNN_DATA` (`../shared/data`): run with
//! `MATHNN_DATA=../shared/data cargo test -p nn-core --test data_real -- --include-ignored`.

use std::path::PathBuf;

use nn_core::data::{
    DataLocator, Dataset, DatasetName, Provenance, load_dataset, load_image, verify,
};

fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("MATHNN_DATA").expect("set MATHNN_DATA to ../shared/data"))
}

fn locator() -> DataLocator {
    DataLocator {
        data_dir: None,
        env_dir: Some(root()),
        cache_dir: None,
    }
}

fn range(d: &Dataset) -> (f32, f32) {
    (
        d.images.min_all().unwrap().to_scalar::<f32>().unwrap(),
        d.images.max_all().unwrap().to_scalar::<f32>().unwrap(),
    )
}

fn count(d: &Dataset, class: u32) -> usize {
    d.labels_vec()
        .unwrap()
        .iter()
        .filter(|&&l| l == class)
        .count()
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn mnist_loads_with_known_sizes_and_first_label() {
    let dir = locator().locate(DatasetName::Mnist).unwrap();
    assert!(
        verify(&dir, DatasetName::Mnist)
            .unwrap()
            .iter()
            .all(|s| s.ok)
    );
    let d = load_dataset(DatasetName::Mnist, &locator()).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (60_000, 10_000));
    assert_eq!(d.train.images.dims(), &[60_000, 1, 28, 28]);
    assert_eq!(
        (d.train.name.as_str(), d.test.name.as_str()),
        ("mnist/train", "mnist/test")
    );
    assert_eq!(d.train.provenance, Provenance::Real);
    assert_eq!(d.train.classes[5], "5");
    assert_eq!(d.train.labels_vec().unwrap()[0], 5);
    assert_eq!(d.test.labels_vec().unwrap()[0], 7);
    assert_eq!(range(&d.train), (0.0, 1.0));
    // MNIST's mean pixel is 0.1307.
    let mean = d
        .train
        .images
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((mean - 0.1307).abs() < 1e-3, "{mean}");
    assert_eq!(count(&d.train, 1), 6_742);
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn fashion_mnist_loads_with_its_class_names() {
    let d = load_dataset(DatasetName::FashionMnist, &locator()).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (60_000, 10_000));
    assert_eq!(d.train.classes[0], "T-shirt/top");
    assert_eq!(d.train.classes[9], "Ankle boot");
    assert_eq!(d.train.labels_vec().unwrap()[0], 9);
    for c in 0..10 {
        assert_eq!(count(&d.train, c), 6_000);
        assert_eq!(count(&d.test, c), 1_000);
    }
    assert_eq!(range(&d.test), (0.0, 1.0));
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn pets_load_as_cats_and_dogs_split_80_20() {
    for (name, size) in [(DatasetName::Pets32, 32), (DatasetName::Pets64, 64)] {
        let dir = locator().locate(name).unwrap();
        assert!(verify(&dir, name).unwrap().iter().all(|s| s.ok), "{name}");
        let d = load_dataset(name, &locator()).unwrap();
        assert_eq!(d.train.len() + d.test.len(), 370, "{name}");
        assert_eq!(d.train.image_shape(), (3, size, size));
        assert_eq!(d.train.classes, vec!["cat", "dog"]);
        assert_eq!(
            (
                count(&d.train, 0) + count(&d.test, 0),
                count(&d.train, 1) + count(&d.test, 1)
            ),
            (120, 250)
        );
        assert_eq!(
            (count(&d.train, 0), count(&d.train, 1)),
            (96, 200),
            "stratified"
        );
        assert_eq!(d.test.name, format!("{name}/test"));
        let (lo, hi) = range(&d.train);
        assert!(lo >= 0.0 && hi <= 1.0 && hi > 0.9, "{name}: [{lo}, {hi}]");
        // Deterministic split.
        let again = load_dataset(name, &locator()).unwrap();
        assert_eq!(
            again.test.labels_vec().unwrap(),
            d.test.labels_vec().unwrap()
        );
    }
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn photos_load_as_colour_and_grey() {
    let photos = root().join("skimage-photos");
    let astronaut = load_image(&photos.join("astronaut.png")).unwrap();
    assert_eq!(astronaut.dims(), &[3, 512, 512]);
    let max = astronaut.max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(max <= 1.0 && max > 0.9, "{max}");
    assert_eq!(
        load_image(&photos.join("camera.png")).unwrap().dims(),
        &[1, 512, 512]
    );
    assert_eq!(
        load_image(&photos.join("rocket.jpg")).unwrap().dims(),
        &[3, 427, 640]
    );
    assert_eq!(
        load_image(&photos.join("coins.png")).unwrap().dims(),
        &[1, 303, 384]
    );
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn saved_photo_roundtrips_exactly() {
    let photo = load_image(&root().join("skimage-photos/chelsea.png")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("chelsea.png");
    nn_core::data::save_image(&photo, &out).unwrap();
    let back = load_image(&out).unwrap();
    let diff = (&photo - &back)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
}
