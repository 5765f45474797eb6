//! GraphQL over Server-Sent Events on `/graphql/stream`: the `graphql-sse` client library
//! in distinct-connections mode, and the raw responses for what the client does not send.

use std::time::Duration;

use serde_json::{Value, json};
use tests::{MockConfig, TestApp, TestOptions, js_clients};

const STREAM: &str = "subscription($id: ID!) { messageStream(messageId: $id) {
    kind delta outcome { status content } } }";

fn stream_url(app: &TestApp) -> String {
    format!("{}/graphql/stream", app.base_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_sse_client_streams_and_queries() {
    let app = TestApp::spawn_with(TestOptions {
        mock: MockConfig {
            time_to_first_token: Duration::from_millis(300),
            tokens: 6,
            gap: Duration::from_millis(50),
        },
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let chat = app.start_chat("sse@example.com", "Be brief.").await;
    let token = chat.owner.access_token.as_str();
    let message_id = app
        .send_message(token, &chat.conversation_id, "Hello")
        .await;

    let run = js_clients::run(
        "sse",
        &stream_url(&app),
        Some(token),
        STREAM,
        json!({ "id": message_id }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(run.end["end"], "complete", "{:?}", run.end);
    let events: Vec<&Value> = run
        .results
        .iter()
        .map(|result| &result["data"]["messageStream"])
        .collect();
    let text: String = events
        .iter()
        .filter(|event| event["kind"] == "DELTA")
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    assert_eq!(events.last().unwrap()["kind"], "DONE");
    let stored = app.wait_for_reply(token, &message_id).await;
    assert_eq!(text, stored["content"].as_str().unwrap());

    // Queries and mutations give one result each.
    let query = js_clients::run(
        "sse",
        &stream_url(&app),
        Some(token),
        "{ me { user { email } } }",
        json!({}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(query.end["end"], "complete");
    assert_eq!(
        query.results,
        vec![json!({ "data": { "me": { "user": { "email": "sse@example.com" } } } })]
    );
    let mutation = js_clients::run(
        "sse",
        &stream_url(&app),
        Some(token),
        "mutation($input: CreateTaskInput!) { createTask(input: $input) { task { title } } }",
        json!({ "input": { "title": "Over SSE" } }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        mutation.results,
        vec![json!({ "data": { "createTask": { "task": { "title": "Over SSE" } } } })]
    );

    // Validation errors arrive as a `next` event, without data.
    let invalid = js_clients::run(
        "sse",
        &stream_url(&app),
        Some(token),
        "{ me { noSuchField } }",
        json!({}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(invalid.end["end"], "complete");
    assert_eq!(invalid.results.len(), 1);
    assert!(invalid.results[0].get("data").is_none());
    assert_eq!(
        invalid.results[0]["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );

    // Without credentials the subscription's error names the problem.
    let anonymous = js_clients::run(
        "sse",
        &stream_url(&app),
        None,
        STREAM,
        json!({ "id": message_id }),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        anonymous.results[0]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_requests_get_events_or_a_clear_refusal() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("sse-raw@example.com", "SSE raw").await;
    let bearer = format!("Bearer {}", owner.access_token);

    // The event stream of a query: one `next` event and a `complete` event.
    let response = app
        .http()
        .get(format!(
            "{}?query=%7B%20me%20%7B%20role%20%7D%20%7D",
            stream_url(&app)
        ))
        .header("accept", "text/event-stream")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let body = response.text().await.unwrap();
    assert_eq!(
        body,
        "event: next\ndata: {\"data\":{\"me\":{\"role\":\"OWNER\"}}}\n\nevent: complete\ndata: \n\n"
    );

    // A mutation over GET.
    let response = app
        .http()
        .get(format!(
            "{}?query=mutation%20%7B%20logout%20%7B%20success%20%7D%20%7D",
            stream_url(&app)
        ))
        .header("accept", "text/event-stream")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");

    // A client that does not accept an event stream.
    let response = app
        .http()
        .post(stream_url(&app))
        .header("accept", "application/json")
        .json(&json!({ "query": "{ me { role } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("text/event-stream")
    );

    // A batch, and parameters that are not an operation.
    for (body, expected) in [
        (
            json!([{ "query": "{ me { role } }" }]),
            "one operation per request",
        ),
        (json!({ "variables": {} }), "query"),
    ] {
        let response = app
            .http()
            .post(stream_url(&app))
            .header("accept", "text/event-stream")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }

    // A form post, which a cross-site page could send without a preflight.
    let response = app
        .http()
        .post(stream_url(&app))
        .header("accept", "text/event-stream")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=%7B+me+%7B+role+%7D+%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_stream_ends_on_shutdown() {
    use futures_util::StreamExt;

    let mut app = TestApp::spawn().await.unwrap();
    let owner = app.register("sse-stop@example.com", "SSE stop").await;
    let response = app
        .http()
        .post(stream_url(&app))
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {}", owner.access_token))
        .json(&json!({ "query": "subscription { tenantEvents { kind } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();

    // The subscription has no end of its own. Stopping the api ends it well within the
    // 30 s grace period, which the api would otherwise wait out.
    let api = app.stop_api();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream stayed open");
    tokio::time::timeout(Duration::from_secs(10), api)
        .await
        .expect("the api stopped")
        .unwrap()
        .unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_session_ends_stream() {
    use futures_util::StreamExt;

    let app = TestApp::spawn_with(TestOptions {
        env: vec![("WS_CREDENTIAL_CHECK_SECONDS".into(), "1".into())],
        ..TestOptions::default()
    })
    .await
    .unwrap();
    app.register("sse-revoke@example.com", "SSE revoke").await;
    let session = app.login("sse-revoke@example.com").await;
    let response = app
        .http()
        .post(stream_url(&app))
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {}", session.access_token))
        .json(&json!({ "query": "subscription { tenantEvents { kind } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.data(
        Some(&session.access_token),
        "mutation { logout { success } }",
        json!({}),
    )
    .await;

    let body = tokio::time::timeout(Duration::from_secs(10), async {
        let mut body = String::new();
        let mut chunks = response.bytes_stream();
        while let Some(Ok(chunk)) = chunks.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
        body
    })
    .await
    .expect("the stream stayed open after the logout");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter(|event| !event.is_empty() && !event.starts_with(':'))
        .collect();
    assert_eq!(events.len(), 2, "{body}");
    let data = events[0].strip_prefix("event: next\ndata: ").unwrap();
    let result: Value = serde_json::from_str(data).unwrap();
    assert_eq!(result["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let message = result["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(events[1], "event: complete\ndata: ");
}
