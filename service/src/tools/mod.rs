//! Tools: the tenant's HTTP tools (create, update, delete, list), the built-in tools, and
//! the set of tools an agent may call, which validates a model's arguments and runs a call.

pub mod builtin;
pub mod calls;
pub(crate) mod http;
mod schema;
mod toolset;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use entity::{Role, tool};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, Statement,
};
use serde_json::{Value, json};
use tracing::info;
use uuid::Uuid;

use crate::{
    Platform, RequestContext, Secret,
    audit::{self, Action, Target, TargetType},
    error::{ServiceError, ServiceResult},
    pagination::{Order, Page, PageRequest, fetch_tenant_page},
    validation::{self, MAX_TEXT_CHARS},
};

pub use toolset::{CallOutcome, ToolSet};

/// Maximum tool name length, because the providers accept function names of up to 64
/// characters.
pub const MAX_TOOL_NAME_CHARS: usize = 64;
/// Largest JSON Schema of a tool's arguments, serialised.
pub const MAX_PARAMETERS_BYTES: usize = 16_384;
/// Time an HTTP tool call may take unless the tool sets its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest and longest timeout a tool may set, in milliseconds.
pub const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<i32> = 100..=120_000;
/// Headers a tool may set, secret ones included.
const MAX_HEADERS: usize = 20;

/// HTTP methods an HTTP tool may use. GET and DELETE send the arguments as query
/// parameters, the others as a JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }

    pub fn from_stored(name: &str) -> Option<Self> {
        [
            HttpMethod::Get,
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Patch,
            HttpMethod::Delete,
        ]
        .into_iter()
        .find(|method| method.as_str() == name)
    }
}

pub struct CreateTool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments; its top level must be an object schema.
    pub parameters: Value,
    pub url: String,
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
    /// Headers whose values are stored encrypted and never shown again, such as
    /// `Authorization`.
    pub secret_headers: BTreeMap<String, Secret>,
    pub timeout_ms: Option<i32>,
}

/// Changes to a tool; `None` leaves a field as it is. `secret_headers` replaces all the
/// secret headers when set.
#[derive(Default)]
pub struct UpdateTool {
    pub name: Option<String>,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    pub headers: Option<BTreeMap<String, String>>,
    pub secret_headers: Option<BTreeMap<String, Secret>>,
    pub timeout_ms: Option<i32>,
}

pub async fn create(
    platform: &Platform,
    ctx: &RequestContext,
    input: CreateTool,
) -> ServiceResult<tool::Model> {
    ctx.require(Role::Member)?;
    let name = check_name(&input.name)?;
    let description = validation::required_text("description", &input.description, MAX_TEXT_CHARS)?;
    schema::check_parameters("parameters", &input.parameters)?;
    let url = http::check_url(platform, "url", &input.url)?;
    check_headers("headers", input.headers.keys(), &input.headers)?;
    check_header_names("secretHeaders", input.secret_headers.keys())?;
    check_no_overlap(input.headers.keys(), input.secret_headers.keys())?;
    check_header_count(input.headers.len() + input.secret_headers.len())?;
    let timeout_ms = check_timeout(input.timeout_ms)?;

    let now = Utc::now();
    let id = Uuid::now_v7();
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    ensure_name_free(&txn, ctx, &name, None).await?;
    let tool = tool::ActiveModel {
        id: Set(id),
        tenant_id: Set(ctx.tenant()),
        name: Set(name),
        description: Set(description),
        parameters: Set(input.parameters),
        method: Set(input.method.as_str().to_owned()),
        url: Set(url),
        headers: Set(json!(input.headers)),
        secret_headers: Set(encrypt_headers(platform, ctx, &input.secret_headers)),
        secret_header_names: Set(json!(input.secret_headers.keys().collect::<Vec<_>>())),
        timeout_ms: Set(timeout_ms),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let summary = json!({ "name": tool.name, "method": tool.method, "url": tool.url });
    audit::record(
        &txn,
        ctx,
        Action::ToolCreate,
        Target::new(TargetType::Tool, id),
        summary,
    )
    .await?;
    txn.commit().await?;
    info!(tenant.id = %ctx.tenant(), tool.id = %id, "tool created");
    Ok(tool)
}

pub async fn update(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
    input: UpdateTool,
) -> ServiceResult<tool::Model> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let tool = find(&txn, ctx, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("tool"))?;
    let before = tool.clone();
    let old_name = tool.name.clone();
    let mut active: tool::ActiveModel = tool.into();
    if let Some(name) = &input.name {
        let name = check_name(name)?;
        ensure_name_free(&txn, ctx, &name, Some(id)).await?;
        active.name = Set(name);
    }
    if let Some(description) = &input.description {
        active.description = Set(validation::required_text(
            "description",
            description,
            MAX_TEXT_CHARS,
        )?);
    }
    if let Some(parameters) = input.parameters {
        schema::check_parameters("parameters", &parameters)?;
        active.parameters = Set(parameters);
    }
    if let Some(url) = &input.url {
        active.url = Set(http::check_url(platform, "url", url)?);
    }
    if let Some(method) = input.method {
        active.method = Set(method.as_str().to_owned());
    }
    let header_count = input
        .headers
        .as_ref()
        .map_or_else(|| string_map(&before.headers).len(), BTreeMap::len)
        + input
            .secret_headers
            .as_ref()
            .map_or_else(|| names(&before.secret_header_names).len(), BTreeMap::len);
    check_header_count(header_count)?;
    if let Some(headers) = &input.headers {
        check_headers("headers", headers.keys(), headers)?;
        active.headers = Set(json!(headers));
    }
    if let Some(secret_headers) = &input.secret_headers {
        check_header_names("secretHeaders", secret_headers.keys())?;
        active.secret_headers = Set(encrypt_headers(platform, ctx, secret_headers));
        active.secret_header_names = Set(json!(secret_headers.keys().collect::<Vec<_>>()));
    }
    // The headers as they will be after the change, stored or new.
    let plain_names: Vec<String> = match &input.headers {
        Some(headers) => headers.keys().cloned().collect(),
        None => string_map(&before.headers).into_keys().collect(),
    };
    let secret_names: Vec<String> = match &input.secret_headers {
        Some(headers) => headers.keys().cloned().collect(),
        None => names(&before.secret_header_names),
    };
    check_no_overlap(plain_names.iter(), secret_names.iter())?;
    if input.timeout_ms.is_some() {
        active.timeout_ms = Set(check_timeout(input.timeout_ms)?);
    }
    active.updated_at = Set(Utc::now());

    let fields = audit::changed_fields(&before, &active);
    let tool = active.update(&txn).await?;
    if tool.name != old_name {
        rename_in_agents(&txn, ctx, &old_name, &tool.name).await?;
    }
    let summary = json!({ "name": tool.name, "fields": fields });
    audit::record(
        &txn,
        ctx,
        Action::ToolUpdate,
        Target::new(TargetType::Tool, id),
        summary,
    )
    .await?;
    txn.commit().await?;
    Ok(tool)
}

/// Deletes a tool and removes it from the agents that listed it. Its past executions stay.
pub async fn delete(platform: &Platform, ctx: &RequestContext, id: Uuid) -> ServiceResult<Uuid> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let deleted = tool::Entity::delete_many()
        .filter(tool::Column::Id.eq(id))
        .filter(tool::Column::TenantId.eq(ctx.tenant()))
        .exec_with_returning(&txn)
        .await?;
    let Some(tool) = deleted.into_iter().next() else {
        return Err(ServiceError::not_found("tool"));
    };
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE agents SET tools = tools - $1 WHERE tenant_id = $2 AND tools ? $1",
        [tool.name.clone().into(), ctx.tenant().into()],
    ))
    .await?;
    audit::record(
        &txn,
        ctx,
        Action::ToolDelete,
        Target::new(TargetType::Tool, id),
        json!({ "name": tool.name }),
    )
    .await?;
    txn.commit().await?;
    info!(tenant.id = %ctx.tenant(), tool.id = %id, "tool deleted");
    Ok(id)
}

pub async fn get(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<tool::Model> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let tool = find(&txn, ctx, id).await?;
    txn.commit().await?;
    tool.ok_or_else(|| ServiceError::not_found("tool"))
}

pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    page: &PageRequest,
) -> ServiceResult<Page<tool::Model>> {
    let select = tool::Entity::find().filter(tool::Column::TenantId.eq(ctx.tenant()));
    fetch_tenant_page(
        platform,
        ctx.tenant_id,
        select,
        tool::Column::Id,
        Order::NewestFirst,
        page,
        |tool| tool.id,
    )
    .await
}

async fn find<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<Option<tool::Model>> {
    Ok(tool::Entity::find_by_id(id)
        .filter(tool::Column::TenantId.eq(ctx.tenant()))
        .one(db)
        .await?)
}

/// Checks a list of tool names for an agent: each names a built-in tool or one of the
/// tenant's tools, once. Returns the names in the order given.
pub async fn check_agent_tools<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    field: &str,
    names: &[String],
) -> ServiceResult<Vec<String>> {
    const MAX_AGENT_TOOLS: usize = 32;
    if names.len() > MAX_AGENT_TOOLS {
        return Err(ServiceError::invalid(
            field,
            format!(
                "lists {} tools; an agent may use at most {MAX_AGENT_TOOLS}",
                names.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(ServiceError::invalid(field, format!("lists {name} twice")));
        }
    }
    let custom: Vec<&String> = names
        .iter()
        .filter(|name| builtin::find(name).is_none())
        .collect();
    if custom.is_empty() {
        return Ok(names.to_vec());
    }
    let found: Vec<String> = tool::Entity::find()
        .filter(tool::Column::TenantId.eq(ctx.tenant()))
        .filter(tool::Column::Name.is_in(custom.iter().map(|name| name.as_str())))
        .all(db)
        .await?
        .into_iter()
        .map(|tool| tool.name)
        .collect();
    if let Some(missing) = custom.iter().find(|name| !found.contains(name)) {
        return Err(ServiceError::invalid(
            field,
            format!("{missing} is neither a built-in tool nor one of this tenant's tools"),
        ));
    }
    Ok(names.to_vec())
}

/// Reads a JSON array of names as stored in `agents.tools` and `agent_runs.tools`.
pub fn names(stored: &Value) -> Vec<String> {
    stored
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a JSON object of strings as stored in `tools.headers`.
pub fn string_map(stored: &Value) -> BTreeMap<String, String> {
    stored
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn check_name(name: &str) -> ServiceResult<String> {
    let valid_start = name.starts_with(|c: char| c.is_ascii_alphabetic());
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() || name.len() > MAX_TOOL_NAME_CHARS || !valid_start || !valid_chars {
        return Err(ServiceError::invalid(
            "name",
            format!(
                "must start with a letter and hold only letters, digits, '_' and '-', \
                 at most {MAX_TOOL_NAME_CHARS} characters"
            ),
        ));
    }
    if builtin::find(name).is_some() {
        return Err(ServiceError::invalid(
            "name",
            format!("{name} is the name of a built-in tool"),
        ));
    }
    Ok(name.to_owned())
}

async fn ensure_name_free<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    name: &str,
    except: Option<Uuid>,
) -> ServiceResult<()> {
    let mut query = tool::Entity::find()
        .filter(tool::Column::TenantId.eq(ctx.tenant()))
        .filter(tool::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(tool::Column::Id.ne(id));
    }
    if query.one(db).await?.is_some() {
        return Err(ServiceError::invalid(
            "name",
            format!("this tenant already has a tool named {name}"),
        ));
    }
    Ok(())
}

/// Replaces `old` with `new` in the tool lists of the tenant's agents.
async fn rename_in_agents<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    old: &str,
    new: &str,
) -> ServiceResult<()> {
    let sql = "UPDATE agents SET tools = (
            SELECT jsonb_agg(CASE WHEN name = to_jsonb($1::text) THEN to_jsonb($2::text) \
                                  ELSE name END ORDER BY position)
            FROM jsonb_array_elements(tools) WITH ORDINALITY AS listed(name, position))
        WHERE tenant_id = $3 AND tools ? $1";
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [old.into(), new.into(), ctx.tenant().into()],
    ))
    .await?;
    Ok(())
}

/// Headers the HTTP client sets itself: framing, connection management and the host.
/// A tool that set them could cut its own request bodies or address another host.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Checks header names: valid, not reserved, and not given twice in any letter case.
fn check_header_names<'a>(
    field: &str,
    names: impl Iterator<Item = &'a String>,
) -> ServiceResult<()> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ServiceError::invalid(
                field,
                format!("{name:?} is not a valid header name"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(ServiceError::invalid(
                field,
                format!("{name} is set by the platform and cannot be set by a tool"),
            ));
        }
        if !seen.insert(lower) {
            return Err(ServiceError::invalid(
                field,
                format!("{name} is given twice"),
            ));
        }
    }
    Ok(())
}

fn check_headers<'a>(
    field: &str,
    names: impl Iterator<Item = &'a String>,
    headers: &BTreeMap<String, String>,
) -> ServiceResult<()> {
    check_header_names(field, names)?;
    for (name, value) in headers {
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(ServiceError::invalid(
                field,
                format!("the value of {name} is not a valid header value"),
            ));
        }
    }
    Ok(())
}

/// Rejects a secret header that is also a plain header, in any letter case.
fn check_no_overlap<'a>(
    plain: impl Iterator<Item = &'a String>,
    secret: impl Iterator<Item = &'a String> + Clone,
) -> ServiceResult<()> {
    for name in plain {
        if let Some(clash) = secret
            .clone()
            .find(|other| other.eq_ignore_ascii_case(name))
        {
            return Err(ServiceError::invalid(
                "secretHeaders",
                format!("{clash} is also given in headers; give each header once"),
            ));
        }
    }
    Ok(())
}

fn check_header_count(count: usize) -> ServiceResult<()> {
    if count > MAX_HEADERS {
        return Err(ServiceError::invalid(
            "headers",
            format!("a tool may set at most {MAX_HEADERS} headers, secret ones included"),
        ));
    }
    Ok(())
}

fn check_timeout(timeout_ms: Option<i32>) -> ServiceResult<i32> {
    let default = DEFAULT_TIMEOUT.as_millis() as i32;
    match timeout_ms {
        None => Ok(default),
        Some(ms) if TIMEOUT_RANGE_MS.contains(&ms) => Ok(ms),
        Some(ms) => Err(ServiceError::invalid(
            "timeoutMs",
            format!(
                "must be between {} and {} (got {ms})",
                TIMEOUT_RANGE_MS.start(),
                TIMEOUT_RANGE_MS.end()
            ),
        )),
    }
}

fn encrypt_headers(
    platform: &Platform,
    ctx: &RequestContext,
    headers: &BTreeMap<String, Secret>,
) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let plain: BTreeMap<&str, &str> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose()))
        .collect();
    let serialised = Secret::new(json!(plain).to_string());
    Some(platform.cipher.encrypt(ctx.tenant(), &serialised))
}
