//! TensorBoard event files, written (and read back) by hand: the format is small and the Rust
//! crates for it pull in protoc at build time or unmaintained protobuf/image versions.
//!
//! A file is a sequence of records, each
//!   u64 LE length | u32 LE masked CRC-32C of the 8 length bytes | data | u32 LE masked CRC-32C of data
//! where data is a protobuf `Event` (tensorflow/core/util/event.proto):
//!   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5 }
//!   Summary { repeated Value value = 1 }
//!   Value   { string tag = 1; float simple_value = 2; Image image = 4 }
//!   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4 }
//! The first record of a file is an Event with file_version "brain.Event:2". TensorBoard finds
//! files whose name contains "tfevents" anywhere under `--logdir`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

use super::metrics_log::Kind;

pub const FILE_VERSION: &str = "brain.Event:2";

/// Appends events to one `events.out.tfevents.<secs>.<host>.<pid>` file in a run directory. A
/// resumed run opens a new file; TensorBoard merges a directory's files by step.
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates a new events file in `dir` (never reusing an existing name) and writes its
    /// file-version record.
    pub fn create(dir: &Path) -> Result<Self> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let base = format!(
            "events.out.tfevents.{secs}.{}.{}",
            hostname(),
            std::process::id()
        );
        let (mut n, mut path) = (0, dir.join(&base));
        let file = loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    path = dir.join(format!("{base}.{n}"));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("{}: cannot create", path.display()));
                }
            }
        };
        let mut w = EventWriter {
            out: BufWriter::new(file),
            path,
        };
        let mut event = Proto::default();
        event.double(1, wall_time());
        event.bytes(3, FILE_VERSION.as_bytes());
        w.record(&event.0)?;
        w.flush()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event at `step` holding a scalar per `(tag, value)`.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f32)]) -> Result<()> {
        let mut summary = Proto::default();
        for (tag, v) in values {
            let mut value = Proto::default();
            value.bytes(1, tag.as_bytes());
            value.float(2, *v);
            summary.bytes(1, &value.0);
        }
        self.event(step, &summary.0)
    }

    /// One event at `step` with an image summary of the PNG file `png`; its size and colour
    /// type come from the PNG header.
    pub fn image(&mut self, step: u64, tag: &str, png: &[u8]) -> Result<()> {
        let (width, height, colorspace) = png_header(png)?;
        let mut image = Proto::default();
        image.varint_field(1, u64::from(height));
        image.varint_field(2, u64::from(width));
        image.varint_field(3, colorspace);
        image.bytes(4, png);
        let mut value = Proto::default();
        value.bytes(1, tag.as_bytes());
        value.bytes(4, &image.0);
        let mut summary = Proto::default();
        summary.bytes(1, &value.0);
        self.event(step, &summary.0)
    }

    /// Pushes buffered records to the file, so a running TensorBoard sees them.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("{}: write failed", self.path.display()))
    }

    fn event(&mut self, step: u64, summary: &[u8]) -> Result<()> {
        let mut event = Proto::default();
        event.double(1, wall_time());
        event.varint_field(2, step);
        event.bytes(5, summary);
        self.record(&event.0)
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&len);
        rec.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        rec.extend_from_slice(data);
        rec.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        self.out
            .write_all(&rec)
            .with_context(|| format!("{}: write failed", self.path.display()))
    }
}

/// What a training run sends to TensorBoard: every metrics.csv row as scalars grouped by kind
/// ("losses/d_loss", "D_outputs/d_fake", "speed/steps_per_s", "metrics/modes"), and the sample
/// grids as images.
pub struct TrainingEvents {
    writer: EventWriter,
}

impl TrainingEvents {
    pub fn create(run_dir: &Path) -> Result<Self> {
        Ok(TrainingEvents {
            writer: EventWriter::create(run_dir)?,
        })
    }

    /// Logs one metrics row as written to metrics.csv (`header` names its comma-separated
    /// fields); the step comes from the `step` column. Non-finite values are left out.
    pub fn metrics(&mut self, header: &str, row: &str) -> Result<()> {
        let fields: Vec<(&str, f64)> = header
            .split(',')
            .zip(row.split(','))
            .map(|(c, v)| (c.trim(), v.trim().parse().unwrap_or(f64::NAN)))
            .collect();
        let Some(&(_, step)) = fields.iter().find(|(c, _)| *c == "step") else {
            bail!("metrics row without a step column: {header}");
        };
        let tags: Vec<(String, f32)> = fields
            .iter()
            .filter(|(c, v)| v.is_finite() && !matches!(Kind::of(c), Kind::Step | Kind::WallClock))
            .map(|&(c, v)| (format!("{}/{c}", Kind::of(c).tensorboard_group()), v as f32))
            .collect();
        let tags: Vec<(&str, f32)> = tags.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.writer.scalars(step as u64, &tags)?;
        self.writer.flush()
    }

    /// Logs the PNG file at `png` (a sample grid) as image `tag` at `step`.
    pub fn image_file(&mut self, step: u64, tag: &str, png: &Path) -> Result<()> {
        let bytes = std::fs::read(png).with_context(|| format!("reading {}", png.display()))?;
        self.writer.image(step, tag, &bytes)?;
        self.writer.flush()
    }
}

/// Deletes the events files in `dir` (for a run overwritten with --force, whose old curves
/// TensorBoard would otherwise merge with the new ones).
pub fn remove_event_files(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("events.out.tfevents.") {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("{}: cannot remove", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch, as TensorBoard's wall_time.
fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name for the file name (TensorBoard's convention), reduced to characters
/// safe in a file name; "localhost" when none can be read.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// (width, height, TensorBoard colorspace) from a PNG's IHDR chunk. Colorspace: 1 grey,
/// 2 grey+alpha, 3 RGB (or palette), 4 RGBA.
fn png_header(png: &[u8]) -> Result<(u32, u32, u64)> {
    ensure!(
        png.len() >= 26 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "image summary: not a PNG file"
    );
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().expect("4 bytes"));
    let colorspace = match png[25] {
        0 => 1,
        4 => 2,
        6 => 4,
        _ => 3,
    };
    Ok((be(16), be(20), colorspace))
}

/// CRC-32C (Castagnoli) rotated and offset as TFRecord does, so a CRC of data that itself holds
/// CRCs stays well distributed.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A protobuf message being encoded.
#[derive(Default)]
struct Proto(Vec<u8>);

impl Proto {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    fn varint_field(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }

    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn float(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

/// One decoded event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub wall_time: f64,
    pub step: i64,
    pub file_version: Option<String>,
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub tag: String,
    pub data: ValueData,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ValueData {
    Scalar(f32),
    Image {
        height: u32,
        width: u32,
        colorspace: u32,
        encoded: Vec<u8>,
    },
    /// A kind of value this reader does not decode (histogram, tensor, ...).
    Other,
}

/// Reads every event of an events file, checking both CRCs of every record.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let i = events.len();
        let where_ = || format!("{}: record {i} at byte {at}", path.display());
        ensure!(bytes.len() - at >= 12, "{}: truncated header", where_());
        let len_bytes = &bytes[at..at + 8];
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        ensure!(
            crc == masked_crc32c(len_bytes),
            "{}: length CRC mismatch (corrupt file)",
            where_()
        );
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let Some(end) = (at + 12)
            .checked_add(len)
            .filter(|e| e.checked_add(4).is_some_and(|e4| e4 <= bytes.len()))
        else {
            bail!("{}: truncated data", where_());
        };
        let data = &bytes[at + 12..end];
        let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
        ensure!(
            crc == masked_crc32c(data),
            "{}: data CRC mismatch (corrupt file)",
            where_()
        );
        events.push(decode_event(data).with_context(where_)?);
        at = end + 4;
    }
    Ok(events)
}

/// A protobuf field's payload by wire type.
enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

/// The (field number, payload) pairs of one protobuf message.
fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Field<'_>)>> {
    fn varint(buf: &mut &[u8]) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some((&b, rest)) = buf.split_first() else {
                bail!("protobuf: truncated varint");
            };
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        bail!("protobuf: varint longer than 10 bytes")
    }
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
        ensure!(buf.len() >= n, "protobuf: truncated field");
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Ok(head)
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let field = (key >> 3) as u32;
        let payload = match key & 7 {
            0 => Field::Varint(varint(&mut buf)?),
            1 => Field::Fixed64(take(&mut buf, 8)?.try_into().expect("8 bytes")),
            2 => {
                let n = varint(&mut buf)? as usize;
                Field::Bytes(take(&mut buf, n)?)
            }
            5 => Field::Fixed32(take(&mut buf, 4)?.try_into().expect("4 bytes")),
            w => bail!("protobuf: unsupported wire type {w}"),
        };
        out.push((field, payload));
    }
    Ok(out)
}

fn decode_event(data: &[u8]) -> Result<Event> {
    let mut event = Event {
        wall_time: 0.0,
        step: 0,
        file_version: None,
        values: Vec::new(),
    };
    for (field, payload) in fields(data)? {
        match (field, payload) {
            (1, Field::Fixed64(b)) => event.wall_time = f64::from_le_bytes(b),
            (2, Field::Varint(v)) => event.step = v as i64,
            (3, Field::Bytes(b)) => event.file_version = Some(String::from_utf8(b.to_vec())?),
            (5, Field::Bytes(summary)) => {
                for (f, value) in fields(summary)? {
                    if let (1, Field::Bytes(value)) = (f, value) {
                        event.values.push(decode_value(value)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(event)
}

fn decode_value(data: &[u8]) -> Result<Value> {
    let mut value = Value {
        tag: String::new(),
        data: ValueData::Other,
    };
    for (field, payload) in fields(data)? {
        match (field, payload) {
            (1, Field::Bytes(b)) => value.tag = String::from_utf8(b.to_vec())?,
            (2, Field::Fixed32(b)) => value.data = ValueData::Scalar(f32::from_le_bytes(b)),
            (4, Field::Bytes(image)) => {
                let (mut height, mut width, mut colorspace) = (0, 0, 0);
                let mut encoded = Vec::new();
                for (f, p) in fields(image)? {
                    match (f, p) {
                        (1, Field::Varint(v)) => height = v as u32,
                        (2, Field::Varint(v)) => width = v as u32,
                        (3, Field::Varint(v)) => colorspace = v as u32,
                        (4, Field::Bytes(b)) => encoded = b.to_vec(),
                        _ => {}
                    }
                }
                value.data = ValueData::Image {
                    height,
                    width,
                    colorspace,
                    encoded,
                };
            }
            _ => {}
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("duel-tb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn small_png() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 80, 7]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn crc32c_masking_matches_the_tfrecord_definition() {
        // CRC-32C check value of "123456789" (RFC 3720, appendix B.4).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // ((crc >> 15) | (crc << 17)) + 0xa282ead8 mod 2^32, worked by hand.
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn scalars_and_images_round_trip() {
        let dir = tmp_dir("roundtrip");
        let png = small_png();
        let mut w = EventWriter::create(&dir).unwrap();
        w.scalars(10, &[("losses/d_loss", 1.25), ("losses/g_loss", -0.5)])
            .unwrap();
        w.image(10, "samples", &png).unwrap();
        w.scalars(20, &[("losses/d_loss", f32::MIN_POSITIVE)])
            .unwrap();
        w.flush().unwrap();
        let path = w.path().to_path_buf();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        // A second writer in the same second gets its own file.
        let w2 = EventWriter::create(&dir).unwrap();
        assert_ne!(w2.path(), path);

        let events = read_events(&path).unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].file_version.as_deref(), Some(FILE_VERSION));
        assert!(events[0].values.is_empty());
        let now = wall_time();
        assert!(events.iter().all(|e| (now - e.wall_time).abs() < 600.0));
        assert_eq!(
            events.iter().map(|e| e.step).collect::<Vec<_>>(),
            [0, 10, 10, 20]
        );
        let tags: Vec<(&str, &ValueData)> = events[1]
            .values
            .iter()
            .map(|v| (v.tag.as_str(), &v.data))
            .collect();
        assert_eq!(
            tags,
            [
                ("losses/d_loss", &ValueData::Scalar(1.25)),
                ("losses/g_loss", &ValueData::Scalar(-0.5))
            ]
        );
        assert_eq!(
            events[2].values,
            [Value {
                tag: "samples".into(),
                data: ValueData::Image {
                    height: 3,
                    width: 5,
                    colorspace: 3,
                    encoded: png.clone()
                }
            }]
        );
        assert_eq!(
            events[3].values[0].data,
            ValueData::Scalar(f32::MIN_POSITIVE)
        );

        // Any flipped byte is caught by one of the two CRCs.
        let bytes = std::fs::read(&path).unwrap();
        for at in [3, 9, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let corrupt = dir.join("corrupt");
            std::fs::write(&corrupt, &bad).unwrap();
            let e = read_events(&corrupt).unwrap_err();
            let msg = format!("{e:#}");
            assert!(
                msg.contains("CRC mismatch") || msg.contains("truncated"),
                "byte {at}: {msg}"
            );
        }
        std::fs::write(dir.join("short"), &bytes[..bytes.len() - 2]).unwrap();
        assert!(read_events(&dir.join("short")).is_err());
    }

    #[test]
    fn training_events_tag_metrics_by_kind() {
        let dir = tmp_dir("training");
        let mut ev = TrainingEvents::create(&dir).unwrap();
        let header = "step,d_loss,g_loss,d_real,d_fake,steps_per_s,wall_s,modes,kl_uniform";
        ev.metrics(header, "30,1.2,0.7,0.55,0.45,12.5,3.0,7,NaN")
            .unwrap();
        let png_path = dir.join("grid.png");
        std::fs::write(&png_path, small_png()).unwrap();
        ev.image_file(30, "samples", &png_path).unwrap();
        let path = ev.writer.path().to_path_buf();
        drop(ev);
        let events = read_events(&path).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].step, 30);
        let got: Vec<(&str, f32)> = events[1]
            .values
            .iter()
            .map(|v| match v.data {
                ValueData::Scalar(x) => (v.tag.as_str(), x),
                _ => panic!("not a scalar: {v:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                ("losses/d_loss", 1.2),
                ("losses/g_loss", 0.7),
                ("D_outputs/d_real", 0.55),
                ("D_outputs/d_fake", 0.45),
                ("speed/steps_per_s", 12.5),
                ("metrics/modes", 7.0),
            ]
        );
        assert!(matches!(
            events[2].values[0].data,
            ValueData::Image { width: 5, .. }
        ));
        assert!(ev_err("d_loss", "1.0").contains("step column"));
    }

    fn ev_err(header: &str, row: &str) -> String {
        let mut ev = TrainingEvents::create(&tmp_dir("err")).unwrap();
        format!("{:#}", ev.metrics(header, row).unwrap_err())
    }
}
