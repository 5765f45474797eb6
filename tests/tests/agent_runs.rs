//! Agent runs through the API: the tool loop with a scripted provider, limits,
//! cancellation, a worker killed during a run, and run events over a WebSocket.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{
    MockReply, MockToolCall, TestApp, TestOptions, error_code, error_message, graphql_ws,
    tool_server::ToolServer,
};

const RUN_FIELDS: &str = "id status output error stepsTaken attempts inputTokens outputTokens
    costMicros durationMs
    steps { step text finishReason toolCalls { id name arguments } inputTokens outputTokens
            usageEstimated }
    toolExecutions { step callId toolName status result error arguments durationMs }";

/// A platform whose tools may call the local tool server, with a short lease and sweep so
/// that a run of a dead worker is resumed within seconds.
async fn spawn(worker: bool) -> TestApp {
    TestApp::spawn_with(TestOptions {
        env: vec![
            ("ALLOWED_PRIVATE_NETWORKS".into(), "127.0.0.1/32".into()),
            ("AGENT_RUN_LEASE_SECONDS".into(), "2".into()),
            ("SWEEP_INTERVAL_SECONDS".into(), "1".into()),
        ],
        worker,
        ..TestOptions::default()
    })
    .await
    .expect("test app")
}

fn call(name: &str, arguments: Value) -> MockToolCall {
    MockToolCall {
        name: name.to_owned(),
        arguments,
    }
}

async fn create_agent(app: &TestApp, token: &str, tools: &[&str], extra: Value) -> String {
    let mut input = json!({ "name": "Runner", "instructions": "Use the tools.",
                            "provider": "OPENAI", "model": "gpt-4o-mini", "tools": tools });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    let data = app
        .data(
            Some(token),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id tools } } }",
            json!({ "input": input }),
        )
        .await;
    data["createAgent"]["agent"]["id"]
        .as_str()
        .expect("agent id")
        .to_owned()
}

async fn create_tool(app: &TestApp, token: &str, name: &str, url: &str, extra: Value) -> String {
    let mut input = json!({ "name": name, "description": format!("The {name} tool."),
                            "parameters": {"type": "object"}, "url": url });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    let data = app
        .data(
            Some(token),
            "mutation($input: CreateToolInput!) { createTool(input: $input) { tool { id } } }",
            json!({ "input": input }),
        )
        .await;
    data["createTool"]["tool"]["id"]
        .as_str()
        .expect("tool id")
        .to_owned()
}

async fn execute(app: &TestApp, token: &str, agent_id: &str, prompt: &str) -> Value {
    let data = app
        .data(
            Some(token),
            "mutation($input: ExecuteAgentInput!) { executeAgent(input: $input) {
                agentRun { id status prompt stepsTaken } } }",
            json!({ "input": { "agentId": agent_id, "prompt": prompt } }),
        )
        .await;
    data["executeAgent"]["agentRun"].clone()
}

async fn run(app: &TestApp, token: &str, run_id: &str) -> Value {
    let data = app
        .data(
            Some(token),
            &format!("query($id: ID!) {{ agentRun(id: $id) {{ {RUN_FIELDS} }} }}"),
            json!({ "id": run_id }),
        )
        .await;
    data["agentRun"].clone()
}

/// Polls the run until it has ended.
async fn finished_run(app: &TestApp, token: &str, run_id: &str) -> Value {
    app.eventually(Duration::from_secs(30), || async {
        let run = run(app, token, run_id).await;
        let status = run["status"].as_str().unwrap_or_default();
        (!matches!(status, "QUEUED" | "RUNNING")).then_some(run)
    })
    .await
    .expect("the run did not end")
}

/// Returns the contents of the tool result messages in the `index`th provider request.
fn tool_results(app: &TestApp, index: usize) -> Vec<String> {
    app.mock.requests()[index]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| message["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn tool_result_reaches_model() {
    let app = spawn(true).await;
    let owner = app.register("single@example.com", "Single").await;
    let agent = create_agent(&app, &owner.access_token, &["calculate"], json!({})).await;
    app.mock.reply_next(MockReply::ToolCalls(vec![call(
        "calculate",
        json!({"operation": "multiply", "a": 6, "b": 7}),
    )]));
    app.mock
        .reply_next(MockReply::Text("Six times seven is 42.".into()));

    let queued = execute(&app, &owner.access_token, &agent, "What is 6 x 7?").await;
    assert_eq!(queued["status"], "QUEUED");
    assert_eq!(queued["prompt"], "What is 6 x 7?");
    let run = finished_run(&app, &owner.access_token, queued["id"].as_str().unwrap()).await;

    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["output"], "Six times seven is 42.");
    assert_eq!(run["stepsTaken"], 2);
    assert_eq!(run["attempts"], 1);
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps[0]["finishReason"], "TOOL_CALLS");
    assert_eq!(steps[0]["toolCalls"][0]["name"], "calculate");
    assert_eq!(steps[1]["text"], "Six times seven is 42.");
    assert_eq!(steps[1]["finishReason"], "STOP");
    let execution = &run["toolExecutions"][0];
    assert_eq!(execution["status"], "SUCCEEDED");
    assert_eq!(execution["result"], r#"{"result":42.0}"#);
    assert_eq!(execution["callId"], steps[0]["toolCalls"][0]["id"]);

    // The second model call carried the tools, the call and its result.
    let requests = app.mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["tools"][0]["function"]["name"], "calculate");
    assert_eq!(tool_results(&app, 1), vec![r#"{"result":42.0}"#.to_owned()]);

    // Each step's usage is recorded against the run and adds up to the run's totals.
    let step_tokens: i64 = steps
        .iter()
        .map(|step| step["inputTokens"].as_i64().unwrap() + step["outputTokens"].as_i64().unwrap())
        .sum();
    let run_tokens = run["inputTokens"].as_i64().unwrap() + run["outputTokens"].as_i64().unwrap();
    assert!(step_tokens > 0);
    assert_eq!(step_tokens, run_tokens);
    let records = app
        .data(
            Some(&owner.access_token),
            "{ usageRecords(first: 10) { edges { node { inputTokens outputTokens } } } }",
            json!({}),
        )
        .await;
    let recorded: i64 = records["usageRecords"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            edge["node"]["inputTokens"].as_i64().unwrap()
                + edge["node"]["outputTokens"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(recorded, run_tokens);
    app.shutdown().await;
}

#[tokio::test]
async fn parallel_calls_run_concurrently() {
    let app = spawn(true).await;
    let tools = ToolServer::start().await.unwrap();
    let owner = app.register("parallel@example.com", "Parallel").await;
    create_tool(
        &app,
        &owner.access_token,
        "pair",
        &tools.url("/pair"),
        json!({}),
    )
    .await;
    let agent = create_agent(&app, &owner.access_token, &["pair"], json!({})).await;
    app.mock.reply_next(MockReply::ToolCalls(vec![
        call("pair", json!({"side": "left"})),
        call("pair", json!({"side": "right"})),
    ]));
    app.mock
        .reply_next(MockReply::Text("Both answered.".into()));

    let queued = execute(&app, &owner.access_token, &agent, "Call both.").await;
    let run = finished_run(&app, &owner.access_token, queued["id"].as_str().unwrap()).await;

    // `/pair` returns 200 only when both requests are in flight together.
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let executions = run["toolExecutions"].as_array().unwrap();
    assert_eq!(executions.len(), 2);
    for execution in executions {
        assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
        assert_eq!(execution["result"], "together");
    }
    let bodies: Vec<Value> = tools.received().iter().map(|r| r.body.clone()).collect();
    assert!(bodies.contains(&json!({"side": "left"})), "{bodies:?}");
    assert!(bodies.contains(&json!({"side": "right"})), "{bodies:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn chained_calls_create_task() {
    let app = spawn(true).await;
    let owner = app.register("chained@example.com", "Chained").await;
    let agent = create_agent(
        &app,
        &owner.access_token,
        &["calculate", "create_task", "list_tasks"],
        json!({}),
    )
    .await;
    app.mock.reply_next(MockReply::ToolCalls(vec![call(
        "calculate",
        json!({"operation": "add", "a": 40, "b": 2}),
    )]));
    app.mock.reply_next(MockReply::ToolCalls(vec![call(
        "create_task",
        json!({"title": "Answer is 42", "priority": "high"}),
    )]));
    app.mock
        .reply_next(MockReply::ToolCalls(vec![call("list_tasks", json!({}))]));
    app.mock.reply_next(MockReply::Text("Task created.".into()));

    let queued = execute(&app, &owner.access_token, &agent, "Add and file it.").await;
    let run = finished_run(&app, &owner.access_token, queued["id"].as_str().unwrap()).await;

    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["stepsTaken"], 4);
    let tasks = app
        .data(
            Some(&owner.access_token),
            "{ tasks { edges { node { title priority } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        tasks["tasks"]["edges"][0]["node"],
        json!({"title": "Answer is 42", "priority": "HIGH"})
    );
    // The listing the model read contains the task it created one step before.
    let listing = &tool_results(&app, 3)[2];
    assert!(listing.contains("Answer is 42"), "{listing}");
    app.shutdown().await;
}

#[tokio::test]
async fn tool_errors_reach_model() {
    let app = spawn(true).await;
    let tools = ToolServer::start().await.unwrap();
    let owner = app.register("invalid@example.com", "Invalid").await;
    create_tool(
        &app,
        &owner.access_token,
        "slow",
        &tools.url("/slow"),
        json!({ "timeoutMs": 300 }),
    )
    .await;
    let agent = create_agent(&app, &owner.access_token, &["calculate", "slow"], json!({})).await;
    app.mock.reply_next(MockReply::ToolCalls(vec![
        call(
            "calculate",
            json!({"operation": "multiply", "a": "six", "b": 7}),
        ),
        call("calculate", json!(r#"{"operation": "#)),
        call("slow", json!({})),
        call("no_such_tool", json!({})),
    ]));
    app.mock
        .reply_next(MockReply::Text("Sorry, the tools failed.".into()));

    let queued = execute(&app, &owner.access_token, &agent, "Try.").await;
    let run = finished_run(&app, &owner.access_token, queued["id"].as_str().unwrap()).await;

    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let errors: Vec<&str> = run["toolExecutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|execution| {
            assert_eq!(execution["status"], "FAILED", "{execution}");
            execution["error"].as_str().unwrap()
        })
        .collect();
    assert!(
        errors[0].contains("do not match the tool's schema"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("/a"), "{}", errors[0]);
    assert!(errors[1].contains("not a JSON object"), "{}", errors[1]);
    assert!(
        errors[2].contains("did not answer within 300 ms"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].contains("no tool named no_such_tool"),
        "{}",
        errors[3]
    );
    let results = tool_results(&app, 1);
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|result| result.starts_with("Error: ")));
    app.shutdown().await;
}

#[tokio::test]
async fn step_limit_fails_run() {
    let app = spawn(true).await;
    let owner = app.register("limit@example.com", "Limit").await;
    let agent = create_agent(
        &app,
        &owner.access_token,
        &["current_time"],
        json!({ "maxSteps": 2 }),
    )
    .await;
    for _ in 0..3 {
        app.mock
            .reply_next(MockReply::ToolCalls(vec![call("current_time", json!({}))]));
    }

    let queued = execute(&app, &owner.access_token, &agent, "Loop.").await;
    let run = finished_run(&app, &owner.access_token, queued["id"].as_str().unwrap()).await;

    assert_eq!(run["status"], "FAILED");
    assert_eq!(
        run["error"],
        "reached its limit of 2 steps without a final answer"
    );
    assert_eq!(run["stepsTaken"], 2);
    assert_eq!(app.mock.requests().len(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn cancel_stops_model_stream() {
    let app = TestApp::spawn_with(TestOptions {
        mock: tests::MockConfig {
            tokens: 400,
            gap: Duration::from_millis(20),
            ..tests::MockConfig::default()
        },
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let owner = app.register("cancel@example.com", "Cancel").await;
    let agent = create_agent(&app, &owner.access_token, &[], json!({})).await;
    let queued = execute(&app, &owner.access_token, &agent, "Write a lot.").await;
    let run_id = queued["id"].as_str().unwrap();
    app.eventually(Duration::from_secs(10), || async {
        let events = app.mock.requests();
        (!events.is_empty()).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cancelled = app
        .data(
            Some(&owner.access_token),
            "mutation($input: CancelAgentRunInput!) { cancelAgentRun(input: $input) {
                agentRun { status error } } }",
            json!({ "input": { "id": run_id } }),
        )
        .await;
    assert_eq!(
        cancelled["cancelAgentRun"]["agentRun"]["status"],
        "CANCELLED"
    );
    let run = run(&app, &owner.access_token, run_id).await;
    // The text streamed before the cancel is kept with an estimate of its usage.
    let step = &run["steps"][0];
    assert_eq!(step["finishReason"], "CANCELLED");
    assert_eq!(step["usageEstimated"], true);
    let text = step["text"].as_str().unwrap();
    assert!(text.starts_with("Hello from the mock provider."), "{text}");
    assert!(step["outputTokens"].as_i64().unwrap() > 0);
    app.shutdown().await;
}

#[tokio::test]
async fn queued_run_cancel_and_input_errors() {
    let app = spawn(false).await;
    let owner = app.register("queued@example.com", "Queued").await;
    let agent = create_agent(&app, &owner.access_token, &[], json!({})).await;
    let queued = execute(&app, &owner.access_token, &agent, "Wait.").await;
    let cancelled = app
        .data(
            Some(&owner.access_token),
            "mutation($input: CancelAgentRunInput!) { cancelAgentRun(input: $input) {
                agentRun { status error finishedAt } } }",
            json!({ "input": { "id": queued["id"] } }),
        )
        .await;
    let run = &cancelled["cancelAgentRun"]["agentRun"];
    assert_eq!(run["status"], "CANCELLED");
    assert_eq!(run["error"], "cancelled before it started");

    let empty = app
        .graphql(
            Some(&owner.access_token),
            "mutation($input: ExecuteAgentInput!) { executeAgent(input: $input) { agentRun { id } } }",
            json!({ "input": { "agentId": agent, "prompt": "  " } }),
        )
        .await;
    assert_eq!(error_code(&empty), "BAD_USER_INPUT");
    assert_eq!(empty["errors"][0]["extensions"]["field"], "prompt");
    let unknown = app
        .graphql(
            Some(&owner.access_token),
            "mutation($input: ExecuteAgentInput!) { executeAgent(input: $input) { agentRun { id } } }",
            json!({ "input": { "agentId": uuid::Uuid::now_v7(), "prompt": "Hi" } }),
        )
        .await;
    assert_eq!(
        error_code(&unknown),
        "NOT_FOUND",
        "{}",
        error_message(&unknown)
    );
    let runs = app
        .data(
            Some(&owner.access_token),
            "{ agentRuns { edges { node { status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(runs["agentRuns"]["edges"].as_array().unwrap().len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn killed_worker_run_resumes() {
    let app = spawn(false).await;
    let tools = ToolServer::start().await.unwrap();
    let owner = app.register("killed@example.com", "Killed").await;
    create_tool(
        &app,
        &owner.access_token,
        "block",
        &tools.url("/block"),
        json!({ "timeoutMs": 120000 }),
    )
    .await;
    let agent = create_agent(
        &app,
        &owner.access_token,
        &["block", "calculate"],
        json!({}),
    )
    .await;
    app.mock.reply_next(MockReply::ToolCalls(vec![
        call("calculate", json!({"operation": "add", "a": 1, "b": 1})),
        call("block", json!({"order": 66})),
    ]));
    app.mock.reply_next(MockReply::Text("Recovered.".into()));

    let first = app.start_worker().unwrap();
    let queued = execute(&app, &owner.access_token, &agent, "Do it once.").await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    tokio::time::timeout(Duration::from_secs(20), tools.blocked())
        .await
        .expect("the blocking tool was not called");
    // Give the calculation time to record its result before the worker dies.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill();

    let mid_run = run(&app, &owner.access_token, &run_id).await;
    assert_eq!(mid_run["status"], "RUNNING");
    let second = app.start_worker().unwrap();
    let run = finished_run(&app, &owner.access_token, &run_id).await;

    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["output"], "Recovered.");
    assert_eq!(run["attempts"], 2);
    assert_eq!(run["stepsTaken"], 2);
    let executions = run["toolExecutions"].as_array().unwrap();
    let status_of = |name: &str| {
        executions
            .iter()
            .find(|execution| execution["toolName"] == name)
            .map(|execution| execution["status"].clone())
    };
    assert_eq!(status_of("calculate"), Some(json!("SUCCEEDED")));
    assert_eq!(status_of("block"), Some(json!("UNKNOWN")));
    // The blocking call was not made again, and the model's tool message says its outcome is
    // unknown.
    let block_calls = tools
        .received()
        .iter()
        .filter(|request| request.path == "/block")
        .count();
    assert_eq!(block_calls, 1);
    let results = tool_results(&app, 1);
    assert_eq!(results[0], r#"{"result":2.0}"#);
    assert!(
        results[1].starts_with("The outcome of this call is unknown"),
        "{results:?}"
    );
    assert_eq!(app.mock.requests().len(), 2);
    drop(second);
    app.shutdown().await;
}

#[tokio::test]
async fn run_events_over_websocket() {
    let app = spawn(true).await;
    let owner = app.register("events@example.com", "Events").await;
    let agent = create_agent(&app, &owner.access_token, &["calculate"], json!({})).await;
    app.mock.reply_next(MockReply::ToolCalls(vec![call(
        "calculate",
        json!({"operation": "subtract", "a": 10, "b": 4}),
    )]));
    app.mock.reply_next(MockReply::Text("It is 6.".into()));
    let queued = execute(&app, &owner.access_token, &agent, "10 - 4?").await;

    let events = graphql_ws::collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        "subscription($id: ID!) { agentRunEvents(runId: $id) {
            cursor kind status step text callId toolName arguments toolStatus output error } }",
        json!({ "id": queued["id"] }),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    let events: Vec<&Value> = events
        .iter()
        .map(|payload| &payload["data"]["agentRunEvents"])
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .filter(|kind| *kind != "TEXT")
        .collect();
    assert_eq!(
        kinds,
        ["STATUS", "STATUS", "TOOL_CALL", "TOOL_RESULT", "FINISHED"]
    );
    assert_eq!(events[0]["status"], "QUEUED");
    assert_eq!(events[1]["status"], "RUNNING");
    let tool_call = events.iter().find(|e| e["kind"] == "TOOL_CALL").unwrap();
    assert_eq!(tool_call["toolName"], "calculate");
    assert_eq!(
        tool_call["arguments"],
        json!({"operation": "subtract", "a": 10, "b": 4})
    );
    let tool_result = events.iter().find(|e| e["kind"] == "TOOL_RESULT").unwrap();
    assert_eq!(tool_result["toolStatus"], "SUCCEEDED");
    assert_eq!(tool_result["output"], r#"{"result":6.0}"#);
    let text: String = events
        .iter()
        .filter(|event| event["kind"] == "TEXT")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "It is 6.");
    let finished = events.last().unwrap();
    assert_eq!(finished["status"], "SUCCEEDED");
    assert_eq!(finished["output"], "It is 6.");

    // Resuming after the tool call replays only what followed it.
    let resumed = graphql_ws::collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        "subscription($id: ID!, $after: String) { agentRunEvents(runId: $id, after: $after) {
            kind } }",
        json!({ "id": queued["id"], "after": tool_call["cursor"] }),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let resumed_kinds: Vec<&str> = resumed
        .iter()
        .map(|payload| payload["data"]["agentRunEvents"]["kind"].as_str().unwrap())
        .filter(|kind| *kind != "TEXT")
        .collect();
    assert_eq!(resumed_kinds, ["TOOL_RESULT", "FINISHED"]);

    // Resuming after the last event of an ended run completes without events.
    let after_end = graphql_ws::collect_subscription(
        &app.ws_url(),
        &owner.access_token,
        "subscription($id: ID!, $after: String) { agentRunEvents(runId: $id, after: $after) {
            kind } }",
        json!({ "id": queued["id"], "after": finished["cursor"] }),
        Duration::from_secs(3),
    )
    .await
    .unwrap();
    assert!(after_end.is_empty(), "{after_end:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn agent_stats_sum_runs_and_tools() {
    let app = spawn(true).await;
    let owner = app.register("stats@example.com", "Stats").await;
    let token = owner.access_token.as_str();
    let agent = create_agent(
        &app,
        token,
        &["calculate", "current_time"],
        json!({ "maxSteps": 2 }),
    )
    .await;

    // One run with two tool calls that succeeds, one without tools that succeeds, and one
    // that reaches the step limit, whose last requested call does not run.
    app.mock.reply_next(MockReply::ToolCalls(vec![
        call("calculate", json!({"operation": "add", "a": 1, "b": 2})),
        call("current_time", json!({})),
    ]));
    app.mock.reply_next(MockReply::Text("Done.".into()));
    app.mock
        .reply_next(MockReply::Text("Nothing to do.".into()));
    app.mock.reply_next(MockReply::ToolCalls(vec![call(
        "calculate",
        json!({"operation": "divide", "a": 1, "b": 0}),
    )]));
    app.mock
        .reply_next(MockReply::ToolCalls(vec![call("current_time", json!({}))]));
    let mut runs = Vec::new();
    for prompt in ["first", "second", "third"] {
        let queued = execute(&app, token, &agent, prompt).await;
        runs.push(finished_run(&app, token, queued["id"].as_str().unwrap()).await);
    }
    let statuses: Vec<&str> = runs
        .iter()
        .map(|run| run["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["SUCCEEDED", "SUCCEEDED", "FAILED"]);

    let data = app
        .data(
            Some(token),
            "query($id: ID!) { agentStats(agentId: $id) { runs succeeded failed cancelled
                unfinished successRate p50DurationMs p95DurationMs inputTokens outputTokens
                costMicros toolCalls { toolName calls succeeded failed unknown } } }",
            json!({ "id": agent }),
        )
        .await;
    let stats = &data["agentStats"];
    assert_eq!(stats["runs"], 3);
    assert_eq!(stats["succeeded"], 2);
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["cancelled"], 0);
    assert_eq!(stats["unfinished"], 0);
    let rate = stats["successRate"].as_f64().unwrap();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    let sum = |field: &str| {
        runs.iter()
            .map(|run| run[field].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(stats["inputTokens"], sum("inputTokens"));
    assert_eq!(stats["outputTokens"], sum("outputTokens"));
    assert_eq!(stats["costMicros"], sum("costMicros"));
    let p50 = stats["p50DurationMs"].as_i64().unwrap();
    let p95 = stats["p95DurationMs"].as_i64().unwrap();
    assert!(p50 <= p95, "{p50} > {p95}");
    let longest = runs
        .iter()
        .map(|run| run["durationMs"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(p95 <= longest + 1, "{p95} > {longest}");
    assert_eq!(
        stats["toolCalls"],
        json!([
            { "toolName": "calculate", "calls": 2, "succeeded": 1, "failed": 1, "unknown": 0 },
            { "toolName": "current_time", "calls": 1, "succeeded": 1, "failed": 0, "unknown": 0 },
        ])
    );

    // The agent's newest runs load with the agent list.
    let listed = app
        .data(
            Some(token),
            "{ agents { edges { node { id recentRuns { status prompt } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["agents"]["edges"][0]["node"]["recentRuns"],
        json!([
            { "status": "FAILED", "prompt": "third" },
            { "status": "SUCCEEDED", "prompt": "second" },
            { "status": "SUCCEEDED", "prompt": "first" },
        ])
    );

    let empty = app
        .data(
            Some(token),
            "query($id: ID!, $from: DateTime!, $to: DateTime!) {
                agentStats(agentId: $id, from: $from, to: $to) { runs successRate p50DurationMs } }",
            json!({ "id": agent, "from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(
        empty["agentStats"],
        json!({ "runs": 0, "successRate": null, "p50DurationMs": null })
    );
    let reversed = app
        .graphql(
            Some(token),
            "query($id: ID!) { agentStats(agentId: $id, from: \"2021-01-01T00:00:00Z\",
                to: \"2020-01-01T00:00:00Z\") { runs } }",
            json!({ "id": agent }),
        )
        .await;
    assert_eq!(error_code(&reversed), "BAD_USER_INPUT");
    assert_eq!(reversed["errors"][0]["extensions"]["field"], "to");
    app.shutdown().await;
}

#[tokio::test]
async fn time_limit_fails_run() {
    let app = spawn(true).await;
    let tools = ToolServer::start().await.unwrap();
    let owner = app.register("timeout@example.com", "Timeout").await;
    create_tool(
        &app,
        &owner.access_token,
        "slow",
        &tools.url("/slow"),
        json!({ "timeoutMs": 5000 }),
    )
    .await;
    let agent = create_agent(
        &app,
        &owner.access_token,
        &["slow"],
        json!({ "runTimeoutSeconds": 1 }),
    )
    .await;
    app.mock
        .reply_next(MockReply::ToolCalls(vec![call("slow", json!({}))]));

    let queued = execute(&app, &owner.access_token, &agent, "Wait for it.").await;
    let run = finished_run(&app, &owner.access_token, queued["id"].as_str().unwrap()).await;

    // The limit cuts the 3-second call short; it may have taken effect, so it is unknown.
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["error"], "reached its time limit of 1 seconds");
    assert!(run["durationMs"].as_i64().unwrap() < 3000, "{run}");
    let execution = &run["toolExecutions"][0];
    assert_eq!(execution["status"], "UNKNOWN");
    assert_eq!(
        execution["error"],
        "the run reached its time limit while the call ran"
    );
    assert_eq!(run["stepsTaken"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn cancel_stops_run_during_tool_call() {
    let app = spawn(true).await;
    let tools = ToolServer::start().await.unwrap();
    let owner = app.register("cancel-tool@example.com", "Cancel tool").await;
    create_tool(
        &app,
        &owner.access_token,
        "block",
        &tools.url("/block"),
        json!({ "timeoutMs": 120000 }),
    )
    .await;
    let agent = create_agent(&app, &owner.access_token, &["block"], json!({})).await;
    app.mock
        .reply_next(MockReply::ToolCalls(vec![call("block", json!({}))]));
    let queued = execute(&app, &owner.access_token, &agent, "Block.").await;
    tokio::time::timeout(Duration::from_secs(20), tools.blocked())
        .await
        .expect("the blocking tool was not called");

    let cancelled = app
        .data(
            Some(&owner.access_token),
            "mutation($input: CancelAgentRunInput!) { cancelAgentRun(input: $input) {
                agentRun { status toolExecutions { status error } } } }",
            json!({ "input": { "id": queued["id"] } }),
        )
        .await;
    let run = &cancelled["cancelAgentRun"]["agentRun"];
    assert_eq!(run["status"], "CANCELLED");
    assert_eq!(
        run["toolExecutions"],
        json!([{ "status": "UNKNOWN", "error": "the run was cancelled while the call ran" }])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn run_fails_after_too_many_attempts() {
    let app = spawn(false).await;
    let owner = app.register("attempts@example.com", "Attempts").await;
    let agent = create_agent(&app, &owner.access_token, &[], json!({})).await;
    let queued = execute(&app, &owner.access_token, &agent, "Crash again.").await;
    let run_id = queued["id"].as_str().unwrap();
    // Five workers took the run before and died with it.
    app.db
        .execute_unprepared(&format!(
            "UPDATE agent_runs SET attempts = 5 WHERE id = '{run_id}'"
        ))
        .await
        .unwrap();

    let _worker = app.start_worker().unwrap();
    let run = finished_run(&app, &owner.access_token, run_id).await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(
        run["error"],
        "stopped after 5 attempts: the workers running it kept stopping"
    );
    assert_eq!(run["attempts"], 6);
    assert!(app.mock.requests().is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn worker_shutdown_hands_run_over() {
    let app = TestApp::spawn_with(TestOptions {
        mock: tests::MockConfig {
            tokens: 400,
            gap: Duration::from_millis(20),
            ..tests::MockConfig::default()
        },
        env: vec![
            ("AGENT_RUN_LEASE_SECONDS".into(), "2".into()),
            ("SWEEP_INTERVAL_SECONDS".into(), "1".into()),
        ],
        worker: false,
    })
    .await
    .unwrap();
    let owner = app.register("handover@example.com", "Handover").await;
    let agent = create_agent(&app, &owner.access_token, &[], json!({})).await;
    let first = app.start_worker().unwrap();
    let queued = execute(&app, &owner.access_token, &agent, "Write a lot.").await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    app.eventually(Duration::from_secs(10), || async {
        (!app.mock.requests().is_empty()).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The run stops at once instead of holding the shutdown for its whole stream.
    first.stop().await.unwrap();
    let handed_over = run(&app, &owner.access_token, &run_id).await;
    assert_eq!(handed_over["status"], "RUNNING");
    let cut = &handed_over["steps"][0];
    assert_eq!(cut["finishReason"], "ERROR");
    assert_eq!(cut["usageEstimated"], true);
    assert!(cut["outputTokens"].as_i64().unwrap() > 0);

    app.mock.reply_next(MockReply::Text("Resumed.".into()));
    let _second = app.start_worker().unwrap();
    let finished = finished_run(&app, &owner.access_token, &run_id).await;
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(finished["output"], "Resumed.");
    assert_eq!(finished["attempts"], 2);
    assert_eq!(finished["stepsTaken"], 2);
    // The cut call's usage counts in the run's totals along with the call made again.
    let steps = finished["steps"].as_array().unwrap();
    let step_tokens: i64 = steps
        .iter()
        .map(|step| step["outputTokens"].as_i64().unwrap())
        .sum();
    assert_eq!(finished["outputTokens"], step_tokens);
    app.shutdown().await;
}
