//! A directory tree of PNG/JPEG files loaded as one square [`ImageSet`], labelled by its
//! first-level subfolders when it has them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use image::{DynamicImage, ImageReader, RgbImage, RgbaImage, imageops::FilterType};
use serde::{Deserialize, Serialize};

use super::ImageSet;

/// File extensions picked up (compared case-insensitively).
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The most a decoded image folder may occupy in memory (n · C · H · W bytes): beyond it the
/// load would take minutes and most of a machine's memory before training could start.
pub const MAX_DECODED_BYTES: usize = 4 << 30;

/// What transparent pixels are composited onto.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Background {
    #[default]
    White,
    Black,
}

impl Background {
    fn value(self) -> u8 {
        match self {
            Background::White => 255,
            Background::Black => 0,
        }
    }
}

/// How a folder's images are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderOptions {
    /// 1 (luma) or 3 (RGB).
    pub channels: usize,
    /// Side of the square every image is resized and centre-cropped to.
    pub size: usize,
    pub background: Background,
    /// Fail unless the folder holds one class per first-level subfolder.
    pub require_labels: bool,
    /// Skip (and count) files that cannot be decoded instead of failing on the first.
    pub skip_bad: bool,
}

/// Loads every `.png`/`.jpg`/`.jpeg` file under `dir` (recursively, any case) as a
/// `channels × size × size` image.
///
/// - Order: paths sorted lexicographically, so the set (and a later
///   [`ImageSet::split_tail`]) is deterministic.
/// - Colour: an image with alpha is composited onto `background` (straight alpha, as PNG stores
///   it, in sRGB like a browser), then every image is converted to `channels` (1 = luma,
///   3 = RGB), so mixed gray/RGB/RGBA sources are fine.
/// - Geometry: resized (Triangle filter) so the SHORT side equals `size`, then
///   centre-cropped to `size × size`.
/// - Labels: when every image lies in a first-level subfolder, each subfolder holding images
///   is a class (names sorted, as torchvision's ImageFolder). Images directly in `dir` beside
///   such subfolders, or no subfolders at all, leave the set unlabelled — an error with
///   `require_labels`, naming a file to move.
/// - Skipped: names starting with `.` (hidden files, macOS `._*` resource forks);
///   symlinked directories are not followed (avoids cycles), symlinked files are.
/// - Format is sniffed from file contents, so a mislabelled extension still loads.
///
/// Errors: `dir` missing or not a directory, no matching files, a decoded size above
/// [`MAX_DECODED_BYTES`], any file that fails to decode (named in the message).
pub fn load_image_folder(dir: &Path, opts: &FolderOptions) -> Result<ImageSet> {
    let FolderOptions { channels, size, .. } = *opts;
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
    let labels = match classes_of(dir, &paths) {
        Ok(found) => Some(found),
        Err(why) if opts.require_labels => bail!(
            "{}: {why}; labels come from one subfolder per class (DIR/cat/*.png, DIR/dog/*.png)",
            dir.display()
        ),
        Err(_) => None,
    };
    check_memory(dir, paths.len(), channels, size)?;

    let side = u32::try_from(size).context("image folder: size too large")?;
    let image_len = channels * size * size;
    let mut pixels = Vec::with_capacity(paths.len() * image_len);
    let mut kept = Vec::with_capacity(paths.len());
    let mut skipped: Vec<anyhow::Error> = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match decode(path) {
            Ok(img) => {
                append_chw(img, channels, side, opts.background, &mut pixels);
                kept.push(i);
            }
            Err(e) if opts.skip_bad => skipped.push(e),
            Err(e) => bail!("{e:#} (or pass --skip-bad-images to train on the rest)"),
        }
    }
    if let Some(first) = skipped.first() {
        eprintln!(
            "warning: skipped {} of {} images that cannot be decoded (--skip-bad-images); the \
             first: {first:#}",
            skipped.len(),
            paths.len()
        );
    }
    if kept.is_empty() {
        bail!(
            "{}: none of its {} images can be decoded",
            dir.display(),
            paths.len()
        );
    }
    let set = ImageSet::unlabelled(kept.len(), channels, size, size, pixels);
    match labels {
        Some((labels, classes)) => {
            set.with_labels(kept.iter().map(|&i| labels[i]).collect(), classes)
        }
        None => Ok(set),
    }
}

/// Labels from first-level subfolders: (label per path, sorted class names), or why not.
fn classes_of(dir: &Path, paths: &[PathBuf]) -> Result<(Vec<u32>, Vec<String>), String> {
    let mut class_of = Vec::with_capacity(paths.len());
    for p in paths {
        let rel = p.strip_prefix(dir).expect("collected under dir");
        let mut parts = rel.components();
        let first = parts.next().expect("a file name");
        if parts.next().is_none() {
            class_of.push(None);
        } else {
            class_of.push(Some(first.as_os_str().to_string_lossy().into_owned()));
        }
    }
    let mut index: BTreeMap<String, u32> =
        class_of.iter().flatten().map(|c| (c.clone(), 0)).collect();
    if index.is_empty() {
        return Err("has no class subfolders, only images directly in it".into());
    }
    if let Some(i) = class_of.iter().position(Option::is_none) {
        return Err(format!(
            "{} lies directly in the folder beside {} class subfolders; move it into one \
             or remove it",
            paths[i].display(),
            index.len()
        ));
    }
    for (i, v) in index.values_mut().enumerate() {
        *v = i as u32;
    }
    let labels = class_of.iter().flatten().map(|c| index[c]).collect();
    Ok((labels, index.into_keys().collect()))
}

/// Refuses a folder whose decoded pixels would exceed [`MAX_DECODED_BYTES`], naming the largest
/// `--image-size` that fits.
fn check_memory(dir: &Path, n: usize, channels: usize, size: usize) -> Result<()> {
    let bytes = (n as u128) * (channels * size * size) as u128;
    if bytes <= MAX_DECODED_BYTES as u128 {
        return Ok(());
    }
    let fits = ((MAX_DECODED_BYTES / (n * channels)) as f64).sqrt().floor() as usize;
    let gib = |b: f64| b / (1u64 << 30) as f64;
    bail!(
        "{}: {n} images of {channels}x{size}x{size} need {:.1} GiB decoded, more than duel's \
         {:.0} GiB limit for a dataset in memory; use --image-size {fits} or less, or fewer images",
        dir.display(),
        gib(bytes as f64),
        gib(MAX_DECODED_BYTES as f64)
    )
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
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot open file", path.display()))?;
    // The decoders fill a cut-off image's missing rows with gray; a whole file ends its data
    // with the format's end marker.
    if let Some(format) = truncated(&bytes) {
        bail!(
            "{}: truncated {format} (its end marker is missing: the file was cut off); fix or \
             remove the file",
            path.display()
        );
    }
    ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .with_context(fail)?
        .decode()
        .with_context(fail)
}

/// The format of a JPEG or PNG whose end marker is missing: a JPEG without an end-of-image
/// marker (FF D9) after its last scan (FF DA), or a PNG without its IEND chunk.
fn truncated(bytes: &[u8]) -> Option<&'static str> {
    let last = |pattern: &[u8]| bytes.windows(pattern.len()).rposition(|w| w == pattern);
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let scan = last(&[0xFF, 0xDA]).unwrap_or(0);
        return (last(&[0xFF, 0xD9]).is_none_or(|end| end < scan)).then_some("JPEG");
    }
    if bytes.starts_with(b"\x89PNG") {
        return last(b"IEND").is_none().then_some("PNG");
    }
    None
}

/// Composites alpha onto `background`, converts to `channels`, resizes the short side to
/// `side`, centre-crops, and appends the result to `out` in CHW order.
fn append_chw(img: DynamicImage, channels: usize, side: u32, bg: Background, out: &mut Vec<u8>) {
    let img = if img.color().has_alpha() {
        DynamicImage::ImageRgb8(composite(&img.to_rgba8(), bg))
    } else {
        img
    };
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

/// c·a + bg·(1 − a) per channel, rounded, with straight alpha a = A / 255.
fn composite(rgba: &RgbaImage, bg: Background) -> RgbImage {
    let bg = bg.value() as u32;
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0.map(u32::from);
        let mix = |c: u32| ((c * a + bg * (255 - a) + 127) / 255) as u8;
        image::Rgb([mix(r), mix(g), mix(b)])
    })
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

    fn opts(channels: usize, size: usize) -> FolderOptions {
        FolderOptions {
            channels,
            size,
            background: Background::White,
            require_labels: false,
            skip_bad: false,
        }
    }

    /// Tree (sorted order): a.png (gray 10x6, value 200), sub/b.JPG (RGB 8x16,
    /// solid red-ish), sub/deeper/c.jpeg (RGBA 12x12 PNG content, solid half-transparent
    /// green), plus files that must be ignored.
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
        let set = load_image_folder(&dir, &opts(3, 4)).unwrap();
        assert_eq!((set.n, set.channels, set.height, set.width), (3, 3, 4, 4));
        assert_eq!(set.pixels.len(), 3 * 48);
        // Each image is solid, so every pixel of each channel plane is that colour; the green
        // at alpha 128/255 is mixed with the white background: 255·127/255 + 0·128/255 ≈ 127.
        let want: [[u8; 3]; 3] = [[200, 200, 200], [220, 30, 40], [127, 255, 127]];
        for (i, rgb) in want.iter().enumerate() {
            let img = set.image(i);
            for (c, &v) in rgb.iter().enumerate() {
                let tol = if i == 1 { 6 } else { 0 }; // JPEG is lossy
                for &p in &img[c * 16..(c + 1) * 16] {
                    assert!(close(p, v, tol), "image {i} channel {c}: {p} vs {v}");
                }
            }
        }
        // a.png lies in the root beside the `sub` folder: no labels unless required.
        assert_eq!(set.labels, None);
    }

    #[test]
    fn loads_gray_and_keeps_size() {
        let dir = tmp("gray");
        make_tree(&dir);
        let set = load_image_folder(&dir, &opts(1, 6)).unwrap();
        assert_eq!((set.n, set.channels, set.height, set.width), (3, 1, 6, 6));
        assert!(set.image(0).iter().all(|&p| p == 200));
        let green_luma = set.image(2)[0];
        assert!(set.image(2).iter().all(|&p| p == green_luma) && green_luma > 150);
    }

    #[test]
    fn transparent_pixels_take_the_background_not_their_stored_colour() {
        // Left half opaque red, right half fully transparent with blue stored in it.
        let dir = tmp("alpha");
        image::RgbaImage::from_fn(8, 8, |x, _| {
            Rgba(if x < 4 {
                [255, 0, 0, 255]
            } else {
                [0, 0, 255, 0]
            })
        })
        .save(dir.join("half.png"))
        .unwrap();
        let plane = |set: &ImageSet, c: usize| set.image(0)[c * 64..(c + 1) * 64].to_vec();
        for (bg, v) in [(Background::White, 255), (Background::Black, 0)] {
            let set = load_image_folder(
                &dir,
                &FolderOptions {
                    background: bg,
                    ..opts(3, 8)
                },
            )
            .unwrap();
            for (c, red_half) in [(0, 255), (1, 0), (2, 0)] {
                let p = plane(&set, c);
                for y in 0..8 {
                    assert_eq!(&p[y * 8..y * 8 + 4], &[red_half; 4], "{bg:?} c{c} y{y}");
                    assert_eq!(&p[y * 8 + 4..y * 8 + 8], &[v; 4], "{bg:?} c{c} y{y}");
                }
            }
            let gray = load_image_folder(
                &dir,
                &FolderOptions {
                    background: bg,
                    ..opts(1, 8)
                },
            )
            .unwrap();
            assert_eq!(gray.image(0)[7], v, "{bg:?}: gray background");
        }
    }

    #[test]
    fn centre_crop_keeps_middle() {
        // 12x4 image: left third black, middle white, right third black.
        let dir = tmp("crop");
        let img = image::GrayImage::from_fn(12, 4, |x, _| {
            Luma([if (4..8).contains(&x) { 255 } else { 0 }])
        });
        img.save(dir.join("stripe.png")).unwrap();
        let set = load_image_folder(&dir, &opts(1, 4)).unwrap();
        assert_eq!(set.pixels, vec![255; 16]);
    }

    /// cat/ (2 images, one nested deeper), dog/ (1 image), empty/ (none): pixel value marks
    /// the file.
    fn make_classes(dir: &Path) {
        for sub in ["dog", "cat/deeper", "empty"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for (name, v) in [
            ("dog/d.png", 30),
            ("cat/c1.png", 10),
            ("cat/deeper/c2.png", 20),
        ] {
            image::GrayImage::from_pixel(4, 4, Luma([v]))
                .save(dir.join(name))
                .unwrap();
        }
    }

    #[test]
    fn class_subfolders_label_their_images() {
        let dir = tmp("classes");
        make_classes(&dir);
        let required = FolderOptions {
            require_labels: true,
            skip_bad: false,
            ..opts(1, 4)
        };
        let set = load_image_folder(&dir, &required).unwrap();
        assert_eq!(
            set.classes,
            ["cat", "dog"],
            "sorted; empty folders are no class"
        );
        // Sorted paths: cat/c1, cat/deeper/c2, dog/d.
        assert_eq!(set.labels, Some(vec![0, 0, 1]));
        assert_eq!(
            (set.image(0)[0], set.image(1)[0], set.image(2)[0]),
            (10, 20, 30)
        );
        assert_eq!(
            load_image_folder(&dir, &opts(1, 4)).unwrap().labels,
            set.labels
        );

        // A file in the root beside class folders: refused when labels are required.
        image::GrayImage::from_pixel(4, 4, Luma([0]))
            .save(dir.join("stray.png"))
            .unwrap();
        let e = format!("{:#}", load_image_folder(&dir, &required).unwrap_err());
        assert!(
            e.contains("stray.png lies directly in the folder beside 2 class subfolders"),
            "{e}"
        );
        let plain = load_image_folder(&dir, &opts(1, 4)).unwrap();
        assert_eq!((plain.n, plain.labels), (4, None));

        // No subfolders at all.
        let flat = tmp("flat");
        image::GrayImage::from_pixel(4, 4, Luma([0]))
            .save(flat.join("x.png"))
            .unwrap();
        let e = format!("{:#}", load_image_folder(&flat, &required).unwrap_err());
        assert!(e.contains("has no class subfolders"), "{e}");
    }

    #[test]
    fn a_folder_too_large_to_decode_is_refused_before_decoding() {
        let dir = tmp("huge");
        make_tree(&dir);
        // 3 RGB images of 30000² would need 7.5 GiB: refused at once, naming what fits
        // (⌊√(4 GiB / 9)⌋ = 21845).
        let e = load_image_folder(&dir, &opts(3, 30_000))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3 images of 3x30000x30000 need 7.5 GiB decoded")
                && e.contains("use --image-size 21845 or less"),
            "{e}"
        );
    }

    #[test]
    fn errors() {
        let dir = tmp("errs");
        let e = load_image_folder(&dir.join("missing"), &opts(1, 8))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing: no such directory"), "{e}");
        let e = load_image_folder(&dir, &opts(1, 8))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no images found") && e.contains(".png, .jpg, .jpeg"),
            "{e}"
        );
        let e = load_image_folder(&dir, &opts(2, 8))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("channels must be 1 (grayscale) or 3 (RGB), got 2"),
            "{e}"
        );
        fs::write(dir.join("junk.png"), b"definitely not a png").unwrap();
        let e = load_image_folder(&dir, &opts(1, 8))
            .unwrap_err()
            .to_string();
        assert!(e.contains("junk.png: cannot decode image"), "{e}");
    }
}
