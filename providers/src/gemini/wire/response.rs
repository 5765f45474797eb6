//! Gemini response bodies (replies, error objects, the model list) and their conversion to
//! [`StreamEvent`]s.

use serde::Deserialize;

use crate::{ChatResponse, FinishReason, ProviderError, ResponseAccumulator, StreamEvent, Usage};

/// One `GenerateContentResponse`: the whole reply of `generateContent`, or one server-sent
/// event of `streamGenerateContent`.
///
/// Google's JSON leaves out empty lists and zero counts, so every field is optional. Inside a
/// stream, an error object arrives in place of a response when generation fails after the
/// 200 status.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::gemini) struct GenerateContentResponse {
    pub(in crate::gemini) error: Option<ErrorStatus>,
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    /// Missing when the candidate was blocked or ran out of tokens before producing output.
    content: Option<CandidateContent>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<ResponsePart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponsePart {
    text: Option<String>,
    /// True for a summary of the model's reasoning, which is not part of the reply.
    #[serde(default)]
    thought: bool,
    function_call: Option<ResponseFunctionCall>,
}

#[derive(Debug, Deserialize)]
struct ResponseFunctionCall {
    /// Sent by newer models only.
    id: Option<String>,
    name: String,
    /// A JSON object. Missing for a call without arguments.
    args: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    /// Set when Gemini blocked the prompt, in which case there are no candidates.
    block_reason: Option<String>,
}

/// Token counts. In a stream every response carries the running totals so far.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    /// Prompt tokens, cached ones included.
    #[serde(default)]
    prompt_token_count: i64,
    /// Tokens of the results of Gemini's built-in tools, billed as input.
    #[serde(default)]
    tool_use_prompt_token_count: i64,
    /// Reply tokens, reasoning excluded.
    #[serde(default)]
    candidates_token_count: i64,
    cached_content_token_count: Option<i64>,
    thoughts_token_count: Option<i64>,
}

impl From<UsageMetadata> for Usage {
    /// Output tokens are `candidatesTokenCount + thoughtsTokenCount`, because Gemini bills
    /// reasoning as output but counts it apart from the reply. `thoughtsTokenCount` is also
    /// reported as the reasoning part.
    fn from(usage: UsageMetadata) -> Self {
        Usage {
            input_tokens: usage.prompt_token_count + usage.tool_use_prompt_token_count,
            output_tokens: usage.candidates_token_count + usage.thoughts_token_count.unwrap_or(0),
            cached_input_tokens: usage.cached_content_token_count,
            reasoning_tokens: usage.thoughts_token_count,
        }
    }
}

/// Maps Gemini's `finishReason`. A `STOP` after function calls is turned into
/// [`FinishReason::ToolCalls`] by [`ResponseDecoder`], because Gemini reports both the same way.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        "MALFORMED_FUNCTION_CALL" => FinishReason::Error,
        _ => FinishReason::Other,
    }
}

/// Converts the responses of one request into events, and keeps the state that spans them:
/// the number of tool calls so far, whether a finish reason arrived, and the latest usage.
#[derive(Debug, Default)]
pub(in crate::gemini) struct ResponseDecoder {
    tool_calls: u32,
    finished: bool,
    usage: Option<Usage>,
}

impl ResponseDecoder {
    /// Converts one response into events in wire order: text, tool calls, finish reason.
    ///
    /// Usage is not among the events: each response carries running totals, so the caller
    /// reads the final totals from [`ResponseDecoder::usage`] at the end. Only the first
    /// candidate is read, because the request never sets a candidate count above one. Reasoning
    /// summaries and empty text produce no event. A blocked prompt gives
    /// [`FinishReason::ContentFilter`].
    pub(in crate::gemini) fn decode(
        &mut self,
        response: GenerateContentResponse,
    ) -> Vec<StreamEvent> {
        if let Some(usage) = response.usage_metadata {
            self.usage = Some(usage.into());
        }

        let mut events = Vec::new();
        let blocked = response
            .prompt_feedback
            .is_some_and(|feedback| feedback.block_reason.is_some());
        if blocked {
            self.finished = true;
            events.push(StreamEvent::Finish(FinishReason::ContentFilter));
            return events;
        }

        let Some(candidate) = response.candidates.into_iter().next() else {
            return events;
        };
        let parts = candidate.content.map(|content| content.parts);
        for part in parts.into_iter().flatten().filter(|part| !part.thought) {
            if let Some(text) = part.text
                && !text.is_empty()
            {
                events.push(StreamEvent::TextDelta(text));
            }
            if let Some(call) = part.function_call {
                events.push(self.tool_call_event(call));
            }
        }
        if let Some(reason) = candidate.finish_reason {
            self.finished = true;
            events.push(StreamEvent::Finish(self.finish_reason(&reason)));
        }
        events
    }

    /// Returns whether a finish reason or a blocked prompt has arrived.
    pub(in crate::gemini) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Returns the usage of the latest response that reported it.
    pub(in crate::gemini) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Converts a whole function call into one event. Gemini sends the arguments as a JSON
    /// object rather than in text fragments, and often sends no call id, so one is generated.
    fn tool_call_event(&mut self, call: ResponseFunctionCall) -> StreamEvent {
        let index = self.tool_calls;
        self.tool_calls += 1;

        let id = call
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(generate_call_id);
        let arguments = match call.args {
            None | Some(serde_json::Value::Null) => "{}".to_owned(),
            Some(args) => args.to_string(),
        };
        StreamEvent::ToolCallDelta {
            index,
            id: Some(id),
            name: Some(call.name),
            arguments,
        }
    }

    fn finish_reason(&self, reason: &str) -> FinishReason {
        match finish_reason(reason) {
            FinishReason::Stop if self.tool_calls > 0 => FinishReason::ToolCalls,
            mapped => mapped,
        }
    }
}

/// Prefix of the tool call ids generated for calls that Gemini sent without one.
pub(in crate::gemini) const GENERATED_CALL_ID_PREFIX: &str = "call_";

/// Generates a tool call id that is unique across requests, so that stored conversations
/// never hold two calls with the same id.
fn generate_call_id() -> String {
    format!(
        "{GENERATED_CALL_ID_PREFIX}{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// Converts the body of a successful `generateContent` call.
///
/// A response without candidates is valid only when Gemini blocked the prompt. Any other is
/// a decode error. The body's `error` field is checked by the caller first.
pub(in crate::gemini) fn chat_response(
    response: GenerateContentResponse,
) -> Result<ChatResponse, ProviderError> {
    let blocked = response
        .prompt_feedback
        .as_ref()
        .is_some_and(|feedback| feedback.block_reason.is_some());
    if response.candidates.is_empty() && !blocked {
        return Err(ProviderError::Decode(
            "response contains no candidates".to_owned(),
        ));
    }

    let mut decoder = ResponseDecoder::default();
    let mut accumulator = ResponseAccumulator::new();
    for event in decoder.decode(response) {
        accumulator.push(&event);
    }
    if let Some(usage) = decoder.usage() {
        accumulator.push(&StreamEvent::Usage(usage));
    }
    Ok(accumulator.into_response())
}

/// Google's error body: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Debug, Deserialize)]
pub(in crate::gemini) struct ErrorBody {
    pub(in crate::gemini) error: ErrorStatus,
}

/// A `google.rpc.Status`.
#[derive(Debug, Default, Deserialize)]
pub(in crate::gemini) struct ErrorStatus {
    /// The HTTP status code, such as 429.
    pub(in crate::gemini) code: Option<u16>,
    #[serde(default)]
    pub(in crate::gemini) message: String,
    /// The canonical code name, such as `RESOURCE_EXHAUSTED`.
    pub(in crate::gemini) status: Option<String>,
    #[serde(default)]
    pub(in crate::gemini) details: Vec<StatusDetail>,
}

/// One entry of `details`. Only the fields of `ErrorInfo` and `RetryInfo` that the error
/// mapping reads are kept.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::gemini) struct StatusDetail {
    /// The `ErrorInfo` reason, such as `API_KEY_INVALID`.
    pub(in crate::gemini) reason: Option<String>,
    /// The `RetryInfo` delay as a protobuf duration, such as `"7s"` or `"0.5s"`.
    pub(in crate::gemini) retry_delay: Option<String>,
}

/// Body of `GET /models`, parsed only to check that the response is a model list.
#[derive(Debug, Deserialize)]
pub(in crate::gemini) struct ModelList {
    #[allow(dead_code, reason = "deserialized to check the body's shape")]
    models: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests;
