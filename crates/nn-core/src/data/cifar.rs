//! Reader for CIFAR-style binary files: fixed-size records of label bytes followed by a `C·H·W` image
//! in planar (channel after channel, row-major) order, with no file header.
//!
//! CIFAR-10 uses one label byte, CIFAR-100 two (coarse, fine). The Oxford-IIIT Pet files of
//! `../shared/data/oxford-pets` use the CIFAR-100 layout with byte 0 = species (0 cat, 1 dog) and
//! byte 1 = breed.

use std::path::Path;

use candle_core::{Device, Tensor};

use crate::data::idx::read_maybe_gzip;
use crate::data::{Dataset, Provenance};
use crate::{NnError, Result};

/// Reads a CIFAR-style binary file into a [`Dataset`] of `[N, C, H, W]` images scaled to `[0, 1]`,
/// with [`Provenance::Real`].
///
/// Each record is `label_bytes` label bytes followed by `C·H·W` pixel bytes, where `shape = (C, H, W)`;
/// the label is the byte at `label_index` within the label bytes and must be `< classes.len()`.
/// The file length must be a positive multiple of the record size. Gzip-compressed files are
/// decompressed transparently.
pub fn load_cifar_binary(
    path: &Path,
    label_bytes: usize,
    label_index: usize,
    shape: (usize, usize, usize),
    classes: Vec<String>,
    name: &str,
) -> Result<Dataset> {
    if label_bytes == 0 {
        return Err(NnError::invalid("label_bytes", "must be at least 1"));
    }
    if label_index >= label_bytes {
        return Err(NnError::invalid(
            "label_index",
            format!("is {label_index}, but a record has only {label_bytes} label bytes"),
        ));
    }
    let (c, h, w) = shape;
    if c == 0 || h == 0 || w == 0 {
        return Err(NnError::invalid(
            "shape",
            format!("({c}, {h}, {w}): every dimension must be at least 1"),
        ));
    }
    if classes.is_empty() {
        return Err(NnError::invalid(
            "classes",
            format!("data set `{name}` needs at least one class"),
        ));
    }
    let image_bytes = c
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or_else(|| NnError::invalid("shape", format!("({c}, {h}, {w}) is too large")))?;
    let record = label_bytes + image_bytes;
    let bytes = read_maybe_gzip(path)?;
    if bytes.is_empty() {
        return Err(NnError::bad_file(
            path,
            format!(
                "empty file: expected records of {record} bytes ({label_bytes} label + {c}x{h}x{w} pixels)"
            ),
        ));
    }
    if bytes.len() % record != 0 {
        return Err(NnError::bad_file(
            path,
            format!(
                "length {} is not a multiple of the record size {record} ({label_bytes} label + {c}x{h}x{w} pixels): {} bytes left over",
                bytes.len(),
                bytes.len() % record
            ),
        ));
    }
    let n = bytes.len() / record;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * image_bytes);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[label_index];
        if usize::from(label) >= classes.len() {
            return Err(NnError::bad_file(
                path,
                format!(
                    "record {i}: label byte {label_index} is {label}, expected < {} (the number of classes)",
                    classes.len()
                ),
            ));
        }
        labels.push(u32::from(label));
        pixels.extend(rec[label_bytes..].iter().map(|&p| f32::from(p) / 255.0));
    }
    let images = Tensor::from_vec(pixels, (n, c, h, w), &Device::Cpu)?;
    let labels = Tensor::from_vec(labels, n, &Device::Cpu)?;
    Dataset::new(images, labels, classes, name, Provenance::Real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        vec!["cat".into(), "dog".into()]
    }

    #[test]
    fn reads_planar_records_and_picks_the_label_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.bin");
        // Two records of 2 label bytes + 2x1x2 pixels.
        let bytes = [1u8, 7, 0, 51, 102, 255, 0, 9, 255, 0, 0, 0];
        std::fs::write(&path, bytes).unwrap();
        let d = load_cifar_binary(&path, 2, 0, (2, 1, 2), classes(), "tiny").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.image_shape(), (2, 1, 2));
        assert_eq!(d.labels_vec().unwrap(), vec![1, 0]);
        let px = d.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = [0.0, 0.2, 0.4, 1.0, 1.0, 0.0, 0.0, 0.0];
        for (a, b) in px.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{px:?}");
        }
        // The breed byte (7, 9) is out of range for two classes.
        let err = load_cifar_binary(&path, 2, 1, (2, 1, 2), classes(), "tiny")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tiny.bin") && err.contains("record 0") && err.contains("is 7"),
            "{err}"
        );
    }

    #[test]
    fn wrong_length_and_arguments_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.bin");
        std::fs::write(&path, [0u8; 13]).unwrap();
        // 13 bytes are exactly one record of 1 + 3x2x2 bytes...
        assert_eq!(
            load_cifar_binary(&path, 1, 0, (3, 2, 2), classes(), "odd")
                .unwrap()
                .len(),
            1
        );
        // ...but not a multiple of 2 + 3x2x2 = 14.
        let err = load_cifar_binary(&path, 2, 0, (3, 2, 2), classes(), "odd")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("odd.bin") && err.contains("record size 14"),
            "{err}"
        );
        assert!(err.contains("13 bytes left over"), "{err}");
        let empty = dir.path().join("empty.bin");
        std::fs::write(&empty, []).unwrap();
        let err = load_cifar_binary(&empty, 1, 0, (1, 1, 1), classes(), "e")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("empty.bin") && err.contains("empty file"),
            "{err}"
        );
        let err = load_cifar_binary(&path, 2, 2, (3, 2, 2), classes(), "odd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("label_index"), "{err}");
        let err = load_cifar_binary(&path, 1, 0, (0, 2, 2), classes(), "odd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("shape"), "{err}");
    }
}
