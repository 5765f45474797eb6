//! The chat requests the suite sends, the same for every provider.

use providers::{ChatMessage, ChatRequest, ImageInput, ToolCall, ToolDefinition};
use serde_json::json;

/// The model name in every request. Fixtures echo it and check it.
pub const MODEL: &str = "contract-model";

/// A 1×1 transparent PNG, base64-encoded.
pub const PIXEL_PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII=";

/// Builds a conversation with every kind of message and every option an adapter sends: system
/// prompt, temperature, maximum tokens, a stop sequence, an inline image, an assistant
/// tool call and its result, and a tool definition.
pub fn conversation_request() -> ChatRequest {
    let image = ImageInput::Inline {
        media_type: "image/png".to_owned(),
        data_base64: PIXEL_PNG_BASE64.to_owned(),
    };
    let weather_call = ToolCall {
        id: "call_weather_1".to_owned(),
        name: "get_weather".to_owned(),
        arguments: json!({"city": "Paris"}),
    };

    ChatRequest {
        model: MODEL.to_owned(),
        system: Some("You are the contract test agent.".to_owned()),
        messages: vec![
            ChatMessage::user("What is in this picture?").with_images(vec![image]),
            ChatMessage::assistant("A single transparent pixel."),
            ChatMessage::user("What is the weather in Paris?"),
            ChatMessage::assistant_tool_calls("", vec![weather_call]),
            ChatMessage::tool_result("call_weather_1", "get_weather", r#"{"temperature_c":18}"#),
        ],
        temperature: Some(0.25),
        max_tokens: Some(256),
        stop: vec!["END".to_owned()],
        tools: vec![weather_tool()],
    }
}

/// Builds a question with three tools to choose from and no other options.
pub fn tool_request() -> ChatRequest {
    ChatRequest {
        model: MODEL.to_owned(),
        messages: vec![ChatMessage::user(
            "What is the weather in Paris and the time in UTC?",
        )],
        tools: vec![
            weather_tool(),
            ToolDefinition {
                name: "get_time".to_owned(),
                description: "Current time in a time zone".to_owned(),
                parameters: json!({
                    "type": "object",
                    "properties": {"zone": {"type": "string"}},
                    "required": ["zone"]
                }),
            },
            ToolDefinition {
                name: "list_tools".to_owned(),
                description: "Lists the tools available".to_owned(),
                parameters: json!({"type": "object", "properties": {}}),
            },
        ],
        ..ChatRequest::default()
    }
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".to_owned(),
        description: "Current weather for a city".to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }),
    }
}
