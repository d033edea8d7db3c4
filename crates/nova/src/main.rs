//! The `nova` binary: `serve`, `migrate` and `config check`.

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

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stdout);
    match settings.log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => {
            init_logging(&settings);
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
            init_logging(&settings);
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
