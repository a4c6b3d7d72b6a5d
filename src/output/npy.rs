//! Minimal NumPy `.npy` (format v1.0) writer and reader for little-endian f32 (and f64, the
//! dtype of FID statistics files).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

use super::write_atomic;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// magic + version (2) + header length (u16 LE).
const PREAMBLE: usize = 10;
/// Total header size (preamble + dict + padding) is a multiple of this.
const ALIGN: usize = 64;

/// Writes `data` (row-major, C order) with `shape` as `.npy` v1.0, dtype `<f4`,
/// atomically via `<path>.tmp`. `data.len()` must equal the product of `shape`
/// (1 for the empty shape, i.e. a scalar).
pub fn write_npy(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    let count: usize = shape.iter().product();
    ensure!(
        data.len() == count,
        "{}: npy shape {shape:?} needs {count} values, got {}",
        path.display(),
        data.len()
    );
    let header = header_bytes(shape)?;
    write_atomic(path, |w| {
        w.write_all(&header)?;
        for v in data {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
    .with_context(|| format!("{}: cannot write npy file", path.display()))
}

/// Writes integer labels as a 1-D `.npy` of dtype `<i8` (NumPy's int64, what PyTorch's
/// classification losses take), atomically.
pub fn write_npy_i64(path: &Path, data: &[i64]) -> Result<()> {
    let header = header_bytes_typed(&[data.len()], "<i8")?;
    write_atomic(path, |w| {
        w.write_all(&header)?;
        for v in data {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
    .with_context(|| format!("{}: cannot write npy file", path.display()))
}

/// Preamble plus the padded, newline-terminated header dict.
fn header_bytes(shape: &[usize]) -> Result<Vec<u8>> {
    header_bytes_typed(shape, "<f4")
}

fn header_bytes_typed(shape: &[usize], descr: &str) -> Result<Vec<u8>> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    let unpadded = PREAMBLE + dict.len() + 1; // + '\n'
    let padded = unpadded.div_ceil(ALIGN) * ALIGN;
    dict.extend(std::iter::repeat_n(' ', padded - unpadded));
    dict.push('\n');
    let len = u16::try_from(dict.len()).context("npy header too long for format v1.0")?;
    let mut out = Vec::with_capacity(padded);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    Ok(out)
}

/// Reads a `.npy` file holding C-order `<f4` data (v1.0 or v2.0 header);
/// returns `(shape, data)`.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a readable f32 .npy file", path.display()))
}

fn parse(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>)> {
    let (shape, descr, payload) = parse_header(bytes)?;
    ensure!(descr == "<f4", "dtype is not '<f4' but {descr:?}");
    let data = payload
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    Ok((shape, data))
}

/// A `.npy` array (its bytes) of little-endian f64 or f32, read as f64: `(shape, data)`.
pub fn parse_npy_f64(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    let (shape, descr, payload) = parse_header(bytes)?;
    let data = match descr {
        "<f8" => payload
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        "<f4" => payload
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64)
            .collect(),
        _ => bail!("dtype {descr:?} is not float64 ('<f8') or float32 ('<f4')"),
    };
    Ok((shape, data))
}

/// `data` with `shape` as the bytes of a `.npy` v1.0 file of dtype `<f8`.
pub fn npy_bytes_f64(data: &[f64], shape: &[usize]) -> Result<Vec<u8>> {
    ensure!(
        data.len() == shape.iter().product::<usize>(),
        "npy shape {shape:?} does not hold {} values",
        data.len()
    );
    let mut out = header_bytes_typed(shape, "<f8")?;
    out.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    Ok(out)
}

/// The shape, dtype (`descr`) and data bytes of a C-order `.npy` (v1.0 to v3.0 header), the
/// data's length checked against the shape.
fn parse_header(bytes: &[u8]) -> Result<(Vec<usize>, &str, &[u8])> {
    ensure!(
        bytes.len() >= PREAMBLE && bytes.starts_with(MAGIC),
        "missing \\x93NUMPY magic"
    );
    let (header_start, header_len) = match bytes[6] {
        1 => (PREAMBLE, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 => {
            ensure!(bytes.len() >= 12, "truncated header");
            (12, u32::from_le_bytes(bytes[8..12].try_into()?) as usize)
        }
        v => bail!("unsupported npy version {v}"),
    };
    let data_start = header_start + header_len;
    ensure!(bytes.len() >= data_start, "truncated header");
    let header =
        std::str::from_utf8(&bytes[header_start..data_start]).context("header is not text")?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(&format!("'{key}':"))
            .with_context(|| format!("header lacks '{key}'"))?;
        Ok(header[at + key.len() + 3..].trim_start())
    };
    let descr_src = field("descr")?;
    let descr = descr_src
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .context("unreadable descr")?;
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        _ => bail!("dtype {descr:?} is not a little-endian float ('<f4' or '<f8')"),
    };
    ensure!(
        field("fortran_order")?.starts_with("False"),
        "fortran_order data is not supported"
    );
    let shape_src = field("shape")?;
    let close = shape_src.find(')').context("unterminated shape tuple")?;
    let shape = shape_src[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .with_context(|| format!("bad shape entry {s:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let count: usize = shape.iter().product();
    let payload = &bytes[data_start..];
    ensure!(
        payload.len() == count * width,
        "shape {shape:?} needs {} data bytes, file holds {}",
        count * width,
        payload.len()
    );
    Ok((shape, descr, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("duel-io-npy-{}/{name}", std::process::id()))
    }

    #[test]
    fn round_trips_various_shapes() {
        let cases: [(&[usize], usize); 4] = [(&[5], 5), (&[2, 3], 6), (&[2, 1, 3], 6), (&[], 1)];
        for (i, (shape, len)) in cases.into_iter().enumerate() {
            let data: Vec<f32> = (0..len).map(|v| v as f32 * -0.5 + 1e-3).collect();
            let path = tmp(&format!("a{i}.npy"));
            write_npy(&path, &data, shape).unwrap();
            let (s, d) = read_npy_f32(&path).unwrap();
            assert_eq!((s.as_slice(), d), (shape, data));
        }
    }

    #[test]
    fn header_format() {
        let path = tmp("h.npy");
        write_npy(&path, &[1.0, 2.0, f32::NAN], &[3]).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((PREAMBLE + hlen) % 64, 0);
        assert_eq!(bytes.len(), PREAMBLE + hlen + 12);
        let header = std::str::from_utf8(&bytes[PREAMBLE..PREAMBLE + hlen]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
        assert!(header.ends_with(" \n"));
        assert_eq!(
            &bytes[PREAMBLE + hlen..PREAMBLE + hlen + 4],
            &1.0f32.to_le_bytes()
        );
        let (_, d) = read_npy_f32(&path).unwrap();
        assert!(d[2].is_nan());
        // 2-D tuple has no trailing comma; scalar shape is ().
        let dict = |shape: &[usize]| {
            String::from_utf8(header_bytes(shape).unwrap()[PREAMBLE..].to_vec()).unwrap()
        };
        assert!(dict(&[2, 3]).contains("'shape': (2, 3), }"));
        assert!(dict(&[]).contains("'shape': (), }"));
    }

    #[test]
    fn errors() {
        let path = tmp("bad.npy");
        let e = write_npy(&path, &[1.0; 5], &[2, 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.npy: npy shape [2, 3] needs 6 values, got 5"),
            "{e}"
        );
        assert!(!path.exists());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"not numpy").unwrap();
        let e = format!("{:#}", read_npy_f32(&path).unwrap_err());
        assert!(e.contains("bad.npy") && e.contains("magic"), "{e}");
        write_npy(&path, &[1.0; 6], &[2, 3]).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes.pop();
        fs::write(&path, bytes).unwrap();
        let e = format!("{:#}", read_npy_f32(&path).unwrap_err());
        assert!(e.contains("needs 24 data bytes, file holds 23"), "{e}");
    }
}
