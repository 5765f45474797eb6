//! Scripted replies that tests queue in place of the deterministic reply: tool calls, to
//! drive an agent's tool loop, or an exact text.

use serde_json::Value;

/// A scripted reply for one chat request, queued with
/// [`MockProvider::reply_next`](crate::MockProvider::reply_next).
///
/// A scripted reply ignores [`MockConfig::tokens`](crate::MockConfig::tokens) and the
/// request's limit on output tokens, but keeps the configured timing: each text chunk or
/// tool call counts as one content chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum MockReply {
    /// The model requests these tool calls, in this order and in one reply, and produces no
    /// text. The finish reason is the format's reason for tool calls: `tool_calls` for
    /// OpenAI and Groq, `tool_use` for Anthropic, and `STOP` for Gemini and Ollama, which
    /// report tool calls with their ordinary stop reason.
    ToolCalls(Vec<MockToolCall>),
    /// The model replies with exactly this text, streamed in chunks of one word each, and
    /// the finish reason is stop. Each chunk keeps the whitespace before its word, so the
    /// chunks concatenate back to the text.
    Text(String),
}

/// One tool call of a [`MockReply::ToolCalls`].
///
/// The formats that carry arguments as JSON text (OpenAI's and Groq's `function.arguments`,
/// Anthropic's streamed `input_json_delta`) send the JSON text of `arguments`, except that a
/// [`Value::String`] is sent as its raw content. That lets a test send malformed argument
/// text such as `{"city":`. The formats that carry arguments as a JSON value (Anthropic's
/// non-streamed `input`, Gemini's `args`, Ollama's `arguments`) send `arguments` as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct MockToolCall {
    pub name: String,
    pub arguments: Value,
}

impl MockToolCall {
    /// Returns the arguments as JSON text: a [`Value::String`] raw, any other value
    /// serialized.
    pub(crate) fn arguments_text(&self) -> String {
        match &self.arguments {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

/// Splits the arguments text into the two fragments that a stream sends, at the middle
/// character. A text shorter than two characters leaves the first fragment empty.
pub(crate) fn argument_fragments(text: &str) -> [&str; 2] {
    let middle = text.chars().count() / 2;
    let split = text
        .char_indices()
        .nth(middle)
        .map_or(text.len(), |(offset, _)| offset);
    let (first, second) = text.split_at(split);
    [first, second]
}

/// Splits `text` into chunks of one word each. A chunk contains the whitespace before its
/// word, and the first and last chunks also contain any leading and trailing whitespace, so the
/// chunks concatenate back to `text`. Text without a word is one chunk, or none when empty.
pub(crate) fn word_chunks(text: &str) -> Vec<String> {
    let mut chunks: Vec<String> = Vec::new();
    let mut chunk = String::new();
    let mut in_word = false;
    for character in text.chars() {
        let is_space = character.is_whitespace();
        // Whitespace after a word starts the next word's chunk.
        if is_space && in_word {
            chunks.push(std::mem::take(&mut chunk));
        }
        in_word = !is_space;
        chunk.push(character);
    }

    let trailing_space = !in_word && !chunk.is_empty();
    match chunks.last_mut() {
        Some(last) if trailing_space => last.push_str(&chunk),
        _ if chunk.is_empty() => {}
        _ => chunks.push(chunk),
    }
    chunks
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(arguments: Value) -> MockToolCall {
        MockToolCall {
            name: "get_weather".to_owned(),
            arguments,
        }
    }

    #[test]
    fn arguments_text_serializes_values() {
        assert_eq!(
            call(json!({"city": "Paris"})).arguments_text(),
            r#"{"city":"Paris"}"#
        );
        assert_eq!(call(json!([1, 2])).arguments_text(), "[1,2]");
        assert_eq!(call(Value::Null).arguments_text(), "null");
    }

    #[test]
    fn arguments_text_keeps_string_raw() {
        assert_eq!(call(json!(r#"{"city":"#)).arguments_text(), r#"{"city":"#);
    }

    #[test]
    fn fragments_split_at_middle() {
        assert_eq!(argument_fragments(r#"{"a":1}"#), [r#"{"a"#, r#"":1}"#]);
        assert_eq!(argument_fragments("{}"), ["{", "}"]);
    }

    #[test]
    fn fragments_of_short_text() {
        assert_eq!(argument_fragments("x"), ["", "x"]);
        assert_eq!(argument_fragments(""), ["", ""]);
    }

    #[test]
    fn fragments_keep_multibyte_characters() {
        let text = r#"{"c":"日本"}"#;
        let [first, second] = argument_fragments(text);

        assert_eq!(format!("{first}{second}"), text);
        assert_eq!(first.chars().count(), text.chars().count() / 2);
    }

    #[test]
    fn words_keep_whitespace_before_word() {
        assert_eq!(
            word_chunks("Hello from the mock."),
            ["Hello", " from", " the", " mock."]
        );
    }

    #[test]
    fn words_keep_leading_and_trailing_whitespace() {
        let text = "  Two\n\twords \n";
        let chunks = word_chunks(text);

        assert_eq!(chunks, ["  Two", "\n\twords \n"]);
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn words_of_text_without_word() {
        assert!(word_chunks("").is_empty());
        assert_eq!(word_chunks("  "), ["  "]);
    }
}
