//! [`load_dataset`]: a named data set as a train and a test [`Dataset`].

use crate::data::Dataset;
use crate::data::cifar::load_cifar_binary;
use crate::data::generated::generated_train_test;
use crate::data::idx::load_idx_dataset;
use crate::data::locate::{DataLocator, DatasetName};
use crate::{NnError, Result};

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

/// Side of the MNIST and Fashion-MNIST images, in pixels.
pub const MNIST_SIDE: usize = 28;

/// Images in each Oxford-IIIT pets file (`oxford_pets_370_*.bin`).
pub const PETS_IMAGES: usize = 370;

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
        let part = |prefix: &str, split: &str| -> Result<Dataset> {
            let images = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
            let set = load_idx_dataset(
                &images,
                &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
                classes.clone(),
                &format!("{name}/{split}"),
            )?;
            // Both data sets are 28 × 28 by definition; any other side is a damaged or foreign file,
            // and saying so here names it (a model built from it would blame the other split).
            let (_, rows, cols) = set.image_shape();
            if (rows, cols) != (MNIST_SIDE, MNIST_SIDE) {
                return Err(NnError::bad_file(
                    images.as_path(),
                    format!(
                        "holds {rows}×{cols} images; {name} images are {MNIST_SIDE}×{MNIST_SIDE}"
                    ),
                ));
            }
            Ok(set)
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
        // A file cut to whole records parses; only the count says it is not the data set.
        if all.len() != PETS_IMAGES {
            return Err(NnError::bad_file(
                &file,
                format!(
                    "holds {} images; the Oxford-IIIT pets file has {PETS_IMAGES} (truncated or another \
                     file: `mathnn data verify {name}` checks it)",
                    all.len()
                ),
            ));
        }
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

/// scikit-learn's "digits" from `digits.csv.gz` (gzip CSV without header: 64 pixel counts 0..16 of an
/// 8×8 image, row-major, then the label 0..9): all 1,797 images as one `[N, 1, 8, 8]` data set named
/// `sklearn-digits`, pixels scaled to `[0, 1]` by `/16`. A malformed row is an error naming its line.
pub fn load_sklearn_digits(path: &std::path::Path) -> Result<Dataset> {
    use std::io::Read;
    let raw = std::fs::read(path).map_err(|e| NnError::io(path, e))?;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .read_to_string(&mut text)
        .map_err(|e| NnError::bad_file(path, format!("not a gzip-compressed CSV: {e}")))?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |what: String| NnError::bad_file(path, format!("line {}: {what}", line_no + 1));
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 65 {
            return Err(bad(format!(
                "expected 65 comma-separated values, got {}",
                fields.len()
            )));
        }
        for f in &fields[..64] {
            let v: f64 = f
                .parse()
                .map_err(|_| bad(format!("pixel `{f}` is not a number")))?;
            if !(0.0..=16.0).contains(&v) {
                return Err(bad(format!("pixel {v} outside 0..16")));
            }
            pixels.push((v / 16.0) as f32);
        }
        let label: f64 = fields[64]
            .parse()
            .map_err(|_| bad(format!("label `{}` is not a number", fields[64])))?;
        if !(0.0..=9.0).contains(&label) || label.fract() != 0.0 {
            return Err(bad(format!("label {label} is not a digit 0..9")));
        }
        labels.push(label as u32);
    }
    if labels.is_empty() {
        return Err(NnError::bad_file(path, "no rows"));
    }
    let n = labels.len();
    Dataset::new(
        candle_core::Tensor::from_vec(pixels, (n, 1, 8, 8), &candle_core::Device::Cpu)?,
        candle_core::Tensor::from_vec(labels, n, &candle_core::Device::Cpu)?,
        (0..10).map(|d| d.to_string()).collect(),
        "sklearn-digits",
        crate::data::Provenance::Real,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz_csv(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
        use std::io::Write;
        let path = dir.join("digits.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        path
    }

    #[test]
    fn sklearn_digits_rows_load_scaled_and_bad_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let row = |first: &str, label: &str| {
            let mut v = vec![first.to_string()];
            v.extend((1..64).map(|i| (i % 17).to_string()));
            v.push(label.to_string());
            v.join(",")
        };
        let path = gz_csv(
            dir.path(),
            &format!("{}\n{}\n", row("16", "3"), row("0.0", "9")),
        );
        let data = load_sklearn_digits(&path).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.image_shape(), (1, 8, 8));
        assert_eq!(data.labels_vec().unwrap(), vec![3, 9]);
        let first = data.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(first[0], 1.0);
        assert_eq!(first[2], 2.0 / 16.0);
        for (text, needle) in [
            (
                format!("{}\n{}\n", row("1", "0"), row("17", "0")),
                "line 2: pixel 17",
            ),
            (format!("{}\n", row("1", "10")), "label 10"),
            ("1,2,3\n".to_string(), "expected 65"),
            (format!("{}\n", row("x", "1")), "`x`"),
        ] {
            let err = load_sklearn_digits(&gz_csv(dir.path(), &text))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

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
