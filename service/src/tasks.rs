//! Tasks: the tenant's to-do items, visible to every member.

use chrono::{DateTime, Utc};
use entity::{Role, TaskPriority, TaskStatus, membership, task};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;
use tracing::info;
use uuid::Uuid;

use crate::{
    Platform, RequestContext,
    audit::{self, Action, Target, TargetType},
    error::{ServiceError, ServiceResult},
    live::Change,
    pagination::{Order, Page, PageRequest, fetch_tenant_page},
    validation::{self, MAX_NAME_CHARS, MAX_TEXT_CHARS},
};

pub struct CreateTask {
    pub title: String,
    pub description: Option<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<TaskPriority>,
    pub due_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<Uuid>,
}

/// Changes to a task. `None` leaves a field as it is; `Some(None)` clears a nullable one.
#[derive(Default)]
pub struct UpdateTask {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<TaskStatus>,
    pub priority: Option<TaskPriority>,
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub assignee_id: Option<Option<Uuid>>,
}

/// Conditions a listed task must meet; each one that is set must hold.
#[derive(Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub priority: Option<TaskPriority>,
    pub assignee_id: Option<Uuid>,
    pub due_before: Option<DateTime<Utc>>,
}

pub async fn create(
    platform: &Platform,
    ctx: &RequestContext,
    input: CreateTask,
) -> ServiceResult<task::Model> {
    ctx.require(Role::Member)?;
    let title = validation::required_text("title", &input.title, MAX_NAME_CHARS)?;
    let description =
        validation::optional_text("description", input.description.as_deref(), MAX_TEXT_CHARS)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    if let Some(assignee_id) = input.assignee_id {
        check_assignee(&txn, ctx, assignee_id).await?;
    }

    let now = Utc::now();
    let task = task::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        title: Set(title),
        description: Set(description),
        status: Set(input.status.unwrap_or(TaskStatus::Todo)),
        priority: Set(input.priority.unwrap_or(TaskPriority::Medium)),
        due_at: Set(input.due_at),
        assignee_id: Set(input.assignee_id),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let summary = json!({
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "dueAt": task.due_at,
        "assigneeId": task.assignee_id,
    });
    audit::record(
        &txn,
        ctx,
        Action::TaskCreate,
        Target::new(TargetType::Task, task.id),
        summary,
    )
    .await?;
    txn.commit().await?;
    platform
        .live
        .tenant(ctx.tenant(), Change::TaskCreated { task_id: task.id });
    info!(tenant.id = %ctx.tenant(), task.id = %task.id, "task created");
    Ok(task)
}

pub async fn update(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
    input: UpdateTask,
) -> ServiceResult<task::Model> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let task = find(&txn, ctx, id).await?;
    let before = task.clone();
    let mut active: task::ActiveModel = task.into();
    if let Some(title) = input.title {
        active.title = Set(validation::required_text("title", &title, MAX_NAME_CHARS)?);
    }
    if let Some(description) = input.description {
        active.description = Set(validation::optional_text(
            "description",
            description.as_deref(),
            MAX_TEXT_CHARS,
        )?);
    }
    if let Some(status) = input.status {
        active.status = Set(status);
    }
    if let Some(priority) = input.priority {
        active.priority = Set(priority);
    }
    if let Some(due_at) = input.due_at {
        active.due_at = Set(due_at);
    }
    if let Some(assignee_id) = input.assignee_id {
        if let Some(assignee_id) = assignee_id {
            check_assignee(&txn, ctx, assignee_id).await?;
        }
        active.assignee_id = Set(assignee_id);
    }
    active.updated_at = Set(Utc::now());

    let fields = audit::changed_fields(&before, &active);
    let task = active.update(&txn).await?;
    let summary = json!({ "title": task.title, "status": task.status, "fields": fields });
    audit::record(
        &txn,
        ctx,
        Action::TaskUpdate,
        Target::new(TargetType::Task, task.id),
        summary,
    )
    .await?;
    txn.commit().await?;
    platform
        .live
        .tenant(ctx.tenant(), Change::TaskUpdated { task_id: task.id });
    Ok(task)
}

pub async fn delete(platform: &Platform, ctx: &RequestContext, id: Uuid) -> ServiceResult<Uuid> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let deleted = task::Entity::delete_many()
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::TenantId.eq(ctx.tenant()))
        .exec_with_returning(&txn)
        .await?;
    let Some(task) = deleted.into_iter().next() else {
        return Err(ServiceError::not_found("task"));
    };
    audit::record(
        &txn,
        ctx,
        Action::TaskDelete,
        Target::new(TargetType::Task, id),
        json!({ "title": task.title }),
    )
    .await?;
    txn.commit().await?;
    platform
        .live
        .tenant(ctx.tenant(), Change::TaskDeleted { task_id: id });
    info!(tenant.id = %ctx.tenant(), task.id = %id, "task deleted");
    Ok(id)
}

pub async fn get(
    platform: &Platform,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<task::Model> {
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let task = find(&txn, ctx, id).await?;
    txn.commit().await?;
    Ok(task)
}

async fn find<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    id: Uuid,
) -> ServiceResult<task::Model> {
    task::Entity::find_by_id(id)
        .filter(task::Column::TenantId.eq(ctx.tenant()))
        .one(db)
        .await?
        .ok_or_else(|| ServiceError::not_found("task"))
}

pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    filter: &TaskFilter,
    page: &PageRequest,
) -> ServiceResult<Page<task::Model>> {
    let mut select = task::Entity::find().filter(task::Column::TenantId.eq(ctx.tenant()));
    if let Some(status) = filter.status {
        select = select.filter(task::Column::Status.eq(status));
    }
    if let Some(priority) = filter.priority {
        select = select.filter(task::Column::Priority.eq(priority));
    }
    if let Some(assignee_id) = filter.assignee_id {
        select = select.filter(task::Column::AssigneeId.eq(assignee_id));
    }
    if let Some(due_before) = filter.due_before {
        select = select.filter(task::Column::DueAt.lt(due_before));
    }
    fetch_tenant_page(
        platform,
        ctx.tenant_id,
        select,
        task::Column::Id,
        Order::NewestFirst,
        page,
        |t| t.id,
    )
    .await
}

/// An assignee must be a member of the caller's tenant. Other users read as unknown ids.
async fn check_assignee<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestContext,
    assignee_id: Uuid,
) -> ServiceResult<()> {
    let members = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(ctx.tenant()))
        .filter(membership::Column::UserId.eq(assignee_id))
        .count(db)
        .await?;
    if members == 0 {
        return Err(ServiceError::invalid(
            "assigneeId",
            "no member of this tenant has this id",
        ));
    }
    Ok(())
}
