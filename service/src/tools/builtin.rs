//! Built-in tools that every agent may list: the current time, arithmetic, and the tenant's
//! tasks. Task tools act with the rights of the member who started the run.

use chrono::Utc;
use entity::{TaskPriority, TaskStatus, task};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, ServiceError,
    pagination::PageRequest,
    tasks::{self, CreateTask, TaskFilter, UpdateTask},
};

/// A tool the platform provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    CurrentTime,
    Calculate,
    ListTasks,
    CreateTask,
    UpdateTask,
}

impl Builtin {
    pub const ALL: [Builtin; 5] = [
        Builtin::CurrentTime,
        Builtin::Calculate,
        Builtin::ListTasks,
        Builtin::CreateTask,
        Builtin::UpdateTask,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Builtin::CurrentTime => "current_time",
            Builtin::Calculate => "calculate",
            Builtin::ListTasks => "list_tasks",
            Builtin::CreateTask => "create_task",
            Builtin::UpdateTask => "update_task",
        }
    }

    pub const fn description(self) -> &'static str {
        match self {
            Builtin::CurrentTime => "Returns the current date and time in UTC.",
            Builtin::Calculate => {
                "Applies one arithmetic operation to two numbers: add, subtract, multiply, \
                 divide or power. Use it instead of doing arithmetic in your head."
            }
            Builtin::ListTasks => {
                "Lists the organisation's tasks, newest first, optionally only those with a \
                 given status or priority."
            }
            Builtin::CreateTask => "Creates a task and returns it with its id.",
            Builtin::UpdateTask => {
                "Changes the title, description, status or priority of the task with the \
                 given id and returns the task."
            }
        }
    }

    /// JSON Schema of the tool's arguments.
    pub fn parameters(self) -> Value {
        let status =
            json!({"type": "string", "enum": ["todo", "in_progress", "done", "cancelled"]});
        let priority = json!({"type": "string", "enum": ["low", "medium", "high", "urgent"]});
        match self {
            Builtin::CurrentTime => json!({"type": "object", "properties": {}}),
            Builtin::Calculate => json!({
                "type": "object",
                "properties": {
                    "operation": {
                        "type": "string",
                        "enum": ["add", "subtract", "multiply", "divide", "power"]
                    },
                    "a": {"type": "number"},
                    "b": {"type": "number"}
                },
                "required": ["operation", "a", "b"],
                "additionalProperties": false
            }),
            Builtin::ListTasks => json!({
                "type": "object",
                "properties": {
                    "status": status,
                    "priority": priority,
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50}
                },
                "additionalProperties": false
            }),
            Builtin::CreateTask => json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "description": {"type": "string"},
                    "status": status,
                    "priority": priority
                },
                "required": ["title"],
                "additionalProperties": false
            }),
            Builtin::UpdateTask => json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "description": {"type": "string"},
                    "status": status,
                    "priority": priority
                },
                "required": ["id"],
                "additionalProperties": false
            }),
        }
    }

    /// Runs the tool with arguments that already match [`Builtin::parameters`]. The error
    /// text goes back to the model.
    pub(crate) async fn call(
        self,
        platform: &Platform,
        ctx: &RequestContext,
        arguments: Value,
    ) -> Result<Value, String> {
        match self {
            Builtin::CurrentTime => {
                let now = Utc::now();
                Ok(json!({"utc": now.to_rfc3339(), "unix": now.timestamp()}))
            }
            Builtin::Calculate => calculate(parse(arguments)?),
            Builtin::ListTasks => list_tasks(platform, ctx, parse(arguments)?).await,
            Builtin::CreateTask => create_task(platform, ctx, parse(arguments)?).await,
            Builtin::UpdateTask => update_task(platform, ctx, parse(arguments)?).await,
        }
    }
}

/// Returns the built-in tool named `name`.
pub fn find(name: &str) -> Option<Builtin> {
    Builtin::ALL.into_iter().find(|tool| tool.name() == name)
}

fn parse<T: for<'de> Deserialize<'de>>(arguments: Value) -> Result<T, String> {
    serde_json::from_value(arguments).map_err(|error| format!("invalid arguments: {error}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Operation {
    Add,
    Subtract,
    Multiply,
    Divide,
    Power,
}

#[derive(Deserialize)]
struct Calculation {
    operation: Operation,
    a: f64,
    b: f64,
}

fn calculate(calculation: Calculation) -> Result<Value, String> {
    let Calculation { operation, a, b } = calculation;
    let result = match operation {
        Operation::Add => a + b,
        Operation::Subtract => a - b,
        Operation::Multiply => a * b,
        Operation::Divide if b == 0.0 => return Err("division by zero".to_owned()),
        Operation::Divide => a / b,
        Operation::Power => a.powf(b),
    };
    if !result.is_finite() {
        return Err("the result is not a finite number".to_owned());
    }
    Ok(json!({"result": result}))
}

#[derive(Deserialize)]
struct TaskQuery {
    status: Option<TaskStatus>,
    priority: Option<TaskPriority>,
    limit: Option<i32>,
}

async fn list_tasks(
    platform: &Platform,
    ctx: &RequestContext,
    query: TaskQuery,
) -> Result<Value, String> {
    let filter = TaskFilter {
        status: query.status,
        priority: query.priority,
        ..TaskFilter::default()
    };
    let page = PageRequest {
        first: Some(query.limit.unwrap_or(20)),
        after: None,
    };
    let page = tasks::list(platform, ctx, &filter, &page)
        .await
        .map_err(describe)?;
    let tasks: Vec<Value> = page.items.iter().map(|(_, task)| task_json(task)).collect();
    Ok(json!({"tasks": tasks}))
}

#[derive(Deserialize)]
struct NewTask {
    title: String,
    description: Option<String>,
    status: Option<TaskStatus>,
    priority: Option<TaskPriority>,
}

async fn create_task(
    platform: &Platform,
    ctx: &RequestContext,
    new: NewTask,
) -> Result<Value, String> {
    let input = CreateTask {
        title: new.title,
        description: new.description,
        status: new.status,
        priority: new.priority,
        due_at: None,
        assignee_id: None,
    };
    let task = tasks::create(platform, ctx, input)
        .await
        .map_err(describe)?;
    Ok(task_json(&task))
}

#[derive(Deserialize)]
struct TaskChange {
    id: String,
    title: Option<String>,
    description: Option<String>,
    status: Option<TaskStatus>,
    priority: Option<TaskPriority>,
}

async fn update_task(
    platform: &Platform,
    ctx: &RequestContext,
    change: TaskChange,
) -> Result<Value, String> {
    let id = Uuid::parse_str(&change.id).map_err(|_| "id is not a task id".to_owned())?;
    let input = UpdateTask {
        title: change.title,
        description: change.description.map(Some),
        status: change.status,
        priority: change.priority,
        ..UpdateTask::default()
    };
    let task = tasks::update(platform, ctx, id, input)
        .await
        .map_err(describe)?;
    Ok(task_json(&task))
}

fn task_json(task: &task::Model) -> Value {
    json!({
        "id": task.id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": task.priority,
        "dueAt": task.due_at.map(|due| due.to_rfc3339()),
    })
}

/// Turns a service error into the text the model reads. Internal errors keep their detail
/// out of the model's context.
fn describe(error: ServiceError) -> String {
    if error.is_internal() {
        "the tool failed because of an internal error".to_owned()
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_found_by_name() {
        for tool in Builtin::ALL {
            assert_eq!(find(tool.name()), Some(tool));
            let schema = tool.parameters();
            assert_eq!(schema["type"], "object", "{}", tool.name());
            assert!(
                jsonschema::validator_for(&schema).is_ok(),
                "{}",
                tool.name()
            );
        }
        assert_eq!(find("nope"), None);
    }

    #[test]
    fn calculate_applies_operation() {
        let result = calculate(parse(json!({"operation": "multiply", "a": 6, "b": 7})).unwrap());
        assert_eq!(result, Ok(json!({"result": 42.0})));
        let result = calculate(parse(json!({"operation": "divide", "a": 1, "b": 0})).unwrap());
        assert_eq!(result, Err("division by zero".to_owned()));
    }
}
