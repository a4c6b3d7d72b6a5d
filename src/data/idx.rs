//! MNIST-style IDX image files (magic 0x00000803: unsigned bytes, 3 dimensions).
//!
//! Layout: 4-byte big-endian magic, then n, rows, cols as big-endian u32, then
//! `n * rows * cols` pixel bytes. Files may be gzip-compressed; gzip is detected
//! by its magic bytes (1f 8b), not by the file name.

use std::borrow::Cow;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use flate2::read::MultiGzDecoder;

use super::ImageSet;

/// IDX magic for unsigned-byte data with 3 dimensions (n, rows, cols).
const MAGIC_U8_3D: u32 = 0x0000_0803;
/// Magic + three u32 dimensions.
const HEADER_LEN: usize = 16;
/// File names looked for, in order, when a directory is given.
pub const STANDARD_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-images-idx3-ubyte.gz",
    "train-images.idx3-ubyte",
    "train-images.idx3-ubyte.gz",
];
const HINT: &str = "pass MNIST-format train-images-idx3-ubyte[.gz]";

/// Loads an IDX images file (raw or gzip), or — if `path` is a directory — the
/// first of [`STANDARD_NAMES`] found in it. Images come back as 1-channel sets.
pub fn load_idx_images(path: &Path) -> Result<ImageSet> {
    let file = resolve(path)?;
    let bytes = fs::read(&file).with_context(|| format!("{}: cannot read file", file.display()))?;
    parse_idx_images(&bytes, &file.display().to_string())
}

/// Parses IDX image bytes held in memory (gzip or raw); `name` labels errors.
pub fn parse_idx_images(bytes: &[u8], name: &str) -> Result<ImageSet> {
    let raw = gunzip(bytes, name)?;

    ensure!(
        raw.len() >= 4,
        "{name}: not an IDX images file (only {} bytes); {HINT}",
        raw.len()
    );
    let magic = be_u32(&raw, 0);
    if magic != MAGIC_U8_3D {
        let extra = if magic == 0x0000_0801 {
            " — this looks like an IDX labels file"
        } else {
            ""
        };
        bail!(
            "{name}: not an IDX images file (magic {magic:#010x}, expected {MAGIC_U8_3D:#010x}){extra}; {HINT}"
        );
    }
    ensure!(
        raw.len() >= HEADER_LEN,
        "{name}: truncated IDX header (expected {HEADER_LEN} bytes, file holds {}); re-download the file",
        raw.len()
    );
    let [n, h, w] = [4, 8, 12].map(|at| be_u32(&raw, at) as usize);
    ensure!(
        n > 0 && h > 0 && w > 0,
        "{name}: IDX header has a zero dimension ({n} images of {h}x{w}); the file holds no images"
    );
    let expected = n
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or_else(|| anyhow!("{name}: IDX header dimensions {n}x{h}x{w} overflow"))?;
    let actual = raw.len() - HEADER_LEN;
    ensure!(
        actual >= expected,
        "{name}: truncated: header says {n} images of {h}x{w} (expected {expected} pixel bytes) \
         but the file holds {actual} bytes; re-download or fully decompress the file"
    );
    ensure!(
        actual == expected,
        "{name}: {} trailing bytes: header says {n} images of {h}x{w} (expected {expected} pixel bytes) \
         but the file holds {actual} bytes; the file is corrupt or not an IDX images file",
        actual - expected
    );

    let mut pixels = raw.into_owned();
    pixels.drain(..HEADER_LEN);
    Ok(ImageSet::unlabelled(n, 1, h, w, pixels))
}

/// `bytes`, inflated when they start with gzip's magic (1f 8b); `name` labels errors.
pub(super) fn gunzip<'a>(bytes: &'a [u8], name: &str) -> Result<Cow<'a, [u8]>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| {
            anyhow!("{name}: corrupt gzip data ({e}); re-download the file or pass it uncompressed")
        })?;
    Ok(Cow::Owned(out))
}

/// The file to read for `path`: itself, or a standard name inside a directory.
pub(super) fn resolve(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        return STANDARD_NAMES
            .iter()
            .map(|name| path.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!(
                    "{}: directory holds no MNIST images file (looked for {}); {HINT} or a directory holding it",
                    path.display(),
                    STANDARD_NAMES.join(", ")
                )
            });
    }
    ensure!(
        path.exists(),
        "{}: no such file or directory (looked for an IDX images file, or a directory holding one of {}); {HINT}",
        path.display(),
        STANDARD_NAMES.join(", ")
    );
    Ok(path.to_path_buf())
}

pub(super) fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("duel-io-idx-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// 3 images of 4x5 with pixel value = index mod 256.
    fn idx_bytes(magic: u32, dims: [u32; 3], extra: isize) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        let len = (dims.iter().product::<u32>() as isize + extra) as usize;
        v.extend((0..len).map(|i| (i * 7 % 256) as u8));
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn check(set: &ImageSet) {
        assert_eq!((set.n, set.channels, set.height, set.width), (3, 1, 4, 5));
        let want: Vec<u8> = (0..60).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(set.pixels, want);
    }

    #[test]
    fn round_trip_raw_and_gz_files() {
        let dir = tmp("files");
        let good = idx_bytes(MAGIC_U8_3D, [3, 4, 5], 0);
        // gz content under a name without .gz: detection is by magic bytes.
        for (name, bytes) in [("raw.idx", good.clone()), ("packed.bin", gz(&good))] {
            let p = dir.join(name);
            fs::write(&p, bytes).unwrap();
            check(&load_idx_images(&p).unwrap());
        }
        check(&parse_idx_images(&gz(&good), "embedded").unwrap());
    }

    #[test]
    fn directory_with_standard_names() {
        let good = idx_bytes(MAGIC_U8_3D, [3, 4, 5], 0);
        for (i, name) in STANDARD_NAMES.iter().enumerate() {
            let dir = tmp(&format!("std{i}"));
            let bytes = if name.ends_with(".gz") {
                gz(&good)
            } else {
                good.clone()
            };
            fs::write(dir.join(name), bytes).unwrap();
            check(&load_idx_images(&dir).unwrap());
        }
    }

    fn err_for(name: &str, bytes: Vec<u8>) -> String {
        let p = tmp(name).join(name);
        fs::write(&p, bytes).unwrap();
        format!("{:#}", load_idx_images(&p).unwrap_err())
    }

    #[test]
    fn wrong_magic() {
        let e = err_for("x.idx", idx_bytes(0x1234_5678, [3, 4, 5], 0));
        assert!(e.contains("x.idx: not an IDX images file"), "{e}");
        assert!(e.contains("magic 0x12345678, expected 0x00000803"), "{e}");
        assert!(e.contains("train-images-idx3-ubyte"), "{e}");
        let e = err_for("labels.idx", idx_bytes(0x0801, [3, 4, 5], 0));
        assert!(e.contains("labels file"), "{e}");
        let e = err_for("tiny.idx", vec![0, 0]);
        assert!(e.contains("tiny.idx: not an IDX images file"), "{e}");
    }

    #[test]
    fn truncated_and_trailing() {
        let e = err_for("short.idx", idx_bytes(MAGIC_U8_3D, [3, 4, 5], -10));
        assert!(e.contains("short.idx: truncated"), "{e}");
        assert!(
            e.contains("expected 60 pixel bytes") && e.contains("holds 50 bytes"),
            "{e}"
        );
        let e = err_for("short.gz", gz(&idx_bytes(MAGIC_U8_3D, [3, 4, 5], -1)));
        assert!(e.contains("short.gz: truncated"), "{e}");
        let e = err_for(
            "hdr.idx",
            idx_bytes(MAGIC_U8_3D, [3, 4, 5], 0)[..9].to_vec(),
        );
        assert!(e.contains("hdr.idx: truncated IDX header"), "{e}");
        let e = err_for("long.idx", idx_bytes(MAGIC_U8_3D, [3, 4, 5], 3));
        assert!(e.contains("long.idx: 3 trailing bytes"), "{e}");
        let e = err_for("zero.idx", idx_bytes(MAGIC_U8_3D, [0, 4, 5], 0));
        assert!(
            e.contains("zero.idx: IDX header has a zero dimension"),
            "{e}"
        );
        let e = err_for("bad.gz", vec![0x1f, 0x8b, 1, 2, 3]);
        assert!(e.contains("bad.gz: corrupt gzip"), "{e}");
    }

    #[test]
    fn missing_file_and_empty_dir() {
        let dir = tmp("missing");
        let e = load_idx_images(&dir.join("nope.idx"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.idx: no such file or directory"), "{e}");
        let e = load_idx_images(&dir).unwrap_err().to_string();
        assert!(
            e.contains("duel-io-idx-") && e.contains("directory holds no MNIST"),
            "{e}"
        );
        for name in STANDARD_NAMES {
            assert!(e.contains(name), "{e}");
        }
    }
}
