//! NumPy `.npy` files through the `npyz` crate: float32 arrays written in C order, and arrays
//! read in either order, either byte order, as float32 or float64 (converted to float32 where
//! every value fits) or float64 (FID statistics files).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use npyz::{NpyFile, Order, WriteOptions, WriterBuilder};

use super::write_atomic;

/// Writes `data` (row-major, C order) with `shape` as `.npy`, dtype `<f4`, atomically via
/// `<path>.tmp`. `data.len()` must equal the product of `shape` (1 for the empty shape, i.e. a
/// scalar).
pub fn write_npy(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    let count: usize = shape.iter().product();
    ensure!(
        data.len() == count,
        "{}: npy shape {shape:?} needs {count} values, got {}",
        path.display(),
        data.len()
    );
    write_npy_streamed(path, shape, |push| push(data))
}

/// Writes a float32 `.npy` of `shape` whose values `fill` hands over in C order, a slice at a
/// time, so an array larger than memory can be written. Atomic: a failure (or too few or too many
/// values) leaves no file and any earlier one as it was.
pub fn write_npy_streamed(
    path: &Path,
    shape: &[usize],
    fill: impl FnOnce(&mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()>,
) -> Result<()> {
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    write_atomic(path, |w| {
        let mut npy = WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&dims)
            .writer(w)
            .begin_nd()?;
        fill(&mut |values: &[f32]| Ok(npy.extend(values.iter().copied())?))?;
        npy.finish()?;
        Ok(())
    })
    .with_context(|| format!("{}: cannot write npy file", path.display()))
}

/// Writes integer labels as a 1-D `.npy` of dtype `<i8` (NumPy's int64, what PyTorch's
/// classification losses take), atomically.
pub fn write_npy_i64(path: &Path, data: &[i64]) -> Result<()> {
    write_atomic(path, |w| {
        let mut npy = WriteOptions::<i64>::new()
            .default_dtype()
            .shape(&[data.len() as u64])
            .writer(w)
            .begin_nd()?;
        npy.extend(data.iter().copied())?;
        npy.finish()?;
        Ok(())
    })
    .with_context(|| format!("{}: cannot write npy file", path.display()))
}

/// Reads a `.npy` array of float32 or float64 values (either byte order, C or Fortran order);
/// returns `(shape, data)` with the data in C order as float32. Float64 values beyond float32's
/// range are refused, naming the first.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a readable float .npy file", path.display()))
}

/// An array's values as stored: float32, or float64.
enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// The shape and the values in C order, as stored (float32 or float64, either byte order).
fn parse_values(bytes: &[u8]) -> Result<(Vec<usize>, Values)> {
    let npy = NpyFile::new(bytes).context("not a NumPy .npy file")?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .context("a dimension too large for this machine")?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .context("the shape's size overflows")?;
    let order = npy.order();
    let descr = npy.dtype().descr();
    let dtype = descr.trim_matches('\'');
    let payload = bytes.len() - npy_header_len(bytes)?;
    let width = match dtype.get(1..) {
        Some("f4") => 4,
        Some("f8") => 8,
        _ => bail!(
            "dtype {dtype} is not float32 or float64; save the array with .astype(np.float32)"
        ),
    };
    ensure!(
        payload as u64 == count as u64 * width,
        "shape {shape:?} needs {} data bytes, file holds {payload}",
        count as u64 * width
    );
    let values = match npy.try_data::<f32>() {
        Ok(r) => Values::F32(r.collect::<std::io::Result<_>>()?),
        Err(npy) => Values::F64(npy.into_vec()?),
    };
    Ok(match order {
        Order::C => (shape, values),
        Order::Fortran => {
            let values = match values {
                Values::F32(v) => Values::F32(fortran_to_c(&v, &shape)),
                Values::F64(v) => Values::F64(fortran_to_c(&v, &shape)),
            };
            (shape, values)
        }
    })
}

fn parse(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>)> {
    let (shape, values) = parse_values(bytes)?;
    let data = match values {
        Values::F32(v) => v,
        Values::F64(wide) => {
            let mut narrow = Vec::with_capacity(wide.len());
            for (i, &v) in wide.iter().enumerate() {
                let f = v as f32;
                if v.is_finite() && !f.is_finite() {
                    bail!("value {v:e} at index {i} does not fit float32");
                }
                narrow.push(f);
            }
            narrow
        }
    };
    Ok((shape, data))
}

/// A `.npy` array (its bytes) of float64 or float32, read as float64 in C order:
/// `(shape, data)`.
pub fn parse_npy_f64(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    let (shape, values) = parse_values(bytes)?;
    Ok(match values {
        Values::F32(v) => (shape, v.into_iter().map(f64::from).collect()),
        Values::F64(v) => (shape, v),
    })
}

/// `data` with `shape` as the bytes of a C-order `.npy` of dtype `<f8`.
pub fn npy_bytes_f64(data: &[f64], shape: &[usize]) -> Result<Vec<u8>> {
    ensure!(
        data.len() == shape.iter().product::<usize>(),
        "npy shape {shape:?} does not hold {} values",
        data.len()
    );
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut out = Vec::new();
    let mut npy = WriteOptions::<f64>::new()
        .default_dtype()
        .shape(&dims)
        .writer(&mut out)
        .begin_nd()?;
    npy.extend(data.iter().copied())?;
    npy.finish()?;
    Ok(out)
}

/// The header's length (magic, version, length field and dict), from the preamble.
fn npy_header_len(bytes: &[u8]) -> Result<usize> {
    ensure!(bytes.len() >= 10, "truncated header");
    Ok(match bytes[6] {
        1 => 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
        _ => {
            ensure!(bytes.len() >= 12, "truncated header");
            12 + u32::from_le_bytes(bytes[8..12].try_into()?) as usize
        }
    })
}

/// `data` stored in Fortran order (first index fastest) rearranged to C order (last fastest).
fn fortran_to_c<T: Copy + Default>(data: &[T], shape: &[usize]) -> Vec<T> {
    let mut out = vec![T::default(); data.len()];
    let mut index = vec![0usize; shape.len()];
    for value in out.iter_mut() {
        // The Fortran offset of the current C multi-index.
        let (mut offset, mut stride) = (0, 1);
        for (&i, &d) in index.iter().zip(shape) {
            offset += i * stride;
            stride *= d;
        }
        *value = data[offset];
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("duel-io-npy-{}/{name}", std::process::id()))
    }

    /// A v1.0 `.npy` as NumPy writes it: `descr`, order and shape in the dict, then `payload`.
    fn numpy_file(descr: &str, fortran: bool, shape: &str, payload: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let mut dict =
            format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        while (10 + dict.len() + 1) % 64 != 0 {
            dict.push(' ');
        }
        dict.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((dict.len() as u16).to_le_bytes());
        out.extend(dict.as_bytes());
        out.extend(payload);
        out
    }

    fn read_bytes(name: &str, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>)> {
        let path = tmp(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        read_npy_f32(&path)
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
    fn header_is_numpy_v1_little_endian_c_order_aligned_to_64() {
        let path = tmp("h.npy");
        write_npy(&path, &[1.0, 2.0, f32::NAN], &[3]).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes.len(), 10 + hlen + 12);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(header.contains("'descr': '<f4'"), "{header}");
        assert!(header.contains("'fortran_order': False"), "{header}");
        assert!(header.contains("'shape': (3,"), "{header}");
        assert_eq!(&bytes[10 + hlen..10 + hlen + 4], &1.0f32.to_le_bytes());
        let (_, d) = read_npy_f32(&path).unwrap();
        assert!(d[2].is_nan());
    }

    #[test]
    fn streamed_writes_match_whole_ones_and_a_short_stream_leaves_no_file() {
        let (whole, streamed) = (tmp("whole.npy"), tmp("streamed.npy"));
        let data: Vec<f32> = (0..24).map(|v| v as f32).collect();
        write_npy(&whole, &data, &[4, 6]).unwrap();
        write_npy_streamed(&streamed, &[4, 6], |push| data.chunks(5).try_for_each(push)).unwrap();
        assert_eq!(fs::read(&whole).unwrap(), fs::read(&streamed).unwrap());
        let short = tmp("short.npy");
        let e = write_npy_streamed(&short, &[4, 6], |push| push(&data[..7])).unwrap_err();
        assert!(format!("{e:#}").contains("short.npy"), "{e:#}");
        assert!(!short.exists());
    }

    #[test]
    fn fortran_order_big_endian_and_float64_are_read_as_c_order_float32() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column, as np.save(Z.T) of a (3, 2) C array does.
        let columns = [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0];
        let le: Vec<u8> = columns.iter().flat_map(|v| v.to_le_bytes()).collect();
        let got = read_bytes("f.npy", &numpy_file("<f4", true, "(2, 3)", &le)).unwrap();
        assert_eq!(got, (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        // Three axes: element [i, j, k] at i + 2j + 4k.
        let f3: Vec<u8> = (0..8u8).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let (_, d) = read_bytes("f3.npy", &numpy_file("<f4", true, "(2, 2, 2)", &f3)).unwrap();
        assert_eq!(d, [0.0, 4.0, 2.0, 6.0, 1.0, 5.0, 3.0, 7.0]);
        let be: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let got = read_bytes("be.npy", &numpy_file(">f4", false, "(2,)", &be)).unwrap();
        assert_eq!(got.1, [1.5, -2.0]);
        let f8: Vec<u8> = [0.25f64, -3.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let got = read_bytes("f8.npy", &numpy_file(">f8", false, "(1, 2)", &f8)).unwrap();
        assert_eq!(got, (vec![1, 2], vec![0.25, -3.0]));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let path = tmp("bad.npy");
        let e = write_npy(&path, &[1.0; 5], &[2, 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.npy: npy shape [2, 3] needs 6 values, got 5"),
            "{e}"
        );
        assert!(!path.exists());
        let e = format!("{:#}", read_bytes("bad.npy", b"not numpy").unwrap_err());
        assert!(
            e.contains("bad.npy") && e.contains("not a NumPy .npy file"),
            "{e}"
        );
        write_npy(&path, &[1.0; 6], &[2, 3]).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes.pop();
        let e = format!("{:#}", read_bytes("cut.npy", &bytes).unwrap_err());
        assert!(
            e.contains("cut.npy") && e.contains("needs 24 data bytes, file holds 23"),
            "{e}"
        );
        let big: Vec<u8> = 1e300f64.to_le_bytes().to_vec();
        let e = format!(
            "{:#}",
            read_bytes("big.npy", &numpy_file("<f8", false, "(1,)", &big)).unwrap_err()
        );
        assert!(
            e.contains("value 1e300 at index 0 does not fit float32"),
            "{e}"
        );
        let ints: Vec<u8> = 7i32.to_le_bytes().to_vec();
        let e = format!(
            "{:#}",
            read_bytes("int.npy", &numpy_file("<i4", false, "(1,)", &ints)).unwrap_err()
        );
        assert!(e.contains("<i4 is not float32 or float64"), "{e}");
    }
}
