//! Folding streamed events into a complete response.

use futures_util::StreamExt;

use crate::chat::parse_tool_arguments;
use crate::{ChatResponse, EventStream, FinishReason, ProviderError, StreamEvent, ToolCall, Usage};

/// Collects [`StreamEvent`]s into a [`ChatResponse`].
///
/// Callers that store partial replies push events one by one and read [`text`] and
/// [`usage`] when the stream fails half way.
///
/// [`text`]: ResponseAccumulator::text
/// [`usage`]: ResponseAccumulator::usage
#[derive(Debug, Default)]
pub struct ResponseAccumulator {
    text: String,
    tool_calls: Vec<PartialToolCall>,
    usage: Option<Usage>,
    finish_reason: Option<FinishReason>,
}

#[derive(Debug)]
struct PartialToolCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

impl ResponseAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one event. A later usage or finish event replaces an earlier one.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta(text) => self.text.push_str(text),
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let call = self.tool_call(*index);
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.clone_from(name);
                }
                call.arguments.push_str(arguments);
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Finish(reason) => self.finish_reason = Some(*reason),
        }
    }

    /// Returns the text received so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Returns the usage, if the provider has reported it yet.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Returns the finish reason, if the provider has reported it yet.
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish_reason
    }

    /// Builds the response, ordering tool calls by index. A stream that ended without a
    /// finish reason gets [`FinishReason::Other`].
    pub fn into_response(self) -> ChatResponse {
        let mut partial_calls = self.tool_calls;
        partial_calls.sort_by_key(|call| call.index);
        let tool_calls = partial_calls
            .into_iter()
            .map(|call| ToolCall {
                id: call.id,
                name: call.name,
                arguments: parse_tool_arguments(&call.arguments),
            })
            .collect();

        ChatResponse {
            text: self.text,
            tool_calls,
            usage: self.usage,
            finish_reason: self.finish_reason.unwrap_or(FinishReason::Other),
        }
    }

    fn tool_call(&mut self, index: u32) -> &mut PartialToolCall {
        let position = match self.tool_calls.iter().position(|call| call.index == index) {
            Some(position) => position,
            None => {
                self.tool_calls.push(PartialToolCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.tool_calls.len() - 1
            }
        };
        &mut self.tool_calls[position]
    }
}

/// Reads the whole stream into a response, returning the first error.
pub async fn collect_response(mut stream: EventStream) -> Result<ChatResponse, ProviderError> {
    let mut accumulator = ResponseAccumulator::new();
    while let Some(event) = stream.next().await {
        accumulator.push(&event?);
    }
    Ok(accumulator.into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool_delta(
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
    ) -> StreamEvent {
        StreamEvent::ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.to_owned(),
        }
    }

    #[test]
    fn interleaved_tool_calls_assembled() {
        let mut accumulator = ResponseAccumulator::new();
        for event in [
            tool_delta(1, Some("call_b"), Some("get_time"), ""),
            tool_delta(0, Some("call_a"), Some("get_weather"), "{\"city\":"),
            tool_delta(1, None, None, "{}"),
            tool_delta(0, None, None, "\"Paris\"}"),
            StreamEvent::Finish(FinishReason::ToolCalls),
        ] {
            accumulator.push(&event);
        }

        let response = accumulator.into_response();

        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(response.tool_calls[0].id, "call_a");
        assert_eq!(response.tool_calls[0].name, "get_weather");
        assert_eq!(response.tool_calls[0].arguments, json!({"city": "Paris"}));
        assert_eq!(response.tool_calls[1].id, "call_b");
        assert_eq!(response.tool_calls[1].arguments, json!({}));
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    }

    #[test]
    fn text_and_usage_kept_without_finish() {
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 2,
            ..Usage::default()
        };
        let mut accumulator = ResponseAccumulator::new();
        accumulator.push(&StreamEvent::TextDelta("Hel".into()));
        accumulator.push(&StreamEvent::TextDelta("lo".into()));
        accumulator.push(&StreamEvent::Usage(usage));

        assert_eq!(accumulator.text(), "Hello");
        assert_eq!(accumulator.usage(), Some(usage));
        assert_eq!(accumulator.finish_reason(), None);
        assert_eq!(
            accumulator.into_response().finish_reason,
            FinishReason::Other
        );
    }
}
