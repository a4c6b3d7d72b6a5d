//! The dependency between the configuration and the training step runs one way
//! (docs/architecture.md, "Layers of the crate"): the plain domain types (`objective`,
//! `schedule`, `noise`, `weight_init`) import nothing above them, `config` may import them, and
//! the training step (`gan`), `init` and `data::dataset` import `config` — never the reverse.
//! This reads every `crate::` path in those files (imports, grouped imports and inline paths) and
//! fails, naming the file and the path, when one points back up.

use std::path::Path;

/// Every `crate::…` path named in `text`, grouped imports expanded (`crate::{a::B, c}` gives
/// `crate::a::B` and `crate::c`). Comments are skipped.
fn crate_paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        out.extend(expand("crate::", rest));
    }
    out
}

/// The paths `prefix` continues into at the start of `rest`: one path, or a `{…}` group.
fn expand(prefix: &str, rest: &str) -> Vec<String> {
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let end = group
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(group.len(), |(i, _)| i);
        let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
        let inner = &group[..end];
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[start..]);
        return items
            .into_iter()
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .flat_map(|item| {
                let head: String = item
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let tail = &item[head.len()..];
                if tail.starts_with('{') {
                    expand(&format!("{prefix}{head}"), tail)
                } else {
                    vec![format!("{prefix}{head}")]
                }
            })
            .collect();
    }
    let path: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    if path.ends_with("::") && rest[path.len()..].starts_with('{') {
        return expand(&format!("{prefix}{path}"), &rest[path.len()..]);
    }
    vec![format!("{prefix}{path}")]
}

/// Whether `path` is `module` or inside it.
fn within(path: &str, module: &str) -> bool {
    path == module || path.starts_with(&format!("{module}::"))
}

/// Problems in the files of `files`: each `crate::` path inside one of `forbidden`.
fn check(files: &[String], forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for path in crate_paths(&text) {
            if let Some(m) = forbidden.iter().find(|m| within(&path, m)) {
                problems.push(format!("{file} names {path} (inside {m})"));
            }
        }
    }
    problems
}

const LEAVES: &[&str] = &[
    "src/objective.rs",
    "src/schedule.rs",
    "src/noise.rs",
    "src/weight_init.rs",
];

/// What the configuration must not reach: the training step, the run's initial parameters, the
/// dataset loader, the run itself.
const ABOVE_CONFIG: &[&str] = &[
    "crate::gan",
    "crate::init",
    "crate::data::dataset",
    "crate::train",
];

fn config_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .map(|name| format!("src/config/{name}"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_configuration_imports_nothing_of_the_training_step() {
    let files = config_files();
    assert!(files.len() >= 5, "src/config has {files:?}");
    // The paths are read: the configuration does name the leaves it is built from.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let named = files
        .iter()
        .flat_map(|f| crate_paths(&std::fs::read_to_string(root.join(f)).unwrap()))
        .filter(|p| within(p, "crate::objective"))
        .count();
    assert!(
        named > 0,
        "no crate::objective path found in src/config: is the reader broken?"
    );
    let problems = check(&files, ABOVE_CONFIG);
    assert!(
        problems.is_empty(),
        "import cycle:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_domain_types_are_leaves() {
    let leaves: Vec<String> = LEAVES.iter().map(|s| s.to_string()).collect();
    let mut above = ABOVE_CONFIG.to_vec();
    above.push("crate::config");
    let problems = check(&leaves, &above);
    assert!(
        problems.is_empty(),
        "a leaf imports above it:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reader_expands_grouped_and_inline_paths() {
    let text = "use crate::{gan::{Gan, Stats}, model::Network};\n\
                use crate::data::{self, dataset::HostData};\n\
                // use crate::train::run; (a comment)\n\
                let x = crate::init::G_STREAM;";
    let paths = crate_paths(text);
    for want in [
        "crate::gan::Gan",
        "crate::gan::Stats",
        "crate::model::Network",
        "crate::data::self",
        "crate::data::dataset::HostData",
        "crate::init::G_STREAM",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
    }
    assert!(
        !paths.iter().any(|p| within(p, "crate::train")),
        "{paths:?}"
    );
    let problems: Vec<&String> = paths
        .iter()
        .filter(|p| ABOVE_CONFIG.iter().any(|m| within(p, m)))
        .collect();
    assert_eq!(problems.len(), 4, "{problems:?}");
}
