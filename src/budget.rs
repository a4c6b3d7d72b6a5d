//! Memory budgets: what a request will allocate, estimated before anything is, against the
//! memory the machine has available. A request over it is refused in one line with the
//! estimate, the limit and what to change, instead of aborting mid-allocation.

use crate::gan::GanConfig;
use crate::layers::BuiltNet;
use anyhow::{Result, bail};

/// Overrides the limit (bytes, or with a K, M, G or T suffix): `DUEL_MEMORY_LIMIT=8G`.
pub const LIMIT_VAR: &str = "DUEL_MEMORY_LIMIT";

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes as GiB (or MiB below one GiB) for a message.
pub fn show(bytes: u64) -> String {
    match bytes as f64 / GIB {
        g if g >= 1.0 => format!("{g:.1} GiB"),
        g => format!("{:.1} MiB", g * 1024.0),
    }
}

/// `8G`, `512M`, `1024`: bytes.
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The memory duel may use: `DUEL_MEMORY_LIMIT` when set, else what the system reports as
/// available (Linux's MemAvailable), else no limit. The string says where the number came from.
pub fn limit() -> Result<(u64, &'static str)> {
    if let Ok(v) = std::env::var(LIMIT_VAR) {
        return match parse_size(&v) {
            Some(b) => Ok((b, LIMIT_VAR)),
            None => bail!("{LIMIT_VAR}={v:?} is not a size; write bytes or e.g. 512M, 8G"),
        };
    }
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    Ok(match available {
        Some(b) => (b, "available memory"),
        None => (u64::MAX, "no known limit"),
    })
}

/// Refuses `what` when its estimated `bytes` exceed the limit, saying `fix`.
pub fn check(what: &str, bytes: u64, fix: &str) -> Result<()> {
    let (limit, source) = limit()?;
    if bytes > limit {
        bail!(
            "{what} needs about {} of memory, more than the {} of {source}; {fix}",
            show(bytes),
            show(limit)
        );
    }
    Ok(())
}

/// A network's buffers for batches of `batch` rows, in bytes: parameters, gradients and two
/// optimizer moments, and each layer's output and input gradient.
pub fn network_bytes(net: &BuiltNet, batch: usize) -> u64 {
    let params = net.param_count() as u64;
    let activations: u64 = net
        .modules
        .iter()
        .map(|b| (b.module.input().len() + b.module.output().len()) as u64)
        .sum();
    4u64.saturating_mul(params.saturating_mul(4))
        .saturating_add(
            4u64.saturating_mul(activations)
                .saturating_mul(batch as u64),
        )
}

/// A training run's memory in bytes: (on the host, in the backend's buffers). The buffers: G at
/// the batch, D at three batches (real, generated, interpolates), G's moving average and the
/// dataset as float32. The host: the initial weights and, while a checkpoint is written, each
/// of its tensors (weights, two optimizer moments, the moving average) twice: as values and as
/// the file's bytes.
pub fn training_bytes(
    gan: &GanConfig,
    nets: (&BuiltNet, &BuiltNet),
    dataset_values: u64,
) -> (u64, u64) {
    let (g_net, d_net) = nets;
    let (g, d) = (g_net.param_count() as u64, d_net.param_count() as u64);
    let buffers = network_bytes(g_net, gan.batch)
        .saturating_add(network_bytes(d_net, 3 * gan.batch))
        .saturating_add(g.saturating_mul(4))
        .saturating_add(dataset_values.saturating_mul(4));
    let host = g.saturating_add(d).saturating_mul(4 * 9);
    (host, buffers)
}

/// Refuses a training run whose networks, optimizer state and batches would not fit: the host
/// part always, the buffers too when they live in host memory (the CPU path; a GPU's own
/// per-buffer limits are checked as each buffer is made).
/// `nets`: the generator and discriminator `gan.build()` made.
pub fn check_training(
    gan: &GanConfig,
    nets: (&BuiltNet, &BuiltNet),
    dataset_values: usize,
    buffers_in_host: bool,
) -> Result<()> {
    let (g_net, d_net) = nets;
    let (host, buffers) = training_bytes(gan, nets, dataset_values as u64);
    let need = match buffers_in_host {
        true => host.saturating_add(buffers),
        false => host,
    };
    check(
        &format!(
            "training G ({} parameters) and D ({}) at batch {}",
            g_net.param_count(),
            d_net.param_count(),
            gan.batch
        ),
        need,
        "use a smaller --width, --noise-dim, --image-size or --batch (images larger than 64×64 \
         train an MLP, whose first layer grows with the pixels)",
    )
}

/// `count` rows of `width` float32 values, in bytes.
pub fn rows_bytes(count: usize, width: usize) -> u64 {
    (count as u64)
        .saturating_mul(width as u64)
        .saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_a_unit() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("8g"), Some(8 << 30));
        assert_eq!(parse_size("2T"), Some(2 << 40));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5Q"), None);
        assert_eq!(show(3 << 29), "1.5 GiB");
        assert_eq!(show(3 << 19), "1.5 MiB");
    }
}
