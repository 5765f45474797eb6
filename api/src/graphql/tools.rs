//! Tools: the tenant's HTTP tools, the built-in tools, and their GraphQL types.

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::tool;
use serde_json::Value;
use service::{
    Secret,
    tools::{self, HttpMethod as ServiceMethod, builtin::Builtin},
};

use super::{
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    error::{GqlResult, bad_input},
};

/// The HTTP method of a tool. GET and DELETE send the arguments as query parameters, the
/// others as a JSON body.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl From<HttpMethod> for ServiceMethod {
    fn from(method: HttpMethod) -> Self {
        match method {
            HttpMethod::Get => ServiceMethod::Get,
            HttpMethod::Post => ServiceMethod::Post,
            HttpMethod::Put => ServiceMethod::Put,
            HttpMethod::Patch => ServiceMethod::Patch,
            HttpMethod::Delete => ServiceMethod::Delete,
        }
    }
}

impl HttpMethod {
    fn from_stored(name: &str) -> Self {
        match ServiceMethod::from_stored(name) {
            Some(ServiceMethod::Get) => HttpMethod::Get,
            Some(ServiceMethod::Put) => HttpMethod::Put,
            Some(ServiceMethod::Patch) => HttpMethod::Patch,
            Some(ServiceMethod::Delete) => HttpMethod::Delete,
            _ => HttpMethod::Post,
        }
    }
}

/// An HTTP endpoint that the tenant's agents may call, described to the model by its name,
/// description and the JSON Schema of its arguments.
#[derive(SimpleObject, Clone)]
pub struct Tool {
    pub id: ID,
    /// The function name sent to the model, unique within the tenant.
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Json<Value>,
    pub method: HttpMethod,
    pub url: String,
    /// Headers sent with every call, as a JSON object of strings.
    pub headers: Json<Value>,
    /// Names of the secret headers; their values are never shown again.
    pub secret_header_names: Vec<String>,
    /// Time a call may take before it fails, in milliseconds.
    pub timeout_ms: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<tool::Model> for Tool {
    fn from(tool: tool::Model) -> Self {
        Self {
            id: tool.id.into(),
            method: HttpMethod::from_stored(&tool.method),
            secret_header_names: tools::names(&tool.secret_header_names),
            name: tool.name,
            description: tool.description,
            parameters: Json(tool.parameters),
            url: tool.url,
            headers: Json(tool.headers),
            timeout_ms: tool.timeout_ms,
            created_at: tool.created_at,
            updated_at: tool.updated_at,
        }
    }
}

/// A tool the platform provides, which any agent may list by name.
#[derive(SimpleObject, Clone)]
pub struct BuiltinTool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Json<Value>,
}

impl From<Builtin> for BuiltinTool {
    fn from(tool: Builtin) -> Self {
        Self {
            name: tool.name().to_owned(),
            description: tool.description().to_owned(),
            parameters: Json(tool.parameters()),
        }
    }
}

#[derive(InputObject)]
pub struct CreateToolInput {
    /// Letters, digits, `_` and `-`, starting with a letter, at most 64 characters; not the
    /// name of a built-in tool.
    pub name: String,
    /// A description of what the tool does and when to use it, sent to the model.
    pub description: String,
    /// JSON Schema of the arguments, with `"type": "object"` at the top level, at most
    /// 16 KB.
    pub parameters: Json<Value>,
    /// An http or https URL. Hosts that resolve to private, loopback, link-local or metadata
    /// addresses are rejected unless the operator allows their network.
    pub url: String,
    #[graphql(default_with = "HttpMethod::Post")]
    pub method: HttpMethod,
    /// Headers sent with every call, as a JSON object of strings.
    pub headers: Option<Json<Value>>,
    /// Headers whose values are stored encrypted and never shown again, such as
    /// `Authorization`, as a JSON object of strings.
    pub secret_headers: Option<Json<Value>>,
    /// Time a call may take, 100 to 120,000 milliseconds; 10,000 when absent.
    pub timeout_ms: Option<i32>,
}

/// Fields to change; absent fields keep their value. `secretHeaders` replaces all secret
/// headers.
#[derive(InputObject)]
pub struct UpdateToolInput {
    pub id: ID,
    /// Renaming a tool renames it in the tool lists of the agents that use it.
    pub name: Option<String>,
    pub description: Option<String>,
    pub parameters: Option<Json<Value>>,
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    pub headers: Option<Json<Value>>,
    pub secret_headers: Option<Json<Value>>,
    pub timeout_ms: Option<i32>,
}

#[derive(InputObject)]
pub struct DeleteToolInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct ToolPayload {
    pub tool: Tool,
}

#[derive(SimpleObject)]
pub struct DeleteToolPayload {
    pub deleted_tool_id: ID,
}

#[derive(Default)]
pub struct ToolQuery;

#[Object]
impl ToolQuery {
    /// One tool of the caller's tenant.
    async fn tool(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Tool> {
        let id = parse_id("id", &id)?;
        Ok(tools::get(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?
            .into())
    }

    /// The tenant's tools, newest first.
    async fn tools(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<Tool>> {
        let page = tools::list(platform(ctx), caller(ctx)?, &page_request(first, after))
            .await
            .gql()?;
        Ok(to_connection(page, Tool::from))
    }

    /// The tools the platform provides, which any agent may list by name.
    async fn builtin_tools(&self) -> Vec<BuiltinTool> {
        Builtin::ALL.into_iter().map(BuiltinTool::from).collect()
    }
}

#[derive(Default)]
pub struct ToolMutation;

#[Object]
impl ToolMutation {
    /// Creates an HTTP tool. Needs the member role.
    async fn create_tool(
        &self,
        ctx: &Context<'_>,
        input: CreateToolInput,
    ) -> async_graphql::Result<ToolPayload> {
        let input = tools::CreateTool {
            name: input.name,
            description: input.description,
            parameters: input.parameters.0,
            url: input.url,
            method: input.method.into(),
            headers: string_map("headers", input.headers)?.unwrap_or_default(),
            secret_headers: secret_map(input.secret_headers)?.unwrap_or_default(),
            timeout_ms: input.timeout_ms,
        };
        let tool = tools::create(platform(ctx), caller(ctx)?, input)
            .await
            .gql()?;
        Ok(ToolPayload { tool: tool.into() })
    }

    /// Changes a tool. Needs the member role.
    async fn update_tool(
        &self,
        ctx: &Context<'_>,
        input: UpdateToolInput,
    ) -> async_graphql::Result<ToolPayload> {
        let id = parse_id("id", &input.id)?;
        let changes = tools::UpdateTool {
            name: input.name,
            description: input.description,
            parameters: input.parameters.map(|parameters| parameters.0),
            url: input.url,
            method: input.method.map(Into::into),
            headers: string_map("headers", input.headers)?,
            secret_headers: secret_map(input.secret_headers)?,
            timeout_ms: input.timeout_ms,
        };
        let tool = tools::update(platform(ctx), caller(ctx)?, id, changes)
            .await
            .gql()?;
        Ok(ToolPayload { tool: tool.into() })
    }

    /// Deletes a tool and removes it from the agents that list it; its past executions
    /// stay. Needs the member role.
    async fn delete_tool(
        &self,
        ctx: &Context<'_>,
        input: DeleteToolInput,
    ) -> async_graphql::Result<DeleteToolPayload> {
        let id = parse_id("id", &input.id)?;
        let deleted = tools::delete(platform(ctx), caller(ctx)?, id).await.gql()?;
        Ok(DeleteToolPayload {
            deleted_tool_id: deleted.into(),
        })
    }
}

/// Reads a JSON object of strings, naming `field` when it is anything else.
fn string_map(
    field: &str,
    value: Option<Json<Value>>,
) -> async_graphql::Result<Option<BTreeMap<String, String>>> {
    let Some(Json(value)) = value else {
        return Ok(None);
    };
    let Value::Object(object) = value else {
        return Err(bad_input(field, "must be a JSON object of strings"));
    };
    object
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(text) => Ok((name, text)),
            _ => Err(bad_input(
                field,
                format!("the value of {name} must be a string"),
            )),
        })
        .collect::<async_graphql::Result<_>>()
        .map(Some)
}

fn secret_map(
    value: Option<Json<Value>>,
) -> async_graphql::Result<Option<BTreeMap<String, Secret>>> {
    Ok(string_map("secretHeaders", value)?.map(|headers| {
        headers
            .into_iter()
            .map(|(name, value)| (name, Secret::new(value)))
            .collect()
    }))
}
