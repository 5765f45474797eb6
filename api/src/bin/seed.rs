//! `seed`: creates the demo tenant, its owner and a demo agent for local walk-throughs.
//!
//! The tenant "Demo Org", the owner `demo@example.com` (password `demo-password`) and the
//! agent "Demo Assistant" are made through the `service` crate, so the same validation
//! applies as for GraphQL clients. A second run finds them and creates nothing more,
//! except that every run signs in and so opens a new session for the printed token.
//!
//! Standard output contains only `NAME=value` lines, which a shell can `eval`, and logs go
//! to standard error. The password is public, so the command exits with an error when
//! `APP_ENV=production`.

use std::{
    io::{self, IsTerminal, Write},
    process::ExitCode,
};

use anyhow::{Context, bail};
use chrono::SecondsFormat;
use entity::agent;
use providers::ProviderKind;
use service::{
    Platform, RequestContext, RequestOrigin, Secret, ServiceError, Settings,
    agents::{self, CreateAgent},
    auth::{self, AuthSession, LoginInput, RegisterInput},
    config::Environment,
    pagination::PageRequest,
};
use tracing::{error, info};

const DEMO_TENANT: &str = "Demo Org";
const DEMO_EMAIL: &str = "demo@example.com";
/// Demo-only password, printed and documented. Never use it on a reachable deployment.
const DEMO_PASSWORD: &str = "demo-password";
const DEMO_FULL_NAME: &str = "Demo User";
const DEMO_AGENT: &str = "Demo Assistant";
const DEMO_MODEL: &str = "gpt-4o-mini";
const DEMO_INSTRUCTIONS: &str = "You are the Task Assistant demo agent. \
    Answer briefly and plainly, in at most three sentences.";

/// Ids and credentials of the demo data, as printed for the walk-through.
struct DemoAccount {
    session: AuthSession,
    agent: agent::Model,
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    init_tracing();
    // sqlx brings ring and reqwest brings aws-lc-rs, so rustls cannot pick a default itself.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let account = match run().await {
        Ok(account) => account,
        Err(error) => {
            error!(error = format!("{error:#}"), "seeding demo data failed");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = print_account(&mut io::stdout().lock(), &account) {
        error!(%error, "writing the demo account to standard output failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Logs to standard error so that standard output contains only the printed values. ANSI
/// colors are used only on a terminal and when `NO_COLOR` is unset.
fn init_tracing() {
    use tracing_subscriber::{EnvFilter, fmt};
    let ansi = io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi)
        .init();
}

async fn run() -> anyhow::Result<DemoAccount> {
    let settings = Settings::from_env().context("invalid configuration")?;
    if settings.environment == Environment::Production {
        bail!(
            "the seed cannot run with APP_ENV=production because the demo user's password is \
             public. Run it against a development database"
        );
    }
    api::prepare_database(&settings)
        .await
        .context("applying database migrations failed")?;
    let platform = Platform::connect(settings)
        .await
        .context("starting the platform failed")?;
    seed(&platform).await
}

/// Creates whatever part of the demo data is missing and signs in as the demo owner.
async fn seed(platform: &Platform) -> anyhow::Result<DemoAccount> {
    let session = sign_in_or_register(platform).await?;
    let ctx = auth::authenticate(platform, session.access_token.expose(), "seed".into())
        .await
        .context("authenticating the demo session failed")?;
    let agent = match find_agent(platform, &ctx, DEMO_AGENT).await? {
        Some(agent) => {
            info!(agent.id = %agent.id, "demo agent already exists");
            agent
        }
        None => create_agent(platform, &ctx).await?,
    };
    Ok(DemoAccount { session, agent })
}

/// Signs in as the demo owner, registering the owner and the tenant on the first run.
async fn sign_in_or_register(platform: &Platform) -> anyhow::Result<AuthSession> {
    let login = LoginInput {
        email: DEMO_EMAIL.into(),
        password: Secret::new(DEMO_PASSWORD),
        tenant_id: None,
    };
    match auth::login(platform, login).await {
        Ok(session) => {
            info!(
                tenant.id = %session.tenant.id,
                user.id = %session.user.id,
                "demo user already exists"
            );
            return Ok(session);
        }
        // An unknown email and a wrong password return the same error, so registering
        // tells the two apart.
        Err(ServiceError::Unauthenticated(_)) => {}
        Err(error) => return Err(error).context("signing in as the demo user failed"),
    }

    let input = RegisterInput {
        email: DEMO_EMAIL.into(),
        password: Secret::new(DEMO_PASSWORD),
        full_name: DEMO_FULL_NAME.into(),
        tenant_name: DEMO_TENANT.into(),
    };
    match auth::register(platform, input, &RequestOrigin::default()).await {
        Ok(session) => Ok(session),
        Err(ServiceError::InvalidInput { field, .. }) if field == "email" => bail!(
            "{DEMO_EMAIL} is already registered with a password other than the demo \
             password. Set the demo password again or use a fresh database"
        ),
        Err(error) => Err(error).context("registering the demo tenant failed"),
    }
}

/// Finds the tenant's agent named `name`, reading every page of the agent list.
async fn find_agent(
    platform: &Platform,
    ctx: &RequestContext,
    name: &str,
) -> anyhow::Result<Option<agent::Model>> {
    let first = i32::try_from(platform.settings.max_page_size).unwrap_or(i32::MAX);
    let mut request = PageRequest {
        first: Some(first),
        after: None,
    };
    loop {
        let page = agents::list(platform, ctx, &request)
            .await
            .context("listing the demo tenant's agents failed")?;
        let next_cursor = page.items.last().map(|(cursor, _)| cursor.clone());
        let found = page
            .items
            .into_iter()
            .map(|(_, agent)| agent)
            .find(|agent| agent.name == name);
        if found.is_some() || !page.has_next_page {
            return Ok(found);
        }
        request.after = next_cursor;
    }
}

async fn create_agent(platform: &Platform, ctx: &RequestContext) -> anyhow::Result<agent::Model> {
    let input = CreateAgent {
        name: DEMO_AGENT.into(),
        description: Some("Demo agent created by the seed command.".into()),
        instructions: DEMO_INSTRUCTIONS.into(),
        provider: ProviderKind::OpenAi,
        model: DEMO_MODEL.into(),
        temperature: None,
        max_tokens: None,
        fallback_provider: None,
        fallback_model: None,
        tools: service::tools::builtin::Builtin::ALL
            .iter()
            .map(|tool| tool.name().to_owned())
            .collect(),
        max_steps: None,
        run_timeout_seconds: None,
        context_messages: None,
        context_window_tokens: None,
        response_cache_ttl_seconds: None,
    };
    agents::create(platform, ctx, input)
        .await
        .context("creating the demo agent failed")
}

/// Writes the demo ids and credentials as `NAME=value` lines that a shell can `eval`.
fn print_account(out: &mut impl Write, account: &DemoAccount) -> io::Result<()> {
    let session = &account.session;
    let expires_at = session
        .access_expires_at
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    writeln!(out, "DEMO_TENANT_ID={}", session.tenant.id)?;
    writeln!(out, "DEMO_USER_ID={}", session.user.id)?;
    writeln!(out, "DEMO_AGENT_ID={}", account.agent.id)?;
    writeln!(out, "DEMO_EMAIL={DEMO_EMAIL}")?;
    writeln!(out, "DEMO_PASSWORD={DEMO_PASSWORD}")?;
    writeln!(out, "DEMO_ACCESS_TOKEN={}", session.access_token.expose())?;
    writeln!(out, "DEMO_ACCESS_TOKEN_EXPIRES_AT={expires_at}")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    //! Runs the seed against a database of its own on the local PostgreSQL and Redis.

    use std::collections::HashMap;

    use entity::{membership, tenant, user};
    use sea_orm::{
        ColumnTrait, ConnectionTrait, Database, EntityTrait, PaginatorTrait, QueryFilter,
    };
    use uuid::Uuid;

    use super::*;

    const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

    async fn platform_on(database: &str) -> Platform {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let env = HashMap::from([
            ("DATABASE_URL", format!("{SERVER}/{database}")),
            ("REDIS_PREFIX", format!("test:{database}")),
            ("OPENAI_API_KEY", "sk-test".to_owned()),
        ]);
        let settings = Settings::from_lookup(|name| env.get(name).cloned()).unwrap();
        api::prepare_database(&settings).await.unwrap();
        Platform::connect(settings).await.unwrap()
    }

    async fn drop_database(database: &str) {
        let admin = Database::connect(format!("{SERVER}/postgres"))
            .await
            .unwrap();
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn seed_twice_creates_data_once() {
        // The ta_test_ prefix lets CI drop the database if this test crashes.
        let database = format!("ta_test_seed_{}", Uuid::new_v4().simple());
        let platform = platform_on(&database).await;

        let first = seed(&platform).await.unwrap();
        let second = seed(&platform).await.unwrap();

        assert_eq!(first.session.tenant.id, second.session.tenant.id);
        assert_eq!(first.session.user.id, second.session.user.id);
        assert_eq!(first.agent.id, second.agent.id);
        assert_eq!(first.session.tenant.name, DEMO_TENANT);
        assert_eq!(first.session.user.email, DEMO_EMAIL);
        assert_eq!(first.session.role, entity::Role::Owner);
        assert_eq!(first.agent.name, DEMO_AGENT);
        assert_eq!(first.agent.provider, "openai");
        assert_eq!(first.agent.model, DEMO_MODEL);

        let db = &platform.db;
        assert_eq!(tenant::Entity::find().count(db).await.unwrap(), 1);
        assert_eq!(user::Entity::find().count(db).await.unwrap(), 1);
        assert_eq!(membership::Entity::find().count(db).await.unwrap(), 1);
        let agents = agent::Entity::find()
            .filter(agent::Column::TenantId.eq(first.session.tenant.id))
            .count(db)
            .await
            .unwrap();
        assert_eq!(agents, 1);

        let mut printed = Vec::new();
        print_account(&mut printed, &second).unwrap();
        let printed = String::from_utf8(printed).unwrap();
        let agent_line = format!("DEMO_AGENT_ID={}\n", first.agent.id);
        assert!(printed.contains(&agent_line), "{printed}");
        assert!(
            printed.contains("DEMO_PASSWORD=demo-password\n"),
            "{printed}"
        );

        platform.db.clone().close().await.unwrap();
        drop_database(&database).await;
    }

    #[tokio::test]
    async fn seed_rejects_changed_demo_password() {
        let database = format!("ta_test_seed_{}", Uuid::new_v4().simple());
        let platform = platform_on(&database).await;
        let input = RegisterInput {
            email: DEMO_EMAIL.into(),
            password: Secret::new("another-password"),
            full_name: DEMO_FULL_NAME.into(),
            tenant_name: DEMO_TENANT.into(),
        };
        auth::register(&platform, input, &RequestOrigin::default())
            .await
            .unwrap();

        let error = seed(&platform).await.err().unwrap();

        assert!(
            error.to_string().contains("already registered"),
            "{error:#}"
        );
        platform.db.clone().close().await.unwrap();
        drop_database(&database).await;
    }
}
