//! Decoding of Gemini's server-sent event stream (`streamGenerateContent?alt=sse`) into
//! [`StreamEvent`]s.

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt, stream};

use super::errors::error_from_status;
use super::wire::{GenerateContentResponse, ResponseDecoder};
use crate::{EventStream, ProviderError, StreamEvent};

/// Decodes a response body into events.
///
/// Each event's `data` is a `GenerateContentResponse`. Gemini sends no end marker: the last
/// response carries the finish reason, and then the body ends. The usage of the last response
/// that reported it is emitted once, after the body ends, because every response carries
/// running totals rather than increments.
///
/// The stream ends with an `Err` item on an error object, on data that is not valid JSON, on
/// a transport failure, and when the body ends before a finish reason or a blocked prompt.
pub(super) fn decode_stream<S>(body: S) -> EventStream
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let state = DecodeState {
        events: Box::pin(body.eventsource()),
        decoder: ResponseDecoder::default(),
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
    decoder: ResponseDecoder,
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
            None => {
                state.ended = true;
                return end_of_body(&state.decoder).map(|batch| (batch, state));
            }
            Some(Err(error)) => Err(sse_error(error)),
            Some(Ok(event)) if event.data.trim().is_empty() => continue,
            Some(Ok(event)) => decode_event(&mut state.decoder, &event.data),
        };

        match batch {
            Ok(events) if events.is_empty() => continue,
            Ok(events) => return Some((events.into_iter().map(Ok).collect(), state)),
            Err(error) => {
                state.ended = true;
                return Some((vec![Err(error)], state));
            }
        }
    }
}

/// Returns the last batch once the body has ended: the final usage after a finish reason,
/// or an error when the body ended early.
fn end_of_body(decoder: &ResponseDecoder) -> Option<Batch> {
    if !decoder.is_finished() {
        let error = ProviderError::Unavailable(
            "stream ended before Gemini sent a finish reason".to_owned(),
        );
        return Some(vec![Err(error)]);
    }
    decoder
        .usage()
        .map(|usage| vec![Ok(StreamEvent::Usage(usage))])
}

/// Decodes the `data` of one event, which is a response or an error object.
fn decode_event(
    decoder: &mut ResponseDecoder,
    data: &str,
) -> Result<Vec<StreamEvent>, ProviderError> {
    let response: GenerateContentResponse = serde_json::from_str(data)
        .map_err(|error| ProviderError::Decode(format!("invalid stream response: {error}")))?;
    if let Some(status) = &response.error {
        return Err(error_from_status(status));
    }
    Ok(decoder.decode(response))
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
