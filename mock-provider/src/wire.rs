//! OpenAI Chat Completions JSON bodies and server-sent event frames that the mock sends.

use serde_json::{Value, json};

/// Fields shared by every chunk of one reply.
pub(crate) struct ReplyHeader {
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
    /// Whether the request set `stream_options.include_usage`. OpenAI then adds
    /// `"usage": null` to every chunk and sends a final chunk with usage and no choices.
    pub(crate) include_usage: bool,
}

impl ReplyHeader {
    /// Builds a `chat.completion.chunk` with one choice.
    pub(crate) fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// Builds the final chunk, which carries usage and an empty `choices` array.
    pub(crate) fn usage_chunk(&self, prompt_tokens: i64, completion_tokens: i64) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage(prompt_tokens, completion_tokens),
        })
    }

    /// Builds a non-streamed `chat.completion` with one choice.
    pub(crate) fn completion(
        &self,
        text: &str,
        finish_reason: &str,
        prompt_tokens: i64,
        completion_tokens: i64,
    ) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
            "usage": usage(prompt_tokens, completion_tokens),
        })
    }
}

fn usage(prompt_tokens: i64, completion_tokens: i64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    })
}

/// Builds OpenAI's error body.
pub(crate) fn error_body(
    message: &str,
    error_type: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": param, "code": code}})
}

/// Builds the body of `GET /v1/models`.
pub(crate) fn model_list() -> Value {
    json!({
        "object": "list",
        "data": [{
            "id": "mock-model",
            "object": "model",
            "created": 0,
            "owned_by": "mock-provider",
        }],
    })
}

/// Frames a JSON value as the `data` of one server-sent event.
pub(crate) fn sse_data(data: &Value) -> String {
    format!("data: {data}\n\n")
}

/// An SSE comment line that clients must skip, sent before the first chunk.
pub(crate) const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// The event that ends a successful stream.
pub(crate) const DONE: &str = "data: [DONE]\n\n";
