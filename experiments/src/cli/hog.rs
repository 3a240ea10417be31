//! `mathnn hog`: the HOG descriptor of one image, exactly as `skimage.feature.hog` 0.26 computes it
//! (`classical::hog`), written as a 1-D f64 `.npy` (`feature_vector=True` order), with the optional
//! visualisation (the talk's "gradient image").

use std::path::{Path, PathBuf};

use crate::common::count;
use crate::report::hog::write_visualisation_png;
use anyhow::{Context, Result, bail};
use clap::Args;
use classical::hog::{BlockNorm, HogImage, HogParams, Pixel, hog_full, hog_visualisation};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyExt, ReadableElement, WriteNpyExt};
use nn_core::checkpoint::write_with_atomic;
use nn_core::data::image_io::load_image_u8;

/// Arguments of `mathnn hog`.
#[derive(Args, Debug)]
pub struct HogArgs {
    /// Image: .npy (f64, f32 or uint8; 2-D grey, or 3-D with --channel-axis) or PNG/JPEG (8-bit values
    /// 0..255, not rescaled, as imageio reads them). f32 arrays are widened to f64, i.e. the result is
    /// `hog(image.astype(np.float64))`.
    pub image: PathBuf,
    /// Number of orientation bins over [0°, 180°).
    #[arg(value_parser = count::<1, 10_000>, long, default_value_t = 9)]
    pub orientations: usize,
    /// Cell size in pixels, ROWS,COLS (or one number for square cells).
    #[arg(long, default_value = "8,8", value_parser = parse_pair)]
    pub pixels_per_cell: (usize, usize),
    /// Block size in cells, ROWS,COLS (or one number).
    #[arg(long, default_value = "3,3", value_parser = parse_pair)]
    pub cells_per_block: (usize, usize),
    /// Block normalisation: L1, L1-sqrt, L2 or L2-Hys.
    #[arg(long, default_value = "L2-Hys", value_parser = parse_norm)]
    pub block_norm: BlockNorm,
    /// Square root of every pixel first (power-law compression).
    #[arg(long)]
    pub transform_sqrt: bool,
    /// Axis of the colour channels of a 3-D image: -1 (or 2) for H×W×C, 0 (or -3) for C×H×W. Without it
    /// the image must be 2-D; per pixel the channel with the strongest gradient is used.
    #[arg(long, allow_negative_numbers = true)]
    pub channel_axis: Option<i32>,
    /// Where to write the descriptor (1-D f64 .npy).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the HOG visualisation: .png (for viewing: scaled to its maximum, square-rooted) or .npy
    /// (raw f64, as scikit-image returns it).
    #[arg(long, alias = "visualize")]
    pub visualise: Option<PathBuf>,
}

fn parse_pair(s: &str) -> std::result::Result<(usize, usize), String> {
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("expected ROWS,COLS or N (whole numbers ≥ 1), got {s:?}"))
    };
    match s.split_once(',') {
        Some((a, b)) => Ok((parse(a)?, parse(b)?)),
        None => {
            let n = parse(s)?;
            Ok((n, n))
        }
    }
}

fn parse_norm(s: &str) -> std::result::Result<BlockNorm, String> {
    s.parse::<BlockNorm>()
        .map_err(|_| format!("expected one of L1, L1-sqrt, L2, L2-Hys, got {s:?}"))
}

/// Pixels as read from the file, before the layout is applied.
enum Pixels {
    F64(Vec<f64>),
    F32(Vec<f32>),
    U8(Vec<u8>),
}

/// An image file's pixels and shape as stored (`[rows, cols]` or 3-D).
struct LoadedImage {
    pixels: Pixels,
    shape: Vec<usize>,
    dtype: &'static str,
}

fn read_npy_image(path: &Path) -> Result<LoadedImage> {
    // Read once; each supported dtype is then tried on the bytes in memory.
    let bytes = std::fs::read(path).with_context(|| format!("cannot open {}", path.display()))?;
    fn parse<T: ReadableElement + Clone>(
        bytes: &[u8],
    ) -> std::result::Result<(Vec<T>, Vec<usize>), ndarray_npy::ReadNpyError> {
        let a = ArrayD::<T>::read_npy(bytes)?;
        let shape = a.shape().to_vec();
        Ok((a.as_standard_layout().iter().cloned().collect(), shape))
    }
    let loaded = |pixels, shape, dtype| LoadedImage {
        pixels,
        shape,
        dtype,
    };
    if let Ok((v, shape)) = parse::<f64>(&bytes) {
        return Ok(loaded(Pixels::F64(v), shape, "float64"));
    }
    if let Ok((v, shape)) = parse::<f32>(&bytes) {
        return Ok(loaded(Pixels::F32(v), shape, "float32"));
    }
    match parse::<u8>(&bytes) {
        Ok((v, shape)) => Ok(loaded(Pixels::U8(v), shape, "uint8")),
        Err(e) => bail!(
            "{}: expected a .npy array of float64, float32 or uint8 pixels ({e})",
            path.display()
        ),
    }
}

fn read_image(path: &Path) -> Result<LoadedImage> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        return read_npy_image(path);
    }
    let raw =
        load_image_u8(path).with_context(|| format!("cannot read image {}", path.display()))?;
    let shape = if raw.channels == 1 {
        vec![raw.rows, raw.cols]
    } else {
        vec![raw.rows, raw.cols, raw.channels]
    };
    Ok(LoadedImage {
        pixels: Pixels::U8(raw.pixels),
        shape,
        dtype: "uint8",
    })
}

/// The view of `data` the shape and `--channel-axis` describe.
fn view<'a, T: Pixel>(
    data: &'a [T],
    shape: &[usize],
    channel_axis: Option<i32>,
    path: &Path,
) -> Result<HogImage<'a, T>> {
    let image = match (shape, channel_axis) {
        ([rows, cols], None) => HogImage::gray(data, *rows, *cols)?,
        ([_, _], Some(axis)) => bail!(
            "--channel-axis {axis}: {} is a 2-D (grey) image; leave --channel-axis out",
            path.display()
        ),
        ([rows, cols, channels], Some(-1 | 2)) => {
            HogImage::channels_last(data, *rows, *cols, *channels)?
        }
        ([channels, rows, cols], Some(0 | -3)) => {
            HogImage::channels_first(data, *channels, *rows, *cols)?
        }
        ([_, _, _], Some(axis)) => {
            bail!(
                "--channel-axis {axis}: expected -1 or 2 (rows × cols × channels) or 0 or -3 (channels × rows × cols)"
            )
        }
        ([_, _, _], None) => bail!(
            "{} is 3-D with shape {shape:?}: pass --channel-axis -1 (rows × cols × channels) or 0 (channels first)",
            path.display()
        ),
        (other, _) => bail!(
            "{}: expected a 2-D (grey) or 3-D (colour) image, got shape {other:?}",
            path.display()
        ),
    };
    Ok(image)
}

/// `mathnn hog`.
pub fn run(args: HogArgs) -> Result<()> {
    let params = HogParams {
        orientations: args.orientations,
        pixels_per_cell: args.pixels_per_cell,
        cells_per_block: args.cells_per_block,
        block_norm: args.block_norm,
        transform_sqrt: args.transform_sqrt,
    };
    params.validate()?;
    for path in std::iter::once(&args.out).chain(args.visualise.as_ref()) {
        if path == &args.image {
            bail!(
                "{} is the input image; choose another output path",
                path.display()
            );
        }
    }
    let image = read_image(&args.image)?;
    let context = || format!("HOG of {}", args.image.display());
    let features = match &image.pixels {
        Pixels::F64(v) => hog_full(
            &view(v, &image.shape, args.channel_axis, &args.image)?,
            &params,
        ),
        Pixels::F32(v) => hog_full(
            &view(v, &image.shape, args.channel_axis, &args.image)?,
            &params,
        ),
        Pixels::U8(v) => hog_full(
            &view(v, &image.shape, args.channel_axis, &args.image)?,
            &params,
        ),
    }
    .with_context(context)?;
    let descriptor = ndarray::Array1::from(features.descriptor.clone());
    write_with_atomic(&args.out, |tmp| {
        descriptor
            .write_npy(std::fs::File::create(tmp)?)
            .map_err(std::io::Error::other)
    })?;
    let layout = &features.layout;
    println!(
        "{}: {} image {:?} → {} features (blocks {}×{}, {}×{} cells of {}×{} px, {} orientations, {}{}) → {}",
        args.image.display(),
        image.dtype,
        image.shape,
        features.descriptor.len(),
        layout.blocks.0,
        layout.blocks.1,
        layout.cells.0,
        layout.cells.1,
        params.pixels_per_cell.0,
        params.pixels_per_cell.1,
        params.orientations,
        params.block_norm,
        if params.transform_sqrt { ", sqrt" } else { "" },
        args.out.display()
    );
    if let Some(path) = &args.visualise {
        let vis = hog_visualisation(&features, &params)?;
        let is_npy = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        if is_npy {
            let array = ArrayD::from_shape_vec(IxDyn(&[layout.rows, layout.cols]), vis)?;
            write_with_atomic(path, |tmp| {
                array
                    .write_npy(std::fs::File::create(tmp)?)
                    .map_err(std::io::Error::other)
            })?;
        } else {
            write_visualisation_png(&vis, layout.rows, layout.cols, path)?;
        }
        println!("visualisation → {}", path.display());
    }
    Ok(())
}
