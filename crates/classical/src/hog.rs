//! Histogram of oriented gradients exactly as `skimage.feature.hog` 0.26 computes it for f64 input
//! (`../shared/specs/generalization.md` §3): `[-1, 0, 1]` gradients without smoothing or halving (zero
//! on the border rows and columns), the strongest-gradient channel per pixel, **unsigned** orientations in
//! `[0°, 180°)` with **hard** binning, cell **means** accumulated in `f32` (scikit-image's C `float`
//! accumulator, reproduced bit for bit), blocks of `cells_per_block` cells with a stride of one cell, and
//! the L1 / L1-sqrt / L2 / L2-Hys block norms with `eps = 1e-5`.
//!
//! ```
//! use classical::hog::{hog, HogImage, HogParams};
//! // A vertical edge: every gradient is horizontal (0°), so only bin 0 of each cell is non-zero.
//! let (rows, cols) = (16, 16);
//! let pixels: Vec<f64> = (0..rows * cols).map(|i| if i % cols < 8 { 0.0 } else { 1.0 }).collect();
//! let params = HogParams { pixels_per_cell: (8, 8), cells_per_block: (2, 2), ..HogParams::default() };
//! let features = hog(&HogImage::gray(&pixels, rows, cols)?, &params)?;
//! assert_eq!(features.len(), 2 * 2 * 9);
//! assert!(features.chunks(9).all(|bins| bins[1..].iter().all(|&b| b == 0.0)));
//! # Ok::<(), classical::hog::HogError>(())
//! ```
//!
//! Why hard binning and no Gaussian window: scikit-image leaves both out of Dalal & Triggs' recipe, and the
//! point of this module is to be a drop-in for the features people compute in Python. Quirks kept on
//! purpose: an angle that rounds to exactly 180° falls in no bin; leftover pixels beyond the last full cell
//! are ignored; bin `o` is `w·o ≤ angle < w·(o+1)` with `w = 180/orientations` rounded first.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;

/// What went wrong, with the offending values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HogError {
    /// A parameter out of its domain.
    #[error("HOG parameter `{name}` = {value}: expected {expected}")]
    InvalidParameter {
        /// The parameter's name as on the command line.
        name: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The pixel buffer does not hold `rows × cols × channels` values.
    #[error(
        "HOG image buffer has {actual} values, expected rows {rows} × cols {cols} × channels {channels} = {expected}"
    )]
    BufferSize {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Channels.
        channels: usize,
        /// `rows · cols · channels`.
        expected: usize,
        /// Length of the buffer.
        actual: usize,
    },
    /// Fewer than one block of cells fits into the image.
    #[error(
        "image of {rows}×{cols} pixels is too small for HOG with these cells and blocks: it needs at least {min_rows} rows and {min_cols} columns"
    )]
    ImageTooSmall {
        /// Rows of the image.
        rows: usize,
        /// Columns of the image.
        cols: usize,
        /// `cells_per_block.0 · pixels_per_cell.0`.
        min_rows: usize,
        /// `cells_per_block.1 · pixels_per_cell.1`.
        min_cols: usize,
    },
    /// A NaN or infinite pixel (scikit-image would return NaN features silently).
    #[error(
        "pixel (row {row}, col {col}, channel {channel}) is {value}: HOG needs finite pixel values"
    )]
    NonFinitePixel {
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// Channel.
        channel: usize,
        /// The value.
        value: f64,
    },
    /// `transform_sqrt` on a negative pixel (scikit-image would return NaN features silently).
    #[error(
        "pixel (row {row}, col {col}, channel {channel}) is {value}: transform_sqrt needs non-negative pixels"
    )]
    NegativePixelForSqrt {
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// Channel.
        channel: usize,
        /// The value.
        value: f64,
    },
    /// A batch whose images or output do not have the expected sizes.
    #[error("HOG batch: {0}")]
    Batch(String),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, HogError>;

/// Block normalisation (`block_norm` of scikit-image), all with `eps = 1e-5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BlockNorm {
    /// `v / (Σ|v| + eps)`.
    L1,
    /// `√(v / (Σ|v| + eps))`.
    L1Sqrt,
    /// `v / √(Σv² + eps²)`.
    L2,
    /// L2, then clipped at 0.2, then L2 again (Dalal & Triggs; scikit-image's default).
    #[default]
    L2Hys,
}

impl BlockNorm {
    /// The name scikit-image uses: `L1`, `L1-sqrt`, `L2`, `L2-Hys`.
    pub fn name(self) -> &'static str {
        match self {
            BlockNorm::L1 => "L1",
            BlockNorm::L1Sqrt => "L1-sqrt",
            BlockNorm::L2 => "L2",
            BlockNorm::L2Hys => "L2-Hys",
        }
    }

    /// All four, in scikit-image's order.
    pub const ALL: [BlockNorm; 4] = [
        BlockNorm::L1,
        BlockNorm::L1Sqrt,
        BlockNorm::L2,
        BlockNorm::L2Hys,
    ];
}

impl fmt::Display for BlockNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BlockNorm {
    type Err = HogError;
    fn from_str(s: &str) -> Result<Self> {
        BlockNorm::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| HogError::InvalidParameter {
                name: "block-norm",
                value: s.to_string(),
                expected: "one of L1, L1-sqrt, L2, L2-Hys",
            })
    }
}

/// The parameters of [`hog`]; the defaults are scikit-image's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HogParams {
    /// Number of orientation bins over `[0°, 180°)`. Default 9.
    pub orientations: usize,
    /// Cell size in pixels, `(rows, cols)`. Default `(8, 8)`.
    pub pixels_per_cell: (usize, usize),
    /// Block size in cells, `(rows, cols)`. Default `(3, 3)`.
    pub cells_per_block: (usize, usize),
    /// Block normalisation. Default [`BlockNorm::L2Hys`].
    pub block_norm: BlockNorm,
    /// Square root of every pixel before the gradients (power-law compression). Default `false`.
    pub transform_sqrt: bool,
}

impl Default for HogParams {
    fn default() -> Self {
        HogParams {
            orientations: 9,
            pixels_per_cell: (8, 8),
            cells_per_block: (3, 3),
            block_norm: BlockNorm::L2Hys,
            transform_sqrt: false,
        }
    }
}

impl HogParams {
    /// Checks every parameter on its own (the image size is checked by [`HogParams::layout`]).
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, value: String, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(HogError::InvalidParameter {
                    name,
                    value,
                    expected: "at least 1",
                })
            }
        };
        positive(
            "orientations",
            self.orientations.to_string(),
            self.orientations >= 1,
        )?;
        // Bins are stored as u16 below; nobody needs 65,535 orientations.
        if self.orientations > usize::from(u16::MAX - 1) {
            return Err(HogError::InvalidParameter {
                name: "orientations",
                value: self.orientations.to_string(),
                expected: "at most 65534",
            });
        }
        let (pr, pc) = self.pixels_per_cell;
        positive("pixels-per-cell", format!("{pr},{pc}"), pr >= 1 && pc >= 1)?;
        let (br, bc) = self.cells_per_block;
        positive("cells-per-block", format!("{br},{bc}"), br >= 1 && bc >= 1)?;
        Ok(())
    }

    /// Cell and block counts for an image of `rows × cols` pixels; fails when no block fits.
    pub fn layout(&self, rows: usize, cols: usize) -> Result<HogLayout> {
        self.validate()?;
        let (pr, pc) = self.pixels_per_cell;
        let (br, bc) = self.cells_per_block;
        let cells = (rows / pr, cols / pc);
        if cells.0 < br || cells.1 < bc {
            return Err(HogError::ImageTooSmall {
                rows,
                cols,
                min_rows: br * pr,
                min_cols: bc * pc,
            });
        }
        Ok(HogLayout {
            rows,
            cols,
            cells,
            blocks: (cells.0 - br + 1, cells.1 - bc + 1),
            cells_per_block: self.cells_per_block,
            orientations: self.orientations,
        })
    }
}

/// Cell and block counts of one image size (from [`HogParams::layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HogLayout {
    /// Image rows.
    pub rows: usize,
    /// Image columns.
    pub cols: usize,
    /// Whole cells per axis, `(rows, cols)`; leftover pixels are ignored.
    pub cells: (usize, usize),
    /// Blocks per axis (stride one cell).
    pub blocks: (usize, usize),
    /// Cells per block.
    pub cells_per_block: (usize, usize),
    /// Orientation bins.
    pub orientations: usize,
}

impl HogLayout {
    /// Length of the descriptor: `blocks.0 · blocks.1 · cells_per_block.0 · cells_per_block.1 · orientations`.
    pub fn descriptor_len(&self) -> usize {
        self.blocks.0
            * self.blocks.1
            * self.cells_per_block.0
            * self.cells_per_block.1
            * self.orientations
    }

    /// Shape of the descriptor before `ravel`, as scikit-image returns it with `feature_vector=False`.
    pub fn descriptor_shape(&self) -> [usize; 5] {
        [
            self.blocks.0,
            self.blocks.1,
            self.cells_per_block.0,
            self.cells_per_block.1,
            self.orientations,
        ]
    }

    /// Length of the cell histograms `(cells.0, cells.1, orientations)`.
    pub fn cell_histograms_len(&self) -> usize {
        self.cells.0 * self.cells.1 * self.orientations
    }
}

/// A pixel type HOG reads; values are widened to f64 without rescaling (uint8 stays 0..255), as
/// scikit-image does for integer and f64 input. f32 pixels are widened too, i.e. the result equals
/// `hog(image.astype(np.float64))` (scikit-image itself would work in f32 for f32 input).
pub trait Pixel: Copy + Send + Sync {
    /// The value as f64.
    fn to_f64(self) -> f64;
}

impl Pixel for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

impl Pixel for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Pixel for u8 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// A borrowed image: `rows × cols` pixels of `channels` values, in any of the two usual layouts.
#[derive(Debug, Clone, Copy)]
pub struct HogImage<'a, T: Pixel> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    channels: usize,
    pixel_stride: usize,
    channel_stride: usize,
}

impl<'a, T: Pixel> HogImage<'a, T> {
    /// A grayscale image, row-major.
    pub fn gray(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::checked(data, rows, cols, 1, 1, 0)
    }

    /// `rows × cols × channels`, channels last (scikit-image's `channel_axis=-1`).
    pub fn channels_last(data: &'a [T], rows: usize, cols: usize, channels: usize) -> Result<Self> {
        Self::checked(data, rows, cols, channels, channels, 1)
    }

    /// `channels × rows × cols`, channels first (candle's and PyTorch's layout).
    pub fn channels_first(
        data: &'a [T],
        channels: usize,
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        Self::checked(data, rows, cols, channels, 1, rows * cols)
    }

    fn checked(
        data: &'a [T],
        rows: usize,
        cols: usize,
        channels: usize,
        pixel_stride: usize,
        channel_stride: usize,
    ) -> Result<Self> {
        if rows == 0 || cols == 0 || channels == 0 {
            return Err(HogError::InvalidParameter {
                name: "image",
                value: format!("{rows}×{cols}×{channels}"),
                expected: "at least one row, one column and one channel",
            });
        }
        let expected = rows
            .checked_mul(cols)
            .and_then(|p| p.checked_mul(channels))
            .ok_or_else(|| HogError::InvalidParameter {
                name: "image",
                value: format!("{rows}×{cols}×{channels}"),
                expected: "a size that fits in memory",
            })?;
        if data.len() != expected {
            return Err(HogError::BufferSize {
                rows,
                cols,
                channels,
                expected,
                actual: data.len(),
            });
        }
        Ok(HogImage {
            data,
            rows,
            cols,
            channels,
            pixel_stride,
            channel_stride,
        })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The error for the bad `value` at plane index `pixel` of channel `channel`.
    fn value_error(&self, pixel: usize, channel: usize, value: f64) -> HogError {
        let (row, col) = (pixel / self.cols, pixel % self.cols);
        if value.is_finite() {
            HogError::NegativePixelForSqrt {
                row,
                col,
                channel,
                value,
            }
        } else {
            HogError::NonFinitePixel {
                row,
                col,
                channel,
                value,
            }
        }
    }
}

/// Everything [`hog_full`] computes.
#[derive(Debug, Clone, PartialEq)]
pub struct HogFeatures {
    /// The descriptor, `feature_vector=True` order (C-order ravel of [`HogLayout::descriptor_shape`]).
    pub descriptor: Vec<f64>,
    /// Cell histograms `(cells.0, cells.1, orientations)`, C order: the cell means before normalisation.
    pub cell_histograms: Vec<f64>,
    /// Sizes of this image's cells and blocks.
    pub layout: HogLayout,
}

/// The HOG descriptor of one image (scikit-image's `hog(..., feature_vector=True)`).
pub fn hog<T: Pixel>(image: &HogImage<'_, T>, params: &HogParams) -> Result<Vec<f64>> {
    Ok(hog_full(image, params)?.descriptor)
}

/// The descriptor together with the cell histograms and the layout.
pub fn hog_full<T: Pixel>(image: &HogImage<'_, T>, params: &HogParams) -> Result<HogFeatures> {
    let layout = params.layout(image.rows, image.cols)?;
    let mut workspace = HogWorkspace::new(params)?;
    let mut descriptor = vec![0.0; layout.descriptor_len()];
    workspace.extract_into(image, &mut descriptor)?;
    Ok(HogFeatures {
        descriptor,
        cell_histograms: workspace.cell_histograms,
        layout,
    })
}

/// scikit-image's HOG visualisation (`visualize=True`): for each cell and orientation bin, a line through
/// the cell centre perpendicular to the bin's mid-angle, of radius `min(pixels_per_cell)/2 − 1`, drawn with
/// Bresenham's algorithm, each of its pixels incremented by the bin's cell mean. `rows × cols`, row-major;
/// the talk's "gradient image". Cells smaller than 2 pixels are refused (scikit-image indexes outside the
/// image there).
pub fn hog_visualisation(features: &HogFeatures, params: &HogParams) -> Result<Vec<f64>> {
    let (pr, pc) = params.pixels_per_cell;
    if pr < 2 || pc < 2 {
        return Err(HogError::InvalidParameter {
            name: "pixels-per-cell",
            value: format!("{pr},{pc}"),
            expected: "at least 2,2 to draw the visualisation",
        });
    }
    let layout = &features.layout;
    let n = layout.orientations;
    let radius = (pr.min(pc) / 2) as f64 - 1.0;
    let (rows, cols) = (layout.rows, layout.cols);
    let mut image = vec![0.0; rows * cols];
    let offsets: Vec<(f64, f64)> = (0..n)
        .map(|o| {
            let mid = std::f64::consts::PI * (o as f64 + 0.5) / n as f64;
            (radius * mid.sin(), radius * mid.cos())
        })
        .collect();
    for r in 0..layout.cells.0 {
        for c in 0..layout.cells.1 {
            let centre = ((r * pr + pr / 2) as f64, (c * pc + pc / 2) as f64);
            for (o, &(dr, dc)) in offsets.iter().enumerate() {
                let value = features.cell_histograms[(r * layout.cells.1 + c) * n + o];
                // Python's int() truncates toward zero; the ends stay inside the cell (radius < half a cell).
                let from = ((centre.0 - dc) as i64, (centre.1 + dr) as i64);
                let to = ((centre.0 + dc) as i64, (centre.1 - dr) as i64);
                bresenham_line(from, to, |y, x| {
                    image[y as usize * cols + x as usize] += value;
                });
            }
        }
    }
    Ok(image)
}

/// Bresenham's line from `from` to `to` (row, col), both ends included, as `skimage.draw.line`.
fn bresenham_line(from: (i64, i64), to: (i64, i64), mut visit: impl FnMut(i64, i64)) {
    let (mut y, mut x) = from;
    let (y2, x2) = to;
    let (mut dx, mut dy) = ((x2 - x).abs(), (y2 - y).abs());
    let (mut sx, mut sy) = (if x2 > x { 1 } else { -1 }, if y2 > y { 1 } else { -1 });
    let steep = dy > dx;
    if steep {
        std::mem::swap(&mut x, &mut y);
        std::mem::swap(&mut dx, &mut dy);
        std::mem::swap(&mut sx, &mut sy);
    }
    let mut d = 2 * dy - dx;
    for _ in 0..dx {
        if steep {
            visit(x, y);
        } else {
            visit(y, x);
        }
        while d >= 0 {
            y += sy;
            d -= 2 * dx;
        }
        x += sx;
        d += 2 * dy;
    }
    visit(y2, x2);
}

/// `180/π`, the constant numpy's `arctan2(...) * (180 / np.pi)` multiplies by.
const DEGREES_PER_RADIAN: f64 = 180.0 / std::f64::consts::PI;

/// Orientation binning: the exact rule of scikit-image plus a fast path that decides the bin from signs
/// of cross products and falls back to the exact rule only near a bin edge (or near 0°, 90° and 180°).
#[derive(Debug, Clone)]
struct Binner {
    orientations: usize,
    /// `w = 180 / orientations`, rounded as scikit-image rounds it.
    width: f64,
    /// cos of each inner edge `w·o` below 90°. The edges are symmetric about 90° (`180 − w·o = w·(n − o)`),
    /// so the fast path folds angles onto `[0°, 90°]` and needs only these.
    lower_cos: Vec<f64>,
    /// sin of the same edges.
    lower_sin: Vec<f64>,
}

/// Marks "no bin" (the 180° quirk).
const NO_BIN: u16 = u16::MAX;

/// Cross products within this fraction of |g| of zero are too close to an edge for the fast path: the
/// exact rule's angle is within a few ulp of 180° (≈ 1e-13° ≈ 2e-15 rad) of the true angle, and the
/// cross product itself carries a relative error of a few 1e-16.
const EDGE_MARGIN: f64 = 1e-11;

impl Binner {
    fn new(orientations: usize) -> Self {
        let width = 180.0 / orientations as f64;
        let lower: Vec<f64> = (1..orientations)
            .map(|o| width * o as f64)
            .filter(|&degrees| degrees < 90.0)
            .map(f64::to_radians)
            .collect();
        Binner {
            orientations,
            width,
            lower_cos: lower.iter().map(|e| e.cos()).collect(),
            lower_sin: lower.iter().map(|e| e.sin()).collect(),
        }
    }

    /// scikit-image's rule, step by step: `deg = arctan2(g_row, g_col)·180/π mod 180` (floor-mod), then
    /// the bin `o` with `w·o ≤ deg < w·(o+1)`, or none.
    fn exact(&self, g_row: f64, g_col: f64) -> u16 {
        let deg = (g_row.atan2(g_col) * DEGREES_PER_RADIAN).rem_euclid(180.0);
        let w = self.width;
        let mut o = ((deg / w) as usize).min(self.orientations);
        // The division may land one off; walk to the bin the products define.
        while o > 0 && deg < w * o as f64 {
            o -= 1;
        }
        while o < self.orientations && deg >= w * (o + 1) as f64 {
            o += 1;
        }
        if o < self.orientations && w * o as f64 <= deg {
            o as u16
        } else {
            NO_BIN
        }
    }

    #[inline(always)]
    fn bin(&self, g_row: f64, g_col: f64) -> u16 {
        // The unsigned angle θ ∈ [0°, 180°) of (g_col, g_row), as φ = atan2(y, |x|) ∈ [0°, 90°] with
        // θ = φ for x ≥ 0 and θ = 180° − φ for x < 0.
        let (x, y) = if g_row < 0.0 {
            (-g_col, -g_row)
        } else {
            (g_col, g_row)
        };
        let ax = x.abs();
        let margin = EDGE_MARGIN * (ax + y);
        // Near 0°/180° (including the angle that rounds to 180° and falls in no bin), near 90° (an edge
        // for even counts, and where the fold changes sides), or a zero gradient.
        if y <= margin || ax <= margin {
            return self.exact(g_row, g_col);
        }
        // Branch-free over the edges (the exact rule is rarely needed), so the loop vectorises.
        let mut below = 0u16;
        let mut near_edge = false;
        for (&cos, &sin) in self.lower_cos.iter().zip(&self.lower_sin) {
            // sin(φ − edge)·|g|: positive when φ is past this edge.
            let cross = y * cos - ax * sin;
            near_edge |= cross.abs() <= margin;
            below += u16::from(cross > 0.0);
        }
        if near_edge {
            return self.exact(g_row, g_col);
        }
        // θ = 180° − φ (x < 0) is past edge w·(n − k) exactly when φ ≤ w·k: all n − 1 edges but `below`.
        // The side is a coin flip on natural images, so select without a branch.
        let reflected = (self.orientations as u16 - 1).wrapping_sub(below);
        let mask = 0u16.wrapping_sub(u16::from(x < 0.0));
        (below & !mask) | (reflected & mask)
    }
}

/// Reusable buffers for HOG of many images of one size: one workspace per thread, no allocation per image.
#[derive(Debug, Clone)]
pub struct HogWorkspace {
    params: HogParams,
    binner: Binner,
    /// The image as f64 planes, `channels × rows × cols` (square-rooted when `transform_sqrt`).
    planes: Vec<f64>,
    /// Per covered column of the current row: the chosen `g_row`, `g_col` and naive `g_row² + g_col²`.
    row_gradients: Vec<(f64, f64, f64)>,
    /// Orientation bin per covered column of the current row ([`NO_BIN`] for none).
    row_bins: Vec<u16>,
    /// f32 running sums per cell and bin (scikit-image's C `float` accumulator).
    sums: Vec<f32>,
    /// Cell means, f64, `(cells.0, cells.1, orientations)`.
    cell_histograms: Vec<f64>,
}

impl HogWorkspace {
    /// Buffers for `params` (validated here).
    pub fn new(params: &HogParams) -> Result<Self> {
        params.validate()?;
        Ok(HogWorkspace {
            params: *params,
            binner: Binner::new(params.orientations),
            planes: Vec::new(),
            row_gradients: Vec::new(),
            row_bins: Vec::new(),
            sums: Vec::new(),
            cell_histograms: Vec::new(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &HogParams {
        &self.params
    }

    /// Cell histograms of the last image extracted, `(cells.0, cells.1, orientations)`.
    pub fn cell_histograms(&self) -> &[f64] {
        &self.cell_histograms
    }

    /// Writes the descriptor of `image` into `out` (of length [`HogLayout::descriptor_len`]).
    pub fn extract_into<T: Pixel>(
        &mut self,
        image: &HogImage<'_, T>,
        out: &mut [f64],
    ) -> Result<()> {
        let layout = self.params.layout(image.rows, image.cols)?;
        if out.len() != layout.descriptor_len() {
            return Err(HogError::Batch(format!(
                "output buffer has {} values, the descriptor of a {}×{} image has {}",
                out.len(),
                image.rows,
                image.cols,
                layout.descriptor_len()
            )));
        }
        self.load_planes(image)?;
        self.cell_means(image.channels, &layout);
        self.normalise_blocks(&layout, out);
        Ok(())
    }

    /// Copies the image into f64 planes, checking every value (and taking square roots if asked).
    fn load_planes<T: Pixel>(&mut self, image: &HogImage<'_, T>) -> Result<()> {
        let sqrt = self.params.transform_sqrt;
        let (rows, cols, channels) = (image.rows, image.cols, image.channels);
        self.planes.clear();
        self.planes.reserve(rows * cols * channels);
        for ch in 0..channels {
            for pixel in 0..rows * cols {
                let value =
                    image.data[pixel * image.pixel_stride + ch * image.channel_stride].to_f64();
                let valid = if sqrt {
                    (0.0..=f64::MAX).contains(&value)
                } else {
                    value.is_finite()
                };
                if !valid {
                    return Err(image.value_error(pixel, ch, value));
                }
                self.planes.push(if sqrt { value.sqrt() } else { value });
            }
        }
        Ok(())
    }

    /// Gradients, orientation bins and f32 cell means, in scikit-image's summation order.
    fn cell_means(&mut self, channels: usize, layout: &HogLayout) {
        let n = self.params.orientations;
        let (pr, pc) = self.params.pixels_per_cell;
        let (cells_r, cells_c) = layout.cells;
        let (rows, cols) = (layout.rows, layout.cols);
        self.sums.clear();
        self.sums.resize(cells_r * cells_c * n, 0.0);
        self.row_gradients.resize(cells_c * pc, (0.0, 0.0, 0.0));
        self.row_bins.resize(cells_c * pc, NO_BIN);
        let plane_len = rows * cols;
        // Row-major over the covered pixels keeps, within each cell and bin, the rows-outer /
        // columns-inner order of scikit-image's loop, so the f32 sums round identically.
        for r in 0..cells_r * pr {
            for ch in 0..channels {
                let plane = &self.planes[ch * plane_len..(ch + 1) * plane_len];
                row_gradients(plane, rows, cols, r, ch == 0, &mut self.row_gradients);
            }
            // Bins and square roots for the whole row first (independent per pixel), then the f32 sums,
            // whose additions form dependency chains.
            for (slot, &(g_row, g_col, _)) in self.row_bins.iter_mut().zip(&self.row_gradients) {
                *slot = if g_row == 0.0 && g_col == 0.0 {
                    NO_BIN
                } else {
                    self.binner.bin(g_row, g_col)
                };
            }
            let cell_row = r / pr;
            let sums_row = &mut self.sums[cell_row * cells_c * n..(cell_row + 1) * cells_c * n];
            let pixels = self
                .row_gradients
                .chunks_exact(pc)
                .zip(self.row_bins.chunks_exact(pc));
            for (cell_sums, (gradients, bins)) in sums_row.chunks_exact_mut(n).zip(pixels) {
                for (&(g_row, g_col, squares), &bin) in gradients.iter().zip(bins) {
                    // NO_BIN: a zero gradient (adding +0 changes nothing) or the 180° quirk.
                    if let Some(slot) = cell_sums.get_mut(usize::from(bin)) {
                        *slot = add_magnitude(*slot, g_row, g_col, squares);
                    }
                }
            }
        }
        let area = (pr * pc) as f32;
        self.cell_histograms.clear();
        self.cell_histograms
            .extend(self.sums.iter().map(|&s| f64::from(s / area)));
    }

    fn normalise_blocks(&self, layout: &HogLayout, out: &mut [f64]) {
        let n = layout.orientations;
        let (br, bc) = layout.cells_per_block;
        let block_len = br * bc * n;
        let eps = 1e-5_f64;
        let mut chunks = out.chunks_exact_mut(block_len);
        for r in 0..layout.blocks.0 {
            for c in 0..layout.blocks.1 {
                let block = chunks
                    .next()
                    .expect("descriptor length checked by the caller");
                for i in 0..br {
                    let start = ((r + i) * layout.cells.1 + c) * n;
                    block[i * bc * n..(i + 1) * bc * n]
                        .copy_from_slice(&self.cell_histograms[start..start + bc * n]);
                }
                normalise_block(block, self.params.block_norm, eps);
            }
        }
    }
}

/// `(g_row, g_col, g_row² + g_col²)` of row `r` of one plane for the covered columns: central
/// differences without halving, zero on the border rows and columns. With `first` the values are
/// written; otherwise a pixel takes this channel's gradient when its magnitude is larger (scikit-image's
/// `argmax` over `hypot`: the first channel wins ties).
#[inline]
fn row_gradients(
    plane: &[f64],
    rows: usize,
    cols: usize,
    r: usize,
    first: bool,
    out: &mut [(f64, f64, f64)],
) {
    let row = &plane[r * cols..(r + 1) * cols];
    let vertical = (r > 0 && r + 1 < rows).then(|| {
        (
            &plane[(r - 1) * cols..r * cols],
            &plane[(r + 1) * cols..(r + 2) * cols],
        )
    });
    for (c, slot) in out.iter_mut().enumerate() {
        let g_row = match vertical {
            Some((above, below)) => below[c] - above[c],
            None => 0.0,
        };
        let g_col = if c > 0 && c + 1 < cols {
            row[c + 1] - row[c - 1]
        } else {
            0.0
        };
        let squares = g_row * g_row + g_col * g_col;
        if first || stronger(g_row, g_col, squares, slot) {
            *slot = (g_row, g_col, squares);
        }
    }
}

/// Whether `hypot(g_row, g_col) > hypot(best)`. The naive squares decide unless they are within rounding
/// of each other (or under/overflowed); then libm's `hypot`, which numpy compares, decides.
#[inline(always)]
fn stronger(g_row: f64, g_col: f64, squares: f64, best: &(f64, f64, f64)) -> bool {
    let (best_row, best_col, best_squares) = *best;
    let clear = (squares - best_squares).abs() > 1e-14 * squares.max(best_squares);
    if clear && squares_trustworthy(squares) && squares_trustworthy(best_squares) {
        squares > best_squares
    } else {
        g_row.hypot(g_col) > best_row.hypot(best_col)
    }
}

/// `g_row² + g_col²` was computed without underflow or overflow.
#[inline(always)]
fn squares_trustworthy(squares: f64) -> bool {
    squares == 0.0 || (1e-280..1e280).contains(&squares)
}

/// C's `float += hypot(g_col, g_row)` (the sum in double, rounded to float), calling libm's `hypot` only
/// when it could matter: `√(g_row² + g_col²)` is within 2 ulp of it, so the float result can only differ
/// when the double sum lies within a few ulp of the midpoint between two neighbouring floats.
#[inline(always)]
fn add_magnitude(sum: f32, g_row: f64, g_col: f64, squares: f64) -> f32 {
    if squares != 0.0 && squares_trustworthy(squares) {
        let total = f64::from(sum) + squares.sqrt();
        // The 29 low mantissa bits are the position between two neighbouring floats; 2^28 is the midpoint.
        let within_float = (total.to_bits() & ((1 << 29) - 1)) as i64;
        if (within_float - (1 << 28)).abs() > 64 && total >= f64::from(f32::MIN_POSITIVE) {
            return total as f32;
        }
    }
    (f64::from(sum) + g_col.hypot(g_row)) as f32
}

/// One block, normalised in place (scikit-image's `_hog_normalize_block`, numpy's summation order).
fn normalise_block(block: &mut [f64], norm: BlockNorm, eps: f64) {
    let l2 = |block: &mut [f64]| {
        let denominator = (pairwise_sum(block, |v| v * v) + eps * eps).sqrt();
        block.iter_mut().for_each(|v| *v /= denominator);
    };
    match norm {
        BlockNorm::L1 | BlockNorm::L1Sqrt => {
            let denominator = pairwise_sum(block, f64::abs) + eps;
            block.iter_mut().for_each(|v| *v /= denominator);
            if norm == BlockNorm::L1Sqrt {
                block.iter_mut().for_each(|v| *v = v.sqrt());
            }
        }
        BlockNorm::L2 => l2(block),
        BlockNorm::L2Hys => {
            l2(block);
            block.iter_mut().for_each(|v| *v = v.min(0.2));
            l2(block);
        }
    }
}

/// `Σ f(v)` in numpy's order for a contiguous array (`pairwise_sum` in its `loops_utils`): fewer than 8
/// values one after another; up to 128 in 8 interleaved partial sums combined as
/// `((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`, then the tail; longer halves split at a multiple of
/// 8. Besides matching numpy bit for bit, the 8 chains are what makes the sum fast.
fn pairwise_sum(values: &[f64], f: impl Fn(f64) -> f64 + Copy) -> f64 {
    let n = values.len();
    if n < 8 {
        values.iter().fold(0.0, |acc, &v| acc + f(v))
    } else if n <= 128 {
        let mut r = [0.0; 8];
        for (slot, &v) in r.iter_mut().zip(values) {
            *slot = f(v);
        }
        let whole = n - n % 8;
        for chunk in values[8..whole].chunks_exact(8) {
            for (slot, &v) in r.iter_mut().zip(chunk) {
                *slot += f(v);
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &values[whole..] {
            res += f(v);
        }
        res
    } else {
        let half = n / 2;
        let half = half - half % 8;
        pairwise_sum(&values[..half], f) + pairwise_sum(&values[half..], f)
    }
}

/// HOG of many images of one size in parallel (rayon): row `i` of the returned row-major matrix
/// (`images × descriptor_len`) is the descriptor of `image(i)`. One workspace per rayon task, no
/// allocation per image; the result does not depend on the thread count.
pub fn hog_batch<'a, T: Pixel + 'a>(
    count: usize,
    layout_of: (usize, usize),
    params: &HogParams,
    image: impl Fn(usize) -> Result<HogImage<'a, T>> + Sync,
) -> Result<Vec<f64>> {
    let layout = params.layout(layout_of.0, layout_of.1)?;
    let len = layout.descriptor_len();
    let mut out = vec![0.0; count * len];
    if count == 0 {
        return Ok(out);
    }
    let workspace = HogWorkspace::new(params)?;
    out.par_chunks_mut(len).enumerate().try_for_each_init(
        || workspace.clone(),
        |workspace, (i, row)| {
            let img = image(i)?;
            if (img.rows, img.cols) != layout_of {
                return Err(HogError::Batch(format!(
                    "image {i} is {}×{}, the batch is {}×{}",
                    img.rows, img.cols, layout_of.0, layout_of.1
                )));
            }
            workspace.extract_into(&img, row)
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bresenham_matches_skimage_doc_example() {
        let mut points = Vec::new();
        bresenham_line((1, 1), (8, 8), |y, x| points.push((y, x)));
        assert_eq!(points, (1..=8).map(|i| (i, i)).collect::<Vec<_>>());
        let mut steep = Vec::new();
        bresenham_line((0, 0), (3, 1), |y, x| steep.push((y, x)));
        assert_eq!(steep.len(), 4);
        assert_eq!(steep.first(), Some(&(0, 0)));
        assert_eq!(steep.last(), Some(&(3, 1)));
        let mut single = Vec::new();
        bresenham_line((2, 2), (2, 2), |y, x| single.push((y, x)));
        assert_eq!(single, vec![(2, 2)]);
    }

    #[test]
    fn fast_binning_equals_the_exact_rule() {
        // Integer gradients (uint8 images) and random directions, for several bin counts.
        for n in [1usize, 2, 4, 7, 9, 12, 18, 36] {
            let binner = Binner::new(n);
            for gr in -40i32..=40 {
                for gc in -40i32..=40 {
                    let (r, c) = (f64::from(gr), f64::from(gc));
                    if r == 0.0 && c == 0.0 {
                        continue;
                    }
                    assert_eq!(
                        binner.bin(r, c),
                        binner.exact(r, c),
                        "n {n}, g ({gr}, {gc})"
                    );
                }
            }
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            for _ in 0..20_000 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let a = (state >> 11) as f64 / (1u64 << 53) as f64 * std::f64::consts::TAU;
                let (r, c) = (a.sin() * 3.7, a.cos() * 3.7);
                assert_eq!(binner.bin(r, c), binner.exact(r, c), "n {n}, angle {a}");
            }
        }
    }

    #[test]
    fn an_angle_rounding_to_180_degrees_falls_in_no_bin() {
        let binner = Binner::new(9);
        // A tiny negative row gradient and a positive column gradient: atan2 is a tiny negative angle, and
        // adding 180 in the floor-mod rounds to exactly 180.0.
        assert_eq!(binner.exact(-1e-300, 1.0), NO_BIN);
        assert_eq!(binner.bin(-1e-300, 1.0), NO_BIN);
        // A tiny negative row gradient and a negative column gradient: atan2 rounds to −π, −180 mod 180 = 0.
        assert_eq!(binner.bin(-1e-300, -1.0), 0);
        // +0 row gradient, negative column: exactly 180° → mod → 0°, bin 0.
        assert_eq!(binner.bin(0.0, -1.0), 0);
    }

    #[test]
    fn invalid_parameters_and_small_images_are_refused() {
        let bad = HogParams {
            orientations: 0,
            ..HogParams::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(HogError::InvalidParameter {
                name: "orientations",
                ..
            })
        ));
        let bad = HogParams {
            pixels_per_cell: (0, 8),
            ..HogParams::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(HogError::InvalidParameter {
                name: "pixels-per-cell",
                ..
            })
        ));
        let bad = HogParams {
            cells_per_block: (2, 0),
            ..HogParams::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(HogError::InvalidParameter {
                name: "cells-per-block",
                ..
            })
        ));
        let err = HogParams::default().layout(23, 40).unwrap_err();
        assert_eq!(
            err,
            HogError::ImageTooSmall {
                rows: 23,
                cols: 40,
                min_rows: 24,
                min_cols: 24
            }
        );
        assert!("L3".parse::<BlockNorm>().is_err());
        assert_eq!("L1-sqrt".parse::<BlockNorm>(), Ok(BlockNorm::L1Sqrt));
        let pixels = vec![0.0; 10];
        assert!(matches!(
            HogImage::gray(&pixels, 3, 3),
            Err(HogError::BufferSize {
                expected: 9,
                actual: 10,
                ..
            })
        ));
        let mut pixels = vec![1.0; 24 * 24];
        pixels[24 * 5 + 7] = f64::NAN;
        let img = HogImage::gray(&pixels, 24, 24).unwrap();
        assert!(matches!(
            hog(&img, &HogParams::default()),
            Err(HogError::NonFinitePixel { row: 5, col: 7, .. })
        ));
        pixels[24 * 5 + 7] = -1.0;
        let img = HogImage::gray(&pixels, 24, 24).unwrap();
        let sqrt = HogParams {
            transform_sqrt: true,
            ..HogParams::default()
        };
        assert!(matches!(
            hog(&img, &sqrt),
            Err(HogError::NegativePixelForSqrt { row: 5, col: 7, .. })
        ));
    }
}
