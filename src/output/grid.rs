//! Tiles a batch of float images into one PNG sample sheet.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};

use super::write_atomic;

/// Gutter width in output pixels (not scaled) and its gray level.
pub const GUTTER_PX: u32 = 2;
pub const GUTTER_GRAY: u8 = 64;

/// A batch of `n` images of (channels, height, width), stored CHW, contiguous
/// (`values.len() == n * channels * height * width`).
#[derive(Clone, Copy, Debug)]
pub struct Images<'a> {
    pub values: &'a [f32],
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl<'a> Images<'a> {
    /// `n` images of shape (c, h, w) in `values`.
    pub fn new(
        values: &'a [f32],
        n: usize,
        (channels, height, width): (usize, usize, usize),
    ) -> Self {
        Images {
            values,
            n,
            channels,
            height,
            width,
        }
    }
}

/// Builds the grid image of `images`.
///
/// Values are mapped linearly from `range = (lo, hi)` to 0..=255 and clamped
/// (NaN → 0). Layout: `cols = ceil(sqrt(n))`, `rows = ceil(n / cols)`, filled
/// row by row; every pixel is upscaled `scale`× (nearest neighbour); a
/// [`GUTTER_PX`]-wide dark gray gutter surrounds and separates tiles. Output is
/// L8 for 1 channel, RGB8 for 3.
pub fn grid_image(images: Images, range: (f32, f32), scale: u32) -> Result<DynamicImage> {
    let n = images.n;
    let cols = (1..=n.max(1))
        .find(|c| c * c >= n)
        .expect("c = n satisfies c*c >= n");
    grid_image_cols(images, cols, range, scale)
}

/// [`grid_image`] with `cols` tiles per row (a row per class, a row per interpolation).
pub fn grid_image_cols(
    batch: Images,
    cols: usize,
    range: (f32, f32),
    scale: u32,
) -> Result<DynamicImage> {
    let Images {
        values: images,
        n,
        channels,
        height,
        width,
    } = batch;
    ensure!(
        channels == 1 || channels == 3,
        "image grid: channels must be 1 or 3, got {channels}"
    );
    ensure!(
        n > 0 && height > 0 && width > 0 && scale > 0,
        "image grid: n, height, width and scale must be positive (got n={n}, {height}x{width}, scale {scale})"
    );
    let image_len = channels * height * width;
    ensure!(
        images.len() == n * image_len,
        "image grid: got {} values, expected n*c*h*w = {n}*{channels}*{height}*{width} = {}",
        images.len(),
        n * image_len
    );
    let (lo, hi) = range;
    ensure!(
        lo.is_finite() && hi.is_finite() && lo < hi,
        "image grid: value range must be finite with lo < hi, got ({lo}, {hi})"
    );

    ensure!(cols > 0, "image grid: at least one column");
    let rows = n.div_ceil(cols);
    let tile_w = width as u64 * u64::from(scale);
    let tile_h = height as u64 * u64::from(scale);
    let gutter = u64::from(GUTTER_PX);
    let out_w = cols as u64 * (tile_w + gutter) + gutter;
    let out_h = rows as u64 * (tile_h + gutter) + gutter;
    let out_w = u32::try_from(out_w).ok().filter(|&v| v <= 1 << 16);
    let out_h = u32::try_from(out_h).ok().filter(|&v| v <= 1 << 16);
    let (out_w, out_h) = out_w
        .zip(out_h)
        .context("image grid: output would exceed 65536 pixels per side; lower n or scale")?;

    let (ow, s, ch) = (out_w as usize, scale as usize, channels);
    let mut buf = vec![GUTTER_GRAY; ow * out_h as usize * ch];
    let span = 255.0 / (hi - lo);
    for (k, img) in images.chunks_exact(image_len).enumerate() {
        let x0 = GUTTER_PX as usize + (k % cols) * (width * s + GUTTER_PX as usize);
        let y0 = GUTTER_PX as usize + (k / cols) * (height * s + GUTTER_PX as usize);
        for y in 0..height {
            for x in 0..width {
                for c in 0..ch {
                    let v = to_u8((img[(c * height + y) * width + x] - lo) * span);
                    for dy in 0..s {
                        let row = (y0 + y * s + dy) * ow;
                        for dx in 0..s {
                            buf[(row + x0 + x * s + dx) * ch + c] = v;
                        }
                    }
                }
            }
        }
    }
    Ok(if ch == 1 {
        DynamicImage::ImageLuma8(GrayImage::from_raw(out_w, out_h, buf).expect("buffer size"))
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(out_w, out_h, buf).expect("buffer size"))
    })
}

/// [`grid_image`] written as a PNG to `path` (atomically, via `<path>.tmp`).
pub fn write_png_grid(path: &Path, images: Images, range: (f32, f32), scale: u32) -> Result<()> {
    let img = grid_image(images, range, scale)?;
    write_png(path, &img)
}

/// Encodes `img` as PNG at `path` atomically.
pub fn write_png(path: &Path, img: &DynamicImage) -> Result<()> {
    write_atomic(path, |w| {
        img.write_to(w, ImageFormat::Png)
            .with_context(|| format!("{}: PNG encoding failed", path.display()))
    })
}

/// Already scaled to 0..255: round, clamp, NaN → 0.
fn to_u8(t: f32) -> u8 {
    if t.is_nan() {
        0
    } else {
        t.round().clamp(0.0, 255.0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("duel-io-grid-{}/{name}", std::process::id()))
    }

    #[test]
    fn gray_grid_layout_and_values() {
        // 5 images of 2x3 in [-1, 1]: image k is filled with value v[k].
        let v = [1.0, -1.0, 0.0, 5.0, f32::NAN];
        let images: Vec<f32> = v.iter().flat_map(|&x| [x; 6]).collect();
        let path = tmp("gray.png");
        write_png_grid(&path, Images::new(&images, 5, (1, 2, 3)), (-1.0, 1.0), 2).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!(img.color(), image::ColorType::L8);
        // cols 3, rows 2; tile 6x4 plus 2-px gutters.
        assert_eq!((img.width(), img.height()), (3 * 6 + 4 * 2, 2 * 4 + 3 * 2));
        let g = img.to_luma8();
        let at = |k: u32, x: u32, y: u32| g.get_pixel(2 + (k % 3) * 8 + x, 2 + (k / 3) * 6 + y)[0];
        assert_eq!(at(0, 0, 0), 255); // range max → white
        assert_eq!(at(0, 5, 3), 255); // last upscaled pixel of the tile
        assert_eq!(at(1, 2, 1), 0); // range min → black
        assert_eq!(at(2, 3, 2), 128); // midpoint
        assert_eq!(at(3, 1, 1), 255); // clamped
        assert_eq!(at(4, 1, 1), 0); // NaN
        assert_eq!(g.get_pixel(0, 0)[0], GUTTER_GRAY);
        assert_eq!(g.get_pixel(8, 3)[0], GUTTER_GRAY); // between tiles 0 and 1
        assert_eq!(g.get_pixel(2 + 2 * 8 + 3, 2 + 6 + 2)[0], GUTTER_GRAY); // empty slot 5
    }

    #[test]
    fn rgb_grid_is_chw() {
        // One 1x2 RGB image: pixel 0 red, pixel 1 blue (range 0..1).
        let images = [1.0, 0.0, /* G */ 0.0, 0.0, /* B */ 0.0, 1.0];
        let path = tmp("rgb.png");
        write_png_grid(&path, Images::new(&images, 1, (3, 1, 2)), (0.0, 1.0), 3).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!(img.color(), image::ColorType::Rgb8);
        assert_eq!((img.width(), img.height()), (6 + 4, 3 + 4));
        let rgb = img.to_rgb8();
        assert_eq!(rgb.get_pixel(2, 2).0, [255, 0, 0]);
        assert_eq!(rgb.get_pixel(7, 4).0, [0, 0, 255]);
    }

    #[test]
    fn rejects_bad_shapes() {
        let e = grid_image(Images::new(&[0.0; 5], 1, (1, 2, 3)), (0.0, 1.0), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("got 5 values, expected"), "{e}");
        let e = grid_image(Images::new(&[0.0; 12], 1, (2, 2, 3)), (0.0, 1.0), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("channels must be 1 or 3"), "{e}");
        let e = grid_image(Images::new(&[0.0; 6], 1, (1, 2, 3)), (1.0, 1.0), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lo < hi"), "{e}");
    }
}
