//! Image files to and from tensors: load PNG/JPEG into `[C, H, W]` f32 in `[0, 1]`, save tensors and
//! grids of tensors as PNG. Files are written atomically (a temporary file in the same directory,
//! then a rename), so a reader never sees half an image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageReader};

use crate::{NnError, Result};

/// Value of the gap and of empty cells in [`save_image_grid`] (white).
pub const GRID_BACKGROUND: f32 = 1.0;

/// Loads a PNG or JPEG file as a `[C, H, W]` f32 tensor in `[0, 1]` on the CPU.
///
/// `C` is 1 for greyscale images (with or without alpha) and 3 for colour images; alpha is dropped.
/// 16-bit images are reduced to 8 bits first.
pub fn load_image(path: &Path) -> Result<Tensor> {
    let raw = load_image_u8(path)?;
    let (h, w, c) = (raw.rows, raw.cols, raw.channels);
    let mut planes = vec![0f32; c * h * w];
    for (i, px) in raw.pixels.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            planes[ch * h * w + i] = f32::from(v) / 255.0;
        }
    }
    Ok(Tensor::from_vec(planes, (c, h, w), &Device::Cpu)?)
}

/// A photo as torchvision's ImageNet evaluation transform prepares it (`Resize(resize)`,
/// `CenterCrop(crop)`, `ToTensor()`): scaled so its shorter side is `resize` pixels with a triangle
/// (bilinear, antialiased when shrinking) filter, the central `crop × crop` square cut out, as a
/// `[3, crop, crop]` f32 tensor in `[0, 1]` (grey photos get three equal channels). The normalisation by
/// ImageNet's mean and standard deviation is left to the network. PIL's and `image`'s triangle filters
/// differ by rounding, so pixels may differ from torchvision's by one 8-bit level.
pub fn load_photo_center_crop(path: &Path, resize: usize, crop: usize) -> Result<Tensor> {
    if crop == 0 || crop > resize {
        return Err(NnError::invalid(
            "crop",
            format!("must be in 1..={resize} (the resized shorter side), got {crop}"),
        ));
    }
    let img = decode(path)?.to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(NnError::bad_file(path, "the image is empty"));
    }
    // torchvision: the shorter side becomes `resize`, the other keeps the aspect ratio (truncated).
    let (nw, nh) = if w <= h {
        (resize, resize * h / w)
    } else {
        (resize * w / h, resize)
    };
    let scaled = image::imageops::resize(
        &img,
        nw as u32,
        nh as u32,
        image::imageops::FilterType::Triangle,
    );
    // torchvision's CenterCrop rounds the offsets as Python does: int(round((size − crop) / 2)), ties to
    // even.
    let top = ((nh - crop) as f64 / 2.0).round_ties_even() as usize;
    let left = ((nw - crop) as f64 / 2.0).round_ties_even() as usize;
    let mut planes = vec![0f32; 3 * crop * crop];
    for y in 0..crop {
        for x in 0..crop {
            let px = scaled.get_pixel((left + x) as u32, (top + y) as u32);
            for ch in 0..3 {
                planes[(ch * crop + y) * crop + x] = f32::from(px[ch]) / 255.0;
            }
        }
    }
    Ok(Tensor::from_vec(planes, (3, crop, crop), &Device::Cpu)?)
}

/// The 8-bit pixels of an image file, channels last (what `imageio.imread` gives Python).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawImage {
    /// `rows × cols × channels` bytes, row-major, channels last.
    pub pixels: Vec<u8>,
    /// Height.
    pub rows: usize,
    /// Width.
    pub cols: usize,
    /// 1 (grey, with or without alpha) or 3 (colour; alpha dropped).
    pub channels: usize,
}

/// Loads a PNG or JPEG file as 8-bit pixels without rescaling (see [`RawImage`]); 16-bit images are
/// reduced to 8 bits.
pub fn load_image_u8(path: &Path) -> Result<RawImage> {
    let img = decode(path)?;
    let (cols, rows) = (img.width() as usize, img.height() as usize);
    let (pixels, channels) = if img.color().has_color() {
        (img.to_rgb8().into_raw(), 3)
    } else {
        (img.to_luma8().into_raw(), 1)
    };
    Ok(RawImage {
        pixels,
        rows,
        cols,
        channels,
    })
}

/// The decoded image file (PNG or JPEG, recognised by its content); errors name `path`.
fn decode(path: &Path) -> Result<image::DynamicImage> {
    ImageReader::open(path)
        .map_err(|e| NnError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| NnError::io(path, e))?
        .decode()
        .map_err(|e| {
            NnError::bad_file(
                path,
                format!("cannot decode image (PNG or JPEG expected): {e}"),
            )
        })
}

/// `(C, H, W)` of an image tensor given as `[C, H, W]` with `C` 1 or 3, or as `[H, W]`.
fn image_dims(image: &Tensor, context: &str) -> Result<(usize, usize, usize)> {
    let (c, h, w) = match image.dims() {
        &[h, w] => (1, h, w),
        &[c, h, w] => (c, h, w),
        d => {
            return Err(NnError::Shape {
                context: context.into(),
                expected: "[C, H, W] with C = 1 or 3, or [H, W]".into(),
                got: format!("{d:?}"),
            });
        }
    };
    if !(c == 1 || c == 3) || h == 0 || w == 0 {
        return Err(NnError::Shape {
            context: context.into(),
            expected: "[C, H, W] with C = 1 or 3 and H, W at least 1".into(),
            got: format!("{:?}", image.dims()),
        });
    }
    Ok((c, h, w))
}

/// Saves a `[C, H, W]` (C = 1 or 3) or `[H, W]` tensor as a PNG file, whatever the file's extension.
///
/// Values are clamped to `[0, 1]` and quantised to 8 bits (NaN becomes 0). Missing parent directories
/// are created; the file is written atomically.
pub fn save_image(image: &Tensor, path: &Path) -> Result<()> {
    let (c, h, w) = image_dims(image, &format!("image to save as {}", path.display()))?;
    let planes = image
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    write_png(&planes, c, h, w, path)
}

/// Saves `[N, C, H, W]` images (C = 1 or 3) as one PNG grid of `ncols` columns, with a 1-pixel white
/// gap between cells (and white empty cells after the last image). Values are clamped to `[0, 1]`.
pub fn save_image_grid(images: &Tensor, ncols: usize, path: &Path) -> Result<()> {
    let context = format!("images for the grid {}", path.display());
    let &[n, c, h, w] = images.dims() else {
        return Err(NnError::Shape {
            context,
            expected: "[N, C, H, W] with C = 1 or 3".into(),
            got: format!("{:?}", images.dims()),
        });
    };
    if n == 0 || !(c == 1 || c == 3) || h == 0 || w == 0 {
        return Err(NnError::Shape {
            context,
            expected: "[N, C, H, W] with N, H, W at least 1 and C = 1 or 3".into(),
            got: format!("{:?}", images.dims()),
        });
    }
    if ncols == 0 {
        return Err(NnError::invalid("ncols", "must be at least 1"));
    }
    const GAP: usize = 1;
    let cols = ncols.min(n);
    let rows = n.div_ceil(cols);
    let gw = cols * w + (cols - 1) * GAP;
    let gh = rows * h + (rows - 1) * GAP;
    let src = images
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut grid = vec![GRID_BACKGROUND; c * gh * gw];
    for k in 0..n {
        let (top, left) = ((k / cols) * (h + GAP), (k % cols) * (w + GAP));
        for ch in 0..c {
            for y in 0..h {
                let from = ((k * c + ch) * h + y) * w;
                let to = (ch * gh + top + y) * gw + left;
                grid[to..to + w].copy_from_slice(&src[from..from + w]);
            }
        }
    }
    write_png(&grid, c, gh, gw, path)
}

/// Encodes planar `[C, H, W]` values in `[0, 1]` as PNG and writes them atomically to `path`.
fn write_png(planes: &[f32], c: usize, h: usize, w: usize, path: &Path) -> Result<()> {
    let too_big = || {
        NnError::invalid(
            "image",
            format!("{w}x{h} is too large for PNG ({})", path.display()),
        )
    };
    let (wu, hu) = (
        u32::try_from(w).map_err(|_| too_big())?,
        u32::try_from(h).map_err(|_| too_big())?,
    );
    let hw = h * w;
    let mut interleaved = vec![0u8; c * hw];
    for i in 0..hw {
        for ch in 0..c {
            // `as u8` saturates and maps NaN to 0.
            interleaved[i * c + ch] = (planes[ch * hw + i].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    let color = if c == 1 {
        ExtendedColorType::L8
    } else {
        ExtendedColorType::Rgb8
    };
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&interleaved, wu, hu, color)
        .map_err(|e| NnError::bad_file(path, format!("cannot encode PNG: {e}")))?;
    write_atomic(path, &png)
}

/// A fresh name for a temporary file next to `path`: `.<name>.tmp-<pid>-<counter>`.
pub(crate) fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{k}", std::process::id()))
}

/// Writes `bytes` to `path` atomically: to a temporary file in the same directory, flushed to disk,
/// then renamed over `path`. Missing parent directories are created. On error the temporary file is
/// removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.file_name().is_none() {
        return Err(NnError::invalid(
            "path",
            format!("{} does not name a file", path.display()),
        ));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| NnError::io(parent, e))?;
    }
    let tmp = temp_path_for(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(NnError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        NnError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_resized_and_centre_cropped_as_torchvision_evaluates() {
        let dir = tempfile::tempdir().unwrap();
        // A landscape photo: left half one colour, right half another; the crop keeps the centre.
        let (h, w) = (200usize, 300usize);
        let mut v = vec![0f32; 3 * h * w];
        for ch in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let left = [0.2f32, 0.4, 0.6][ch];
                    let right = [0.8f32, 0.6, 0.4][ch];
                    v[(ch * h + y) * w + x] = if x < w / 2 { left } else { right };
                }
            }
        }
        let path = dir.path().join("wide.png");
        save_image(
            &Tensor::from_vec(v, (3, h, w), &Device::Cpu).unwrap(),
            &path,
        )
        .unwrap();
        let t = load_photo_center_crop(&path, 256, 224).unwrap();
        assert_eq!(t.dims(), &[3, 224, 224]);
        let px = |ch: usize, y: usize, x: usize| -> f32 {
            t.get(ch)
                .unwrap()
                .get(y)
                .unwrap()
                .get(x)
                .unwrap()
                .to_scalar()
                .unwrap()
        };
        // Resized to 384×256; the crop spans columns 80..304 of it, so the boundary (column 192) falls
        // on crop column 112: far from it the colours are the 8-bit originals.
        for ch in 0..3 {
            assert_eq!(
                px(ch, 10, 5),
                (([0.2f32, 0.4, 0.6][ch] * 255.0).round()) / 255.0
            );
            assert_eq!(
                px(ch, 200, 220),
                (([0.8f32, 0.6, 0.4][ch] * 255.0).round()) / 255.0
            );
        }
        assert!(
            px(0, 100, 108) < px(0, 100, 116),
            "the edge is at the centre"
        );
        // A grey photo gets three equal channels; a crop larger than the resized side is an error.
        let grey = dir.path().join("grey.png");
        let g = Tensor::from_vec(vec![0.5f32; 240 * 250], (1, 240, 250), &Device::Cpu).unwrap();
        save_image(&g, &grey).unwrap();
        let t = load_photo_center_crop(&grey, 256, 224).unwrap();
        assert_eq!(t.dims(), &[3, 224, 224]);
        let vals = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(vals.iter().all(|&x| x == 128.0 / 255.0));
        let err = load_photo_center_crop(&grey, 100, 224)
            .unwrap_err()
            .to_string();
        assert!(err.contains("crop"), "{err}");
    }

    #[test]
    fn colour_and_grey_roundtrip_within_quantisation() {
        let dir = tempfile::tempdir().unwrap();
        for c in [1usize, 3] {
            let vals: Vec<f32> = (0..c * 5 * 7)
                .map(|i| ((i * 37) % 101) as f32 / 100.0)
                .collect();
            let t = Tensor::from_vec(vals.clone(), (c, 5, 7), &Device::Cpu).unwrap();
            let path = dir.path().join(format!("sub/img{c}.png"));
            save_image(&t, &path).unwrap();
            let back = load_image(&path).unwrap();
            assert_eq!(back.dims(), &[c, 5, 7]);
            let back = back.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in vals.iter().zip(&back) {
                assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6, "{a} vs {b}");
            }
        }
        // Only the two images remain: no temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn values_are_clamped_and_2d_is_grey() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::new(&[[-1.0f32, 2.0], [0.5, f32::NAN]], &Device::Cpu).unwrap();
        let path = dir.path().join("clamp.png");
        save_image(&t, &path).unwrap();
        let back = load_image(&path).unwrap();
        assert_eq!(back.dims(), &[1, 2, 2]);
        let v = back.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v, vec![0.0, 1.0, 128.0 / 255.0, 0.0]);
    }

    #[test]
    fn grid_places_cells_with_a_one_pixel_gap() {
        let dir = tempfile::tempdir().unwrap();
        // 3 grey 2x2 images with values 0.0, 0.2, 0.4, in 2 columns: 2 rows, 5x5 pixels.
        let vals: Vec<f32> = (0..3).flat_map(|k| [k as f32 * 0.2; 4]).collect();
        let t = Tensor::from_vec(vals, (3, 1, 2, 2), &Device::Cpu).unwrap();
        let path = dir.path().join("grid.png");
        save_image_grid(&t, 2, &path).unwrap();
        let g = load_image(&path).unwrap();
        assert_eq!(g.dims(), &[1, 5, 5]);
        let g = g.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(g[0], vec![0.0, 0.0, 1.0, 0.2, 0.2]);
        assert_eq!(g[2], vec![1.0; 5]);
        assert_eq!(g[4], vec![0.4, 0.4, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn bad_shapes_and_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::zeros((2, 4, 4), DType::F32, &Device::Cpu).unwrap();
        let err = save_image(&t, &dir.path().join("two.png"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("two.png") && err.contains("C = 1 or 3"),
            "{err}"
        );
        let err = save_image_grid(&t, 2, &dir.path().join("g.png"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("g.png") && err.contains("[N, C, H, W]"),
            "{err}"
        );
        let t4 = Tensor::zeros((2, 1, 4, 4), DType::F32, &Device::Cpu).unwrap();
        let err = save_image_grid(&t4, 0, &dir.path().join("g.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ncols"), "{err}");
        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not an image at all").unwrap();
        let err = load_image(&junk).unwrap_err().to_string();
        assert!(
            err.contains("junk.png") && err.contains("cannot decode"),
            "{err}"
        );
        let err = load_image(&dir.path().join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.png"), "{err}");
    }
}
