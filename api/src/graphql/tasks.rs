//! Tasks: the tenant's to-do items.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use entity::task;
use service::tasks;
use uuid::Uuid;

use super::{
    auth::User,
    connection::{Paged, page_request, to_connection},
    context::{caller, parse_id, platform},
    error::GqlResult,
    loaders::MemberLoader,
};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    Todo,
    InProgress,
    Done,
    Cancelled,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TaskPriority {
    Low,
    Medium,
    High,
    Urgent,
}

impl From<entity::TaskStatus> for TaskStatus {
    fn from(status: entity::TaskStatus) -> Self {
        match status {
            entity::TaskStatus::Todo => TaskStatus::Todo,
            entity::TaskStatus::InProgress => TaskStatus::InProgress,
            entity::TaskStatus::Done => TaskStatus::Done,
            entity::TaskStatus::Cancelled => TaskStatus::Cancelled,
        }
    }
}

impl From<TaskStatus> for entity::TaskStatus {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Todo => entity::TaskStatus::Todo,
            TaskStatus::InProgress => entity::TaskStatus::InProgress,
            TaskStatus::Done => entity::TaskStatus::Done,
            TaskStatus::Cancelled => entity::TaskStatus::Cancelled,
        }
    }
}

impl From<entity::TaskPriority> for TaskPriority {
    fn from(priority: entity::TaskPriority) -> Self {
        match priority {
            entity::TaskPriority::Low => TaskPriority::Low,
            entity::TaskPriority::Medium => TaskPriority::Medium,
            entity::TaskPriority::High => TaskPriority::High,
            entity::TaskPriority::Urgent => TaskPriority::Urgent,
        }
    }
}

impl From<TaskPriority> for entity::TaskPriority {
    fn from(priority: TaskPriority) -> Self {
        match priority {
            TaskPriority::Low => entity::TaskPriority::Low,
            TaskPriority::Medium => entity::TaskPriority::Medium,
            TaskPriority::High => entity::TaskPriority::High,
            TaskPriority::Urgent => entity::TaskPriority::Urgent,
        }
    }
}

/// A to-do item of the tenant, visible to every member.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Task {
    pub id: ID,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: TaskPriority,
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub assignee_id: Option<Uuid>,
}

impl From<task::Model> for Task {
    fn from(task: task::Model) -> Self {
        Self {
            id: task.id.into(),
            title: task.title,
            description: task.description,
            status: task.status.into(),
            priority: task.priority.into(),
            due_at: task.due_at,
            created_at: task.created_at,
            updated_at: task.updated_at,
            assignee_id: task.assignee_id,
        }
    }
}

#[ComplexObject]
impl Task {
    /// The member the task is assigned to; null when unassigned or no longer a member.
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(assignee_id) = self.assignee_id else {
            return Ok(None);
        };
        let loader = ctx.data_unchecked::<DataLoader<MemberLoader>>();
        Ok(loader.load_one(assignee_id).await?.map(User::from))
    }
}

#[derive(InputObject)]
pub struct CreateTaskInput {
    /// Up to 200 characters.
    pub title: String,
    pub description: Option<String>,
    /// TODO when absent.
    pub status: Option<TaskStatus>,
    /// MEDIUM when absent.
    pub priority: Option<TaskPriority>,
    pub due_at: Option<DateTime<Utc>>,
    /// A member of the tenant.
    pub assignee_id: Option<ID>,
}

/// Fields to change. An absent field keeps its value; `null` clears a nullable field.
#[derive(InputObject)]
pub struct UpdateTaskInput {
    pub id: ID,
    pub title: Option<String>,
    pub description: MaybeUndefined<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<TaskPriority>,
    pub due_at: MaybeUndefined<DateTime<Utc>>,
    pub assignee_id: MaybeUndefined<ID>,
}

#[derive(InputObject)]
pub struct DeleteTaskInput {
    pub id: ID,
}

/// Conditions on listed tasks; every condition given must hold.
#[derive(InputObject, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub priority: Option<TaskPriority>,
    pub assignee_id: Option<ID>,
    /// Only tasks due before this time.
    pub due_before: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct TaskPayload {
    pub task: Task,
}

#[derive(SimpleObject)]
pub struct DeleteTaskPayload {
    pub deleted_task_id: ID,
}

#[derive(Default)]
pub struct TaskQuery;

#[Object]
impl TaskQuery {
    /// One task of the caller's tenant.
    async fn task(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Task> {
        let id = parse_id("id", &id)?;
        Ok(tasks::get(platform(ctx), caller(ctx)?, id)
            .await
            .gql()?
            .into())
    }

    /// The tenant's tasks, newest first, optionally filtered.
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Paged<Task>> {
        let filter = filter.unwrap_or_default();
        let assignee_id = match &filter.assignee_id {
            Some(id) => Some(parse_id("filter.assigneeId", id)?),
            None => None,
        };
        let filter = tasks::TaskFilter {
            status: filter.status.map(Into::into),
            priority: filter.priority.map(Into::into),
            assignee_id,
            due_before: filter.due_before,
        };
        let request = page_request(first, after);
        let page = tasks::list(platform(ctx), caller(ctx)?, &filter, &request)
            .await
            .gql()?;
        Ok(to_connection(page, Task::from))
    }
}

#[derive(Default)]
pub struct TaskMutation;

#[Object]
impl TaskMutation {
    /// Creates a task. Needs the member role.
    async fn create_task(
        &self,
        ctx: &Context<'_>,
        input: CreateTaskInput,
    ) -> async_graphql::Result<TaskPayload> {
        let assignee_id = match &input.assignee_id {
            Some(id) => Some(parse_id("assigneeId", id)?),
            None => None,
        };
        let input = tasks::CreateTask {
            title: input.title,
            description: input.description,
            status: input.status.map(Into::into),
            priority: input.priority.map(Into::into),
            due_at: input.due_at,
            assignee_id,
        };
        let task = tasks::create(platform(ctx), caller(ctx)?, input)
            .await
            .gql()?;
        Ok(TaskPayload { task: task.into() })
    }

    /// Changes a task. Needs the member role.
    async fn update_task(
        &self,
        ctx: &Context<'_>,
        input: UpdateTaskInput,
    ) -> async_graphql::Result<TaskPayload> {
        let id = parse_id("id", &input.id)?;
        let assignee_id = match optional_change(input.assignee_id) {
            Some(Some(id)) => Some(Some(parse_id("assigneeId", &id)?)),
            Some(None) => Some(None),
            None => None,
        };
        let changes = tasks::UpdateTask {
            title: input.title,
            description: optional_change(input.description),
            status: input.status.map(Into::into),
            priority: input.priority.map(Into::into),
            due_at: optional_change(input.due_at),
            assignee_id,
        };
        let task = tasks::update(platform(ctx), caller(ctx)?, id, changes)
            .await
            .gql()?;
        Ok(TaskPayload { task: task.into() })
    }

    /// Deletes a task. Needs the member role.
    async fn delete_task(
        &self,
        ctx: &Context<'_>,
        input: DeleteTaskInput,
    ) -> async_graphql::Result<DeleteTaskPayload> {
        let id = parse_id("id", &input.id)?;
        let deleted = tasks::delete(platform(ctx), caller(ctx)?, id).await.gql()?;
        Ok(DeleteTaskPayload {
            deleted_task_id: deleted.into(),
        })
    }
}

/// Maps absent to "keep", null to "clear" and a value to "set".
fn optional_change<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(value) => Some(Some(value)),
    }
}
