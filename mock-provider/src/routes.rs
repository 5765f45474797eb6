//! The router: every format's routes, the model list that OpenAI and Anthropic share, the
//! control routes under `/mock/`, and the 404 for other paths.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::openai::{self, Dialect};
use crate::state::MockState;
use crate::{anthropic, control, gemini, groq, ollama};

pub(crate) fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .merge(openai::routes())
        .merge(anthropic::routes())
        .merge(gemini::routes())
        .merge(groq::routes())
        .merge(ollama::routes())
        .merge(control::routes())
        .route("/v1/models", get(list_models))
        .fallback(not_found)
        .with_state(state)
}

/// Returns Anthropic's model list to a request with Anthropic's headers, and OpenAI's to
/// any other, because both providers list models at `GET /v1/models`.
async fn list_models(uri: Uri, headers: HeaderMap) -> Response {
    if anthropic::is_anthropic_request(&headers) {
        anthropic::list_models(&uri, &headers)
    } else {
        openai::list_models(Dialect::OpenAi, &uri, &headers)
    }
}

/// Responds to an unknown path with an OpenAI error body, which names the method and path.
async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("Invalid URL ({method} {})", uri.path());
    let body = openai::error_body(&message, "invalid_request_error", None, None);
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}
