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
    /// Groq's metadata: the stream's usage in the last chunk, or why the stream stopped early.
    x_groq: Option<XGroq>,
}

#[derive(Debug, Deserialize)]
struct XGroq {
    usage: Option<WireUsage>,
    error: Option<String>,
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
    /// Returns Groq's reason for stopping the stream early, when this chunk carries one.
    pub(in crate::openai) fn early_stop_reason(&self) -> Option<&str> {
        self.x_groq.as_ref()?.error.as_deref()
    }

    /// Returns whether a choice of this chunk carries refusal text.
    pub(in crate::openai) fn has_refusal(&self) -> bool {
        self.choices.iter().any(|choice| {
            choice
                .delta
                .refusal
                .as_deref()
                .is_some_and(|text| !text.is_empty())
        })
    }

    /// Converts a chunk into events in wire order: text, tool call fragments, finish reason,
    /// usage. A refusal is streamed as text, as in the non-streamed response. Empty text
    /// fragments, such as the role-only first chunk, produce no event. Usage comes from
    /// `usage`, or from Groq's `x_groq.usage` when `usage` is absent, so it is sent once.
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
        let groq_usage = self.x_groq.and_then(|x_groq| x_groq.usage);
        if let Some(usage) = self.usage.or(groq_usage) {
            events.push(StreamEvent::Usage(usage.into()));
        }
        events
    }
}
