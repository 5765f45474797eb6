//! Decoding of Anthropic's server-sent event stream into [`StreamEvent`]s.

use std::collections::HashMap;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt, stream};

use super::errors::error_from_detail;
use super::wire::{BlockDelta, StartBlock, StreamPayload, WireUsage, finish_reason};
use crate::{EventStream, FinishReason, ProviderError, StreamEvent};

/// Decodes a response body into events.
///
/// The stream ends after `message_stop`, which produces the finish reason and then the
/// usage. It ends with an `Err` item on an `error` event, on a payload that is not valid
/// JSON, on a transport failure, and when the body ends before `message_stop`. `ping` events
/// and other events that carry no text, tool call or usage are skipped.
pub(super) fn decode_stream<S>(body: S) -> EventStream
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let state = DecodeState {
        events: Box::pin(body.eventsource()),
        message: MessageState::default(),
        ended: false,
    };
    Box::pin(stream::unfold(state, next_batch).flat_map(stream::iter))
}

type SseStream = std::pin::Pin<
    Box<
        dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

struct DecodeState {
    events: SseStream,
    message: MessageState,
    ended: bool,
}

type Batch = Vec<Result<StreamEvent, ProviderError>>;

/// Reads server-sent events until one produces stream events, and returns them.
async fn next_batch(mut state: DecodeState) -> Option<(Batch, DecodeState)> {
    if state.ended {
        return None;
    }

    loop {
        let batch = match state.events.next().await {
            None => Err(ProviderError::Unavailable(
                "stream ended before message_stop".to_owned(),
            )),
            Some(Err(error)) => Err(sse_error(error)),
            Some(Ok(event)) if event.data.trim().is_empty() => continue,
            Some(Ok(event)) => decode_payload(&event.data).and_then(|payload| {
                state.ended = matches!(payload, StreamPayload::MessageStop);
                state.message.apply(payload)
            }),
        };

        match batch {
            Ok(events) if events.is_empty() && !state.ended => continue,
            Ok(events) => return Some((events.into_iter().map(Ok).collect(), state)),
            Err(error) => {
                state.ended = true;
                return Some((vec![Err(error)], state));
            }
        }
    }
}

fn decode_payload(data: &str) -> Result<StreamPayload, ProviderError> {
    serde_json::from_str(data)
        .map_err(|error| ProviderError::Decode(format!("invalid stream event: {error}")))
}

/// The tool calls, usage and stop reason that the stream has reported so far.
#[derive(Debug, Default)]
struct MessageState {
    /// The tool call index of each `tool_use` block, by content block index. Anthropic counts
    /// text and thinking blocks in the content block index, so the first tool call may be
    /// block 1 while its [`StreamEvent::ToolCallDelta`] index is 0.
    tool_indices: HashMap<u32, u32>,
    /// `None` until `message_start` or `message_delta` reports usage.
    usage: Option<WireUsage>,
    stop_reason: Option<String>,
}

impl MessageState {
    /// Converts one payload into events, keeping the usage and stop reason for the end.
    fn apply(&mut self, payload: StreamPayload) -> Result<Vec<StreamEvent>, ProviderError> {
        let events = match payload {
            StreamPayload::MessageStart { message } => {
                self.update_usage(message.usage);
                Vec::new()
            }
            StreamPayload::ContentBlockStart {
                index,
                content_block,
            } => self.start_block(index, content_block),
            StreamPayload::ContentBlockDelta { index, delta } => self.block_delta(index, delta)?,
            StreamPayload::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                self.update_usage(usage);
                Vec::new()
            }
            StreamPayload::MessageStop => self.finish(),
            StreamPayload::Error { error } => return Err(error_from_detail(&error)),
            StreamPayload::Other => Vec::new(),
        };
        Ok(events)
    }

    fn update_usage(&mut self, reported: Option<WireUsage>) {
        if let Some(reported) = reported {
            self.usage.get_or_insert_default().update(reported);
        }
    }

    fn start_block(&mut self, index: u32, block: StartBlock) -> Vec<StreamEvent> {
        match block {
            StartBlock::Text { text } => text_event(text),
            StartBlock::ToolUse { id, name } => {
                let tool_index = u32::try_from(self.tool_indices.len()).unwrap_or(u32::MAX);
                self.tool_indices.insert(index, tool_index);
                vec![StreamEvent::ToolCallDelta {
                    index: tool_index,
                    id: Some(id),
                    name: Some(name),
                    arguments: String::new(),
                }]
            }
            StartBlock::Other => Vec::new(),
        }
    }

    fn block_delta(
        &self,
        index: u32,
        delta: BlockDelta,
    ) -> Result<Vec<StreamEvent>, ProviderError> {
        match delta {
            BlockDelta::TextDelta { text } => Ok(text_event(text)),
            BlockDelta::InputJsonDelta { partial_json } => {
                let Some(&tool_index) = self.tool_indices.get(&index) else {
                    return Err(ProviderError::Decode(format!(
                        "input_json_delta for content block {index}, which is not a tool_use block"
                    )));
                };
                if partial_json.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![StreamEvent::ToolCallDelta {
                    index: tool_index,
                    id: None,
                    name: None,
                    arguments: partial_json,
                }])
            }
            BlockDelta::Other => Ok(Vec::new()),
        }
    }

    /// Produces the finish reason and, when the stream reported any, the final usage.
    fn finish(&mut self) -> Vec<StreamEvent> {
        let reason = self
            .stop_reason
            .as_deref()
            .map_or(FinishReason::Other, finish_reason);
        let mut events = vec![StreamEvent::Finish(reason)];
        if let Some(usage) = self.usage.take() {
            events.push(StreamEvent::Usage(usage.into()));
        }
        events
    }
}

/// Returns a text delta event, or none for empty text such as a text block's start.
fn text_event(text: String) -> Vec<StreamEvent> {
    if text.is_empty() {
        return Vec::new();
    }
    vec![StreamEvent::TextDelta(text)]
}

fn sse_error(error: EventStreamError<reqwest::Error>) -> ProviderError {
    match error {
        EventStreamError::Transport(error) => ProviderError::from_transport(&error),
        EventStreamError::Utf8(error) => {
            ProviderError::Decode(format!("stream is not valid UTF-8: {error}"))
        }
        EventStreamError::Parser(error) => {
            ProviderError::Decode(format!("invalid server-sent event: {error}"))
        }
    }
}

#[cfg(test)]
mod tests;
