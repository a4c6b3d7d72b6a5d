//! A training run as a user starts it: resolve data and backend, train with Algorithm 1, and
//! leave everything in the run directory — config, metrics, sample grids, loss plot,
//! TensorBoard events, checkpoints — so the run can be inspected, sampled, resumed and repeated.

use crate::CpuBackend;
use crate::backend::Backend;
use crate::checkpoint::{self, Checkpoint};
use crate::config::{BackendName, TrainConfig};
use crate::data::dataset::{self, HostData};
use crate::features::score::{self, TrainingEval};
use crate::gan::{Gan, Objective, Stats};
use crate::gpu::{GpuBackend, GpuContext};
use crate::metrics::modes::{self, ModeStats};
use crate::output;
use crate::output::tensorboard::TrainingEvents;
use crate::run_dir::{self, RunLock};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Where and how a run writes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub out: PathBuf,
    /// Write into a directory that already holds a run.
    pub force: bool,
    /// Continue the run in `out` from its checkpoint.
    pub resume: bool,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// What a finished (or stopped) run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub iterations: u64,
    pub stopped_early: bool,
    pub last: Stats,
    pub backend: String,
    pub seconds: f64,
}

/// Opens the backend `kind` names. `auto` takes a hardware GPU when there is one and otherwise
/// the CPU path, which outruns software Vulkan (lavapipe); the string says what was chosen and why.
///
/// An adapter named by `adapter` (or `DUEL_ADAPTER`) must exist: when it matches nothing, or cannot
/// be opened, the run stops with the reason (and the adapters found) instead of quietly training
/// on the CPU. `--adapter` with `--backend cpu` is contradictory and refused.
pub fn open_backend(kind: BackendName, adapter: &str) -> Result<(Box<dyn Backend>, String)> {
    match kind {
        BackendName::Cpu if !adapter.trim().is_empty() => bail!(
            "--adapter {adapter:?} names a GPU adapter but --backend cpu uses none; drop \
             --adapter, or pass --backend gpu (or auto) to use it"
        ),
        BackendName::Cpu => Ok((Box::new(CpuBackend::new()), "cpu (--backend cpu)".into())),
        BackendName::Gpu => {
            let be = GpuBackend::new(selector(adapter).as_deref())?;
            let why = format!("gpu: {} (--backend gpu)", be.name());
            Ok((Box::new(be), why))
        }
        BackendName::Auto => Ok(match auto_context(adapter)? {
            Ok(ctx) if !ctx.is_software() => {
                let be = GpuBackend::from_context(ctx);
                let why = format!("gpu: {} (a hardware adapter)", be.name());
                (Box::new(be), why)
            }
            Ok(ctx) => cpu(format!(
                "cpu: the only adapter, {}, is a software rasterizer and slower than the CPU path \
                 (pass --backend gpu to use it anyway)",
                ctx.info.name
            )),
            Err(why) => cpu(why),
        }),
    }
}

/// The adapter `adapter` names, else `DUEL_ADAPTER` (an empty --adapter defers to it).
fn selector(adapter: &str) -> Option<String> {
    crate::gpu::context::selector_from_env(Some(adapter).filter(|a| !a.trim().is_empty()))
}

/// The adapter `auto` considers: `Ok(Ok)` when it opens, `Ok(Err(why))` when none does and none
/// was named (`auto` then takes the CPU path); a named adapter that does not open is an error.
fn auto_context(adapter: &str) -> Result<std::result::Result<GpuContext, String>> {
    let named = selector(adapter);
    match GpuContext::new(named.as_deref()) {
        Ok(ctx) => Ok(Ok(ctx)),
        Err(e) => match named {
            Some(name) => {
                let source = if adapter.trim().is_empty() {
                    "DUEL_ADAPTER"
                } else {
                    "--adapter"
                };
                Err(e.context(format!("{source} {name:?}")))
            }
            None => Ok(Err(format!("cpu: no usable GPU adapter ({e:#})"))),
        },
    }
}

/// The CPU path, with the reason it was chosen.
fn cpu(why: String) -> (Box<dyn Backend>, String) {
    (Box::new(CpuBackend::new()), why)
}

/// A training run's backend, or the adapter `--backend auto` times against the CPU path once the
/// model is known (`auto_backend::choose`).
pub enum Opened {
    Ready(Box<dyn Backend>, String),
    Measure(Box<GpuBackend>),
}

/// `open_backend` for training: with `auto`, a hardware adapter that opens is measured against
/// the CPU path rather than judged by its type. A software rasterizer (lavapipe, SwiftShader) runs
/// on the same cores as the CPU path, so the first run on a machine without a GPU is not spent
/// compiling and timing it: `auto` takes the CPU path and says so, unless the adapter was named
/// (`--adapter`, `DUEL_ADAPTER`), which measures it like any other.
pub fn open_for_training(kind: BackendName, adapter: &str) -> Result<Opened> {
    if kind != BackendName::Auto {
        let (be, why) = open_backend(kind, adapter)?;
        return Ok(Opened::Ready(be, why));
    }
    let ready = |(be, why)| Ok(Opened::Ready(be, why));
    match auto_context(adapter)? {
        Ok(ctx) if ctx.is_software() && selector(adapter).is_none() => ready(cpu(format!(
            "cpu, auto: the only adapter, {}, is a software rasterizer on these same CPU cores, \
             so it was not timed (name it with --adapter to time it against the CPU path, or \
             pass --backend gpu to use it)",
            ctx.info.name
        ))),
        Ok(ctx) => Ok(Opened::Measure(Box::new(GpuBackend::from_context(ctx)))),
        Err(why) => ready(cpu(why)),
    }
}

/// `runs/<UTC date-time>`.
pub fn default_run_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    PathBuf::from(format!(
        "runs/{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

const METRICS: &str = "metrics.csv";
const METRICS_HEADER: &str = "step,d_loss,g_loss,d_real,d_fake,steps_per_s,wall_s";

/// Refuses to write over an earlier run unless forced; takes the folder's lock (a folder
/// another process is training is refused) before anything in it is written.
fn prepare_dir(opts: &RunOptions) -> Result<RunLock> {
    let dir = &opts.out;
    if opts.resume {
        if !dir.join(checkpoint::FILE_NAME).is_file() {
            bail!(
                "{}: no {} to resume from; start a new run with --out instead",
                dir.display(),
                checkpoint::FILE_NAME
            );
        }
        return RunLock::acquire(dir);
    }
    let holds_run = ["config.toml", checkpoint::FILE_NAME, METRICS]
        .iter()
        .any(|f| dir.join(f).exists());
    if holds_run && !opts.force {
        bail!(
            "{} already holds a run; pass --resume to continue it, --force to overwrite it, or \
             another --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("samples"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let lock = RunLock::acquire(dir)?;
    if opts.force {
        for f in [METRICS, checkpoint::FILE_NAME] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        output::tensorboard::remove_event_files(dir)?;
    }
    Ok(lock)
}

/// The first seven columns of a metrics row.
fn parse_row(line: &str) -> Option<[f64; 7]> {
    let v: Vec<f64> = line.split(',').filter_map(|x| x.parse().ok()).collect();
    v.get(..7).map(|s| s.try_into().expect("seven fields"))
}

/// Keeps the metrics of steps up to `step` (a killed run may have logged past its last
/// checkpoint; those steps are redone) and returns them.
fn truncate_metrics(path: &Path, step: u64) -> Result<Vec<[f64; 7]>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut lines = text.lines();
    // A run logged before legibility joined FID in `--eval-every` gains its two columns; its
    // earlier rows read as empty there.
    let upgrade = |h: &str| match h.strip_suffix(",fid") {
        Some(_) => format!("{h},legible,confidence\n"),
        None => format!("{h}\n"),
    };
    let mut kept = lines.next().map(upgrade).unwrap_or_default();
    let mut rows = Vec::new();
    for line in lines {
        if let Some(r) = parse_row(line).filter(|r| r[0] <= step as f64) {
            rows.push(r);
            kept += line;
            kept.push('\n');
        }
    }
    checkpoint::write_atomic(path, kept.as_bytes())?;
    Ok(rows)
}

fn metrics_row(r: &[f64; 7]) -> String {
    format!(
        "{},{:.6},{:.6},{:.6},{:.6},{:.3},{:.3}",
        r[0] as u64, r[1], r[2], r[3], r[4], r[5], r[6]
    )
}

struct Run<'a> {
    cfg: &'a TrainConfig,
    opts: &'a RunOptions,
    data: &'a HostData,
    history: Vec<[f64; 7]>,
    /// Names what each logged number means for this run's loss.
    objective: Objective,
    wall_offset: f64,
    last_checkpoint: Option<u64>,
    /// TensorBoard: the metrics rows as scalars, the sample grids as images.
    events: TrainingEvents,
    /// `--eval-every`'s measurements with the feature network.
    eval: Option<TrainingEval>,
    /// Progressive growing's (level, α) at the last log line.
    growth: Option<(usize, f32)>,
}

impl Run<'_> {
    fn diverged(&self, step: u64, what: &str) -> anyhow::Error {
        let kept = match self.last_checkpoint {
            Some(s) => format!(
                "The last finite checkpoint (step {s}) is kept in {}",
                self.opts.out.display()
            ),
            None => "No checkpoint had been written yet.".into(),
        };
        anyhow::anyhow!(
            "step {step}: {what} became NaN or infinite and training stopped. Likely cause: a \
             learning rate too high for this model (--lr-d {:e}, --lr-g {:e}); try halving them. {kept}",
            self.cfg.lr_d,
            self.cfg.lr_g
        )
    }

    /// Mode coverage of the 2D sets (VEEGAN/PacGAN), measured at every log step so collapse is
    /// visible as it happens.
    fn modes(&self, be: &mut dyn Backend, gan: &mut Gan) -> Result<Option<ModeStats>> {
        match self.data {
            HostData::Points { mixture, .. } => {
                let x = gan.generate(be, modes::EVAL_SAMPLES, gan.sample_key())?;
                Ok(Some(modes::mode_stats(&x, *mixture)))
            }
            HostData::Images { .. } => Ok(None),
        }
    }

    /// FID or Stacked MNIST's modes of the generator now (`--eval-every`).
    fn evaluate(&mut self, be: &mut dyn Backend, gan: &mut Gan) -> Result<Option<Vec<f64>>> {
        let Some(e) = self.eval.as_mut() else {
            return Ok(None);
        };
        let mut x = gan.generate(be, e.samples, TrainingEval::key(self.cfg.seed))?;
        score::to_unit(&mut x, self.cfg.data_range());
        Ok(Some(e.evaluate(be, &x)?))
    }

    fn log(
        &mut self,
        step: u64,
        s: &Stats,
        modes: Option<&ModeStats>,
        evals: Option<&[f64]>,
        rate: f64,
        wall: f64,
    ) -> Result<()> {
        let row = [
            step as f64,
            s.d_loss as f64,
            s.g_loss as f64,
            s.d_real as f64,
            s.d_fake as f64,
            rate,
            wall + self.wall_offset,
        ];
        self.history.push(row);
        let path = self.opts.out.join(METRICS);
        let fresh = !path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // The objective's own quantities (the critic's W estimate, a penalty) follow the
        // columns every run has.
        let fields = self.objective.log_fields(s);
        let extra = &fields[4..];
        let extra_header: String = extra.iter().map(|f| format!(",{}", f.column)).collect();
        let extra_values: String = extra.iter().map(|f| format!(",{:.6}", f.value)).collect();
        let (mut header, mut line) = match modes {
            Some(m) => (
                format!("{METRICS_HEADER}{extra_header},{}", ModeStats::CSV_HEADER),
                format!("{}{extra_values},{}", metrics_row(&row), m.csv_fields()),
            ),
            None => (
                format!("{METRICS_HEADER}{extra_header}"),
                format!("{}{extra_values}", metrics_row(&row)),
            ),
        };
        // The feature network's measurements: empty fields at the steps between them.
        if let Some(e) = &self.eval {
            for (j, column) in e.columns().iter().enumerate() {
                header += &format!(",{column}");
                line.push(',');
                if let Some(v) = evals {
                    line += &format!("{:.6}", v[j]);
                }
            }
        }
        if fresh {
            writeln!(f, "{header}")?;
        }
        writeln!(f, "{line}")?;
        self.events.metrics(&header, &line)?;
        if !self.opts.quiet {
            let left = (self.cfg.steps - step) as f64 / rate.max(1e-9);
            let show = |f: &crate::gan::LogField| format!("{} {:.4}", f.label, f.value);
            let losses: Vec<String> = fields[..2].iter().chain(extra).map(show).collect();
            let outputs: Vec<String> = fields[2..4].iter().map(show).collect();
            // A growing run shows the resolution it is training at, and α while fading in.
            let phase = match self.growth {
                Some((l, a)) if a < 1.0 => format!(" | {0}×{0} α {a:.2}", 4 << l),
                Some((l, _)) => format!(" | {0}×{0}", 4 << l),
                None => String::new(),
            };
            println!(
                "step {step:>7}/{}{phase} | {} | {} | {rate:.1} it/s | ETA {}",
                self.cfg.steps,
                losses.join(" "),
                outputs.join(" "),
                fmt_duration(left)
            );
            if let Some(m) = modes {
                println!("             {}", m.summary());
            }
            if let (Some(e), Some(v)) = (&self.eval, evals) {
                println!("             {}", e.summary(v));
            }
        }
        Ok(())
    }

    fn samples(&mut self, be: &mut dyn Backend, gan: &mut Gan, step: u64) -> Result<()> {
        let dir = self.opts.out.join("samples");
        match self.data {
            HostData::Images { .. } => {
                let (c, h, w) = self.data.image_shape().expect("images have a shape");
                let scale = (256 / h.max(w)).clamp(1, 4) as u32;
                let range = self.cfg.data_range();
                // A conditional G: one row per class (the first CLASS_ROWS), the same noise
                // down each column.
                let (n, cols, classes) = match gan.classes() {
                    Some(k) => class_rows(k),
                    None => (64, 8, Vec::new()),
                };
                let given = (!classes.is_empty()).then_some(&classes[..]);
                let x = gan.generate_classes(be, n, gan.sample_key(), given)?;
                let grid = output::grid_image_cols(
                    output::Images::new(&x, n, (c, h, w)),
                    cols,
                    range,
                    scale,
                )?;
                // A growing G's grid is named by the resolution it was made at (and shown
                // nearest-upsampled to the target side).
                let step_name = match gan.current_side() {
                    Some(r) => format!("step_{step:08}-{r}x{r}.png"),
                    None => format!("step_{step:08}.png"),
                };
                for name in [step_name, "latest.png".into()] {
                    output::write_png(&dir.join(name), &grid)?;
                }
            }
            HostData::Points { mixture, .. } => {
                let x = gan.generate(be, 2500, gan.sample_key())?;
                let (means, ext) = (mixture.means(), mixture.extent());
                let title = format!("{}: G's samples at step {step}", self.cfg.dataset);
                for name in [format!("step_{step:08}.png"), "latest.png".into()] {
                    output::write_scatter_png(&dir.join(name), &title, &x, &means, ext, 512)?;
                }
            }
        }
        self.events
            .image_file(step, "samples", &dir.join("latest.png"))?;
        output::metrics_log::write_training_plot_from_csv(
            &self.opts.out.join(METRICS),
            &self.opts.out.join("losses.png"),
        )
    }

    fn checkpoint(&mut self, be: &mut dyn Backend, gan: &mut Gan) -> Result<()> {
        let state = gan.state(be)?;
        // Every tensor the checkpoint would hold must be finite: loading refuses any that is not.
        let ema = state.g_ema.iter().chain(&state.g_ema_state);
        let tensors = [
            ("generator weights", &state.g.params),
            ("discriminator weights", &state.d.params),
            ("the generator's optimizer state", &state.g.opt_m),
            ("the generator's optimizer state", &state.g.opt_v),
            ("the discriminator's optimizer state", &state.d.opt_m),
            ("the discriminator's optimizer state", &state.d.opt_v),
            ("the generator's layer state", &state.g.state),
            ("the discriminator's layer state", &state.d.state),
        ];
        let named = tensors
            .into_iter()
            .chain(ema.map(|v| ("the generator's moving average", v)));
        for (name, v) in named {
            if v.iter().any(|x| !x.is_finite()) {
                return Err(self.diverged(state.iteration, name));
            }
        }
        let ck = Checkpoint {
            config: self.cfg.clone(),
            dim: self.data.dim(),
            image_shape: self.data.image_shape(),
            state,
        };
        ck.save(&self.opts.out.join(checkpoint::FILE_NAME))?;
        self.last_checkpoint = Some(ck.state.iteration);
        Ok(())
    }
}

/// Classes shown in a conditional run's sample grids, one per row.
pub const CLASS_ROWS: usize = 32;

/// A class-per-row grid for `k` classes: (samples, columns, each sample's class).
pub fn class_rows(k: usize) -> (usize, usize, Vec<u32>) {
    let (rows, cols) = (k.min(CLASS_ROWS), 8);
    let classes = (0..rows * cols).map(|i| (i / cols) as u32).collect();
    (rows * cols, cols, classes)
}

/// `cfg` with the class count and names of a conditional run's data (which must have labels).
fn with_classes(cfg: &TrainConfig, data: &HostData) -> Result<TrainConfig> {
    let mut cfg = cfg.clone();
    if !cfg.conditional {
        return Ok(cfg);
    }
    let Some((_, names)) = data.labels() else {
        bail!(
            "--conditional needs labelled data: {} has no labels (use the embedded mnist, IDX \
             images with their label file, or an image folder with one subfolder per class)",
            cfg.dataset
        );
    };
    let numbered = names.iter().enumerate().all(|(i, n)| *n == i.to_string());
    cfg.classes = names.len();
    cfg.class_names = if numbered { Vec::new() } else { names.to_vec() };
    Ok(cfg)
}

pub fn fmt_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Trains `cfg` into `opts.out` until `cfg.steps` or until `stop` is set (Ctrl-C), writing a
/// checkpoint at every `checkpoint_every`, at the end and on stop.
pub fn train(cfg: &TrainConfig, opts: &RunOptions, stop: Arc<AtomicBool>) -> Result<RunSummary> {
    cfg.validate()?;
    // A resume takes the folder's lock and checks the checkpoint belongs to the folder's run
    // before anything else; nothing in the folder is written until the run is restored.
    let (resumed, mut lock) = if opts.resume {
        let lock = prepare_dir(opts)?;
        let ck = Checkpoint::load(&opts.out.join(checkpoint::FILE_NAME))?;
        run_dir::check_resume(&opts.out, &ck, cfg.steps)?;
        (Some(ck), Some(lock))
    } else {
        (None, None)
    };
    // The backend first: a bad --adapter fails before a large dataset is decoded.
    let opened = open_for_training(cfg.backend, &cfg.adapter)?;
    let data = dataset::load(cfg)?;
    let cfg = &with_classes(cfg, &data)?;
    if let Some(ck) = &resumed
        && (ck.config.classes, &ck.config.class_names) != (cfg.classes, &cfg.class_names)
    {
        bail!(
            "{}: the run was trained on {} classes and the dataset now has {}; resume it on the \
             data it was trained on",
            opts.out.display(),
            ck.config.classes,
            cfg.classes
        );
    }
    if data.len() < cfg.batch {
        bail!(
            "the dataset has {} samples, fewer than one batch; use --batch {} or less",
            data.len(),
            data.len()
        );
    }
    // The networks for the data's shape before anything is written: a model that does not fit
    // the data (a side it cannot make) is refused without leaving a run directory behind.
    let gan_cfg = cfg.gan(data.dim(), data.image_shape())?;
    let (g_net, d_net) = gan_cfg.build()?;
    let described = (g_net.describe(), d_net.describe());
    // The training tensors against the memory budget before any is allocated (the initial
    // parameters included). `auto` measures the CPU path too, so its tensors count as host
    // memory.
    let in_host = match &opened {
        Opened::Ready(be, _) => be.buffers_in_host_memory(),
        Opened::Measure(_) => true,
    };
    crate::budget::check_training(&gan_cfg, (&g_net, &d_net), data.len() * data.dim(), in_host)?;
    let (g_init, d_init) = crate::init::initial_params(cfg, &gan_cfg, (&g_net, &d_net), &data)?;
    let (mut be_box, why) = match opened {
        Opened::Ready(be, why) => (be, why),
        Opened::Measure(gpu) => {
            let model = crate::auto_backend::Model {
                gan: &gan_cfg,
                data: &data,
                range: cfg.data_range(),
                init: (&g_init, &d_init),
                labels: data.labels().filter(|_| cfg.conditional).map(|(l, _)| l),
            };
            crate::auto_backend::choose(gpu, &model)?
        }
    };
    // The feature network's evaluator before anything is written: a run it cannot measure is
    // refused.
    let (eval, eval_line) = if cfg.eval_every > 0 {
        let shape = data.image_shape();
        let default = if shape == Some((3, 28, 28)) {
            10_000
        } else {
            2_000
        };
        let samples = cfg.eval_samples.unwrap_or(default);
        crate::budget::check(
            &format!("--eval-samples {samples}"),
            crate::budget::rows_bytes(samples, 2 * data.dim()),
            "pass fewer --eval-samples (2000 is the default)",
        )?;
        let (e, line) = TrainingEval::new(be_box.as_mut(), &cfg.dataset, shape, samples)?;
        (Some(e), Some(line))
    } else {
        (None, None)
    };
    if let Some(ck) = &resumed {
        if ck.dim != data.dim() || ck.image_shape != data.image_shape() {
            bail!(
                "{}: the checkpoint was trained on samples of {} values, the dataset has {}",
                opts.out.display(),
                ck.dim,
                data.dim()
            );
        }
    } else {
        lock = Some(prepare_dir(opts)?);
    }
    let _lock = lock;

    let be: &mut dyn Backend = be_box.as_mut();
    let device_data = data
        .upload(be, cfg.data_range())
        .map_err(|e| e.context(format!("uploading the dataset to {}", be.name())))?;
    let inits = Some((&g_init[..], &d_init[..]));
    let mut gan = Gan::from_built(be, &gan_cfg, (g_net, d_net), device_data, inits)?;
    if let Some((labels, _)) = data.labels().filter(|_| cfg.conditional) {
        gan.set_data_labels(be, labels)?;
    }
    if let Some(ck) = &resumed {
        gan.restore(be, &ck.state)?;
    }
    // The run is known to go on: now its folder is written.
    checkpoint::write_atomic(&opts.out.join("config.toml"), cfg.to_toml().as_bytes())?;
    data.write_real_grid(&opts.out.join("samples/real.png"), cfg.data_range())?;
    let mut run = Run {
        cfg,
        opts,
        data: &data,
        history: Vec::new(),
        objective: gan_cfg.objective,
        wall_offset: 0.0,
        last_checkpoint: None,
        events: TrainingEvents::create(&opts.out)?,
        eval,
        growth: None,
    };
    if let Some(ck) = &resumed {
        run.history = truncate_metrics(&opts.out.join(METRICS), ck.state.iteration)?;
        run.wall_offset = run.history.last().map_or(0.0, |r| r[6]);
        run.last_checkpoint = Some(ck.state.iteration);
    }
    if !opts.quiet {
        println!("duel: {} on {}", cfg.dataset, data.describe());
        println!("backend: {why}");
        println!("G: {}", described.0);
        println!("D: {}", described.1);
        if let Some(line) = &eval_line {
            println!("{line}");
        }
        let updates = match cfg.updates {
            crate::schedule::Updates::Alternating => format!("k = {}", cfg.k),
            crate::schedule::Updates::Simultaneous => "simultaneous updates".into(),
        };
        println!(
            "training {} iterations ({updates}, batch {}) into {}{}",
            cfg.steps,
            cfg.batch,
            opts.out.display(),
            if opts.resume {
                format!(", resuming at {}", gan.iteration)
            } else {
                String::new()
            }
        );
    }

    let start = Instant::now();
    let (mut window_start, mut window_iters) = (Instant::now(), 0u64);
    let mut last = Stats::default();
    let mut stopped_early = false;
    while gan.iteration < cfg.steps {
        if stop.load(Ordering::Relaxed) {
            stopped_early = true;
            break;
        }
        gan.train_iteration(be);
        window_iters += 1;
        let step = gan.iteration;
        let end = step == cfg.steps;
        let eval_now = cfg.eval_every > 0 && (step % cfg.eval_every == 0 || end);
        if step % cfg.log_every == 0 || end || eval_now {
            let s = gan.take_stats(be)?;
            for (what, v) in [("the D loss", s.d_loss), ("the G loss", s.g_loss)] {
                if !v.is_finite() {
                    return Err(run.diverged(step, what));
                }
            }
            let rate = window_iters as f64 / window_start.elapsed().as_secs_f64();
            let wall = start.elapsed().as_secs_f64();
            let modes = run.modes(be, &mut gan)?;
            let evals = if eval_now {
                run.evaluate(be, &mut gan)?
            } else {
                None
            };
            run.growth = gan.growth();
            run.log(step, &s, modes.as_ref(), evals.as_deref(), rate, wall)?;
            (window_start, window_iters, last) = (Instant::now(), 0, s);
        }
        if step % cfg.sample_every == 0 || end {
            run.samples(be, &mut gan, step)?;
        }
        if step % cfg.checkpoint_every == 0 || end {
            run.checkpoint(be, &mut gan)?;
        }
    }
    if stopped_early {
        run.checkpoint(be, &mut gan)?;
        if !opts.quiet {
            println!(
                "stopped at iteration {}; checkpoint saved. Continue with: duel train --resume {}",
                gan.iteration,
                opts.out.display()
            );
        }
    } else if !opts.quiet {
        println!(
            "done: {} iterations in {}; samples in {}",
            gan.iteration,
            fmt_duration(start.elapsed().as_secs_f64()),
            opts.out.join("samples").display()
        );
    }
    Ok(RunSummary {
        iterations: gan.iteration,
        stopped_early,
        last,
        backend: be.name(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
