//! Request bodies and model paths in Gemini's wire format.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::ToolDefinition;

/// Serializes a body to text, as reqwest's `json` does, and parses it back for comparison.
fn body_json(request: &ChatRequest) -> serde_json::Value {
    let body = generate_content_request(request).unwrap();
    let text = serde_json::to_string(&body).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn weather_call(id: &str) -> ToolCall {
    ToolCall {
        id: id.to_owned(),
        name: "get_weather".to_owned(),
        arguments: json!({"city": "Paris"}),
    }
}

fn request(messages: Vec<ChatMessage>) -> ChatRequest {
    ChatRequest {
        model: "gemini-2.5-flash".to_owned(),
        messages,
        ..ChatRequest::default()
    }
}

#[test]
fn full_request_body() {
    let image = ImageInput::Inline {
        media_type: "image/png".to_owned(),
        data_base64: "iVBORw0KGgo=".to_owned(),
    };
    let request = ChatRequest {
        system: Some("You are terse.".to_owned()),
        temperature: Some(0.2),
        max_tokens: Some(256),
        stop: vec!["END".to_owned()],
        tools: vec![ToolDefinition {
            name: "get_weather".to_owned(),
            description: "Current weather for a city".to_owned(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        ..request(vec![
            ChatMessage::user("What is this?").with_images(vec![image]),
            ChatMessage::assistant("A pixel."),
            ChatMessage::user("Weather in Paris?"),
            ChatMessage::assistant_tool_calls("Checking.", vec![weather_call("call_1")]),
            ChatMessage::tool_result("call_1", "get_weather", r#"{"temperature_c": 18}"#),
        ])
    };

    let body = body_json(&request);

    assert_eq!(
        body,
        json!({
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is this?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
                ]},
                {"role": "model", "parts": [{"text": "A pixel."}]},
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [
                    {"text": "Checking."},
                    {
                        "functionCall": {"id": "call_1", "name": "get_weather",
                                         "args": {"city": "Paris"}},
                        "thoughtSignature": "skip_thought_signature_validator"
                    }
                ]},
                {"role": "user", "parts": [{"functionResponse": {
                    "id": "call_1", "name": "get_weather", "response": {"temperature_c": 18}
                }}]}
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 256,
                                 "stopSequences": ["END"]},
            "tools": [{"functionDeclarations": [{
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
            }]}]
        })
    );
}

#[test]
fn minimal_request_omits_options() {
    let body = body_json(&request(vec![ChatMessage::user("Hi")]));

    assert_eq!(
        body,
        json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    );
}

#[test]
fn system_messages_join_system_instruction() {
    let request = ChatRequest {
        system: Some("First.".to_owned()),
        ..request(vec![
            ChatMessage::system("Second."),
            ChatMessage::user("Hi"),
            ChatMessage::system(""),
        ])
    };

    let body = body_json(&request);

    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "First."}, {"text": "Second."}]})
    );
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Hi"}]}])
    );
}

#[test]
fn parallel_results_share_one_turn() {
    let time_call = ToolCall {
        id: "call_2".to_owned(),
        name: "get_time".to_owned(),
        arguments: json!({"zone": "UTC"}),
    };
    let request = request(vec![
        ChatMessage::user("Weather and time?"),
        ChatMessage::assistant_tool_calls("", vec![weather_call("call_1"), time_call]),
        ChatMessage::tool_result("call_1", "get_weather", "sunny"),
        ChatMessage::tool_result("call_2", "get_time", "12:00"),
    ]);

    let body = body_json(&request);

    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [
            {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}},
             "thoughtSignature": "skip_thought_signature_validator"},
            {"functionCall": {"id": "call_2", "name": "get_time", "args": {"zone": "UTC"}}}
        ]})
    );
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "call_1", "name": "get_weather",
                                  "response": {"content": "sunny"}}},
            {"functionResponse": {"id": "call_2", "name": "get_time",
                                  "response": {"content": "12:00"}}}
        ]})
    );
}

#[test]
fn tool_output_wrapped_unless_object() {
    let cases = [
        ("plain text", json!({"content": "plain text"})),
        (r#"{"ok": true}"#, json!({"ok": true})),
        ("[1, 2]", json!({"content": "[1, 2]"})),
        ("42", json!({"content": "42"})),
        ("", json!({"content": ""})),
    ];

    for (output, expected) in cases {
        let request = request(vec![ChatMessage::tool_result(
            "call_1",
            "get_weather",
            output,
        )]);

        let body = body_json(&request);

        let response = &body["contents"][0]["parts"][0]["functionResponse"]["response"];
        assert_eq!(response, &expected, "tool output {output:?}");
    }
}

#[test]
fn tool_name_found_by_call_id() {
    let result = ChatMessage {
        tool_call_id: Some("call_1".to_owned()),
        ..ChatMessage::new(Role::Tool, "sunny")
    };
    let request = request(vec![
        ChatMessage::assistant_tool_calls("", vec![weather_call("call_1")]),
        result,
    ]);

    let body = body_json(&request);

    assert_eq!(
        body["contents"][1]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
}

#[test]
fn tool_result_without_name_rejected() {
    let result = ChatMessage {
        tool_call_id: Some("call_unknown".to_owned()),
        ..ChatMessage::new(Role::Tool, "sunny")
    };

    let error = generate_content_request(&request(vec![result])).unwrap_err();

    assert!(
        matches!(&error, ProviderError::InvalidRequest(message) if message.contains("tool_name")),
        "error: {error:?}"
    );
}

#[test]
fn empty_ids_and_non_object_arguments_omitted() {
    let call = ToolCall {
        id: String::new(),
        name: "get_weather".to_owned(),
        arguments: json!("{\"city\":"),
    };
    let request = request(vec![
        ChatMessage::assistant_tool_calls("", vec![call]),
        ChatMessage::tool_result("", "get_weather", "invalid arguments"),
    ]);

    let body = body_json(&request);

    assert_eq!(
        body["contents"][0]["parts"][0]["functionCall"],
        json!({"name": "get_weather"})
    );
    assert_eq!(
        body["contents"][1]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"content": "invalid arguments"}})
    );
}

#[test]
fn messages_without_parts_skipped() {
    let request = request(vec![
        ChatMessage::user("Hi"),
        ChatMessage::assistant(""),
        ChatMessage::user("Still there?"),
    ]);

    let body = body_json(&request);

    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "Hi"}, {"text": "Still there?"}]}])
    );
}

#[test]
fn image_urls_converted() {
    let images = vec![
        ImageInput::Url("data:image/jpeg;base64,/9j/4AAQ".to_owned()),
        ImageInput::Url("https://example.com/cat.PNG?size=large".to_owned()),
        ImageInput::Url("https://example.com/photo".to_owned()),
    ];
    let request = request(vec![ChatMessage::user("").with_images(images)]);

    let body = body_json(&request);

    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
            {"fileData": {"mimeType": "image/png",
                          "fileUri": "https://example.com/cat.PNG?size=large"}},
            {"fileData": {"fileUri": "https://example.com/photo"}}
        ])
    );
}

#[test]
fn invalid_data_url_rejected() {
    for url in [
        "data:image/png,plain",
        "data:;base64,AAAA",
        "data:image/png;base64,",
    ] {
        let image = ImageInput::Url(url.to_owned());
        let request = request(vec![ChatMessage::user("Hi").with_images(vec![image])]);

        let error = generate_content_request(&request).unwrap_err();

        assert!(
            matches!(error, ProviderError::InvalidRequest(_)),
            "url {url:?}: {error:?}"
        );
    }
}

#[test]
fn tools_without_arguments_omit_parameters() {
    let tool = |parameters: serde_json::Value| ToolDefinition {
        name: "list_tools".to_owned(),
        description: "Lists the tools".to_owned(),
        parameters,
    };
    let request = ChatRequest {
        tools: vec![
            tool(json!({"type": "object", "properties": {}})),
            tool(json!({"type": "object"})),
            tool(json!({})),
            tool(serde_json::Value::Null),
            tool(json!({"type": "object", "properties": {"all": {"type": "boolean"}}})),
        ],
        ..request(vec![ChatMessage::user("Hi")])
    };

    let body = body_json(&request);

    let declarations = body["tools"][0]["functionDeclarations"].as_array().unwrap();
    assert_eq!(declarations.len(), 5);
    for declaration in &declarations[..4] {
        assert_eq!(declaration.get("parameters"), None, "{declaration}");
    }
    assert_eq!(
        declarations[4]["parameters"],
        json!({"type": "object", "properties": {"all": {"type": "boolean"}}})
    );
}

#[test]
fn model_paths() {
    assert_eq!(
        model_path("gemini-2.5-flash").unwrap(),
        "models/gemini-2.5-flash"
    );
    assert_eq!(
        model_path("models/gemini-2.0-flash-001").unwrap(),
        "models/gemini-2.0-flash-001"
    );
    assert_eq!(
        model_path("tunedModels/my_model-1").unwrap(),
        "tunedModels/my_model-1"
    );
}

#[test]
fn unsafe_model_names_rejected() {
    for model in [
        "",
        "models/",
        "../admin",
        "gemini?alt=json",
        "gemini-2.5-flash:generateContent",
        "files/abc",
        "gemini 2.5",
    ] {
        let error = model_path(model).unwrap_err();

        assert!(
            matches!(error, ProviderError::InvalidRequest(_)),
            "model {model:?}: {error:?}"
        );
    }
}
