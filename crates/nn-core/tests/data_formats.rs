//! IDX and CIFAR-style readers on small files built in a temporary directory: exact values, and one
//! error per way a file can be wrong, each naming the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use nn_core::NnError;
use nn_core::data::{
    Provenance, load_cifar_binary, load_idx_dataset, read_idx_images, read_idx_labels,
};

fn header(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = header(&[0x803, n, rows, cols]);
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(n: u32, labels: &[u8]) -> Vec<u8> {
    let mut v = header(&[0x801, n]);
    v.extend_from_slice(labels);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn digits() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// Three 2x3 images whose pixel k is 10·k, labels 7, 0, 9.
fn sample() -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..18).map(|k| 10 * k).collect();
    (idx_images(3, 2, 3, &pixels), idx_labels(3, &[7, 0, 9]))
}

fn message(r: nn_core::Result<impl std::fmt::Debug>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn raw_and_gzip_files_give_the_same_exact_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = sample();
    // Compression is detected from the content, not from the name.
    let sets = [
        (
            write(dir.path(), "raw-images.gz", &img),
            write(dir.path(), "raw-labels", &lab),
        ),
        (
            write(dir.path(), "gz-images.idx", &gzip(&img)),
            write(dir.path(), "gz-labels.gz", &gzip(&lab)),
        ),
    ];
    for (images, labels) in &sets {
        let d = load_idx_dataset(images, labels, digits(), "tiny/train").unwrap();
        assert_eq!(d.images.dims(), &[3, 1, 2, 3]);
        assert_eq!(d.labels_vec().unwrap(), vec![7, 0, 9]);
        assert_eq!(d.name, "tiny/train");
        assert_eq!(d.provenance, Provenance::Real);
        let px = d.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (k, v) in px.iter().enumerate() {
            assert!(
                (v - 10.0 * k as f32 / 255.0).abs() < 1e-6,
                "pixel {k} is {v}"
            );
        }
    }
    let raw = read_idx_images(&sets[0].0).unwrap();
    assert_eq!((raw.n, raw.rows, raw.cols), (3, 2, 3));
    assert_eq!(read_idx_images(&sets[1].0).unwrap(), raw);
    assert_eq!(read_idx_labels(&sets[1].1).unwrap(), vec![7, 0, 9]);
}

#[test]
fn truncated_images_report_expected_and_found_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sample();
    let p = write(dir.path(), "cut-images", &img[..img.len() - 1]);
    let err = message(read_idx_images(&p));
    assert!(err.contains("cut-images"), "{err}");
    assert!(
        err.contains("truncated: expected 18 bytes of pixels after the header, found 17"),
        "{err}"
    );
    // The same through gzip.
    let p = write(dir.path(), "cut-images.gz", &gzip(&img[..10]));
    let err = message(read_idx_images(&p));
    assert!(
        err.contains("cut-images.gz") && err.contains("expected at least 16 bytes, found 10"),
        "{err}"
    );
}

#[test]
fn truncated_labels_and_trailing_bytes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "short-labels", &idx_labels(3, &[1, 2]));
    let err = message(read_idx_labels(&p));
    assert!(err.contains("short-labels"), "{err}");
    assert!(
        err.contains("truncated: expected 3 bytes of labels after the header, found 2"),
        "{err}"
    );

    let (mut img, _) = sample();
    img.extend_from_slice(&[1, 2]);
    let p = write(dir.path(), "long-images", &img);
    let err = message(read_idx_images(&p));
    assert!(
        err.contains("long-images") && err.contains("2 unexpected trailing bytes"),
        "{err}"
    );
    assert!(
        err.contains("expected exactly 18 bytes of pixels after the header, found 20"),
        "{err}"
    );
}

#[test]
fn wrong_magic_is_reported_with_the_value_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = idx_images(1, 1, 1, &[0]);
    img[3] = 0x04;
    let p = write(dir.path(), "magic-images", &img);
    let err = message(read_idx_images(&p));
    assert!(err.contains("magic-images"), "{err}");
    assert!(
        err.contains("magic number is 0x00000804, expected 0x00000803"),
        "{err}"
    );
    // An image file passed as labels.
    let (img, _) = sample();
    let p = write(dir.path(), "swapped", &img);
    let err = message(read_idx_labels(&p));
    assert!(
        err.contains("swapped") && err.contains("magic number is 0x00000803, expected 0x00000801"),
        "{err}"
    );
}

#[test]
fn corrupt_gzip_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sample();
    let gz = gzip(&img);
    // Cut in the middle of the deflate stream.
    let p = write(dir.path(), "cut.gz", &gz[..gz.len() / 2]);
    let err = message(read_idx_images(&p));
    assert!(
        err.contains("cut.gz") && err.contains("corrupt gzip"),
        "{err}"
    );
    // Damaged body: the CRC or the deflate stream no longer checks out.
    let mut bad = gz.clone();
    let mid = bad.len() - 12;
    bad[mid] ^= 0xff;
    let p = write(dir.path(), "flipped.gz", &bad);
    let err = message(read_idx_images(&p));
    assert!(
        err.contains("flipped.gz") && err.contains("corrupt gzip"),
        "{err}"
    );
    // gzip magic followed by junk.
    let p = write(dir.path(), "junk", &[0x1f, 0x8b, 1, 2, 3, 4, 5]);
    let err = message(read_idx_labels(&p));
    assert!(
        err.contains("junk") && err.contains("corrupt gzip"),
        "{err}"
    );
}

#[test]
fn count_mismatch_names_both_files_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sample();
    let images = write(dir.path(), "three-images", &img);
    let labels = write(dir.path(), "two-labels", &idx_labels(2, &[1, 2]));
    let err = message(load_idx_dataset(&images, &labels, digits(), "x"));
    assert!(
        err.contains("three-images") && err.contains("two-labels"),
        "{err}"
    );
    assert!(
        err.contains("holds 2 labels") && err.contains("holds 3 images"),
        "{err}"
    );
}

#[test]
fn out_of_range_label_and_missing_file_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sample();
    let images = write(dir.path(), "images", &img);
    let labels = write(dir.path(), "labels-12", &idx_labels(3, &[1, 12, 2]));
    let err = message(load_idx_dataset(&images, &labels, digits(), "x"));
    assert!(
        err.contains("labels-12") && err.contains("label 12 of item 1") && err.contains("< 10"),
        "{err}"
    );

    let missing = dir.path().join("no-such-file.gz");
    let err = load_idx_dataset(&missing, &labels, digits(), "x").unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-file.gz"), "{err}");
}

#[test]
fn cifar_records_are_read_in_planar_order() {
    let dir = tempfile::tempdir().unwrap();
    // Three records: species, breed, then R, G, B planes of 2x2.
    let mut bytes = Vec::new();
    for (species, breed) in [(1u8, 30u8), (0, 3), (1, 36)] {
        bytes.extend_from_slice(&[species, breed]);
        for c in 0..3u8 {
            bytes.extend((0..4u8).map(|k| species * 100 + c * 50 + k));
        }
    }
    let p = write(dir.path(), "pets.bin", &bytes);
    let classes = vec!["cat".to_string(), "dog".to_string()];
    let d = load_cifar_binary(&p, 2, 0, (3, 2, 2), classes.clone(), "pets").unwrap();
    assert_eq!(d.images.dims(), &[3, 3, 2, 2]);
    assert_eq!(d.labels_vec().unwrap(), vec![1, 0, 1]);
    // Record 0, channel G (index 1), pixel (1, 0) = 100 + 50 + 2.
    let v = d
        .images
        .get(0)
        .unwrap()
        .get(1)
        .unwrap()
        .get(1)
        .unwrap()
        .get(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((v - 152.0 / 255.0).abs() < 1e-6, "{v}");
    // The breed byte with 37 classes.
    let breeds: Vec<String> = (0..37).map(|b| format!("breed{b}")).collect();
    let d = load_cifar_binary(&p, 2, 1, (3, 2, 2), breeds, "breeds").unwrap();
    assert_eq!(d.labels_vec().unwrap(), vec![30, 3, 36]);
    // A CIFAR-10 style reading (1 label byte) does not divide the file: 42 bytes, records of 13.
    let err = message(load_cifar_binary(&p, 1, 0, (3, 2, 2), classes, "c10"));
    assert!(
        err.contains("pets.bin")
            && err.contains("record size 13")
            && err.contains("3 bytes left over"),
        "{err}"
    );
}
