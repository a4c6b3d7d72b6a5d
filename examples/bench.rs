//! `duel bench …` until the CLI mounts it: `cargo run --release --example bench -- train`.

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    args[0] = "duel bench".into();
    duel::bench::run_cli(&args)
}
