//! The timed body of a streamed reply, built from a format's frames.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};

use crate::MockConfig;
use crate::format::ChatFormat;
use crate::reply::{Interruption, Reply};

/// One piece of the body, sent `delay` after the previous one.
struct Frame {
    delay: Duration,
    text: String,
}

/// Builds the streamed response of `reply` in `format`, timed by `config`.
pub(crate) fn response(format: &impl ChatFormat, reply: &Reply, config: &MockConfig) -> Response {
    let frames = frames(format, reply, config);
    let body = stream::iter(frames).then(|frame| async move {
        if !frame.delay.is_zero() {
            tokio::time::sleep(frame.delay).await;
        }
        Ok::<_, Infallible>(Bytes::from(frame.text))
    });

    // When the client disconnects, hyper drops this stream, which cancels any pending sleep.
    (
        [
            (CONTENT_TYPE, format.stream_content_type()),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Lays out the frames. The opening goes at once. The content start and the first content
/// chunk follow after `time_to_first_token`, then one content chunk per `gap`. The frames of
/// one tool call go together. The first call is timed like the first content chunk, and each
/// later call follows one `gap` after the previous call. The closing follows at once, or the
/// error frame one `gap` later, or nothing for a cut stream. The time to first token passes
/// before the first frame after the opening, also when no content chunk or tool call follows.
fn frames(format: &impl ChatFormat, reply: &Reply, config: &MockConfig) -> Vec<Frame> {
    let mut frames: Vec<Frame> = format
        .stream_opening(reply)
        .into_iter()
        .map(|text| Frame {
            delay: Duration::ZERO,
            text,
        })
        .collect();

    let mut first_token_wait = Some(config.time_to_first_token);
    let mut push = |frames: &mut Vec<Frame>, delay: Duration, text: String| {
        let wait = first_token_wait.take().unwrap_or_default();
        frames.push(Frame {
            delay: wait + delay,
            text,
        });
    };

    for text in format.content_start(reply) {
        push(&mut frames, Duration::ZERO, text);
    }
    for (index, token) in reply.streamed_tokens().iter().enumerate() {
        let gap = if index == 0 {
            Duration::ZERO
        } else {
            config.gap
        };
        push(&mut frames, gap, format.content_frame(reply, index, token));
    }
    let mut sent_chunk = !reply.streamed_tokens().is_empty();
    for (index, call) in reply.tool_calls.iter().enumerate() {
        let mut gap = if sent_chunk {
            config.gap
        } else {
            Duration::ZERO
        };
        for text in format.tool_call_frames(reply, index, call) {
            push(&mut frames, gap, text);
            gap = Duration::ZERO;
        }
        sent_chunk = true;
    }

    match reply.interruption {
        Some(Interruption::Error { .. }) => {
            push(&mut frames, config.gap, format.stream_error(reply));
        }
        Some(Interruption::Cut { .. }) => {}
        None => {
            for text in format.stream_closing(reply) {
                push(&mut frames, Duration::ZERO, text);
            }
        }
    }
    frames
}

/// Frames a JSON value as the `data` of one server-sent event.
pub(crate) fn sse_data(data: &serde_json::Value) -> String {
    format!("data: {data}\n\n")
}

/// Frames a JSON value as one server-sent event named `event`.
pub(crate) fn sse_event(event: &str, data: &serde_json::Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use super::*;
    use crate::format::{ErrorReply, WireFormat};
    use crate::reply::{Finish, reply_tokens};
    use crate::scripted::MockToolCall;

    /// A format whose frames name their place in the stream.
    struct Labelled {
        content_start: bool,
    }

    impl ChatFormat for Labelled {
        fn wire_format(&self) -> WireFormat {
            WireFormat::OpenAi
        }

        fn error_response(&self, error: &ErrorReply<'_>) -> Response {
            error.status.into_response()
        }

        fn rejection(&self, _request: &Value) -> Option<Response> {
            None
        }

        fn is_streaming(&self, _request: &Value) -> bool {
            true
        }

        fn max_tokens(&self, _request: &Value) -> Option<u64> {
            None
        }

        fn completion(&self, _reply: &Reply) -> Value {
            json!({})
        }

        fn stream_opening(&self, _reply: &Reply) -> Vec<String> {
            vec!["opening".to_owned()]
        }

        fn content_start(&self, _reply: &Reply) -> Vec<String> {
            if self.content_start {
                vec!["content start".to_owned()]
            } else {
                Vec::new()
            }
        }

        fn content_frame(&self, _reply: &Reply, index: usize, text: &str) -> String {
            format!("{index}:{text}")
        }

        fn tool_call_frames(
            &self,
            _reply: &Reply,
            index: usize,
            call: &MockToolCall,
        ) -> Vec<String> {
            vec![
                format!("{index}:{}", call.name),
                format!("{index}:arguments"),
            ]
        }

        fn stream_closing(&self, _reply: &Reply) -> Vec<String> {
            vec!["finish".to_owned(), "end".to_owned()]
        }

        fn stream_error(&self, _reply: &Reply) -> String {
            StatusCode::INTERNAL_SERVER_ERROR.to_string()
        }
    }

    const TTFT: Duration = Duration::from_millis(100);
    const GAP: Duration = Duration::from_millis(10);

    fn reply(tokens: usize, interruption: Option<Interruption>) -> Reply {
        Reply {
            sequence: 1,
            created: 0,
            model: "m".to_owned(),
            request: json!({}),
            tokens: reply_tokens(tokens),
            tool_calls: Vec::new(),
            finish: Finish::Stop,
            prompt_tokens: 0,
            interruption,
        }
    }

    fn layout(content_start: bool, reply: &Reply) -> Vec<(u128, String)> {
        let config = MockConfig {
            time_to_first_token: TTFT,
            tokens: reply.chunk_count(),
            gap: GAP,
        };
        frames(&Labelled { content_start }, reply, &config)
            .into_iter()
            .map(|frame| (frame.delay.as_millis(), frame.text))
            .collect()
    }

    fn owned(frames: &[(u128, &str)]) -> Vec<(u128, String)> {
        frames
            .iter()
            .map(|(delay, text)| (*delay, (*text).to_owned()))
            .collect()
    }

    #[test]
    fn first_token_waits_after_content_start() {
        let frames = layout(true, &reply(2, None));

        assert_eq!(
            frames,
            owned(&[
                (0, "opening"),
                (100, "content start"),
                (0, "0:Hello"),
                (10, "1: from"),
                (0, "finish"),
                (0, "end"),
            ])
        );
    }

    #[test]
    fn first_token_waits_without_content_start() {
        let frames = layout(false, &reply(2, None));

        assert_eq!(
            frames,
            owned(&[
                (0, "opening"),
                (100, "0:Hello"),
                (10, "1: from"),
                (0, "finish"),
                (0, "end"),
            ])
        );
    }

    #[test]
    fn tool_calls_one_gap_apart() {
        let call = |name: &str| MockToolCall {
            name: name.to_owned(),
            arguments: json!({}),
        };
        let reply = Reply {
            tokens: Vec::new(),
            tool_calls: vec![call("first"), call("second")],
            finish: Finish::ToolCalls,
            ..reply(0, None)
        };

        let frames = layout(true, &reply);

        assert_eq!(
            frames,
            owned(&[
                (0, "opening"),
                (100, "content start"),
                (0, "0:first"),
                (0, "0:arguments"),
                (10, "1:second"),
                (0, "1:arguments"),
                (0, "finish"),
                (0, "end"),
            ])
        );
    }

    #[test]
    fn error_frame_follows_one_gap_later() {
        let frames = layout(
            false,
            &reply(4, Some(Interruption::Error { after_tokens: 1 })),
        );

        assert_eq!(
            frames,
            owned(&[
                (0, "opening"),
                (100, "0:Hello"),
                (10, "500 Internal Server Error"),
            ])
        );
    }

    #[test]
    fn error_before_any_token_waits_first_token_time() {
        let frames = layout(
            false,
            &reply(4, Some(Interruption::Error { after_tokens: 0 })),
        );

        assert_eq!(
            frames,
            owned(&[(0, "opening"), (110, "500 Internal Server Error")])
        );
    }

    #[test]
    fn cut_stream_ends_after_tokens() {
        let frames = layout(true, &reply(4, Some(Interruption::Cut { after_tokens: 2 })));

        assert_eq!(
            frames,
            owned(&[
                (0, "opening"),
                (100, "content start"),
                (0, "0:Hello"),
                (10, "1: from"),
            ])
        );
    }
}
