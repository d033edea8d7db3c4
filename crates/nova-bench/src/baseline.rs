//! `nova-bench serve-baseline`: the real Nova node and a raw axum JSON handler in one process.
//!
//! Builds the node exactly as `nova serve` does (`nova_app::Settings::load` with the same
//! `NOVA_*` environment and `--data-dir`/`--listen` overrides, then `nova_app::App::build` and
//! `App::serve`) and, in the same tokio runtime, serves a second axum router with one route,
//! `POST /raw`, which parses the JSON request body and answers `{"data":{"__typename":"Query"}}`
//! — what a trivial axum JSON handler costs. `loadtest/run-graphql-vs-raw.sh` then compares the
//! closed-loop peak throughput of `POST /graphql {"query":"{ __typename }"}` with `POST /raw`.
//!
//! The raw route listens on its own address (`--raw-listen`) because `nova_app::App` keeps its
//! router private and only offers `serve(listener, shutdown)`: there is no way to merge a route
//! into it without changing nova-app. Both servers are `axum::serve` over a tokio TCP listener
//! in the same process and runtime, so the comparison measures the GraphQL layer (gateway
//! middleware, parsing, validation, execution, logging) against a bare handler.

use std::path::PathBuf;

use anyhow::Context as _;
use axum::routing::post;
use axum::Json;
use nova_app::{App, CliOverrides, Settings};
use serde_json::{json, Value};

pub struct BaselineArgs {
    pub data_dir: PathBuf,
    pub listen: String,
    pub raw_listen: String,
}

/// The trivial handler: read the JSON body (any JSON value), answer a constant JSON document.
async fn raw(Json(_request): Json<Value>) -> Json<Value> {
    Json(json!({ "data": { "__typename": "Query" } }))
}

pub async fn run(args: BaselineArgs) -> anyhow::Result<()> {
    let overrides = CliOverrides {
        listen: Some(args.listen),
        data_dir: Some(args.data_dir),
        log_format: None,
    };
    let settings = Settings::load(&PathBuf::from("nova.toml"), false, &overrides)
        .map_err(|error| anyhow::anyhow!("invalid configuration: {error}"))?;
    // The same per-request log lines as `nova serve` (text format), so the GraphQL side pays
    // for what it pays for in production.
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .init();

    let app = App::build(&settings).await?;
    let listener = tokio::net::TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("listen on {}", settings.http.listen))?;
    let raw_listener = tokio::net::TcpListener::bind(&args.raw_listen)
        .await
        .with_context(|| format!("listen on {}", args.raw_listen))?;
    tracing::info!(
        graphql = %listener.local_addr()?,
        raw = %raw_listener.local_addr()?,
        "nova-bench serve-baseline listening"
    );
    let raw_router = axum::Router::new().route("/raw", post(raw));
    let raw_server = axum::serve(raw_listener, raw_router)
        .with_graceful_shutdown(nova_app::app::shutdown_signal());
    let (nova, raw) = tokio::join!(
        app.serve(listener, nova_app::app::shutdown_signal()),
        raw_server
    );
    nova?;
    raw.context("raw axum server")?;
    Ok(())
}
