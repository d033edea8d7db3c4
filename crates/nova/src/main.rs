//! The `nova` binary: `serve`, `migrate` and `config check`.

mod log_writer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use nova_app::{App, CliOverrides, LogFormat, Settings};

#[derive(Parser)]
#[command(name = "nova", version, about = "Nova: the social GraphQL backend")]
struct Cli {
    /// Configuration file. Optional unless given explicitly.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Listen address (overrides `http.listen`).
    #[arg(long, global = true)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API.
    Serve,
    /// Apply pending schema migrations (idempotent).
    Migrate,
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the merged configuration with secrets redacted; fail on unknown keys.
    Check,
}

/// A general-purpose allocator with per-thread caches: a request allocates and frees many small
/// objects (parsed documents, JSON values, futures), which glibc malloc serves measurably slower
/// (docs/benchmarks.md, request cost).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Installs the log subscriber, writing to stdout in batches (`log_writer`); the returned guard
/// writes out what is buffered when dropped (at shutdown).
fn init_logging(settings: &Settings) -> log_writer::FlushGuard {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (writer, guard) = log_writer::batched_stdout();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match settings.log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
    guard
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => {
            let _log = init_logging(&settings);
            let app = App::build(&settings).await?;
            let listener = tokio::net::TcpListener::bind(&settings.http.listen)
                .await
                .with_context(|| format!("listen on {}", settings.http.listen))?;
            tracing::info!(address = %listener.local_addr()?, data_dir = %settings.data_dir.display(), "nova listening");
            app.serve(listener, nova_app::app::shutdown_signal())
                .await?;
            tracing::info!("nova stopped");
            Ok(())
        }
        Command::Migrate => {
            let _log = init_logging(&settings);
            std::fs::create_dir_all(&settings.data_dir).context("create data directory")?;
            nova_app::migrate(&settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            print!("{}", settings.to_redacted_toml());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = CliOverrides {
        listen: cli.listen.clone(),
        data_dir: cli.data_dir.clone(),
        log_format: cli.log_format.map(|f| match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    let (path, required) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("nova.toml"), false),
    };
    let settings = match Settings::load(&path, required, &overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("nova: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime_settings = &settings.runtime;
    if runtime_settings.worker_threads > 0 {
        builder.worker_threads(runtime_settings.worker_threads);
    }
    let runtime = match builder
        .max_blocking_threads(runtime_settings.max_blocking_threads.max(1))
        .thread_keep_alive(std::time::Duration::from_millis(
            runtime_settings.blocking_keep_alive_ms,
        ))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("nova: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nova: {error:#}");
            ExitCode::FAILURE
        }
    }
}
