//! The reply that every format sends: the deterministic text or a scripted reply, its
//! length, its token counts and the failure that may replace its end.

use serde_json::Value;

use crate::scripted::{MockReply, MockToolCall, word_chunks};

/// Words of the reply, repeated as often as needed. Each round after the first starts with
/// a space so that the joined text reads "Hello from the mock provider. Hello from ...".
const WORDS: [&str; 6] = ["Hello", " from", " the", " mock", " provider", "."];

/// Returns the texts of the first `count` content chunks, in the order they are streamed.
pub fn reply_tokens(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| {
            let word = WORDS[index % WORDS.len()];
            if index >= WORDS.len() && index % WORDS.len() == 0 {
                format!(" {word}")
            } else {
                word.to_owned()
            }
        })
        .collect()
}

/// Returns the input token count that the mock reports for a request body of any of its
/// wire formats.
///
/// The rule is an estimate that tests can repeat: the sum over the prompt's messages of the
/// message text's character count divided by four, rounded up. The messages are the entries
/// of `messages` (OpenAI, Groq, Ollama, Anthropic), the entries of `contents` (Gemini), and
/// the system prompt given apart from them (Anthropic's `system`, Gemini's
/// `systemInstruction`), which counts as one message. A message's text is its `content`
/// string, or the `text` of each entry of its `content` or `parts` array. Missing content
/// counts zero.
pub fn prompt_tokens(request: &Value) -> i64 {
    let system = [&request["system"], &request["systemInstruction"]];
    let listed = ["messages", "contents"]
        .into_iter()
        .filter_map(|field| request[field].as_array())
        .flatten();
    let tokens: usize = system
        .into_iter()
        .chain(listed)
        .map(|message| message_chars(message).div_ceil(4))
        .sum();
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

/// Counts the characters of one message. A bare string is an Anthropic system prompt.
fn message_chars(message: &Value) -> usize {
    match message {
        Value::String(text) => text.chars().count(),
        Value::Array(parts) => parts_chars(parts),
        Value::Object(fields) => match fields.get("content").or_else(|| fields.get("parts")) {
            Some(Value::String(text)) => text.chars().count(),
            Some(Value::Array(parts)) => parts_chars(parts),
            _ => 0,
        },
        _ => 0,
    }
}

fn parts_chars(parts: &[Value]) -> usize {
    parts
        .iter()
        .filter_map(|part| part["text"].as_str())
        .map(|text| text.chars().count())
        .sum()
}

/// The reason a complete reply ends, which each format names in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The reply is as long as configured.
    Stop,
    /// The request's output limit cut the reply.
    Length,
    /// The reply is a scripted [`MockReply::ToolCalls`].
    ToolCalls,
}

/// A failure that replaces the end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// Send the format's in-stream error after this many content chunks.
    Error { after_tokens: usize },
    /// End the body after this many content chunks.
    Cut { after_tokens: usize },
}

/// The reply planned for one request. It has content chunks in `tokens` or tool calls in
/// `tool_calls`, never both.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// Number of the request on this server, starting at 1, used in response ids.
    pub(crate) sequence: u64,
    /// Unix time in seconds when the reply started.
    pub(crate) created: u64,
    pub(crate) model: String,
    /// The request body, for format options such as OpenAI's `stream_options`.
    pub(crate) request: Value,
    /// Every content chunk of the complete reply.
    pub(crate) tokens: Vec<String>,
    /// The scripted tool calls, in order. Empty unless `finish` is [`Finish::ToolCalls`].
    pub(crate) tool_calls: Vec<MockToolCall>,
    pub(crate) finish: Finish,
    pub(crate) prompt_tokens: i64,
    /// A failure that replaces the end of the stream. Only the deterministic reply has one,
    /// because a queued failure leaves the scripted replies queued.
    pub(crate) interruption: Option<Interruption>,
}

impl Reply {
    /// Returns the text of the complete reply.
    pub(crate) fn text(&self) -> String {
        self.tokens.concat()
    }

    /// Returns the number of content chunks plus the number of tool calls. A stream sends
    /// one of them per gap.
    pub(crate) fn chunk_count(&self) -> usize {
        self.tokens.len() + self.tool_calls.len()
    }

    /// Returns the output token count of the complete reply: one per content chunk and one
    /// per tool call.
    pub(crate) fn output_tokens(&self) -> i64 {
        i64::try_from(self.chunk_count()).unwrap_or(i64::MAX)
    }

    /// Returns the content chunks that a stream sends before it ends or fails.
    pub(crate) fn streamed_tokens(&self) -> &[String] {
        let sent = match self.interruption {
            Some(Interruption::Error { after_tokens } | Interruption::Cut { after_tokens }) => {
                after_tokens.min(self.tokens.len())
            }
            None => self.tokens.len(),
        };
        &self.tokens[..sent]
    }
}

/// Returns the content chunks, tool calls and finish of a reply: the scripted reply's when
/// there is one, or else the deterministic text of `configured` chunks, cut to the request's
/// `limit`.
pub(crate) fn plan_content(
    scripted: Option<MockReply>,
    limit: Option<u64>,
    configured: usize,
) -> (Vec<String>, Vec<MockToolCall>, Finish) {
    match scripted {
        Some(MockReply::ToolCalls(calls)) => (Vec::new(), calls, Finish::ToolCalls),
        Some(MockReply::Text(text)) => (word_chunks(&text), Vec::new(), Finish::Stop),
        None => {
            let (length, finish) = plan_length(limit, configured);
            (reply_tokens(length), Vec::new(), finish)
        }
    }
}

/// Returns how many content chunks a reply has and why it ends: `configured` chunks, or the
/// request's `limit` with [`Finish::Length`] when that is smaller.
fn plan_length(limit: Option<u64>, configured: usize) -> (usize, Finish) {
    let limit = limit.and_then(|limit| usize::try_from(limit).ok());
    match limit {
        Some(limit) if limit < configured => (limit, Finish::Length),
        _ => (configured, Finish::Stop),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_join_to_readable_text() {
        let text: String = reply_tokens(8).concat();
        assert_eq!(text, "Hello from the mock provider. Hello from");
    }

    #[test]
    fn zero_tokens_is_empty() {
        assert!(reply_tokens(0).is_empty());
    }

    #[test]
    fn prompt_tokens_round_up_per_message() {
        let request = json!({"messages": [
            {"role": "system", "content": "abcde"},
            {"role": "user", "content": "abcd"},
            {"role": "user", "content": [
                {"type": "text", "text": "ab"},
                {"type": "text", "text": "c"}
            ]},
            {"role": "assistant", "content": null}
        ]});
        assert_eq!(prompt_tokens(&request), 2 + 1 + 1);
    }

    #[test]
    fn prompt_tokens_count_chars() {
        let request = json!({"messages": [{"role": "user", "content": "日本語だよ"}]});
        assert_eq!(prompt_tokens(&request), 2);
    }

    #[test]
    fn prompt_tokens_anthropic_system() {
        let as_string = json!({
            "system": "abcde",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"}]}]
        });
        let as_blocks = json!({
            "system": [{"type": "text", "text": "abc"}, {"type": "text", "text": "de"}],
            "messages": [{"role": "user", "content": "abcd"}]
        });
        assert_eq!(prompt_tokens(&as_string), 2 + 1);
        assert_eq!(prompt_tokens(&as_blocks), 2 + 1);
    }

    #[test]
    fn prompt_tokens_gemini_contents() {
        let request = json!({
            "systemInstruction": {"parts": [{"text": "abcde"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "ab"}, {"text": "cde"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f"}}]}
            ]
        });
        assert_eq!(prompt_tokens(&request), 2 + 2);
    }

    #[test]
    fn length_cut_by_smaller_limit() {
        assert_eq!(plan_length(Some(3), 12), (3, Finish::Length));
        assert_eq!(plan_length(Some(0), 12), (0, Finish::Length));
    }

    #[test]
    fn length_kept_without_smaller_limit() {
        assert_eq!(plan_length(Some(12), 12), (12, Finish::Stop));
        assert_eq!(plan_length(None, 4), (4, Finish::Stop));
    }

    #[test]
    fn scripted_text_ignores_limit() {
        let scripted = MockReply::Text("Exactly these words".to_owned());

        let (tokens, tool_calls, finish) = plan_content(Some(scripted), Some(1), 12);

        assert_eq!(tokens, ["Exactly", " these", " words"]);
        assert!(tool_calls.is_empty());
        assert_eq!(finish, Finish::Stop);
    }

    #[test]
    fn scripted_tool_calls_have_no_text() {
        let call = MockToolCall {
            name: "get_time".to_owned(),
            arguments: json!({}),
        };

        let (tokens, tool_calls, finish) =
            plan_content(Some(MockReply::ToolCalls(vec![call.clone()])), None, 12);

        assert!(tokens.is_empty());
        assert_eq!(tool_calls, [call]);
        assert_eq!(finish, Finish::ToolCalls);
    }

    #[test]
    fn deterministic_text_without_script() {
        let (tokens, tool_calls, finish) = plan_content(None, Some(3), 12);

        assert_eq!(tokens, reply_tokens(3));
        assert!(tool_calls.is_empty());
        assert_eq!(finish, Finish::Length);
    }

    #[test]
    fn tool_calls_count_one_output_token_each() {
        let call = MockToolCall {
            name: "get_time".to_owned(),
            arguments: json!({}),
        };
        let reply = Reply {
            sequence: 1,
            created: 0,
            model: "m".to_owned(),
            request: json!({}),
            tokens: Vec::new(),
            tool_calls: vec![call.clone(), call],
            finish: Finish::ToolCalls,
            prompt_tokens: 0,
            interruption: None,
        };

        assert_eq!(reply.output_tokens(), 2);
    }

    #[test]
    fn streamed_tokens_stop_at_interruption() {
        let mut reply = Reply {
            sequence: 1,
            created: 0,
            model: "m".to_owned(),
            request: json!({}),
            tokens: reply_tokens(5),
            tool_calls: Vec::new(),
            finish: Finish::Stop,
            prompt_tokens: 0,
            interruption: Some(Interruption::Cut { after_tokens: 2 }),
        };
        assert_eq!(reply.streamed_tokens(), &reply_tokens(2)[..]);

        reply.interruption = Some(Interruption::Error { after_tokens: 9 });
        assert_eq!(reply.streamed_tokens().len(), 5);
        reply.interruption = None;
        assert_eq!(reply.streamed_tokens().len(), 5);
    }
}
