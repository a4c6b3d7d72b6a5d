//! The `duel eval` and `duel theory` subcommands: their options and what they run.

pub mod eval;
pub mod theory;
