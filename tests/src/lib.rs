//! Test harness: starts the api and the worker in-process against real PostgreSQL and Redis,
//! each test on its own database (cloned from a migrated template) and Redis key prefix.

pub mod bench;
pub mod graphql_ws;
pub mod js_clients;
pub mod node;
pub mod tcp_proxy;
pub mod tool_server;
pub mod webhook_receiver;

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use anyhow::{Context, bail};
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use service::{Platform, Settings};
use tokio::{net::TcpListener, sync::Mutex, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use mock_provider::{MockConfig, MockProvider, MockReply, MockToolCall};

/// Server URL of the test PostgreSQL, without a database name.
/// The PostgreSQL server as a superuser, which creates the test databases and lets tests
/// check rows of every tenant.
fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Returns the PostgreSQL server URL for the role the migrations create for the
/// application, to which row-level security applies.
pub fn application_server() -> String {
    std::env::var("TEST_APPLICATION_POSTGRES_URL")
        .unwrap_or_else(|_| format!("postgres://{}@127.0.0.1:5432", migration::APPLICATION_ROLE))
}

/// The Redis server the tests share.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Serialises template creation among the tests of one process; other processes are
/// serialised by the PostgreSQL advisory lock in [`ensure_template`].
static TEMPLATE: OnceLock<Mutex<Option<String>>> = OnceLock::new();

/// Returns the name of a migrated template database for the current migrations. The name
/// hashes the migration names, so editing a migration that already exists needs a new
/// migration or a manual `DROP DATABASE` of the template.
async fn ensure_template() -> anyhow::Result<String> {
    let mut template = TEMPLATE.get_or_init(|| Mutex::new(None)).lock().await;
    if let Some(name) = template.as_ref() {
        return Ok(name.clone());
    }
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    let digest = names
        .join(",")
        .bytes()
        .fold(0xcbf29ce484222325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
        });
    let name = format!("ta_template_{digest:016x}");

    let admin = Database::connect(format!("{}/postgres", postgres_server())).await?;
    // Advisory lock so that parallel test processes build the template once.
    admin
        .execute_unprepared("SELECT pg_advisory_lock(72106401)")
        .await?;
    let result = async {
        let exists = admin
            .query_one_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT 1 AS found FROM pg_database WHERE datname = '{name}'"),
            ))
            .await?
            .is_some();
        if !exists {
            let building = format!("{name}_building");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {building}"))
                .await?;
            migration::migrate(&format!("{}/{building}", postgres_server())).await?;
            admin
                .execute_unprepared(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .await?;
        }
        anyhow::Ok(())
    }
    .await;
    admin
        .execute_unprepared("SELECT pg_advisory_unlock(72106401)")
        .await?;
    admin.close().await?;
    result?;
    *template = Some(name.clone());
    Ok(name)
}

/// Options of a test platform.
#[derive(Clone)]
pub struct TestOptions {
    pub mock: MockConfig,
    /// Extra environment variables given to the settings.
    pub env: Vec<(String, String)>,
    /// Start the worker (usage counting and sweeps) in the same process.
    pub worker: bool,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            mock: MockConfig::default(),
            env: Vec::new(),
            worker: true,
        }
    }
}

/// A running api (and worker) with its own database, Redis prefix and mock provider.
pub struct TestApp {
    pub base_url: String,
    /// `/metrics` of the worker, when the test runs one.
    pub worker_metrics_url: Option<String>,
    pub platform: Platform,
    pub mock: MockProvider,
    /// The test's database as the superuser, which reads every tenant's rows.
    pub db: DatabaseConnection,
    database: String,
    redis_prefix: String,
    shutdown: CancellationToken,
    api_stop: CancellationToken,
    api: Option<JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
}

impl TestApp {
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> anyhow::Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // Logs appear with RUST_LOG set, e.g. RUST_LOG=info cargo test -- --nocapture.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let template = ensure_template().await?;
        let database = format!("ta_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(format!("{}/postgres", postgres_server())).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {database} TEMPLATE {template}"))
            .await
            .context("cloning the template database")?;
        admin.close().await?;

        let mock = MockProvider::start(options.mock).await?;
        let redis_prefix = format!("test:{}", Uuid::new_v4().simple());
        let database_url = format!("{}/{database}", postgres_server());
        let mut env: HashMap<String, String> = HashMap::from([
            (
                "DATABASE_URL".into(),
                format!("{}/{database}", application_server()),
            ),
            ("MIGRATION_DATABASE_URL".into(), database_url.clone()),
            ("REDIS_URL".into(), redis_url()),
            ("REDIS_PREFIX".into(), redis_prefix.clone()),
            ("OPENAI_BASE_URL".into(), mock.base_url()),
            ("OPENAI_API_KEY".into(), "sk-test".into()),
            ("AUTO_MIGRATE".into(), "false".into()),
            // Tests sign in and register far more often than people do; the throttle's
            // own tests set these quotas back.
            ("LOGIN_ATTEMPTS_PER_IP_PER_MINUTE".into(), "10000".into()),
            ("LOGIN_ATTEMPTS_PER_EMAIL_PER_MINUTE".into(), "10000".into()),
        ]);
        env.extend(options.env.iter().cloned());
        let settings = Settings::from_lookup(|name| env.get(name).cloned())?;
        // Registration refuses addresses listed as platform administrators, so their
        // accounts are created first, as an operator does before listing them.
        if !settings.platform_admins.is_empty() {
            let mut unlisted = settings.clone();
            unlisted.platform_admins.clear();
            let bootstrap = Platform::connect(unlisted).await?;
            for email in &settings.platform_admins {
                service::auth::register(
                    &bootstrap,
                    service::auth::RegisterInput {
                        email: email.clone(),
                        password: service::Secret::new(TEST_PASSWORD.to_owned()),
                        full_name: "Platform Administrator".into(),
                        tenant_name: "Operations".into(),
                    },
                    &service::RequestOrigin::default(),
                )
                .await?;
            }
        }
        let platform = Platform::connect(settings).await?;

        let shutdown = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        // The api stops with the whole app, or alone through `stop_api`.
        let api_stop = shutdown.child_token();
        let server_stop = api_stop.clone();
        let api = tokio::spawn(api::serve(platform.clone(), listener, async move {
            server_stop.cancelled().await
        }));
        let worker_metrics_url = if options.worker {
            let metrics_listener = TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}/metrics", metrics_listener.local_addr()?);
            tokio::spawn(worker::run(
                platform.clone(),
                metrics_listener,
                shutdown.clone(),
            ));
            Some(url)
        } else {
            None
        };

        let db = Database::connect(database_url).await?;
        Ok(Self {
            base_url,
            worker_metrics_url,
            platform,
            mock,
            db,
            database,
            redis_prefix,
            shutdown,
            api_stop,
            api: Some(api),
            http: reqwest::Client::new(),
        })
    }

    /// Returns the URL of this test's database for the application's role, as the api uses it.
    pub fn application_database_url(&self) -> String {
        format!("{}/{}", application_server(), self.database)
    }

    /// Returns the URL of this test's database for the superuser.
    pub fn superuser_database_url(&self) -> String {
        format!("{}/{}", postgres_server(), self.database)
    }

    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.base_url.replacen("http", "ws", 1))
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Posts a GraphQL operation and returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base_url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .expect("GraphQL request failed to send");
        response.json().await.expect("GraphQL response is not JSON")
    }

    /// Posts an operation and returns `data`, failing the test on any GraphQL error.
    pub async fn data(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.graphql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Registers a new tenant and owner and returns the auth payload.
    pub async fn register(&self, email: &str, tenant: &str) -> Session {
        let data = self
            .data(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) {
                    accessToken refreshToken user { id email } tenant { id name } role } }",
                json!({ "input": {
                    "email": email, "password": "correct horse battery",
                    "fullName": "Test User", "tenantName": tenant } }),
            )
            .await;
        Session::from_payload(&data["register"])
    }

    /// Creates an agent on the mock provider and returns its id.
    pub async fn create_agent(&self, token: &str, instructions: &str) -> String {
        let data = self
            .data(
                Some(token),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { agent { id } } }",
                json!({ "input": { "name": "Helper", "instructions": instructions,
                                   "provider": "OPENAI", "model": "gpt-4o-mini" } }),
            )
            .await;
        data["createAgent"]["agent"]["id"]
            .as_str()
            .expect("agent id")
            .to_owned()
    }

    /// Creates a conversation with the agent and returns its id.
    pub async fn create_conversation(&self, token: &str, agent_id: &str) -> String {
        let data = self
            .data(
                Some(token),
                "mutation($input: CreateConversationInput!) {
                    createConversation(input: $input) { conversation { id } } }",
                json!({ "input": { "title": "Test chat", "agentId": agent_id } }),
            )
            .await;
        data["createConversation"]["conversation"]["id"]
            .as_str()
            .expect("conversation id")
            .to_owned()
    }

    /// Registers a tenant, creates an agent with `instructions` and a conversation with it.
    pub async fn start_chat(&self, email: &str, instructions: &str) -> Chat {
        let tenant = format!("{email} tenant");
        let owner = self.register(email, &tenant).await;
        let agent_id = self.create_agent(&owner.access_token, instructions).await;
        let conversation_id = self
            .create_conversation(&owner.access_token, &agent_id)
            .await;
        Chat {
            owner,
            agent_id,
            conversation_id,
        }
    }

    /// Sends a message and returns the assistant message id.
    pub async fn send_message(&self, token: &str, conversation_id: &str, content: &str) -> String {
        let data = self
            .data(
                Some(token),
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                    userMessage { id } assistantMessage { id status } } }",
                json!({ "input": { "conversationId": conversation_id, "content": content } }),
            )
            .await;
        data["sendMessage"]["assistantMessage"]["id"]
            .as_str()
            .expect("message id")
            .to_owned()
    }

    /// Polls `check` every 50 ms until it returns `Some`, for at most `timeout`.
    pub async fn eventually<T, F, Fut>(&self, timeout: Duration, mut check: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(value) = check().await {
                return Ok(value);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("condition not met within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the assistant message leaves the streaming state and returns it.
    pub async fn wait_for_reply(&self, token: &str, message_id: &str) -> Value {
        self.eventually(Duration::from_secs(20), || async {
            let data = self
                .data(
                    Some(token),
                    "query($id: ID!) { message(id: $id) { id status content finishReason
                        inputTokens outputTokens costMicros usageEstimated } }",
                    json!({ "id": message_id }),
                )
                .await;
            let message = data["message"].clone();
            (message["status"] != "STREAMING").then_some(message)
        })
        .await
        .expect("reply did not finish")
    }

    /// Starts a second api on the same database and Redis prefix, with connections of its
    /// own, as another replica behind a load balancer, and returns its base URL. It stops
    /// with the app.
    pub async fn start_second_api(&self) -> anyhow::Result<String> {
        let settings = (*self.platform.settings).clone();
        let platform = Platform::connect(settings).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let stop = self.shutdown.child_token();
        tokio::spawn(api::serve(platform, listener, async move {
            stop.cancelled().await
        }));
        Ok(base_url)
    }

    /// Starts another worker on its own runtime and thread, with its own connections, so
    /// that [`TestWorker::kill`] stops it the way a killed process stops: without any
    /// shutdown step.
    pub fn start_worker(&self) -> anyhow::Result<TestWorker> {
        let settings = (*self.platform.settings).clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let shutdown = CancellationToken::new();
        let (stopped, done) = tokio::sync::oneshot::channel();
        let signal = shutdown.clone();
        runtime.spawn(async move {
            let result = async {
                let platform = Platform::connect(settings).await?;
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                worker::run(platform, listener, signal).await
            }
            .await;
            let _ = stopped.send(result);
        });
        Ok(TestWorker {
            runtime: Some(runtime),
            shutdown,
            done: Some(done),
        })
    }

    /// Sends the api its shutdown signal, leaving the worker running, and returns the api's
    /// task, which ends when the api has shut down.
    pub fn stop_api(&mut self) -> JoinHandle<std::io::Result<()>> {
        self.api_stop.cancel();
        self.api.take().expect("the api was already stopped")
    }

    /// Stops the server and worker, then drops the test database and Redis keys.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.db.close().await;
        let _ = self.platform.db.clone().close().await;
        if let Ok(admin) = Database::connect(format!("{}/postgres", postgres_server())).await {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.database
                ))
                .await;
            let _ = admin.close().await;
        }
        if let Ok(client) = redis::Client::open(redis_url())
            && let Ok(mut connection) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.redis_prefix))
                .query_async(&mut connection)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut connection)
                    .await;
            }
        }
    }
}

/// A worker started by [`TestApp::start_worker`].
pub struct TestWorker {
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: CancellationToken,
    done: Option<tokio::sync::oneshot::Receiver<anyhow::Result<()>>>,
}

impl TestWorker {
    /// Sends the worker its shutdown signal, as SIGTERM does, and waits until it has
    /// stopped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let done = self.done.take().context("the worker was already stopped")?;
        done.await
            .context("the worker's task ended without a result")?
    }

    /// Drops every task of the worker at once, as if its process was killed.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A registered owner with an agent and a conversation, ready to send messages.
pub struct Chat {
    pub owner: Session,
    pub agent_id: String,
    pub conversation_id: String,
}

/// Tokens and ids from a register or login payload.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub tenant_id: String,
}

impl Session {
    pub fn from_payload(payload: &Value) -> Self {
        Self {
            access_token: payload["accessToken"]
                .as_str()
                .expect("accessToken")
                .to_owned(),
            refresh_token: payload["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
            user_id: payload["user"]["id"].as_str().expect("user id").to_owned(),
            tenant_id: payload["tenant"]["id"]
                .as_str()
                .expect("tenant id")
                .to_owned(),
        }
    }
}

/// The `extensions.code` of the first error in a response.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// The message of the first error in a response.
pub fn error_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("")
}

/// Password of the accounts that [`TestApp::register`] creates, and of platform
/// administrators.
pub const TEST_PASSWORD: &str = "correct horse battery";

/// Password of every account that [`TestApp::add_member`] creates.
pub const MEMBER_PASSWORD: &str = "member-password-1";

impl TestApp {
    /// Signs in with `email` and [`TEST_PASSWORD`], such as a platform administrator
    /// whose account the harness created, and returns the session.
    pub async fn login(&self, email: &str) -> Session {
        let data = self
            .data(
                None,
                "mutation($input: LoginInput!) { login(input: $input) {
                    accessToken refreshToken user { id } tenant { id } } }",
                json!({ "input": { "email": email, "password": TEST_PASSWORD } }),
            )
            .await;
        Session::from_payload(&data["login"])
    }

    /// Invites `email` with `role` (`"ADMIN"`, `"MEMBER"`, ...) through the API as the
    /// owner or admin holding `inviter_token`, accepts as a new account, and returns its
    /// session in the inviter's tenant.
    pub async fn add_member(&self, inviter_token: &str, email: &str, role: &str) -> Session {
        let invited = self
            .data(
                Some(inviter_token),
                "mutation($input: InviteMemberInput!) { inviteMember(input: $input) { token } }",
                json!({ "input": { "email": email, "role": role } }),
            )
            .await;
        let token = invited["inviteMember"]["token"]
            .as_str()
            .expect("invitation token");
        let accepted = self
            .data(
                None,
                "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) {
                    accessToken refreshToken user { id } tenant { id } role } }",
                json!({ "input": { "token": token, "fullName": email,
                                   "password": MEMBER_PASSWORD } }),
            )
            .await;
        Session::from_payload(&accepted["acceptInvitation"])
    }
}
