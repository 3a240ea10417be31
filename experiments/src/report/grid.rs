//! Image grids with their captions drawn into the PNG: a title line, a caption over every column and one
//! left of every row, so that a grid read on its own says which model, method, budget or iteration each
//! tile shows. Text is drawn from a built-in bitmap font ([`super::font`]: DejaVu Sans Mono at 12 px), so
//! no system font is needed and every machine writes the same pixels. Small images (MNIST's 28×28) are
//! enlarged by pixel repetition so that tiles are at least [`MIN_TILE`] pixels and captions fit.

use std::path::Path;

use anyhow::{Result, bail};
use candle_core::{DType, Device, Tensor};

use super::font::{ADVANCE, CELL_H, CELL_W, CHARS, GLYPHS};

/// Tiles smaller than this (pixels, either side) are enlarged by an integer factor.
pub const MIN_TILE: usize = 84;
const GAP: usize = 6;
const MARGIN: usize = 8;
const LINE: usize = CELL_H + 4;

/// What a grid's captions say. Empty fields draw nothing; `rows` and `cols`, when given, need one entry
/// per row and per column.
#[derive(Debug, Clone, Default)]
pub struct Captions {
    pub title: String,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
}

impl Captions {
    /// A title and column captions (a one-row grid, or columns that mean the same on every row).
    pub fn columns(title: impl Into<String>, cols: &[&str]) -> Self {
        Self {
            title: title.into(),
            rows: Vec::new(),
            cols: cols.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Saves `[N, C, H, W]` images (C = 1 or 3, values in [0, 1]) as one RGB PNG of `ncols` columns with
/// `captions`, written atomically.
pub fn save_captioned_grid(
    images: &Tensor,
    ncols: usize,
    captions: &Captions,
    path: &Path,
) -> Result<()> {
    let (n, c, h, w) = images.dims4()?;
    if n == 0 || !(c == 1 || c == 3) || h == 0 || w == 0 || ncols == 0 {
        bail!(
            "image grid {}: images {:?} must be [N, C, H, W] with C = 1 or 3, and ncols ≥ 1",
            path.display(),
            images.dims()
        );
    }
    let cols = ncols.min(n);
    let rows = n.div_ceil(cols);
    for (what, len, want) in [
        ("rows", captions.rows.len(), rows),
        ("cols", captions.cols.len(), cols),
    ] {
        if len != 0 && len != want {
            bail!(
                "image grid {}: {len} {what} captions for {want} {what}",
                path.display()
            );
        }
    }
    let scale = MIN_TILE.div_ceil(h.min(w)).max(1);
    let (th, tw) = (h * scale, w * scale);
    let label_w = captions
        .rows
        .iter()
        .map(|s| s.chars().count())
        .max()
        .map_or(0, |chars| chars * ADVANCE + GAP);
    let title_h = if captions.title.is_empty() { 0 } else { LINE };
    let header_h = if captions.cols.is_empty() { 0 } else { LINE };
    let width = 2 * MARGIN + label_w + cols * tw + (cols - 1) * GAP;
    let height = 2 * MARGIN + title_h + header_h + rows * th + (rows - 1) * GAP;
    let mut canvas = Canvas::white(width, height);
    if !captions.title.is_empty() {
        canvas.text(MARGIN, MARGIN, &captions.title, width - 2 * MARGIN);
    }
    let top = MARGIN + title_h + header_h;
    let left = MARGIN + label_w;
    for (j, cap) in captions.cols.iter().enumerate() {
        let x = left + j * (tw + GAP);
        let room = tw + GAP;
        let shown = fit(cap, room);
        let text_w = shown.chars().count() * ADVANCE;
        canvas.text(
            x + tw.saturating_sub(text_w) / 2,
            MARGIN + title_h,
            &shown,
            room,
        );
    }
    for (i, cap) in captions.rows.iter().enumerate() {
        let y = top + i * (th + GAP) + th.saturating_sub(CELL_H) / 2;
        let text_w = cap.chars().count() * ADVANCE;
        canvas.text(
            MARGIN + (label_w - GAP).saturating_sub(text_w),
            y,
            cap,
            label_w,
        );
    }
    let pixels = images
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    for k in 0..n {
        let (y0, x0) = (
            top + (k / cols) * (th + GAP),
            left + (k % cols) * (tw + GAP),
        );
        for y in 0..th {
            for x in 0..tw {
                for ch in 0..3 {
                    let src = (k * c + ch.min(c - 1)) * h * w + (y / scale) * w + x / scale;
                    canvas.set(ch, y0 + y, x0 + x, pixels[src].clamp(0.0, 1.0));
                }
            }
        }
    }
    let t = Tensor::from_vec(canvas.planes, (3, height, width), &Device::Cpu)?;
    nn_core::data::save_image(&t, path)?;
    Ok(())
}

/// `s` cut to what `room` pixels hold, an ellipsis marking the cut.
fn fit(s: &str, room: usize) -> String {
    let max = room / ADVANCE;
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An RGB image as three planes of values in [0, 1].
struct Canvas {
    planes: Vec<f32>,
    width: usize,
    height: usize,
}

impl Canvas {
    fn white(width: usize, height: usize) -> Self {
        Self {
            planes: vec![1.0; 3 * width * height],
            width,
            height,
        }
    }

    fn set(&mut self, ch: usize, y: usize, x: usize, v: f32) {
        if y < self.height && x < self.width {
            self.planes[(ch * self.height + y) * self.width + x] = v;
        }
    }

    /// Black text with its top-left corner at (x, y), cut to `max_w` pixels; characters the font lacks
    /// are drawn as `?`.
    fn text(&mut self, x: usize, y: usize, s: &str, max_w: usize) {
        for (i, ch) in s.chars().enumerate() {
            let gx = x + i * ADVANCE;
            if (i + 1) * ADVANCE > max_w {
                break;
            }
            let glyph = &GLYPHS[glyph_index(ch)];
            for r in 0..CELL_H {
                for q in 0..CELL_W {
                    let a = f32::from(glyph[r * CELL_W + q]) / 255.0;
                    if a > 0.0 && y + r < self.height && gx + q < self.width {
                        for c in 0..3 {
                            let p =
                                &mut self.planes[(c * self.height + y + r) * self.width + gx + q];
                            *p *= 1.0 - a;
                        }
                    }
                }
            }
        }
    }
}

/// The index of `ch` in the font, or that of `?`.
fn glyph_index(ch: char) -> usize {
    CHARS
        .chars()
        .position(|c| c == ch)
        .or_else(|| CHARS.chars().position(|c| c == '?'))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_png(path: &Path) -> (usize, usize, Vec<u8>) {
        let raw = nn_core::data::image_io::load_image_u8(path).unwrap();
        assert_eq!(raw.channels, 3);
        (raw.rows, raw.cols, raw.pixels)
    }

    #[test]
    fn captions_are_drawn_around_enlarged_tiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        // Four grey 28×28 tiles of value 0.5, two rows of two.
        let images = Tensor::full(0.5f32, (4, 1, 28, 28), &Device::Cpu).unwrap();
        let captions = Captions {
            title: "SV-UAP, ε = 0.2".into(),
            rows: vec!["LeNet".into(), "VGG-small".into()],
            cols: vec!["fc1".into(), "block2_pool".into()],
        };
        save_captioned_grid(&images, 2, &captions, &path).unwrap();
        let (h, w, px) = read_png(&path);
        // 28 → 84 (×3); the row labels take 9 characters.
        let label_w = 9 * ADVANCE + GAP;
        assert_eq!(w, 2 * MARGIN + label_w + 2 * 84 + GAP);
        assert_eq!(h, 2 * MARGIN + 2 * LINE + 2 * 84 + GAP);
        let at = |y: usize, x: usize| px[(y * w + x) * 3];
        // Inside the first tile: the image's grey; the title line has dark (text) pixels; the corner
        // is white.
        let (top, left) = (MARGIN + 2 * LINE, MARGIN + label_w);
        assert_eq!(at(top + 40, left + 40), 128);
        assert!((MARGIN..MARGIN + CELL_H).any(|y| (MARGIN..MARGIN + 100).any(|x| at(y, x) < 100)));
        assert_eq!(at(0, 0), 255);
        // Each row label has ink left of its row.
        for row in 0..2 {
            let y0 = top + row * (84 + GAP);
            assert!((y0..y0 + 84).any(|y| (MARGIN..left - GAP).any(|x| at(y, x) < 100)));
        }
    }

    #[test]
    fn wrong_caption_counts_and_long_captions() {
        let dir = tempfile::tempdir().unwrap();
        let images = Tensor::zeros((3, 3, 100, 100), DType::F32, &Device::Cpu).unwrap();
        let bad = Captions {
            rows: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let err = save_captioned_grid(&images, 3, &bad, &dir.path().join("x.png")).unwrap_err();
        assert!(
            err.to_string().contains("2 rows captions for 1 rows"),
            "{err}"
        );
        assert_eq!(
            fit("abcdefghijklmnopqrstuvwxyz", 10 * ADVANCE),
            "abcdefghi…"
        );
        assert_eq!(fit("short", 100), "short");
        assert_eq!(
            glyph_index('A'),
            CHARS.chars().position(|c| c == 'A').unwrap()
        );
        assert_eq!(
            glyph_index('€'),
            CHARS.chars().position(|c| c == '?').unwrap()
        );
    }
}
