//! `nova-bench`: benchmark tooling for Nova.
//!
//! `nova-bench seed --dataset s --data-dir DIR [--seed N]` writes a deterministic dataset
//! (see `/work/shared/benchmarks.md` and `docs/benchmarks.md`) through the SQLite store ports,
//! plus `DIR/manifest.json`, `DIR/jwt-secret` and `DIR/tokens.json` / `DIR/tokens.txt` so that
//! `nova serve --data-dir DIR` accepts the generated access tokens. The load itself is driven
//! by k6 (`loadtest/`).

mod dist;
mod seed;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "nova-bench", about = "Nova benchmark tooling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DatasetArg {
    /// 1k users, 10k posts, mean 30 follows, 50k likes.
    S,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a dataset into a fresh data directory.
    Seed {
        #[arg(long, value_enum)]
        dataset: DatasetArg,
        /// Data directory `nova serve --data-dir` will use. Must not already hold nova.db.
        #[arg(long)]
        data_dir: PathBuf,
        /// Seed of the generator: the same seed gives the same rows.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Lifetime of the minted access tokens.
        #[arg(long, default_value_t = 24 * 3600)]
        token_ttl_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("nova-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Seed {
            dataset,
            data_dir,
            seed,
            token_ttl_secs,
        } => {
            let spec = match dataset {
                DatasetArg::S => seed::DatasetSpec::s(),
            };
            runtime.block_on(seed::run(&spec, &data_dir, seed, token_ttl_secs))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nova-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
