//! A run's configuration from its layers: preset defaults ← `--config FILE` ← the command
//! line's options (`passed_options`), and `config.toml` written and read back.

use super::*;

impl TrainConfig {
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config always serializes")
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).with_context(|| format!("{origin}: not a duel training config"))
    }

    /// Resolves defaults ← `file` ← `cli`, where both are partial tables of the same keys.
    pub fn resolve(file: Option<(&str, &str)>, cli: toml::Table) -> Result<Self> {
        let mut layered = toml::Table::new();
        if let Some((text, origin)) = file {
            let table: toml::Table = toml::from_str(text).map_err(|e| {
                let line = e.span().map(|s| line_of(text, s.start));
                let at = line.map_or(String::new(), |l| format!(" line {l}"));
                anyhow::anyhow!("{origin}{at}: not valid TOML: {}", e.message())
            })?;
            layered.extend(table);
        }
        let from_cli: Vec<String> = cli.keys().cloned().collect();
        layered.extend(cli);
        let dataset = match layered.get("dataset") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => bail!("dataset must be a string, not {other}"),
            None => "mnist".to_string(),
        };
        let image_size = layered.get("image-size").and_then(toml::Value::as_integer);
        let preset = match layered.get("preset") {
            Some(v) => Preset::deserialize(v.clone()).map_err(|_| {
                anyhow::anyhow!(
                    "unknown preset {v}; choose one of {}",
                    preset_names(|_| true)
                )
            })?,
            None => Self::default_run_preset(&dataset, image_size),
        };
        let model = match layered.get("model") {
            Some(v) => Some(Preset::deserialize(v.clone()).map_err(|_| {
                anyhow::anyhow!(
                    "unknown model {v}; choose one of {}",
                    preset_names(Preset::is_model)
                )
            })?),
            None => None,
        };
        let defaults = if preset.is_objective() {
            let model = model.unwrap_or(Self::default_preset(&dataset, image_size));
            Self::objective_preset(preset, model, &dataset)
        } else {
            Self::preset(preset, &dataset)
        };
        let steps_given = layered.contains_key("steps");
        let defaults = toml::Table::try_from(defaults).expect("a config always serializes");
        let mut table = defaults.clone();
        table.extend(layered.clone());
        let mut cfg: TrainConfig = match toml::Value::Table(table).try_into() {
            Ok(cfg) => cfg,
            Err(e) => {
                let e: toml::de::Error = e;
                // Name the key (and the file's line, or the option) that does not fit.
                let culprit = layered.iter().find_map(|(k, v)| {
                    let mut one = defaults.clone();
                    one.insert(k.clone(), v.clone());
                    let err = toml::Value::Table(one).try_into::<TrainConfig>().err()?;
                    Some((k.clone(), err.message().to_string()))
                });
                let Some((key, why)) = culprit else {
                    let origin = file.map_or("the command line", |(_, o)| o);
                    bail!("{origin}: {}", e.message());
                };
                match file {
                    Some((text, origin)) if !from_cli.contains(&key) => {
                        let at =
                            key_line(text, &key).map_or(String::new(), |l| format!(" line {l}"));
                        bail!("{origin}{at}: {key}: {why}")
                    }
                    _ => bail!("--{key}: {why}"),
                }
            }
        };
        if cfg.preset == Preset::Progan && !steps_given {
            cfg.steps = cfg.growth_steps();
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The 1-based line of a TOML file where `key` is set (`key = …` at a line's start).
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let l = l.trim_start_matches('"');
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start_matches('"').trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The training options a command line set, as `config.toml` keys and values: `TrainConfig`'s
/// own parsing (clap) of each option given, so the table holds exactly what the user typed.
pub fn passed_options(m: &clap::ArgMatches) -> Result<toml::Table> {
    use clap::{Args, FromArgMatches, parser::ValueSource};
    // Any resolved configuration: only the options given are read back from it.
    let mut cfg = TrainConfig::resolve(None, toml::Table::new())?;
    cfg.update_from_arg_matches(m)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    let json = serde_json::to_value(&cfg).context("reading options")?;
    let cmd = TrainConfig::augment_args(clap::Command::new("train"));
    let given: Vec<&str> = cmd
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .collect();
    for id in &given {
        let key = id.replace('_', "-");
        if let Some(v) = json
            .get(&key)
            .filter(|v| v.as_u64().is_some_and(|n| n > i64::MAX as u64))
        {
            bail!(
                "--{key} {v} is too large; the largest value a run can record is {}",
                i64::MAX
            );
        }
    }
    let table = toml::Table::try_from(&cfg).context("reading options")?;
    let mut out = toml::Table::new();
    for id in given {
        let key = id.replace('_', "-");
        let value = match table.get(&key) {
            Some(v) => v.clone(),
            // Written only when it differs from its default (a flag's false, a zero, the train
            // split): the option was given that default.
            None => {
                let raw = m.get_raw(id).and_then(|mut r| r.next()).unwrap_or_default();
                let raw = raw.to_string_lossy();
                raw.parse::<i64>()
                    .map(toml::Value::Integer)
                    .or_else(|_| raw.parse::<f64>().map(toml::Value::Float))
                    .unwrap_or_else(|_| match raw.as_ref() {
                        "" => toml::Value::Boolean(false),
                        _ => toml::Value::String(raw.to_string()),
                    })
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// The presets `keep` accepts, as `--preset` spells them, comma-separated.
pub(super) fn preset_names(keep: impl Fn(Preset) -> bool) -> String {
    use clap::ValueEnum;
    let names: Vec<String> = Preset::value_variants()
        .iter()
        .filter(|p| keep(**p))
        .map(|p| p.name())
        .collect();
    names.join(", ")
}
