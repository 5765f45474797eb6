//! The timed server-sent event body of a streamed reply.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::json;

use crate::MockConfig;
use crate::reply::{ReplyPlan, reply_tokens};
use crate::wire::{DONE, KEEP_ALIVE, ReplyHeader, error_body, sse_data};

/// A failure that replaces the end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// Send an error object after this many content chunks.
    Error { after_tokens: usize },
    /// End the body after this many content chunks.
    Cut { after_tokens: usize },
}

/// One piece of the body, sent `delay` after the previous one.
struct Frame {
    delay: Duration,
    text: String,
}

impl Frame {
    fn new(delay: Duration, text: impl Into<String>) -> Self {
        Self {
            delay,
            text: text.into(),
        }
    }
}

/// Builds the streamed reply: a keep-alive comment, a role chunk and the first content chunk
/// after `time_to_first_token`, one content chunk per `gap`, the finish chunk, the usage chunk
/// when requested, and `[DONE]`.
pub(crate) fn stream_response(
    header: &ReplyHeader,
    plan: ReplyPlan,
    prompt_tokens: i64,
    config: &MockConfig,
    interruption: Option<Interruption>,
) -> Response {
    let frames = stream_frames(header, plan, prompt_tokens, config, interruption);
    let body = stream::iter(frames).then(|frame| async move {
        if !frame.delay.is_zero() {
            tokio::time::sleep(frame.delay).await;
        }
        Ok::<_, Infallible>(Bytes::from(frame.text))
    });

    // When the client disconnects, hyper drops this stream, which cancels any pending sleep.
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn stream_frames(
    header: &ReplyHeader,
    plan: ReplyPlan,
    prompt_tokens: i64,
    config: &MockConfig,
    interruption: Option<Interruption>,
) -> Vec<Frame> {
    let role_delta = json!({"role": "assistant", "content": "", "refusal": null});
    let mut frames = vec![
        Frame::new(Duration::ZERO, KEEP_ALIVE),
        Frame::new(
            config.time_to_first_token,
            sse_data(&header.chunk(role_delta, None)),
        ),
    ];

    let sent = match interruption {
        Some(Interruption::Error { after_tokens } | Interruption::Cut { after_tokens }) => {
            after_tokens.min(plan.tokens)
        }
        None => plan.tokens,
    };
    for (index, token) in reply_tokens(sent).into_iter().enumerate() {
        let delay = if index == 0 {
            Duration::ZERO
        } else {
            config.gap
        };
        frames.push(Frame::new(
            delay,
            sse_data(&header.chunk(json!({"content": token}), None)),
        ));
    }

    match interruption {
        Some(Interruption::Error { .. }) => {
            let error = error_body(
                "The server had an error while processing your request.",
                "server_error",
                None,
                None,
            );
            frames.push(Frame::new(config.gap, sse_data(&error)));
            return frames;
        }
        Some(Interruption::Cut { .. }) => return frames,
        None => {}
    }

    frames.push(Frame::new(
        Duration::ZERO,
        sse_data(&header.chunk(json!({}), Some(plan.finish_reason))),
    ));
    if header.include_usage {
        let completion_tokens = i64::try_from(sent).unwrap_or(i64::MAX);
        frames.push(Frame::new(
            Duration::ZERO,
            sse_data(&header.usage_chunk(prompt_tokens, completion_tokens)),
        ));
    }
    frames.push(Frame::new(Duration::ZERO, DONE));
    frames
}
