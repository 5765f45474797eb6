//! The deterministic reply: its token texts, its length and its token counts.

use serde_json::Value;

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

/// Returns the `prompt_tokens` that the mock reports for a request body.
///
/// The rule is an estimate that tests can repeat: the sum over `messages` of the message
/// content's character count divided by four, rounded up. Content given as an array of parts
/// counts the `text` of each part, and missing content counts zero.
pub fn prompt_tokens(request: &Value) -> i64 {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    let chars: usize = messages
        .iter()
        .map(|message| content_chars(message.get("content")))
        .map(|c| c.div_ceil(4))
        .sum();
    i64::try_from(chars).unwrap_or(i64::MAX)
}

fn content_chars(content: Option<&Value>) -> usize {
    match content {
        Some(Value::String(text)) => text.chars().count(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| text.chars().count())
            .sum(),
        _ => 0,
    }
}

/// How many content chunks to send for a request, and why the reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplyPlan {
    pub(crate) tokens: usize,
    pub(crate) finish_reason: &'static str,
}

/// Plans a reply of `configured` tokens, cut to the request's `max_completion_tokens` (or
/// the older `max_tokens`) with finish reason `length` when that is smaller.
pub(crate) fn plan_reply(request: &Value, configured: usize) -> ReplyPlan {
    let limit = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|field| request.get(*field).and_then(Value::as_u64))
        .and_then(|limit| usize::try_from(limit).ok());

    match limit {
        Some(limit) if limit < configured => ReplyPlan {
            tokens: limit,
            finish_reason: "length",
        },
        _ => ReplyPlan {
            tokens: configured,
            finish_reason: "stop",
        },
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
    fn plan_cut_by_max_tokens() {
        let plan = plan_reply(&json!({"max_completion_tokens": 3}), 12);
        assert_eq!(
            plan,
            ReplyPlan {
                tokens: 3,
                finish_reason: "length"
            }
        );
        let plan = plan_reply(&json!({"max_tokens": 5}), 12);
        assert_eq!(
            plan,
            ReplyPlan {
                tokens: 5,
                finish_reason: "length"
            }
        );
    }

    #[test]
    fn plan_not_cut_by_larger_limit() {
        let plan = plan_reply(&json!({"max_completion_tokens": 12}), 12);
        assert_eq!(
            plan,
            ReplyPlan {
                tokens: 12,
                finish_reason: "stop"
            }
        );
        assert_eq!(plan_reply(&json!({}), 4).tokens, 4);
    }
}
