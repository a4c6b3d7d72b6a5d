//! The interface both backends implement: buffers, and `launch`, which runs any kernel of the
//! table in `crate::kernels`. Model and training code is written once against this trait, through
//! the typed launchers each kernel's file provides.

use crate::kernels::KernelDef;
use anyhow::Result;

/// A view of `len` 4-byte words starting `offset` words into buffer `buf` of a backend.
/// Kernels take element offsets, so views need no binding alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tensor {
    pub buf: u32,
    pub offset: u32,
    pub len: u32,
}

impl Tensor {
    pub fn len(self) -> usize {
        self.len as usize
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Words `start .. start + len` of this view.
    pub fn slice(self, start: usize, len: usize) -> Tensor {
        assert!(
            start + len <= self.len(),
            "slice {start}..{} out of a view of {} words",
            start + len,
            self.len
        );
        Tensor {
            buf: self.buf,
            offset: self.offset + start as u32,
            len: len as u32,
        }
    }
}

/// A matrix read through strides: element (r, c) is word `r·rs + c·cs` of `t`.
#[derive(Clone, Copy, Debug)]
pub struct MatView {
    pub t: Tensor,
    pub rs: usize,
    pub cs: usize,
}

impl MatView {
    pub fn new(t: Tensor, rs: usize, cs: usize) -> Self {
        Self { t, rs, cs }
    }
}

/// Whether a kernel overwrites its output or adds to what is there (a gradient summed over
/// passes: the tangent pass adds its term to the backward's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Overwrite,
    Accumulate,
}

impl WriteMode {
    pub fn accumulates(self) -> bool {
        self == WriteMode::Accumulate
    }

    /// The `accumulate` word of a kernel's params: 1 to add, 0 to overwrite.
    pub fn code(self) -> u32 {
        self.accumulates() as u32
    }
}

pub use crate::kernels::activation::Activation;
pub use crate::kernels::gan_loss::GanLossKind;
pub use crate::kernels::optimizer::AdamStep;

/// 8-bit rows resident on a backend, packed four to a word, split into chunks of `chunk_rows`
/// rows so no chunk exceeds the adapter's largest storage binding.
#[derive(Clone, Debug)]
pub struct DeviceRows {
    pub chunks: Vec<Tensor>,
    pub chunk_rows: usize,
    pub rows: usize,
    pub row_len: usize,
}

/// Most chunks a u8 gather reads (bindings src0..src3 of `shaders/gather.wgsl`).
pub const MAX_ROW_CHUNKS: usize = 4;

/// Work done, for benchmarks and for checking that a step reads nothing back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub dispatches: u64,
    pub submits: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

pub trait Backend {
    /// A human-readable name: the adapter, or "cpu".
    fn name(&self) -> String;

    /// A zeroed buffer of `len` words.
    fn alloc(&mut self, len: usize, label: &str) -> Result<Tensor>;
    /// Largest buffer this backend can bind, in words.
    fn max_binding_words(&self) -> usize;
    /// Whether this backend's buffers live in the host's memory (the CPU path), so a memory
    /// budget counts them against it.
    fn buffers_in_host_memory(&self) -> bool {
        false
    }
    fn write(&mut self, t: Tensor, data: &[f32]);
    fn write_u32(&mut self, t: Tensor, data: &[u32]);
    /// Runs everything recorded so far and returns the view's contents.
    fn read(&mut self, t: Tensor) -> Result<Vec<f32>>;
    fn read_u32(&mut self, t: Tensor) -> Result<Vec<u32>>;
    /// Runs everything recorded so far (one submit on the GPU); returns without waiting.
    fn flush(&mut self);
    fn counters(&self) -> Counters;

    /// Runs `kernel` (the GPU records it for the next flush, the CPU runs its twin at once) with
    /// the parameter block `params` (offsets already filled) over `bufs`, its storage bindings in
    /// order. Model code calls the typed launchers of `crate::kernels` instead.
    fn launch(&mut self, kernel: &'static KernelDef, params: &[u8], bufs: &[Tensor]);

    /// Uploads `rows` rows of `row_len` bytes, chunked to fit the largest binding.
    fn upload_rows_u8(
        &mut self,
        data: &[u8],
        rows: usize,
        row_len: usize,
        label: &str,
    ) -> Result<DeviceRows> {
        upload_rows_u8_chunked(
            self,
            data,
            rows,
            row_len,
            self.max_binding_words() * 4,
            label,
        )
    }

    /// A buffer holding `data`.
    fn upload(&mut self, data: &[f32], label: &str) -> Result<Tensor> {
        let t = self.alloc(data.len(), label)?;
        self.write(t, data);
        Ok(t)
    }
}

/// `upload_rows_u8` with an explicit chunk size in bytes (tests use small ones to cover chunking).
pub fn upload_rows_u8_chunked<B: Backend + ?Sized>(
    be: &mut B,
    data: &[u8],
    rows: usize,
    row_len: usize,
    max_chunk_bytes: usize,
    label: &str,
) -> Result<DeviceRows> {
    anyhow::ensure!(
        data.len() == rows * row_len,
        "{label}: {} bytes given for {rows} rows of {row_len}",
        data.len()
    );
    anyhow::ensure!(rows > 0 && row_len > 0, "{label}: the dataset is empty");
    let chunk_rows = (max_chunk_bytes / row_len).min(rows);
    anyhow::ensure!(
        chunk_rows > 0,
        "{label}: one row of {row_len} bytes exceeds the largest storage binding ({max_chunk_bytes} bytes)"
    );
    let n_chunks = rows.div_ceil(chunk_rows);
    anyhow::ensure!(
        n_chunks <= MAX_ROW_CHUNKS,
        "{label}: {rows} rows of {row_len} bytes need {n_chunks} buffers of at most \
         {max_chunk_bytes} bytes (max_storage_buffer_binding_size); at most {MAX_ROW_CHUNKS} are \
         supported, so use at most {} rows",
        MAX_ROW_CHUNKS * chunk_rows
    );
    let mut chunks = Vec::with_capacity(n_chunks);
    for (i, bytes) in data.chunks(chunk_rows * row_len).enumerate() {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        let t = be.alloc(words.len(), &format!("{label} chunk {i}"))?;
        be.write_u32(t, &words);
        chunks.push(t);
    }
    Ok(DeviceRows {
        chunks,
        chunk_rows,
        rows,
        row_len,
    })
}
