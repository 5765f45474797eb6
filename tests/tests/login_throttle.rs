//! Sign-in and registration attempts are throttled per client IP address (10 a minute by
//! default) and per email address (5 a minute), with RATE_LIMITED errors that give the
//! seconds until a retry. `X-Forwarded-For` names the client only behind a trusted proxy.
//!
//! Every api instance counts in the same limits, kept in Redis. The test harness raises
//! both quotas for the other tests, so each test here sets them.

use serde_json::{Value, json};
use tests::{TestApp, TestOptions, error_code, error_message, tcp_proxy::TcpProxy};

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { role } }";

/// The parts of a response that the tests check.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn post(app: &TestApp, query: &str, variables: Value, forwarded_for: Option<&str>) -> Reply {
    post_to(app, &app.base_url, query, variables, forwarded_for).await
}

/// Posts to the api at `base_url`, one of the app's instances.
async fn post_to(
    app: &TestApp,
    base_url: &str,
    query: &str,
    variables: Value,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut request = app
        .http()
        .post(format!("{base_url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    Reply {
        status,
        retry_after,
        body: response.json().await.unwrap(),
    }
}

async fn login(app: &TestApp, email: &str, forwarded_for: Option<&str>) -> Reply {
    let variables = json!({ "input": { "email": email, "password": "not the password" } });
    post(app, LOGIN, variables, forwarded_for).await
}

/// Sends a sign-in without a password, which validation rejects after the throttle counted
/// it. A test spends a quota this way within milliseconds. Real attempts hash a password
/// each, and in a debug build enough of them can outlast the quota's refill interval.
async fn quick_attempt(app: &TestApp, email: &str) -> Reply {
    quick_attempt_at(app, &app.base_url, email).await
}

async fn quick_attempt_at(app: &TestApp, base_url: &str, email: &str) -> Reply {
    let query = "mutation($email: String!) { login(input: { email: $email }) { accessToken } }";
    post_to(app, base_url, query, json!({ "email": email }), None).await
}

fn assert_invalid_attempt(reply: &Reply) {
    assert_eq!(reply.status, 200);
    assert_eq!(
        error_code(&reply.body),
        "BAD_USER_INPUT",
        "{:#}",
        reply.body
    );
}

fn assert_wrong_password(reply: &Reply) {
    assert_eq!(reply.status, 200);
    assert_eq!(
        error_code(&reply.body),
        "UNAUTHENTICATED",
        "{:#}",
        reply.body
    );
}

/// Checks a RATE_LIMITED reply and returns its `retryAfter`.
fn assert_rate_limited(reply: &Reply, limited_by: &str, max_wait: u64) -> u64 {
    assert_eq!(reply.status, 429, "{:#}", reply.body);
    assert_eq!(error_code(&reply.body), "RATE_LIMITED", "{:#}", reply.body);
    assert!(reply.body.get("data").is_none(), "{:#}", reply.body);
    let seconds = reply.body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .expect("retryAfter");
    assert!((1..=max_wait).contains(&seconds), "{seconds}");
    assert_eq!(
        reply.retry_after.as_deref(),
        Some(seconds.to_string().as_str())
    );
    assert_eq!(
        error_message(&reply.body),
        format!(
            "too many sign-in and registration attempts {limited_by}, retry in {seconds} seconds"
        )
    );
    seconds
}

/// Starts the api with the given quotas per IP address and per email, and `extra` settings.
async fn spawn_with_quotas(per_ip: u32, per_email: u32, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        (
            "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE".to_owned(),
            per_ip.to_string(),
        ),
        (
            "LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE".to_owned(),
            per_email.to_string(),
        ),
    ];
    env.extend(
        extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    TestApp::spawn_with(TestOptions {
        env,
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn email_limited_after_five_attempts() {
    let app = spawn_with_quotas(10, 5, &[]).await;
    for _ in 0..5 {
        assert_invalid_attempt(&quick_attempt(&app, "target@example.com").await);
    }
    let reply = login(&app, "Target@Example.com", None).await;
    // One attempt comes back every 12 s at 5 a minute.
    assert_rate_limited(&reply, "for this email address", 12);

    assert_wrong_password(&login(&app, "other@example.com", None).await);

    // In a batch, the refused sign-in still gives the wait in `Retry-After`.
    let response = app
        .http()
        .post(format!("{}/graphql", app.base_url))
        .json(&json!([
            { "query": LOGIN, "variables": { "input": {
                "email": "target@example.com", "password": "not the password" } } },
            { "query": "{ __typename }" },
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body[0]), "RATE_LIMITED", "{body}");
    assert_eq!(body[0]["errors"][0]["extensions"]["retryAfter"], header);
    assert_eq!(body[1]["data"]["__typename"], "QueryRoot");
    app.shutdown().await;
}

#[tokio::test]
async fn instances_share_the_limits() {
    let app = spawn_with_quotas(10, 4, &[]).await;
    let second = app.start_second_api().await.unwrap();
    // Attempts alternate between the two instances, which count them together.
    for attempt in 0..4 {
        let base_url = if attempt % 2 == 0 {
            app.base_url.as_str()
        } else {
            second.as_str()
        };
        assert_invalid_attempt(&quick_attempt_at(&app, base_url, "shared@example.com").await);
    }
    for base_url in [app.base_url.as_str(), second.as_str()] {
        let reply = quick_attempt_at(&app, base_url, "shared@example.com").await;
        // One attempt comes back every 15 s at 4 a minute.
        assert_rate_limited(&reply, "for this email address", 15);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn limits_hold_while_redis_is_down() {
    let (proxy, redis_url) = TcpProxy::for_redis().await.unwrap();
    let app = spawn_with_quotas(10, 2, &[("REDIS_URL", &redis_url)]).await;
    proxy.cut();
    // This instance counts on its own now, with the same quota.
    for _ in 0..2 {
        assert_invalid_attempt(&quick_attempt(&app, "offline@example.com").await);
    }
    let reply = quick_attempt(&app, "offline@example.com").await;
    assert_rate_limited(&reply, "for this email address", 30);
    app.shutdown().await;
}

#[tokio::test]
async fn ip_limited_after_ten_attempts() {
    let app = spawn_with_quotas(10, 5, &[]).await;
    for attempt in 0..10 {
        let email = format!("user{attempt}@example.com");
        assert_invalid_attempt(&quick_attempt(&app, &email).await);
    }
    let reply = login(&app, "fresh@example.com", None).await;
    // One attempt comes back every 6 s at 10 a minute.
    assert_rate_limited(&reply, "from this IP address", 6);
    app.shutdown().await;
}

#[tokio::test]
async fn registration_counts_as_attempt() {
    let app = spawn_with_quotas(2, 5, &[]).await;
    let register = |email: &str| {
        json!({ "input": { "email": email, "password": "correct horse battery",
                           "fullName": "New User", "tenantName": "New Org" } })
    };
    let first = post(&app, REGISTER, register("one@example.com"), None).await;
    assert_eq!(
        first.body["data"]["register"]["role"], "OWNER",
        "{:#}",
        first.body
    );
    assert_wrong_password(&login(&app, "one@example.com", None).await);

    let third = post(&app, REGISTER, register("two@example.com"), None).await;
    assert_rate_limited(&third, "from this IP address", 30);
    app.shutdown().await;
}

#[tokio::test]
async fn each_aliased_login_counts() {
    let app = spawn_with_quotas(10, 5, &[]).await;
    let fields: Vec<String> = (0..6)
        .map(|i| format!("a{i}: login(input: $input) {{ accessToken }}"))
        .collect();
    let query = format!("mutation($input: LoginInput!) {{ {} }}", fields.join(" "));
    let variables = json!({ "input": { "email": "aliased@example.com", "password": "guess" } });

    let reply = post(&app, &query, variables, None).await;
    assert_rate_limited(&reply, "for this email address", 12);
    app.shutdown().await;
}

#[tokio::test]
async fn forwarded_for_trusted_from_proxy() {
    let app = spawn_with_quotas(2, 5, &[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let first_client = Some("203.0.113.1");
    assert_wrong_password(&login(&app, "a@example.com", first_client).await);
    assert_wrong_password(&login(&app, "b@example.com", first_client).await);
    let reply = login(&app, "c@example.com", first_client).await;
    assert_rate_limited(&reply, "from this IP address", 30);

    let second_client = Some("198.51.100.1, 203.0.113.2");
    assert_wrong_password(&login(&app, "c@example.com", second_client).await);
    app.shutdown().await;
}

#[tokio::test]
async fn forwarded_for_ignored_without_trusted_proxies() {
    let app = spawn_with_quotas(2, 5, &[]).await;
    assert_wrong_password(&login(&app, "a@example.com", Some("203.0.113.1")).await);
    assert_wrong_password(&login(&app, "b@example.com", Some("203.0.113.2")).await);
    let reply = login(&app, "c@example.com", Some("203.0.113.3")).await;
    assert_rate_limited(&reply, "from this IP address", 30);
    app.shutdown().await;
}
