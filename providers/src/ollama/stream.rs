//! Decoding of Ollama's newline-delimited JSON stream into [`StreamEvent`]s.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};

use super::errors::error_from_message;
use super::wire::ChatChunk;
use crate::{EventStream, ProviderError, StreamEvent};

/// Maximum length of one line. A line contains one token or one set of tool calls, so a
/// longer line means the server is not sending newline-delimited JSON.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Decodes a response body into events.
///
/// The stream ends after the line with `done: true`, and any bytes after it are ignored. It
/// ends with an `Err` item on an `{"error": "..."}` line, on a line that is not valid JSON,
/// on a transport failure, and when the body ends before the `done` line. Blank lines are
/// skipped. The last line may lack its newline. When such a line is incomplete JSON, the
/// body was cut in the middle of the line, and the error is [`ProviderError::Unavailable`].
pub(super) fn decode_stream<S>(body: S) -> EventStream
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let state = DecodeState {
        body: Box::pin(body),
        body_ended: false,
        lines: LineDecoder::default(),
        tool_call_count: 0,
        ended: false,
    };
    Box::pin(stream::unfold(state, next_batch).flat_map(stream::iter))
}

type Body = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

struct DecodeState {
    body: Body,
    body_ended: bool,
    lines: LineDecoder,
    /// Tool calls seen so far, which numbers the next call.
    tool_call_count: u32,
    ended: bool,
}

type Batch = Vec<Result<StreamEvent, ProviderError>>;

/// Reads lines until one produces events, and returns them.
async fn next_batch(mut state: DecodeState) -> Option<(Batch, DecodeState)> {
    if state.ended {
        return None;
    }

    loop {
        let decoded = match read_line(&mut state).await {
            Ok(Some(line)) => decode_line(&line, &mut state.tool_call_count),
            Ok(None) => Err(ProviderError::Unavailable(
                "stream ended before the line with done: true".to_owned(),
            )),
            Err(error) => Err(error),
        };

        match decoded {
            Ok(chunk) if chunk.events.is_empty() && !chunk.done => continue,
            Ok(chunk) => {
                state.ended = chunk.done;
                return Some((chunk.events.into_iter().map(Ok).collect(), state));
            }
            Err(error) => {
                state.ended = true;
                return Some((vec![Err(error)], state));
            }
        }
    }
}

/// One line of the body, without its line ending.
struct Line {
    bytes: Bytes,
    /// False for bytes after the last newline, which the body ended without terminating.
    terminated: bool,
}

/// Returns the next line that is not blank, reading the body as needed. `None` means the
/// body ended.
async fn read_line(state: &mut DecodeState) -> Result<Option<Line>, ProviderError> {
    loop {
        let line = if state.body_ended {
            match state.lines.finish() {
                Some(bytes) => Line {
                    bytes,
                    terminated: false,
                },
                None => return Ok(None),
            }
        } else {
            match state.lines.next_line()? {
                Some(bytes) => Line {
                    bytes,
                    terminated: true,
                },
                None => {
                    match state.body.next().await {
                        Some(Ok(bytes)) => state.lines.push(&bytes),
                        Some(Err(error)) => return Err(ProviderError::from_transport(&error)),
                        None => state.body_ended = true,
                    }
                    continue;
                }
            }
        };

        if !line.bytes.trim_ascii().is_empty() {
            return Ok(Some(line));
        }
    }
}

/// The events of one line, and whether it was the final line.
struct DecodedLine {
    events: Vec<StreamEvent>,
    done: bool,
}

fn decode_line(line: &Line, tool_call_count: &mut u32) -> Result<DecodedLine, ProviderError> {
    let chunk: ChatChunk = serde_json::from_slice(&line.bytes).map_err(|error| {
        if !line.terminated && error.is_eof() {
            ProviderError::Unavailable("stream ended in the middle of a line".to_owned())
        } else {
            ProviderError::Decode(format!("invalid stream line: {error}"))
        }
    })?;
    if let Some(message) = chunk.error {
        return Err(error_from_message(message));
    }

    let done = chunk.done;
    Ok(DecodedLine {
        events: chunk.into_events(tool_call_count),
        done,
    })
}

/// Splits bytes that arrive in arbitrary pieces into lines ended by `\n`.
#[derive(Debug, Default)]
pub(super) struct LineDecoder {
    buffer: BytesMut,
    /// Bytes at the start of `buffer` already searched for a newline.
    searched: usize,
}

impl LineDecoder {
    /// Appends received bytes.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Removes and returns the next complete line, without its `\n` or `\r\n`.
    ///
    /// Returns [`ProviderError::Decode`] when more than [`MAX_LINE_BYTES`] arrived without a
    /// newline.
    pub(super) fn next_line(&mut self) -> Result<Option<Bytes>, ProviderError> {
        let Some(offset) = self.buffer[self.searched..]
            .iter()
            .position(|&byte| byte == b'\n')
        else {
            self.searched = self.buffer.len();
            if self.buffer.len() > MAX_LINE_BYTES {
                return Err(ProviderError::Decode(format!(
                    "stream line is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            return Ok(None);
        };

        let mut line = self.buffer.split_to(self.searched + offset + 1);
        self.searched = 0;
        line.truncate(line.len() - 1);
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        Ok(Some(line.freeze()))
    }

    /// Removes and returns the bytes after the last newline, once the body has ended. A
    /// server may end its last line without a newline.
    pub(super) fn finish(&mut self) -> Option<Bytes> {
        self.searched = 0;
        if self.buffer.is_empty() {
            return None;
        }
        let mut line = self.buffer.split();
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        Some(line.freeze())
    }
}

#[cfg(test)]
mod tests;
