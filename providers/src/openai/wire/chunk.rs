//! Chunks of a streamed OpenAI response and their conversion to [`StreamEvent`]s.

use serde::Deserialize;

use super::{ErrorDetail, WireUsage, finish_reason};
use crate::StreamEvent;

/// The `data` of one server-sent event: a `chat.completion.chunk`, or an error object that
/// OpenAI sends in place of a chunk when generation fails after the 200 status.
#[derive(Debug, Deserialize)]
pub(in crate::openai) struct StreamPayload {
    pub(in crate::openai) error: Option<ErrorDetail>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<DeltaToolCall>,
}

#[derive(Debug, Deserialize)]
struct DeltaToolCall {
    index: u32,
    id: Option<String>,
    function: Option<DeltaFunction>,
}

#[derive(Debug, Deserialize)]
struct DeltaFunction {
    name: Option<String>,
    arguments: Option<String>,
}

impl StreamPayload {
    /// Converts a chunk into events in wire order: text, tool call fragments, finish reason,
    /// usage. A refusal is streamed as text, as in the non-streamed response. Empty text
    /// fragments, such as the role-only first chunk, produce no event.
    pub(in crate::openai) fn into_events(self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        for choice in self.choices {
            let delta = choice.delta;
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    events.push(StreamEvent::TextDelta(text));
                }
            }
            for call in delta.tool_calls {
                let (name, arguments) = match call.function {
                    Some(function) => (function.name, function.arguments.unwrap_or_default()),
                    None => (None, String::new()),
                };
                events.push(StreamEvent::ToolCallDelta {
                    index: call.index,
                    id: call.id,
                    name,
                    arguments,
                });
            }
            if let Some(reason) = choice.finish_reason {
                events.push(StreamEvent::Finish(finish_reason(&reason)));
            }
        }
        if let Some(usage) = self.usage {
            events.push(StreamEvent::Usage(usage.into()));
        }
        events
    }
}
