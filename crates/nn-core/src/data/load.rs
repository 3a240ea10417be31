//! [`load_dataset`]: a named data set as a train and a test [`Dataset`].

use crate::Result;
use crate::data::Dataset;
use crate::data::cifar::load_cifar_binary;
use crate::data::generated::generated_train_test;
use crate::data::idx::load_idx_dataset;
use crate::data::locate::{DataLocator, DatasetName};

/// A train set and a test set.
#[derive(Debug, Clone)]
pub struct TrainTest {
    /// Training data.
    pub train: Dataset,
    /// Held-out test data.
    pub test: Dataset,
}

/// Class names of Fashion-MNIST, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Class names of the pets data sets (the species byte): 0 cat, 1 dog.
pub const PETS_CLASSES: [&str; 2] = ["cat", "dog"];

/// Size of the generated train set made by [`load_dataset`].
pub const GENERATED_TRAIN: usize = 10_000;
/// Size of the generated test set made by [`load_dataset`].
pub const GENERATED_TEST: usize = 2_000;

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Loads `name` as train and test sets, finding its files with `locator`.
///
/// * `mnist`, `fashion-mnist`: the standard IDX train and test files; sets named `mnist/train`, ….
/// * `pets32`, `pets64`: the 370 Oxford-IIIT Pet images, classes `cat`, `dog` (the species byte), split
///   80/20 stratified by class with seed 0 (`Dataset::split(0.8, 0)`); sets named `pets32/train`, ….
/// * `generated`: [`generated_train_test`]`(10_000, 2_000, 0)`; needs no files.
pub fn load_dataset(name: DatasetName, locator: &DataLocator) -> Result<TrainTest> {
    let idx = |classes: Vec<String>| -> Result<TrainTest> {
        let dir = locator.locate(name)?;
        let part = |prefix: &str, split: &str| {
            load_idx_dataset(
                &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
                &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
                classes.clone(),
                &format!("{name}/{split}"),
            )
        };
        Ok(TrainTest {
            train: part("train", "train")?,
            test: part("t10k", "test")?,
        })
    };
    let pets = |size: usize| -> Result<TrainTest> {
        let dir = locator.locate(name)?;
        let file = dir.join(format!("oxford_pets_370_{size}x{size}.bin"));
        let all = load_cifar_binary(
            &file,
            2,
            0,
            (3, size, size),
            owned(&PETS_CLASSES),
            name.as_str(),
        )?;
        let (mut train, mut test) = all.split(0.8, 0)?;
        train.name = format!("{name}/train");
        test.name = format!("{name}/test");
        Ok(TrainTest { train, test })
    };
    match name {
        DatasetName::Mnist => idx((0..10).map(|d| d.to_string()).collect()),
        DatasetName::FashionMnist => idx(owned(&FASHION_MNIST_CLASSES)),
        DatasetName::Pets32 => pets(32),
        DatasetName::Pets64 => pets(64),
        DatasetName::Generated => generated_train_test(GENERATED_TRAIN, GENERATED_TEST, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_data_reports_every_place_and_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let locator = DataLocator {
            data_dir: None,
            env_dir: Some(dir.path().join("env")),
            cache_dir: Some(dir.path().join("cache")),
        };
        let err = load_dataset(DatasetName::Mnist, &locator)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&dir.path().join("env").join("mnist").display().to_string()),
            "{err}"
        );
        assert!(
            err.contains(&dir.path().join("cache").join("mnist").display().to_string()),
            "{err}"
        );
        assert!(err.contains("mathnn data fetch mnist"), "{err}");
        let err = load_dataset(DatasetName::Pets32, &locator)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("oxford-pets")
                && !err.contains("data fetch")
                && err.contains("not downloadable"),
            "{err}"
        );
    }
}
