//! The documentation cannot drift from the code: docs/options.md lists exactly the options each
//! command's `--help` prints (the built binary's, every subcommand), docs/architecture.md's
//! kernel table lists exactly the kernels of `kernels::ALL` with their shader files, every
//! relative link (and its #anchor) in README.md and docs/*.md points at something that exists,
//! every figure in docs/ is shown by some page, and every repository path a page names exists.

use duel::kernels::ALL;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// README.md and every page in docs/, as (path relative to the root, text).
fn pages() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    names.sort();
    names.insert(0, "README.md".into());
    names.into_iter().map(|n| (n.clone(), read(&n))).collect()
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if !fence {
            out.push(line);
        }
    }
    out
}

// ---- options ----------------------------------------------------------------------------------

fn help(command: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_duel"))
        .args(command)
        .arg("--help")
        .output()
        .expect("the duel binary runs");
    assert!(out.status.success(), "duel {command:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists under "Commands:" (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            // "  train     Train a GAN …": two spaces, then the name.
            let Some(rest) = line.strip_prefix("  ") else {
                break;
            };
            if rest.starts_with(' ') {
                continue; // a wrapped description
            }
            let name = rest.split_whitespace().next().unwrap_or_default();
            if name != "help" {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// The `--long` options a help text prints, their aliases included; not --help or --version.
fn help_options(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in help.lines() {
        let t = line.trim_start();
        let t = match t.as_bytes() {
            [b'-', c, b',', b' ', ..] if c.is_ascii_alphabetic() => &t[4..],
            _ => t,
        };
        if let Some(rest) = t.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            out.insert(format!("--{name}"));
        }
        for tag in ["[alias: ", "[aliases: "] {
            if let Some(at) = line.find(tag) {
                let list = &line[at + tag.len()..];
                let list = &list[..list.find(']').unwrap_or(list.len())];
                out.extend(list.split(',').map(|a| a.trim().to_string()));
            }
        }
    }
    out.remove("--help");
    out.remove("--version");
    out
}

/// Every command that takes options: ("train", its options), ("eval fid", …), …
fn commands_and_options() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(path: Vec<String>, out: &mut BTreeMap<String, BTreeSet<String>>) {
        let text = help(&path);
        let subs = subcommands(&text);
        if subs.is_empty() {
            out.insert(path.join(" "), help_options(&text));
        }
        for s in subs {
            let mut p = path.clone();
            p.push(s);
            walk(p, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(Vec::new(), &mut out);
    out
}

/// The `--options` named in the first column of the tables under each "## `duel …`" heading of
/// docs/options.md, by command ("train", "eval fid", …).
fn documented_options(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in prose_lines(text) {
        if let Some(h) = line.strip_prefix("## ") {
            current = h
                .trim()
                .strip_prefix("`duel ")
                .and_then(|c| c.strip_suffix('`'))
                .map(str::to_string);
            if let Some(c) = &current {
                assert!(
                    out.insert(c.clone(), BTreeSet::new()).is_none(),
                    "docs/options.md has two sections for `duel {c}`"
                );
            }
            continue;
        }
        let (Some(cmd), Some(row)) = (&current, line.strip_prefix('|')) else {
            continue;
        };
        let first = row.split('|').next().unwrap_or_default().trim();
        if first == "option" || first.starts_with("---") {
            continue;
        }
        let names = out.get_mut(cmd).expect("section inserted");
        let mut rest = first;
        while let Some(at) = rest.find("--") {
            let name: String = rest[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            assert!(!name.is_empty(), "docs/options.md: a bare -- in {first:?}");
            names.insert(format!("--{name}"));
            rest = &rest[at + 2 + name.len()..];
        }
    }
    out
}

#[test]
fn the_option_reference_lists_exactly_the_options_of_every_command() {
    let code = commands_and_options();
    assert!(
        code.get("train")
            .is_some_and(|o| o.contains("--preset") && o.len() > 40),
        "parsing `duel train --help` found {:?}",
        code.get("train")
    );
    assert!(code.contains_key("eval fid") && code.contains_key("bench kernels"));
    let docs = documented_options(&read("docs/options.md"));
    let mut problems = Vec::new();
    for (cmd, options) in &code {
        let Some(documented) = docs.get(cmd) else {
            if !options.is_empty() {
                problems.push(format!(
                    "`duel {cmd}` has no \"## `duel {cmd}`\" section (its options: {options:?})"
                ));
            }
            continue;
        };
        let missing: Vec<_> = options.difference(documented).collect();
        let extra: Vec<_> = documented.difference(options).collect();
        if !missing.is_empty() {
            problems.push(format!("`duel {cmd}`: not documented: {missing:?}"));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "`duel {cmd}`: documented but `duel {cmd} --help` has no such option: {extra:?}"
            ));
        }
    }
    for cmd in docs.keys().filter(|c| !code.contains_key(*c)) {
        problems.push(format!(
            "docs/options.md documents `duel {cmd}`, which does not exist"
        ));
    }
    assert!(
        problems.is_empty(),
        "docs/options.md disagrees with the code; add or remove table rows:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_option_parsers_see_what_they_should() {
    let help = "Options:\n      --config <FILE>\n          TOML\n      --k <K>\n          [alias: --n-critic]\n  -h, --help\n          Print help\n  -V, --version\n";
    let want: BTreeSet<String> = ["--config", "--k", "--n-critic"].map(String::from).into();
    assert_eq!(help_options(help), want);
    let doc = "## `duel x`\n\n| option | default | meaning |\n|---|---|---|\n| `--config FILE` | | see `--k` |\n| `--k`, `--n-critic` | 1 | |\n\n## Other\n\n| `--not-counted` | |\n";
    assert_eq!(documented_options(doc)["x"], want);
    assert_eq!(documented_options(doc).len(), 1);
    let cmds = "Commands:\n  train   Train\n          wrapped\n  eval    Score\n  help    Print\n\nOptions:\n";
    assert_eq!(subcommands(cmds), ["train", "eval"]);
}

// ---- kernels ----------------------------------------------------------------------------------

/// docs/architecture.md's kernel table: for each row, the kernel names (backticked, first
/// column) and the shader files named in the second column.
fn kernel_table(text: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in prose_lines(text) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if !line.starts_with('|') || cells.len() < 4 {
            inside = false;
            continue;
        }
        if cells[1] == "kernels" && cells[2] == "shader" {
            inside = true;
            continue;
        }
        if inside && !cells[1].starts_with("---") {
            rows.push((backticked(cells[1]), backticked(cells[2])));
        }
    }
    rows
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_kernel_table_lists_exactly_the_kernels_in_the_code() {
    let rows = kernel_table(&read("docs/architecture.md"));
    assert!(
        rows.len() > 20,
        "docs/architecture.md has the kernel table ({} rows)",
        rows.len()
    );
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (names, shaders) in &rows {
        for shader in shaders {
            if !root().join("shaders").join(shader).is_file() {
                problems.push(format!("shaders/{shader} does not exist"));
            }
        }
        for name in names {
            if !seen.insert(name.clone()) {
                problems.push(format!("`{name}` is listed twice"));
            }
            match ALL.iter().find(|k| k.name == name) {
                None => problems.push(format!("`{name}` is not a kernel of kernels::ALL")),
                Some(k) => {
                    let file = format!("{}.wgsl", k.shader.name);
                    if !shaders.contains(&file) {
                        problems.push(format!("`{name}`'s row does not name its shader {file}"));
                    }
                }
            }
        }
    }
    for k in ALL.iter().filter(|k| !seen.contains(k.name)) {
        problems.push(format!(
            "kernel `{}` is missing; add a row such as | `{}` | `{}.wgsl` | what it computes |",
            k.name, k.name, k.shader.name
        ));
    }
    assert!(
        problems.is_empty(),
        "docs/architecture.md's kernel table disagrees with kernels::ALL:\n  {}",
        problems.join("\n  ")
    );
}

// ---- links, figures, paths ----------------------------------------------------------------------

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_` kept, spaces to `-`,
/// the rest dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every anchor a page's headings make (a repeated heading gets -1, -2, … as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let s = slug(&line[hashes..]);
            let n = count.entry(s.clone()).or_insert(0);
            out.insert(if *n == 0 {
                s.clone()
            } else {
                format!("{s}-{n}")
            });
            *n += 1;
        }
    }
    out
}

/// The targets of a page's Markdown links and images, `](target)` and `src="target"`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        for (open, close) in [("](", ')'), ("src=\"", '"')] {
            let mut rest = line;
            while let Some(at) = rest.find(open) {
                let tail = &rest[at + open.len()..];
                let end = tail.find(close).unwrap_or(tail.len());
                out.push(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    out
}

fn is_external(target: &str) -> bool {
    target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:")
}

#[test]
fn every_relative_link_points_at_a_file_and_heading_that_exist() {
    let pages = pages();
    let mut problems = Vec::new();
    let mut links = 0;
    for (page, text) in &pages {
        let dir = Path::new(page).parent().unwrap_or(Path::new(""));
        for target in link_targets(text).into_iter().filter(|t| !is_external(t)) {
            links += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let file: PathBuf = if path.is_empty() {
                PathBuf::from(page)
            } else {
                dir.join(path)
            };
            if !root().join(&file).exists() {
                problems.push(format!(
                    "{page}: ({target}): {} does not exist",
                    file.display()
                ));
                continue;
            }
            if let Some(anchor) = anchor {
                let rel = file.to_string_lossy().replace('\\', "/");
                if !rel.ends_with(".md") || !anchors(&read(&rel)).contains(anchor) {
                    problems.push(format!(
                        "{page}: ({target}): {rel} has no heading #{anchor}"
                    ));
                }
            }
        }
    }
    assert!(
        links > 50,
        "found only {links} relative links: is the parser broken?"
    );
    assert!(
        problems.is_empty(),
        "dead links:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_figure_in_docs_is_shown_by_a_page() {
    let shown: BTreeSet<String> = pages()
        .iter()
        .flat_map(|(page, text)| {
            let dir = Path::new(page)
                .parent()
                .unwrap_or(Path::new(""))
                .to_path_buf();
            link_targets(text)
                .into_iter()
                .map(move |t| dir.join(t).to_string_lossy().replace('\\', "/"))
        })
        .collect();
    let mut unshown = Vec::new();
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if [".png", ".gif", ".jpg", ".svg"]
            .iter()
            .any(|x| name.ends_with(x))
            && !shown.contains(&format!("docs/{name}"))
        {
            unshown.push(name);
        }
    }
    assert!(
        unshown.is_empty(),
        "figures in docs/ no page links: {unshown:?}"
    );
}

/// Backticked repository paths in prose: `src/…`, `tests/…`, `shaders/…`, … (no placeholders).
fn named_paths(text: &str) -> Vec<String> {
    const ROOTS: [&str; 8] = [
        "src/",
        "tests/",
        "shaders/",
        "assets/",
        "examples/",
        "docs/",
        "scripts/",
        ".ci/",
    ];
    let mut out = Vec::new();
    for line in prose_lines(text) {
        for token in backticked(line) {
            let path = token.split([':', ' ']).next().unwrap_or_default();
            if ROOTS.iter().any(|r| path.starts_with(r))
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            {
                out.push(path.trim_end_matches('.').to_string());
            }
        }
    }
    out
}

#[test]
fn every_repository_path_a_page_names_exists() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (page, text) in pages() {
        for path in named_paths(&text) {
            count += 1;
            if !root().join(&path).exists() {
                problems.push(format!("{page}: `{path}` does not exist"));
            }
        }
    }
    assert!(
        count > 30,
        "found only {count} paths: is the parser broken?"
    );
    assert!(
        problems.is_empty(),
        "pages name missing files:\n  {}",
        problems.join("\n  ")
    );
}

/// The checklists in docs/architecture.md say "`Name` in `path`": the file must contain Name.
#[test]
fn the_checklists_name_items_where_they_are() {
    // One string, so an item may wrap across lines.
    let text = read("docs/architecture.md");
    let text = prose_lines(&text)
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let mut problems = Vec::new();
    let mut count = 0;
    {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("` in `") {
            let before = &rest[..at];
            let item = &before[before.rfind('`').map_or(0, |i| i + 1)..];
            let after = &rest[at + "` in `".len()..];
            let path = &after[..after.find('`').unwrap_or(after.len())];
            rest = &after[path.len()..];
            let ident = item.rsplit("::").next().unwrap_or(item);
            let ident = ident.trim_end_matches("()").trim_end_matches('!');
            let file = root().join(path);
            if !file.is_file() {
                problems.push(format!("`{item}` in `{path}`: no such file"));
                continue;
            }
            count += 1;
            if !std::fs::read_to_string(&file).unwrap().contains(ident) {
                problems.push(format!("`{item}` in `{path}`: {path} has no `{ident}`"));
            }
        }
    }
    assert!(
        count >= 8,
        "found only {count} \"`X` in `path`\" items: is the parser broken?"
    );
    assert!(
        problems.is_empty(),
        "docs/architecture.md: {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_readme_is_a_front_page() {
    let readme = read("README.md");
    assert!(
        readme.len() <= 16 * 1024,
        "README.md is {} bytes; keep it a front page (~15 KB)",
        readme.len()
    );
    assert!(
        readme.contains("cargo test --release"),
        "README.md shows the test command .ci/run runs"
    );
    let first_image = readme.find("![").expect("README.md shows a sample grid");
    assert!(
        first_image < 2000,
        "the sample grid is above the fold (byte {first_image})"
    );
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(
        slug(" Conditional GANs: \"draw me a 7\""),
        "conditional-gans-draw-me-a-7"
    );
    assert_eq!(
        slug(" `--backend auto`: the faster backend, measured"),
        "--backend-auto-the-faster-backend-measured"
    );
    assert_eq!(
        slug("The paper's MNIST experiment"),
        "the-papers-mnist-experiment"
    );
    assert_eq!(
        anchors("# A\n```\n# not\n```\n## A\n"),
        ["a", "a-1"].map(String::from).into()
    );
}
