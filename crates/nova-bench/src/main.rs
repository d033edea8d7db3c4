//! `nova-bench`: benchmark tooling for Nova.
//!
//! `nova-bench seed --dataset s|m --data-dir DIR [--seed N]` writes a deterministic dataset
//! (see `/work/shared/benchmarks.md` and `docs/benchmarks.md`) through the SQLite store ports,
//! or, with `--postgres-url URL`, bulk-loads it into that Postgres database with `COPY`; plus
//! `DIR/manifest.json`, `DIR/jwt-secret` and `DIR/tokens.json` / `DIR/tokens.txt` so that
//! `nova serve --data-dir DIR` (with `NOVA_DB__URL=URL` for Postgres) accepts the generated
//! access tokens. The load itself is driven by k6 (`loadtest/`).
//!
//! `nova-bench serve-baseline --data-dir DIR --listen ADDR --raw-listen ADDR` serves the real
//! node (built by `nova_app::App::build`, as `nova serve` does) next to a raw axum JSON handler
//! in the same process, for the GraphQL-vs-raw throughput ratio (P12).

mod baseline;
mod dist;
mod fanout;
mod pg;
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
    /// 100k users, 1M posts, power-law follows (mean ~150, max 5k), 5M likes. Postgres only.
    M,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a dataset into a fresh data directory.
    Seed {
        #[arg(long, value_enum)]
        dataset: DatasetArg,
        /// Data directory `nova serve --data-dir` will use (tokens, JWT secret, manifest; and
        /// nova.db for SQLite, which must not exist yet).
        #[arg(long)]
        data_dir: PathBuf,
        /// Load into this Postgres database (created if missing; must be empty unless --reset)
        /// instead of DATA_DIR/nova.db.
        #[arg(long)]
        postgres_url: Option<String>,
        /// With --postgres-url: drop and recreate the database first.
        #[arg(long)]
        reset: bool,
        /// Scale follows and likes by this factor (0 < f <= 1) to save loading time; users and
        /// posts are kept. Recorded in the manifest.
        #[arg(long, default_value_t = 1.0)]
        graph_scale: f64,
        /// Seed of the generator: the same seed gives the same rows.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Lifetime of the minted access tokens.
        #[arg(long, default_value_t = 24 * 3600)]
        token_ttl_secs: u64,
    },
    /// Publish → deliver latency of live subscriptions against a running node: N sockets
    /// subscribed to the home feed of followers of one author who posts at a fixed rate.
    Fanout {
        /// Base URL of the node.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        #[arg(long, default_value_t = 100)]
        posts: usize,
        /// Posts per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// The node's process id, to report the CPU it used.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Serve the real Nova node (as `nova serve`, same `NOVA_*` environment) and, in the same
    /// process and runtime, a raw axum handler `POST /raw` answering
    /// `{"data":{"__typename":"Query"}}` on a second address. Stops on SIGINT/SIGTERM.
    ServeBaseline {
        /// Data directory (as `nova serve --data-dir`).
        #[arg(long)]
        data_dir: PathBuf,
        /// Address of the Nova node (`/graphql`, `/healthz`, ...).
        #[arg(long, default_value = "127.0.0.1:18095")]
        listen: String,
        /// Address of the raw axum handler (`POST /raw`).
        #[arg(long, default_value = "127.0.0.1:18096")]
        raw_listen: String,
    },
}

/// The allocator the `nova` binary uses, so that `serve-baseline` measures the node as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            postgres_url,
            reset,
            graph_scale,
            seed,
            token_ttl_secs,
        } => {
            let spec = match dataset {
                DatasetArg::S => seed::DatasetSpec::s(),
                DatasetArg::M => seed::DatasetSpec::m(),
            };
            let target = match postgres_url {
                Some(url) => seed::Target::Postgres { url, reset },
                None => seed::Target::Sqlite,
            };
            match (spec.scaled_graph(graph_scale), &target, dataset) {
                (Err(error), _, _) => Err(error),
                (Ok(_), seed::Target::Sqlite, DatasetArg::M) => Err(anyhow::anyhow!(
                    "dataset M is only supported on Postgres: pass --postgres-url"
                )),
                (Ok(_), seed::Target::Sqlite, _) if reset => {
                    Err(anyhow::anyhow!("--reset only applies to --postgres-url"))
                }
                (Ok(spec), target, _) => {
                    runtime.block_on(seed::run(&spec, target, &data_dir, seed, token_ttl_secs))
                }
            }
        }
        Command::Fanout {
            url,
            sockets,
            posts,
            rate,
            server_pid,
        } => runtime
            .block_on(fanout::run(fanout::FanoutArgs {
                url,
                sockets,
                posts,
                rate,
                server_pid,
            }))
            .map(|report| println!("{report:#}")),
        Command::ServeBaseline {
            data_dir,
            listen,
            raw_listen,
        } => runtime.block_on(baseline::run(baseline::BaselineArgs {
            data_dir,
            listen,
            raw_listen,
        })),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nova-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
