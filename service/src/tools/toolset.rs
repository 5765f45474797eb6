//! The tools one agent run may call: their definitions for the model, and one call from
//! argument check to result.

use entity::tool;
use providers::{ToolCall, ToolDefinition};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use crate::{Platform, RequestContext, error::ServiceResult};

use super::{builtin::Builtin, http, schema};

enum Kind {
    Builtin(Builtin),
    Http(Box<tool::Model>),
}

struct Entry {
    definition: ToolDefinition,
    kind: Kind,
}

/// The result of one tool call, as the model will read it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// The tenant tool that ran, or `None` for a built-in or unknown tool.
    pub tool_id: Option<Uuid>,
    /// The tool's result, or the error sent to the model.
    pub result: Result<String, String>,
}

/// Tools resolved by name, in the order the agent lists them.
pub struct ToolSet {
    entries: Vec<Entry>,
}

impl ToolSet {
    /// Resolves `names` to built-in tools and the tenant's tools. A name that no longer
    /// resolves, because its tool was deleted, is left out.
    pub async fn load<C: ConnectionTrait>(
        db: &C,
        ctx: &RequestContext,
        names: &[String],
    ) -> ServiceResult<Self> {
        let custom: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|name| super::builtin::find(name).is_none())
            .collect();
        let mut stored = if custom.is_empty() {
            Vec::new()
        } else {
            tool::Entity::find()
                .filter(tool::Column::TenantId.eq(ctx.tenant()))
                .filter(tool::Column::Name.is_in(custom))
                .all(db)
                .await?
        };
        let entries = names
            .iter()
            .filter_map(|name| {
                if let Some(builtin) = super::builtin::find(name) {
                    return Some(Entry {
                        definition: ToolDefinition {
                            name: builtin.name().to_owned(),
                            description: builtin.description().to_owned(),
                            parameters: builtin.parameters(),
                        },
                        kind: Kind::Builtin(builtin),
                    });
                }
                let position = stored.iter().position(|tool| &tool.name == name)?;
                let tool = stored.swap_remove(position);
                Some(Entry {
                    definition: ToolDefinition {
                        name: tool.name.clone(),
                        description: tool.description.clone(),
                        parameters: tool.parameters.clone(),
                    },
                    kind: Kind::Http(Box::new(tool)),
                })
            })
            .collect();
        Ok(Self { entries })
    }

    /// Returns the definitions to send to the model.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.entries
            .iter()
            .map(|entry| entry.definition.clone())
            .collect()
    }

    /// Runs one call. Unknown tools, arguments that are not JSON and arguments that do not
    /// match the tool's schema become errors for the model, and the tool does not run.
    pub async fn call(
        &self,
        platform: &Platform,
        ctx: &RequestContext,
        call: &ToolCall,
    ) -> CallOutcome {
        let Some(entry) = self
            .entries
            .iter()
            .find(|entry| entry.definition.name == call.name)
        else {
            return CallOutcome {
                tool_id: None,
                result: Err(format!("this agent has no tool named {}", call.name)),
            };
        };
        let tool_id = match &entry.kind {
            Kind::Http(tool) => Some(tool.id),
            Kind::Builtin(_) => None,
        };
        if let Some(error) = argument_error(&entry.definition.parameters, &call.arguments) {
            return CallOutcome {
                tool_id,
                result: Err(error),
            };
        }
        let result = match &entry.kind {
            Kind::Builtin(builtin) => builtin
                .call(platform, ctx, call.arguments.clone())
                .await
                .map(|value| value.to_string()),
            Kind::Http(tool) => http::call(platform, ctx.tenant_id, tool, &call.arguments).await,
        };
        CallOutcome { tool_id, result }
    }
}

/// Describes why `arguments` cannot be given to a tool with `parameters`, or returns `None`.
fn argument_error(parameters: &Value, arguments: &Value) -> Option<String> {
    // The adapters keep text that is not JSON as a string; a schema of type object then
    // rejects it, but a message naming the problem helps the model correct it.
    if let Value::String(raw) = arguments {
        return Some(format!("the arguments are not a JSON object: {raw}"));
    }
    schema::argument_errors(parameters, arguments)
        .map(|errors| format!("the arguments do not match the tool's schema: {errors}"))
}
