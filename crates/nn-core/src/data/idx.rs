//! Reader for the IDX format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header followed by the payload:
//! images are `0x00000803, N, rows, cols` then `N·rows·cols` bytes, labels are `0x00000801, N` then
//! `N` bytes. Files may be gzip-compressed; compression is detected from the magic bytes `1f 8b`, not
//! from the file name. Every check reports the file and what was expected.

use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};
use flate2::read::MultiGzDecoder;

use crate::data::{Dataset, Provenance};
use crate::{NnError, Result};

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The content of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub n: usize,
    /// Rows of one image.
    pub rows: usize,
    /// Columns of one image.
    pub cols: usize,
    /// `n · rows · cols` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// Reads a whole file, decompressing it when it starts with the gzip magic bytes `1f 8b`.
///
/// Corrupt or truncated gzip data is a [`NnError::BadFile`] naming the file.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| NnError::io(path, e))?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::with_capacity(raw.len().saturating_mul(4));
        MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| NnError::bad_file(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Big-endian `u32` number `index` of the header (the caller checked the length).
fn header_u32(bytes: &[u8], index: usize) -> u32 {
    let b = &bytes[4 * index..4 * index + 4];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks the magic number, naming what was found and what the other IDX kind would be.
fn check_magic(path: &Path, found: u32, expected: u32, what: &str) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    let hint = match found {
        IMAGES_MAGIC => " (this is an IDX image file)",
        LABELS_MAGIC => " (this is an IDX label file)",
        _ => "",
    };
    Err(NnError::bad_file(
        path,
        format!(
            "not an IDX {what} file: magic number is 0x{found:08x}, expected 0x{expected:08x}{hint}"
        ),
    ))
}

/// Checks that the payload after a header of `header` bytes is exactly `expected` bytes long.
fn check_payload(
    path: &Path,
    bytes: &[u8],
    header: usize,
    expected: usize,
    what: &str,
) -> Result<()> {
    let found = bytes.len() - header;
    if found < expected {
        return Err(NnError::bad_file(
            path,
            format!(
                "truncated: expected {expected} bytes of {what} after the header, found {found}"
            ),
        ));
    }
    if found > expected {
        return Err(NnError::bad_file(
            path,
            format!(
                "{} unexpected trailing bytes: expected exactly {expected} bytes of {what} after the header, found {found}",
                found - expected
            ),
        ));
    }
    Ok(())
}

/// Parses IDX image bytes already read from `path` (used for error messages only).
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    if bytes.len() < 16 {
        return Err(NnError::bad_file(
            path,
            format!(
                "too short for an IDX image header: expected at least 16 bytes, found {}",
                bytes.len()
            ),
        ));
    }
    check_magic(path, header_u32(bytes, 0), IMAGES_MAGIC, "image")?;
    let n = header_u32(bytes, 1) as usize;
    let rows = header_u32(bytes, 2) as usize;
    let cols = header_u32(bytes, 3) as usize;
    if rows == 0 || cols == 0 {
        return Err(NnError::bad_file(
            path,
            format!("image size is {rows}x{cols}; expected both at least 1"),
        ));
    }
    let expected = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| {
            NnError::bad_file(
                path,
                format!("header claims {n} images of {rows}x{cols}: too large"),
            )
        })?;
    check_payload(path, bytes, 16, expected, "pixels")?;
    Ok(IdxImages {
        n,
        rows,
        cols,
        pixels: bytes[16..].to_vec(),
    })
}

/// Parses IDX label bytes already read from `path` (used for error messages only).
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    if bytes.len() < 8 {
        return Err(NnError::bad_file(
            path,
            format!(
                "too short for an IDX label header: expected at least 8 bytes, found {}",
                bytes.len()
            ),
        ));
    }
    check_magic(path, header_u32(bytes, 0), LABELS_MAGIC, "label")?;
    let n = header_u32(bytes, 1) as usize;
    check_payload(path, bytes, 8, n, "labels")?;
    Ok(bytes[8..].to_vec())
}

/// Reads an IDX image file (raw or gzip-compressed).
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    parse_idx_images(&read_maybe_gzip(path)?, path)
}

/// Reads an IDX label file (raw or gzip-compressed).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    parse_idx_labels(&read_maybe_gzip(path)?, path)
}

/// Reads an image file and a label file into a [`Dataset`] of `[N, 1, rows, cols]` images scaled to
/// `[0, 1]`, with [`Provenance::Real`].
///
/// The two files must hold the same number of items, and every label must be `< classes.len()`.
pub fn load_idx_dataset(
    images: &Path,
    labels: &Path,
    classes: Vec<String>,
    name: &str,
) -> Result<Dataset> {
    if classes.is_empty() {
        return Err(NnError::invalid(
            "classes",
            format!("data set `{name}` needs at least one class"),
        ));
    }
    let img = read_idx_images(images)?;
    let lab = read_idx_labels(labels)?;
    if img.n != lab.len() {
        return Err(NnError::bad_file(
            labels,
            format!(
                "holds {} labels but the image file {} holds {} images; the counts must match",
                lab.len(),
                images.display(),
                img.n
            ),
        ));
    }
    if let Some((i, &l)) = lab
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes.len())
    {
        return Err(NnError::bad_file(
            labels,
            format!(
                "label {l} of item {i} is out of range: expected < {} (the number of classes)",
                classes.len()
            ),
        ));
    }
    let pixels: Vec<f32> = img.pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    let images_t = Tensor::from_vec(pixels, (img.n, 1, img.rows, img.cols), &Device::Cpu)?;
    let labels_t = Tensor::from_vec(
        lab.iter().map(|&l| u32::from(l)).collect::<Vec<u32>>(),
        img.n,
        &Device::Cpu,
    )?;
    Dataset::new(images_t, labels_t, classes, name, Provenance::Real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn images_bytes(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, n, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn parses_raw_and_gzip_bytes_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..12).collect();
        let raw = images_bytes(2, 2, 3, &pixels);
        let (a, b) = (dir.path().join("a"), dir.path().join("b.idx"));
        std::fs::write(&a, &raw).unwrap();
        std::fs::write(&b, gzip(&raw)).unwrap();
        let want = IdxImages {
            n: 2,
            rows: 2,
            cols: 3,
            pixels,
        };
        assert_eq!(read_idx_images(&a).unwrap(), want);
        assert_eq!(read_idx_images(&b).unwrap(), want);
    }

    #[test]
    fn header_too_short_and_zero_size_are_reported() {
        let p = Path::new("short.idx");
        let err = parse_idx_images(&[0, 0, 8, 3, 0], p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("short.idx") && err.contains("at least 16 bytes, found 5"),
            "{err}"
        );
        let err = parse_idx_images(&images_bytes(1, 0, 3, &[]), p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("0x3"), "{err}");
        let err = parse_idx_labels(&[0, 0, 8, 1], p).unwrap_err().to_string();
        assert!(err.contains("at least 8 bytes, found 4"), "{err}");
    }

    #[test]
    fn label_file_given_as_images_names_the_kind() {
        let mut v = LABELS_MAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(&[0; 12]);
        let err = parse_idx_images(&v, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "magic number is 0x00000801, expected 0x00000803 (this is an IDX label file)"
            ),
            "{err}"
        );
    }
}
