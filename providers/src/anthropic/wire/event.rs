//! The `data` payloads of Anthropic's server-sent events.

use serde::Deserialize;

use super::{ErrorDetail, WireUsage};

/// The `data` of one server-sent event, tagged by its `type` field, which repeats the SSE
/// event name.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(in crate::anthropic) enum StreamPayload {
    /// Starts the message and reports the input token counts.
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    /// Reports the stop reason and the running totals of the token counts.
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Option<WireUsage>,
    },
    /// The end marker of a complete stream.
    MessageStop,
    /// A failure after the 200 status, such as `overloaded_error`.
    Error {
        error: ErrorDetail,
    },
    /// `ping`, `content_block_stop` and event types added later, which carry nothing the
    /// normalised events need.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(in crate::anthropic) struct StartMessage {
    pub(in crate::anthropic) usage: Option<WireUsage>,
}

/// The first state of a content block, before its deltas.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(in crate::anthropic) enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    /// A tool call. Its `input` is always `{}` here: the arguments follow as
    /// `input_json_delta` fragments.
    ToolUse { id: String, name: String },
    /// Thinking, redacted thinking and server tool blocks.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(in crate::anthropic) enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// A fragment of a tool call's arguments, which concatenate to JSON text.
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking, signature and citation deltas.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(in crate::anthropic) struct MessageDeltaBody {
    pub(in crate::anthropic) stop_reason: Option<String>,
}
