//! A directory tree of PNG/JPEG files loaded as one square [`ImageSet`].

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use image::{DynamicImage, ImageReader, imageops::FilterType};

use super::ImageSet;

/// File extensions picked up (compared case-insensitively).
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Loads every `.png`/`.jpg`/`.jpeg` file under `dir` (recursively, any case) as a
/// `channels × size × size` image.
///
/// - Order: paths sorted lexicographically, so the set (and a later
///   [`ImageSet::split_tail`]) is deterministic.
/// - Colour: every image is converted to `channels` (1 = luma, 3 = RGB) whatever
///   its source type, so mixed gray/RGB/RGBA sources are fine; alpha is dropped
///   (transparent pixels keep their stored colour). `channels` must be 1 or 3.
/// - Geometry: resized (Triangle filter) so the SHORT side equals `size`, then
///   centre-cropped to `size × size`.
/// - Skipped: names starting with `.` (hidden files, macOS `._*` resource forks);
///   symlinked directories are not followed (avoids cycles), symlinked files are.
/// - Format is sniffed from file contents, so a mislabelled extension still loads.
///
/// Errors: `dir` missing or not a directory, no matching files, any file that
/// fails to decode (named in the message).
pub fn load_image_folder(dir: &Path, channels: usize, size: usize) -> Result<ImageSet> {
    ensure!(
        channels == 1 || channels == 3,
        "image folder: channels must be 1 (grayscale) or 3 (RGB), got {channels}"
    );
    ensure!(size > 0, "image folder: image size must be positive");
    ensure!(
        dir.is_dir(),
        "{}: no such directory; pass a directory of .png/.jpg/.jpeg images",
        dir.display()
    );
    let mut paths = Vec::new();
    collect(dir, &mut paths)?;
    paths.sort();
    if paths.is_empty() {
        bail!(
            "{}: no images found (searched recursively for extensions {}, any case)",
            dir.display(),
            EXTENSIONS.map(|e| format!(".{e}")).join(", ")
        );
    }

    let side = u32::try_from(size).context("image folder: size too large")?;
    let image_len = channels * size * size;
    let mut pixels = Vec::with_capacity(paths.len() * image_len);
    for path in &paths {
        let img = decode(path)?;
        append_chw(&img, channels, side, &mut pixels);
    }
    Ok(ImageSet {
        n: paths.len(),
        channels,
        height: size,
        width: size,
        pixels,
    })
}

/// Recursively gathers image files under `dir`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        fs::read_dir(dir).with_context(|| format!("{}: cannot list directory", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list directory", dir.display()))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry
            .file_type()
            .with_context(|| format!("{}: cannot stat", path.display()))?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if has_image_extension(&path) && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn decode(path: &Path) -> Result<DynamicImage> {
    let fail = || {
        format!(
            "{}: cannot decode image (corrupt or not PNG/JPEG); fix or remove the file",
            path.display()
        )
    };
    ImageReader::open(path)
        .with_context(|| format!("{}: cannot open file", path.display()))?
        .with_guessed_format()
        .with_context(fail)?
        .decode()
        .with_context(fail)
}

/// Converts to `channels`, resizes short side to `side`, centre-crops, and appends
/// the result to `out` in CHW order.
fn append_chw(img: &DynamicImage, channels: usize, side: u32, out: &mut Vec<u8>) {
    let converted = if channels == 1 {
        DynamicImage::ImageLuma8(img.to_luma8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let square = if converted.width() == side && converted.height() == side {
        converted
    } else {
        converted.resize_to_fill(side, side, FilterType::Triangle)
    };
    let hwc = square.as_bytes(); // interleaved: (y * side + x) * channels + c
    let plane = (side * side) as usize;
    for c in 0..channels {
        out.extend((0..plane).map(|p| hwc[p * channels + c]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Luma, Rgb, Rgba};

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("duel-io-folder-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Tree (sorted order): a.png (gray 10x6, value 200), sub/b.JPG (RGB 8x16,
    /// solid red-ish), sub/deeper/c.jpeg (RGBA 12x12 PNG content, solid green),
    /// plus files that must be ignored.
    fn make_tree(dir: &Path) {
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        image::GrayImage::from_pixel(10, 6, Luma([200]))
            .save(dir.join("a.png"))
            .unwrap();
        image::RgbImage::from_pixel(8, 16, Rgb([220, 30, 40]))
            .save_with_format(dir.join("sub/b.JPG"), ImageFormat::Jpeg)
            .unwrap();
        image::RgbaImage::from_pixel(12, 12, Rgba([0, 255, 0, 128]))
            .save_with_format(dir.join("sub/deeper/c.jpeg"), ImageFormat::Png)
            .unwrap();
        fs::write(dir.join("notes.txt"), "not an image").unwrap();
        fs::write(dir.join("._a.png"), "resource fork junk").unwrap();
    }

    fn close(a: u8, b: u8, tol: u8) -> bool {
        a.abs_diff(b) <= tol
    }

    #[test]
    fn loads_rgb_tree() {
        let dir = tmp("rgb");
        make_tree(&dir);
        let set = load_image_folder(&dir, 3, 4).unwrap();
        assert_eq!((set.n, set.channels, set.height, set.width), (3, 3, 4, 4));
        assert_eq!(set.pixels.len(), 3 * 48);
        // Each image is solid, so every pixel of each channel plane is that colour.
        let want: [[u8; 3]; 3] = [[200, 200, 200], [220, 30, 40], [0, 255, 0]];
        for (i, rgb) in want.iter().enumerate() {
            let img = set.image(i);
            for (c, &v) in rgb.iter().enumerate() {
                let tol = if i == 1 { 6 } else { 0 }; // JPEG is lossy
                for &p in &img[c * 16..(c + 1) * 16] {
                    assert!(close(p, v, tol), "image {i} channel {c}: {p} vs {v}");
                }
            }
        }
    }

    #[test]
    fn loads_gray_and_keeps_size() {
        let dir = tmp("gray");
        make_tree(&dir);
        let set = load_image_folder(&dir, 1, 6).unwrap();
        assert_eq!((set.n, set.channels, set.height, set.width), (3, 1, 6, 6));
        assert!(set.image(0).iter().all(|&p| p == 200));
        let green_luma = set.image(2)[0];
        assert!(set.image(2).iter().all(|&p| p == green_luma) && green_luma > 150);
    }

    #[test]
    fn centre_crop_keeps_middle() {
        // 12x4 image: left third black, middle white, right third black.
        let dir = tmp("crop");
        let img = image::GrayImage::from_fn(12, 4, |x, _| {
            Luma([if (4..8).contains(&x) { 255 } else { 0 }])
        });
        img.save(dir.join("stripe.png")).unwrap();
        let set = load_image_folder(&dir, 1, 4).unwrap();
        assert_eq!(set.pixels, vec![255; 16]);
    }

    #[test]
    fn errors() {
        let dir = tmp("errs");
        let e = load_image_folder(&dir.join("missing"), 1, 8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing: no such directory"), "{e}");
        let e = load_image_folder(&dir, 1, 8).unwrap_err().to_string();
        assert!(
            e.contains("no images found") && e.contains(".png, .jpg, .jpeg"),
            "{e}"
        );
        let e = load_image_folder(&dir, 2, 8).unwrap_err().to_string();
        assert!(
            e.contains("channels must be 1 (grayscale) or 3 (RGB), got 2"),
            "{e}"
        );
        fs::write(dir.join("junk.png"), b"definitely not a png").unwrap();
        let e = load_image_folder(&dir, 1, 8).unwrap_err().to_string();
        assert!(e.contains("junk.png: cannot decode image"), "{e}");
    }
}
