//! `/graphql` as the GraphQL-over-HTTP specification describes it: POST with
//! `application/json`, GET for queries only, `application/graphql-response+json` when accepted
//! (with 4xx for requests that fail before execution), GraphiQL for browsers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_graphql::ServerError;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use nova_core::{Code, Viewer};
use serde_json::{json, Map, Value};
use tracing::Instrument as _;

use crate::cost::{ClientAddr, CostTicket, PersistedQuery};
use crate::{AuthFailure, GatewayState, SharedState};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

/// The media type the response will use, chosen from the client's `Accept`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphqlResponseJson,
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
            MediaType::Json => APPLICATION_JSON,
        }
    }
}

fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .collect();
    if types
        .iter()
        .any(|t| t.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON))
    {
        Some(MediaType::GraphqlResponseJson)
    } else if types
        .iter()
        .any(|t| t.eq_ignore_ascii_case(APPLICATION_JSON) || *t == "*/*" || *t == "application/*")
    {
        Some(MediaType::Json)
    } else {
        None
    }
}

/// A response for a request that never reached the executor.
fn request_error(status: StatusCode, media: MediaType, code: Code, message: &str) -> Response {
    let body =
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    response
}

/// The fields of a GraphQL-over-HTTP request, from a JSON body or query parameters.
struct Params {
    /// Empty when a persisted query is named by hash only.
    query: String,
    operation_name: Option<String>,
    variables: Option<Value>,
    persisted: Option<PersistedQuery>,
}

fn params_from_json(value: Value) -> Result<Params, &'static str> {
    let Value::Object(mut map) = value else {
        return Err(match value {
            Value::Array(_) => "batched requests are not supported; send one operation per request",
            _ => "the request body must be a JSON object",
        });
    };
    let persisted = PersistedQuery::from_extensions(map.get("extensions"))?;
    let query = match map.remove("query") {
        Some(Value::String(q)) => q,
        None | Some(Value::Null) if persisted.is_some() => String::new(),
        Some(_) => return Err("`query` must be a string"),
        None => return Err("`query` is required"),
    };
    let operation_name = match map.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return Err("`operationName` must be a string"),
    };
    let variables = match map.remove("variables") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => return Err("`variables` must be an object"),
    };
    match map.remove("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("`extensions` must be an object"),
    }
    Ok(Params {
        query,
        operation_name,
        variables,
        persisted,
    })
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(APPLICATION_JSON))
}

pub(crate) async fn post_graphql(
    State(state): State<SharedState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            MediaType::Json,
            Code::InvalidInput,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    if !is_json_content_type(&headers) {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            Code::InvalidInput,
            "Content-Type must be application/json",
        );
    }
    let bytes = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let message = format!("request body exceeds {} bytes", state.config.max_body_bytes);
            return request_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                media,
                Code::InvalidInput,
                &message,
            );
        }
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                media,
                Code::InvalidInput,
                "the request body is not valid JSON",
            )
        }
    };
    match params_from_json(value) {
        Ok(params) => execute(state, client, headers, params, media, false).await,
        Err(message) => request_error(StatusCode::BAD_REQUEST, media, Code::InvalidInput, message),
    }
}

pub(crate) async fn get_graphql(
    State(state): State<SharedState>,
    client: ClientAddr,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !query.contains_key("query") {
        return Html(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .finish(),
        )
        .into_response();
    }
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            MediaType::Json,
            Code::InvalidInput,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let mut map = Map::new();
    for (key, raw) in query {
        let value = match key.as_str() {
            "variables" | "extensions" => match serde_json::from_str::<Value>(&raw) {
                Ok(value) => value,
                Err(_) => {
                    return request_error(
                        StatusCode::BAD_REQUEST,
                        media,
                        Code::InvalidInput,
                        "`variables` and `extensions` must be JSON",
                    )
                }
            },
            _ => Value::String(raw),
        };
        map.insert(key, value);
    }
    match params_from_json(Value::Object(map)) {
        Ok(params) => execute(state, client, headers, params, media, true).await,
        Err(message) => request_error(StatusCode::BAD_REQUEST, media, Code::InvalidInput, message),
    }
}

async fn authenticate(
    state: &GatewayState,
    headers: &HeaderMap,
) -> Result<Option<Viewer>, AuthFailure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    // Anything but `Bearer <token>` is checked as an empty token: refused, and logged as such.
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    state.authenticator.verify(token.trim()).await.map(Some)
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// Messages async-graphql gives the errors it raises while coercing a field's arguments during
/// execution: values its validation lets through (an Int literal beyond 32 bits, a scalar where an
/// input object is expected, a variable without a value). They describe the client's input.
const ARGUMENT_ERROR_PREFIXES: [&str; 4] = [
    "Failed to parse \"",
    "Expected input type \"",
    "Invalid value for argument ",
    "Variable ",
];

/// Longest argument error message passed on; they can quote the client's (arbitrarily long) value.
const MAX_ARGUMENT_MESSAGE_CHARS: usize = 300;

fn is_argument_error(message: &str) -> bool {
    ARGUMENT_ERROR_PREFIXES
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// The body of an executed request, serialised straight from the executor's values (no
/// intermediate JSON tree). `data` is left out for a request that failed before execution.
#[derive(serde::Serialize)]
struct ResponseBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "Map::is_empty")]
    extensions: Map<String, Value>,
}

/// The `extensions.code` of an error, if it has one.
fn error_code(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// Gives every error a code: errors raised before execution (no path) and argument coercion
/// errors are the client's (INVALID_INPUT); any other uncoded execution error is an internal
/// failure and is masked. INTERNAL errors carry the request id so operators can find the logged
/// detail.
fn sort_errors(errors: &mut [ServerError], request_id: &str) {
    for error in errors {
        let has_path = !error.path.is_empty();
        let code = match error_code(error) {
            Some(code) => code.to_owned(),
            None if has_path && is_argument_error(&error.message) => {
                if error.message.chars().count() > MAX_ARGUMENT_MESSAGE_CHARS {
                    let short: String = error
                        .message
                        .chars()
                        .take(MAX_ARGUMENT_MESSAGE_CHARS)
                        .collect();
                    error.message = format!("{short}…");
                }
                Code::InvalidInput.as_str().to_owned()
            }
            None if has_path => {
                tracing::error!(
                    request_id,
                    error = %error.message,
                    "uncoded execution error"
                );
                error.message = "internal error".to_owned();
                Code::Internal.as_str().to_owned()
            }
            None => Code::InvalidInput.as_str().to_owned(),
        };
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if code == Code::Internal.as_str() {
            extensions.set("requestId", request_id);
        }
        extensions.set("code", code);
    }
}

async fn execute(
    state: SharedState,
    client: ClientAddr,
    headers: HeaderMap,
    params: Params,
    media: MediaType,
    via_get: bool,
) -> Response {
    let started = Instant::now();
    let request_id = request_id(&headers);
    if let Some(response) = check_sizes(&state, &headers, &params, media) {
        return response;
    }
    let (query, register) = match resolve_persisted(&state, &params, media) {
        Ok(resolved) => resolved,
        Err(response) => return *response,
    };
    let viewer = match authenticate(&state, &headers).await {
        Ok(viewer) => viewer,
        Err(failure) => {
            let (status, code, message) = match failure {
                AuthFailure::Rejected => (
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    "access token is invalid or expired",
                ),
                AuthFailure::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Unavailable,
                    "the service is temporarily unavailable; retry later",
                ),
            };
            record(
                &request_id,
                params.operation_name.as_deref(),
                "unknown",
                code.as_str(),
                status.as_u16(),
                started,
            );
            let mut response = request_error(status, media, code, message);
            if failure == AuthFailure::Unavailable {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            return response;
        }
    };
    let limits = &state.query_limits;
    let ticket = CostTicket::new(
        crate::cost::budget_key(viewer.as_ref(), &client),
        limits.budget.clone(),
    );
    let mut request = async_graphql::Request::new(query.as_str());
    if let Some(name) = &params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        request = request.variables(async_graphql::Variables::from_json(variables));
    }
    let inspection = crate::admission::admit(&state, &mut request, Some(&ticket), via_get);
    let kind = inspection.kind;
    let response = match inspection.refusal {
        Some(refusal) => async_graphql::Response::from_errors(vec![refusal]),
        None => {
            let mut request = nova_graphql::prepare_request(request, &state.services, viewer);
            if let Ok(client) = crate::rate_limit::CLIENT.try_with(Clone::clone) {
                request = request.data(nova_graphql::RequestLimits(Arc::new(client)));
            }
            let span = tracing::info_span!("graphql", request_id = %request_id);
            let executed =
                tokio::time::timeout(state.config.request_timeout, state.schema.execute(request))
                    .instrument(span)
                    .await;
            let Ok(response) = executed else {
                record(
                    &request_id,
                    params.operation_name.as_deref(),
                    kind,
                    "UNAVAILABLE",
                    503,
                    started,
                );
                return request_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    media,
                    Code::Unavailable,
                    "the request took too long and was cancelled",
                );
            };
            response
        }
    };
    let max_cost = limits.config.caps.max_cost;
    if let Some(budget_state) = ticket.throttled() {
        record(
            &request_id,
            params.operation_name.as_deref(),
            kind,
            "RATE_LIMITED",
            429,
            started,
        );
        return throttled_response(&response, &ticket, &budget_state, media, max_cost);
    }
    if inspection.mutation_over_get {
        ticket.settle(None, max_cost);
        record(
            &request_id,
            params.operation_name.as_deref(),
            "mutation",
            "INVALID_INPUT",
            405,
            started,
        );
        let mut response = request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            Code::InvalidInput,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let failed_before_execution = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut response = response;
    let cost = ticket.settle(Some(&response.data), max_cost);
    if let (Some(hash), false) = (register, failed_before_execution) {
        limits.persisted.insert(hash, &query);
    }
    sort_errors(&mut response.errors, &request_id);
    let outcome = response
        .errors
        .first()
        .map_or("OK", |error| error_code(error).unwrap_or("ERROR"))
        .to_owned();
    let status = if failed_before_execution {
        match media {
            MediaType::GraphqlResponseJson => StatusCode::BAD_REQUEST,
            MediaType::Json => StatusCode::OK,
        }
    } else if wholly_unavailable(&response) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut extensions: Map<String, Value> = response
        .extensions
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), serde_json::to_value(value).ok()?)))
        .collect();
    if let Some((report, _)) = &cost {
        extensions.insert("cost".into(), report.clone());
    }
    let body = ResponseBody {
        data: (!failed_before_execution).then_some(&response.data),
        errors: &response.errors,
        extensions,
    };
    let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    record(
        &request_id,
        params.operation_name.as_deref(),
        kind,
        &outcome,
        status.as_u16(),
        started,
    );
    let mut http_response = (status, body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        http_response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    http_response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    if let Some((_, Some(budget_state))) = &cost {
        crate::cost::budget_headers(http_response.headers_mut(), budget_state);
    }
    http_response
}

/// Counts the bytes a value serialises to without keeping them.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Header and variables sizes: 431 for headers over `max_header_bytes` (names and values
/// together), 413 for `variables` over `max_variables_bytes` of JSON.
fn check_sizes(
    state: &GatewayState,
    headers: &HeaderMap,
    params: &Params,
    media: MediaType,
) -> Option<Response> {
    let config = &state.query_limits.config;
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > config.max_header_bytes {
        let message = format!("request headers exceed {} bytes", config.max_header_bytes);
        return Some(request_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            media,
            Code::InvalidInput,
            &message,
        ));
    }
    if let Some(variables) = &params.variables {
        let mut counter = ByteCounter(0);
        let too_large = serde_json::to_writer(&mut counter, variables).is_err()
            || counter.0 > config.max_variables_bytes;
        if too_large {
            let message = format!("variables exceed {} bytes", config.max_variables_bytes);
            return Some(request_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                media,
                Code::InvalidInput,
                &message,
            ));
        }
    }
    None
}

/// The query text to run and, for a persisted query sent in full, the hash to remember it by
/// once it ran. A hash-only request for an unknown hash gets Apollo's `PersistedQueryNotFound`
/// (a request error, so 400 under `application/graphql-response+json`, 200 under
/// `application/json` as Apollo clients expect); a query whose SHA-256 is not the given hash is
/// a 400.
fn resolve_persisted(
    state: &GatewayState,
    params: &Params,
    media: MediaType,
) -> Result<(String, Option<String>), Box<Response>> {
    let Some(persisted) = &params.persisted else {
        return Ok((params.query.clone(), None));
    };
    if !params.query.is_empty() {
        if !persisted.matches(&params.query) {
            return Err(Box::new(request_error(
                StatusCode::BAD_REQUEST,
                media,
                Code::InvalidInput,
                crate::cost::apq::MISMATCH,
            )));
        }
        return Ok((params.query.clone(), Some(persisted.hash.clone())));
    }
    match state.query_limits.persisted.get(&persisted.hash) {
        Some(query) => Ok((query.to_string(), None)),
        None => {
            let body = json!({ "errors": [{
                "message": crate::cost::apq::NOT_FOUND,
                "extensions": {
                    "code": Code::InvalidInput.as_str(),
                    "persistedQuery": "PERSISTED_QUERY_NOT_FOUND",
                },
            }] });
            let status = match media {
                MediaType::GraphqlResponseJson => StatusCode::BAD_REQUEST,
                MediaType::Json => StatusCode::OK,
            };
            let mut response = (status, body.to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(media.as_str()),
            );
            Err(Box::new(response))
        }
    }
}

/// The 429 for a request whose estimated cost exceeds what its caller has left.
fn throttled_response(
    response: &async_graphql::Response,
    ticket: &CostTicket,
    budget_state: &crate::cost::BudgetState,
    media: MediaType,
    max_cost: u64,
) -> Response {
    let retry_after = crate::cost::retry_after_secs(budget_state);
    let message = response
        .errors
        .iter()
        .map(|e| e.message.clone())
        .find(|m| m.starts_with("query cost"))
        .unwrap_or_else(|| "query cost budget exhausted".to_owned());
    let report = ticket
        .settle(None, max_cost)
        .map_or(Value::Null, |(report, _)| report);
    let body = json!({
        "errors": [{
            "message": message,
            "extensions": { "code": Code::RateLimited.as_str(), "retryAfter": retry_after },
        }],
        "extensions": { "cost": report },
    });
    let mut http_response = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    let headers = http_response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    crate::cost::budget_headers(headers, budget_state);
    http_response
}

/// Seconds a client should wait before retrying a request shed for overload.
const RETRY_AFTER_SECS: &str = "1";

/// The whole request failed because the service is overloaded or a dependency is down: every
/// error is UNAVAILABLE and no root field produced data. Such a response is a 503 with
/// Retry-After, so clients and load balancers back off; a partial failure stays a 200.
fn wholly_unavailable(response: &async_graphql::Response) -> bool {
    let all_unavailable = !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e| error_code(e) == Some(Code::Unavailable.as_str()));
    let no_data = match &response.data {
        async_graphql::Value::Null => true,
        async_graphql::Value::Object(fields) => {
            fields.values().all(|v| *v == async_graphql::Value::Null)
        }
        _ => false,
    };
    all_unavailable && no_data
}

/// One log line and the metrics of a GraphQL request. Never the query, variables or tokens.
fn record(
    request_id: &str,
    operation_name: Option<&str>,
    operation_type: &'static str,
    outcome: &str,
    status: u16,
    started: Instant,
) {
    let elapsed = started.elapsed();
    let name: String = operation_name.unwrap_or("-").chars().take(64).collect();
    tracing::info!(
        target: "nova::request",
        request_id,
        operation_name = %name,
        operation_type,
        outcome,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "graphql request"
    );
    let outcome_label = if outcome == "OK" {
        "ok".to_owned()
    } else {
        outcome.to_ascii_lowercase()
    };
    metrics::counter!("nova_graphql_requests_total", "operation_type" => operation_type, "outcome" => outcome_label).increment(1);
    metrics::histogram!("nova_graphql_request_duration_seconds", "operation_type" => operation_type).record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(message: &str, path: Option<&str>, code: Option<&str>) -> ServerError {
        let mut error = ServerError::new(message, None);
        if let Some(path) = path {
            error.path = vec![async_graphql::PathSegment::Field(path.to_owned())];
        }
        if let Some(code) = code {
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", code);
            error.extensions = Some(extensions);
        }
        error
    }

    fn code(error: &ServerError) -> Option<&str> {
        error_code(error)
    }

    #[test]
    fn uncoded_execution_errors_are_masked_and_request_and_argument_errors_are_invalid_input() {
        let long = format!(
            "Expected input type \"CreatePostInput\", found \"{}\".",
            "x".repeat(10_000)
        );
        let mut errors = vec![
            error("database exploded at 10.0.0.1", Some("me"), None),
            error("Unknown field \"x\"", None, None),
            error("no", Some("a"), Some("FORBIDDEN")),
            error("Failed to parse \"Int\": Only integers from -2147483648 to 2147483647 are accepted.", Some("homeFeed"), None),
            error(&long, Some("createPost"), None),
        ];
        sort_errors(&mut errors, "req-1");
        assert_eq!(errors[0].message, "internal error");
        assert_eq!(code(&errors[0]), Some("INTERNAL"));
        assert_eq!(
            errors[0]
                .extensions
                .as_ref()
                .and_then(|e| e.get("requestId")),
            Some(&async_graphql::Value::from("req-1"))
        );
        assert_eq!(code(&errors[1]), Some("INVALID_INPUT"));
        assert_eq!(code(&errors[2]), Some("FORBIDDEN"));
        assert_eq!(code(&errors[3]), Some("INVALID_INPUT"));
        assert!(errors[3].message.starts_with("Failed to parse"));
        assert_eq!(code(&errors[4]), Some("INVALID_INPUT"));
        assert!(errors[4].message.chars().count() <= MAX_ARGUMENT_MESSAGE_CHARS + 1);
        let body = serde_json::to_value(ResponseBody {
            data: None,
            errors: &errors[..1],
            extensions: Map::new(),
        })
        .expect("serialises");
        assert_eq!(
            body,
            json!({ "errors": [{ "message": "internal error", "path": ["me"],
                "extensions": { "code": "INTERNAL", "requestId": "req-1" } }] })
        );
    }

    #[test]
    fn only_a_request_that_failed_entirely_for_unavailability_is_a_503() {
        let unavailable = || error("busy", None, Some("UNAVAILABLE"));
        let forbidden = || error("no", None, Some("FORBIDDEN"));
        let response = |data: serde_json::Value, errors: Vec<ServerError>| {
            let mut response = async_graphql::Response::new(
                async_graphql::Value::from_json(data).expect("valid JSON"),
            );
            response.errors = errors;
            response
        };
        assert!(wholly_unavailable(&response(
            json!(null),
            vec![unavailable()]
        )));
        assert!(wholly_unavailable(&response(
            json!({ "a": null, "b": null }),
            vec![unavailable(), unavailable()]
        )));
        assert!(!wholly_unavailable(&response(
            json!({ "a": 1, "b": null }),
            vec![unavailable()]
        )));
        assert!(!wholly_unavailable(&response(
            json!(null),
            vec![unavailable(), forbidden()]
        )));
        assert!(!wholly_unavailable(&response(json!({ "a": 1 }), vec![])));
    }
}
