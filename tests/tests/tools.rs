//! The tool registry through the API: validation, secret headers, agents' tool lists, and
//! the guarded outbound client refusing private addresses.

use std::time::Duration;

use serde_json::{Value, json};
use tests::{MockReply, MockToolCall, TestApp, TestOptions, error_code, tool_server::ToolServer};

const CREATE_TOOL: &str = "mutation($input: CreateToolInput!) { createTool(input: $input) {
    tool { id name method url headers secretHeaderNames timeoutMs parameters } } }";

async fn spawn_allowing_local_tools() -> TestApp {
    TestApp::spawn_with(TestOptions {
        env: vec![("ALLOWED_PRIVATE_NETWORKS".into(), "127.0.0.1/32".into())],
        ..TestOptions::default()
    })
    .await
    .expect("test app")
}

fn tool_input(name: &str, url: &str) -> Value {
    json!({ "name": name, "description": "Looks things up.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "url": url })
}

/// Creates `input` with one field replaced and returns the error's code and field.
async fn rejected(app: &TestApp, token: &str, field: &str, value: Value) -> (String, String) {
    let mut input = tool_input("lookup", "https://tools.example.com/lookup");
    input[field] = value;
    let body = app
        .graphql(Some(token), CREATE_TOOL, json!({ "input": input }))
        .await;
    (
        error_code(&body).to_owned(),
        body["errors"][0]["extensions"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn invalid_tool_definitions_rejected() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("tools@example.com", "Tools").await;
    let token = owner.access_token.as_str();

    let cases = [
        ("name", json!("9lives"), "name"),
        ("name", json!("has space"), "name"),
        ("name", json!("calculate"), "name"),
        ("name", json!("x".repeat(65)), "name"),
        ("description", json!(" "), "description"),
        ("parameters", json!({"type": "string"}), "parameters"),
        (
            "parameters",
            json!({"type": "object", "properties": {"a": {"type": 5}}}),
            "parameters",
        ),
        ("url", json!("ftp://tools.example.com/x"), "url"),
        ("url", json!("not a url"), "url"),
        (
            "url",
            json!("http://169.254.169.254/latest/meta-data"),
            "url",
        ),
        ("url", json!("http://[::ffff:127.0.0.1]:8080/"), "url"),
        ("timeoutMs", json!(50), "timeoutMs"),
        ("headers", json!({"bad header": "x"}), "headers"),
        ("headers", json!({"X-Count": 3}), "headers"),
        ("headers", json!({"Content-Length": "5"}), "headers"),
        (
            "headers",
            json!({"Host": "elsewhere.example.com"}),
            "headers",
        ),
        ("headers", json!({"X-Key": "a", "x-key": "b"}), "headers"),
        (
            "secretHeaders",
            json!({"Transfer-Encoding": "chunked"}),
            "secretHeaders",
        ),
        ("url", json!("https://user:pw@tools.example.com/x"), "url"),
        ("secretHeaders", json!("Bearer x"), "secretHeaders"),
    ];
    for (field, value, named) in cases {
        let (code, reported) = rejected(&app, token, field, value.clone()).await;
        assert_eq!(code, "BAD_USER_INPUT", "{field} = {value}");
        assert_eq!(reported, named, "{field} = {value}");
    }

    // Nothing was stored by the rejected requests, and names stay unique.
    let created = app
        .data(
            Some(token),
            CREATE_TOOL,
            json!({ "input": tool_input("lookup", "https://tools.example.com/lookup") }),
        )
        .await;
    assert_eq!(created["createTool"]["tool"]["method"], "POST");
    assert_eq!(created["createTool"]["tool"]["timeoutMs"], 10000);
    let (code, field) = rejected(&app, token, "name", json!("lookup")).await;
    assert_eq!((code.as_str(), field.as_str()), ("BAD_USER_INPUT", "name"));
    let mut both = tool_input("both", "https://tools.example.com/both");
    both["headers"] = json!({"X-Key": "plain"});
    both["secretHeaders"] = json!({"x-key": "secret"});
    let body = app
        .graphql(Some(token), CREATE_TOOL, json!({ "input": both }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "secretHeaders");
    let listed = app
        .data(
            Some(token),
            "{ tools { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["tools"]["edges"].as_array().unwrap().len(), 1);

    let builtin = app
        .data(
            Some(token),
            "{ builtinTools { name parameters } }",
            json!({}),
        )
        .await;
    let names: Vec<&str> = builtin["builtinTools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "current_time",
            "calculate",
            "list_tasks",
            "create_task",
            "update_task"
        ]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn agent_tools_follow_renames() {
    let app = TestApp::spawn().await.unwrap();
    let owner = app.register("lists@example.com", "Lists").await;
    let token = owner.access_token.as_str();
    let tool = app
        .data(
            Some(token),
            CREATE_TOOL,
            json!({ "input": tool_input("weather", "https://tools.example.com/w") }),
        )
        .await;
    let tool_id = tool["createTool"]["tool"]["id"].clone();

    let create_agent = "mutation($input: CreateAgentInput!) { createAgent(input: $input) {
        agent { id tools maxSteps runTimeoutSeconds } } }";
    let agent_input = |tools: Value| {
        json!({ "input": { "name": "A", "instructions": "Help.", "provider": "OPENAI",
                           "model": "gpt-4o-mini", "tools": tools } })
    };
    for tools in [json!(["weather", "nope"]), json!(["weather", "weather"])] {
        let body = app
            .graphql(Some(token), create_agent, agent_input(tools))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["extensions"]["field"], "tools");
    }
    let agent = app
        .data(
            Some(token),
            create_agent,
            agent_input(json!(["weather", "calculate"])),
        )
        .await;
    let agent = &agent["createAgent"]["agent"];
    assert_eq!(agent["tools"], json!(["weather", "calculate"]));
    assert_eq!(agent["maxSteps"], 8);
    assert_eq!(agent["runTimeoutSeconds"], 600);

    let agent_tools = || async {
        app.data(
            Some(token),
            "query($id: ID!) { agent(id: $id) { tools } }",
            json!({ "id": agent["id"] }),
        )
        .await["agent"]["tools"]
            .clone()
    };
    app.data(
        Some(token),
        "mutation($input: UpdateToolInput!) { updateTool(input: $input) { tool { name } } }",
        json!({ "input": { "id": tool_id, "name": "forecast" } }),
    )
    .await;
    assert_eq!(agent_tools().await, json!(["forecast", "calculate"]));
    app.data(
        Some(token),
        "mutation($input: DeleteToolInput!) { deleteTool(input: $input) { deletedToolId } }",
        json!({ "input": { "id": tool_id } }),
    )
    .await;
    assert_eq!(agent_tools().await, json!(["calculate"]));
    app.shutdown().await;
}

async fn run_one_call(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Value {
    let agent = app
        .data(
            Some(token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
            json!({ "input": { "name": "Caller", "instructions": "Call it.", "provider": "OPENAI",
                               "model": "gpt-4o-mini", "tools": [tool] } }),
        )
        .await;
    app.mock.reply_next(MockReply::ToolCalls(vec![MockToolCall {
        name: tool.to_owned(),
        arguments,
    }]));
    app.mock.reply_next(MockReply::Text("Done.".into()));
    let run = app
        .data(
            Some(token),
            "mutation($input: ExecuteAgentInput!) { executeAgent(input: $input) { agentRun { id } } }",
            json!({ "input": { "agentId": agent["createAgent"]["agent"]["id"], "prompt": "Go." } }),
        )
        .await;
    let run_id = run["executeAgent"]["agentRun"]["id"].clone();
    app.eventually(Duration::from_secs(30), || async {
        let data = app
            .data(
                Some(token),
                "query($id: ID!) { agentRun(id: $id) { status
                    toolExecutions { status result error toolId } } }",
                json!({ "id": run_id }),
            )
            .await;
        let run = data["agentRun"].clone();
        (run["status"] == "SUCCEEDED").then(|| run["toolExecutions"][0].clone())
    })
    .await
    .expect("run did not succeed")
}

#[tokio::test]
async fn http_tools_send_secret_headers() {
    let app = spawn_allowing_local_tools().await;
    let server = ToolServer::start().await.unwrap();
    let owner = app.register("http@example.com", "Http").await;
    let token = owner.access_token.as_str();
    let mut post = tool_input("lookup", &server.url("/echo"));
    post["headers"] = json!({"X-Team": "blue"});
    post["secretHeaders"] = json!({"Authorization": "Bearer s3cret-value"});
    let created = app
        .data(Some(token), CREATE_TOOL, json!({ "input": post }))
        .await;
    let created = &created["createTool"]["tool"];
    assert_eq!(created["secretHeaderNames"], json!(["Authorization"]));
    assert!(!created.to_string().contains("s3cret-value"));
    let mut get = tool_input("search", &server.url("/echo"));
    get["method"] = json!("GET");
    app.data(Some(token), CREATE_TOOL, json!({ "input": get }))
        .await;

    let execution = run_one_call(&app, token, "lookup", json!({"city": "Oslo"})).await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    assert_eq!(execution["toolId"], created["id"]);
    let answer: Value = serde_json::from_str(execution["result"].as_str().unwrap()).unwrap();
    assert_eq!(answer["method"], "POST");
    assert_eq!(answer["body"], json!({"city": "Oslo"}));
    let received = &server.received()[0];
    assert_eq!(received.headers["authorization"], "Bearer s3cret-value");
    assert_eq!(received.headers["x-team"], "blue");

    let execution = run_one_call(&app, token, "search", json!({"city": "Bergen"})).await;
    let answer: Value = serde_json::from_str(execution["result"].as_str().unwrap()).unwrap();
    assert_eq!(answer["method"], "GET");
    assert_eq!(answer["query"], "city=Bergen");
    app.shutdown().await;
}

#[tokio::test]
async fn private_tool_hosts_rejected() {
    // No allow-list: the host name passes the definition check and is refused once it
    // resolves to a loopback address at call time.
    let app = TestApp::spawn().await.unwrap();
    let server = ToolServer::start().await.unwrap();
    let owner = app.register("blocked@example.com", "Blocked").await;
    let token = owner.access_token.as_str();
    let url = format!("http://localhost:{}/echo", server.addr.port());
    app.data(
        Some(token),
        CREATE_TOOL,
        json!({ "input": tool_input("lookup", &url) }),
    )
    .await;

    let execution = run_one_call(&app, token, "lookup", json!({"city": "Oslo"})).await;
    assert_eq!(execution["status"], "FAILED");
    let error = execution["error"].as_str().unwrap();
    assert!(
        error.contains("blocked") || error.contains("loopback"),
        "{error}"
    );
    assert!(server.received().is_empty());
    app.shutdown().await;
}
