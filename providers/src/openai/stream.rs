//! Decoding of OpenAI's server-sent event stream into [`StreamEvent`]s.

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt, stream};

use super::errors::error_from_detail;
use super::wire::StreamPayload;
use crate::{EventStream, FinishReason, ProviderError, StreamEvent};

/// The `data` of the event that ends a successful stream.
const DONE: &str = "[DONE]";

/// Decodes a response body into events.
///
/// The stream ends after `data: [DONE]`. It ends with an `Err` item on an error object or
/// Groq's `x_groq.error`, on a chunk that is not valid JSON, on a transport failure, and
/// when the body ends before `[DONE]` without a finish reason. SSE comments such as
/// `: keep-alive` are skipped. A `stop` finish after refusal text is reported as
/// [`FinishReason::ContentFilter`], as in the non-streamed response.
pub(super) fn decode_stream<S>(body: S) -> EventStream
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let state = DecodeState {
        events: Box::pin(body.eventsource()),
        saw_finish: false,
        refused: false,
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
    saw_finish: bool,
    /// Whether refusal text has arrived, which turns a later `stop` into a content filter.
    refused: bool,
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
            None if state.saw_finish => return None,
            None => Err(ProviderError::Unavailable(
                "stream ended before [DONE] and without a finish reason".to_owned(),
            )),
            Some(Err(error)) => Err(sse_error(error)),
            Some(Ok(event)) if event.data.trim() == DONE => return None,
            Some(Ok(event)) => decode_event(&event.data, &mut state.refused),
        };

        match batch {
            Ok(events) if events.is_empty() => continue,
            Ok(events) => {
                state.saw_finish |= events
                    .iter()
                    .any(|event| matches!(event, StreamEvent::Finish(_)));
                return Some((events.into_iter().map(Ok).collect(), state));
            }
            Err(error) => {
                state.ended = true;
                return Some((vec![Err(error)], state));
            }
        }
    }
}

/// Decodes the `data` of one event, which is a chunk or an error object, and records in
/// `refused` whether refusal text has arrived.
fn decode_event(data: &str, refused: &mut bool) -> Result<Vec<StreamEvent>, ProviderError> {
    let payload: StreamPayload = serde_json::from_str(data)
        .map_err(|error| ProviderError::Decode(format!("invalid stream chunk: {error}")))?;
    if let Some(detail) = &payload.error {
        return Err(error_from_detail(detail));
    }
    if let Some(reason) = payload.early_stop_reason() {
        return Err(ProviderError::Unavailable(format!(
            "provider stopped the stream early: {reason}"
        )));
    }

    *refused |= payload.has_refusal();
    let mut events = payload.into_events();
    if *refused {
        for event in &mut events {
            if *event == StreamEvent::Finish(FinishReason::Stop) {
                *event = StreamEvent::Finish(FinishReason::ContentFilter);
            }
        }
    }
    Ok(events)
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
