//! The context window of a reply: the conversation's newest messages, trimmed further so
//! that the estimated prompt and the reply fit the model's context.

use providers::{ChatMessage, pricing};

/// Drops the oldest messages until the estimated tokens of `system` and `messages` fit in
/// `budget`. The newest message and the system instructions always stay, even when they
/// alone exceed the budget, so that the provider reports a prompt that is too long.
/// Returns the number of messages dropped.
pub(crate) fn trim_to_fit(
    system: Option<&str>,
    messages: &mut Vec<ChatMessage>,
    budget: i64,
) -> usize {
    let system_tokens = system.map_or(0, pricing::estimate_tokens);
    let mut tokens: Vec<i64> = messages
        .iter()
        .map(|message| pricing::estimate_tokens(&message.content))
        .collect();
    let mut total = system_tokens + tokens.iter().sum::<i64>();
    let mut dropped = 0;
    while total > budget && tokens.len() > 1 {
        total -= tokens.remove(0);
        dropped += 1;
    }
    messages.drain(..dropped);
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(chars: usize) -> ChatMessage {
        ChatMessage::user("x".repeat(chars))
    }

    #[test]
    fn oldest_dropped_until_fit() {
        // 40, 40 and 8 characters estimate to 10, 10 and 2 tokens, plus 5 for the system.
        let mut messages = vec![message(40), message(40), message(8)];
        let dropped = trim_to_fit(Some(&"s".repeat(20)), &mut messages, 20);
        assert_eq!(dropped, 1);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].content.len(), 8);
    }

    #[test]
    fn newest_kept_when_alone_too_long() {
        let mut messages = vec![message(40), message(400)];
        let dropped = trim_to_fit(None, &mut messages, 10);
        assert_eq!(dropped, 1);
        assert_eq!(messages[0].content.len(), 400);
    }

    #[test]
    fn nothing_dropped_when_fitting() {
        let mut messages = vec![message(4), message(4)];
        assert_eq!(trim_to_fit(Some("sys"), &mut messages, 100), 0);
        assert_eq!(messages.len(), 2);
    }
}
