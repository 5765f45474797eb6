//! The `entity` crate against the migrated schema: every column and enum value round-trips,
//! constraints reject invalid rows, and deletes cascade or set references to NULL.

mod common;

use std::fmt::Debug;

use chrono::{DateTime, SubsecRound, Utc};
use entity::{
    FinishReason, MessageRole, MessageStatus, PlanKind, ResponseCacheLookup, Role, TaskPriority,
    TaskStatus, TenantStatus, agent, conversation, membership, message, session, task, tenant,
    tenant_plan, usage_counter, usage_record, user,
};
use migration::{ensure_database, migrate};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database,
    DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, Iterable, ModelTrait, PaginatorTrait,
};
use uuid::Uuid;

use common::{TestResult, with_scratch_database};

/// Above `i32::MAX`, to show that token and money columns are 64-bit.
const LARGE: i64 = 5_000_000_000;

/// One row in every table, linked to each other.
struct Seed {
    tenant: tenant::Model,
    user: user::Model,
    membership: membership::Model,
    session: session::Model,
    plan: tenant_plan::Model,
    agent: agent::Model,
    conversation: conversation::Model,
    message: message::Model,
    task: task::Model,
    usage: usage_record::Model,
    counter: usage_counter::Model,
}

#[tokio::test]
async fn seeded_rows_round_trip() {
    with_scratch_database("entity_round_trip", |url| async move {
        let db = migrated(&url).await?;
        let seed = Seed::new(Utc::now().trunc_subsecs(6));

        seed.insert_checked(&db).await?;

        assert_eq!(
            tenant::Entity::find_by_id(seed.tenant.id).one(&db).await?,
            Some(seed.tenant)
        );
        assert_eq!(
            user::Entity::find_by_id(seed.user.id).one(&db).await?,
            Some(seed.user)
        );
        assert_eq!(
            agent::Entity::find_by_id(seed.agent.id).one(&db).await?,
            Some(seed.agent)
        );
        assert_eq!(
            task::Entity::find_by_id(seed.task.id).one(&db).await?,
            Some(seed.task)
        );
        let counter_key = (seed.counter.tenant_id, seed.counter.period_start);
        assert_eq!(
            usage_counter::Entity::find_by_id(counter_key)
                .one(&db)
                .await?,
            Some(seed.counter)
        );
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn every_enum_value_round_trips() {
    with_scratch_database("entity_enums", |url| async move {
        let db = migrated(&url).await?;
        let seed = Seed::new(Utc::now().trunc_subsecs(6));
        seed.insert_checked(&db).await?;

        for status in TenantStatus::iter() {
            let mut row = seed.tenant.clone().into_active_model();
            row.status = Set(status);
            assert_eq!(row.update(&db).await?.status, status);
        }
        for plan in PlanKind::iter() {
            let mut row = seed.plan.clone().into_active_model();
            row.plan = Set(plan);
            assert_eq!(row.update(&db).await?.plan, plan);
        }
        for role in Role::iter() {
            let mut row = seed.membership.clone().into_active_model();
            row.role = Set(role);
            assert_eq!(row.update(&db).await?.role, role);
        }
        for role in MessageRole::iter() {
            let mut row = seed.message.clone().into_active_model();
            row.role = Set(role);
            assert_eq!(row.update(&db).await?.role, role);
        }
        for status in MessageStatus::iter() {
            let mut row = seed.message.clone().into_active_model();
            row.status = Set(status);
            assert_eq!(row.update(&db).await?.status, status);
        }
        for reason in FinishReason::iter() {
            let mut row = seed.message.clone().into_active_model();
            row.finish_reason = Set(Some(reason));
            assert_eq!(row.update(&db).await?.finish_reason, Some(reason));
        }
        for status in TaskStatus::iter() {
            let mut row = seed.task.clone().into_active_model();
            row.status = Set(status);
            assert_eq!(row.update(&db).await?.status, status);
        }
        for priority in TaskPriority::iter() {
            let mut row = seed.task.clone().into_active_model();
            row.priority = Set(priority);
            assert_eq!(row.update(&db).await?.priority, priority);
        }
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn check_constraints_reject_unknown_values() {
    with_scratch_database("entity_checks", |url| async move {
        let db = migrated(&url).await?;
        Seed::new(Utc::now().trunc_subsecs(6))
            .insert_checked(&db)
            .await?;

        let enum_columns = [
            ("tenants", "status"),
            ("memberships", "role"),
            ("subscriptions", "plan"),
            ("messages", "role"),
            ("messages", "status"),
            ("messages", "finish_reason"),
            ("tasks", "status"),
            ("tasks", "priority"),
        ];
        for (table, column) in enum_columns {
            let update = format!("UPDATE {table} SET {column} = 'unknown'");
            let result = db.execute_unprepared(&update).await;
            assert!(result.is_err(), "{table}.{column} accepted 'unknown'");
        }
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn unique_constraints_reject_duplicates() {
    with_scratch_database("entity_unique", |url| async move {
        let db = migrated(&url).await?;
        let seed = Seed::new(Utc::now().trunc_subsecs(6));
        seed.insert_checked(&db).await?;

        let same_email = user::Model {
            id: Uuid::now_v7(),
            ..seed.user.clone()
        };
        assert!(insert::<user::ActiveModel>(&db, same_email).await.is_err());

        let same_member = membership::Model {
            id: Uuid::now_v7(),
            ..seed.membership.clone()
        };
        assert!(
            insert::<membership::ActiveModel>(&db, same_member)
                .await
                .is_err()
        );

        let second_plan = tenant_plan::Model {
            id: Uuid::now_v7(),
            ..seed.plan.clone()
        };
        assert!(
            insert::<tenant_plan::ActiveModel>(&db, second_plan)
                .await
                .is_err()
        );

        let same_refresh_token = session::Model {
            id: Uuid::now_v7(),
            ..seed.session.clone()
        };
        assert!(
            insert::<session::ActiveModel>(&db, same_refresh_token)
                .await
                .is_err()
        );
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn deleting_conversation_keeps_usage() {
    with_scratch_database("entity_delete_conversation", |url| async move {
        let db = migrated(&url).await?;
        let seed = Seed::new(Utc::now().trunc_subsecs(6));
        seed.insert_checked(&db).await?;

        seed.conversation.clone().delete(&db).await?;

        assert_eq!(
            message::Entity::find_by_id(seed.message.id)
                .one(&db)
                .await?,
            None
        );
        let usage = usage_record::Entity::find_by_id(seed.usage.id)
            .one(&db)
            .await?;
        let expected = usage_record::Model {
            conversation_id: None,
            message_id: None,
            ..seed.usage.clone()
        };
        assert_eq!(usage, Some(expected));
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn deleting_user_clears_references() {
    with_scratch_database("entity_delete_user", |url| async move {
        let db = migrated(&url).await?;
        let seed = Seed::new(Utc::now().trunc_subsecs(6));
        seed.insert_checked(&db).await?;

        seed.user.clone().delete(&db).await?;

        assert_eq!(membership::Entity::find().count(&db).await?, 0);
        assert_eq!(session::Entity::find().count(&db).await?, 0);
        let agent = agent::Entity::find_by_id(seed.agent.id).one(&db).await?;
        assert_eq!(agent.and_then(|agent| agent.created_by), None);
        let conversation = conversation::Entity::find_by_id(seed.conversation.id)
            .one(&db)
            .await?
            .ok_or("conversation was deleted with its user")?;
        assert_eq!(conversation.user_id, None);
        let task = task::Entity::find_by_id(seed.task.id)
            .one(&db)
            .await?
            .ok_or("task was deleted with its user")?;
        assert_eq!(task.assignee_id, None);
        assert_eq!(task.created_by, None);
        let usage = usage_record::Entity::find_by_id(seed.usage.id)
            .one(&db)
            .await?
            .ok_or("usage record was deleted with its user")?;
        assert_eq!(usage.user_id, None);
        assert_eq!(usage.conversation_id, Some(seed.conversation.id));
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn deleting_tenant_removes_its_rows() {
    with_scratch_database("entity_delete_tenant", |url| async move {
        let db = migrated(&url).await?;
        let seed = Seed::new(Utc::now().trunc_subsecs(6));
        seed.insert_checked(&db).await?;

        seed.tenant.clone().delete(&db).await?;

        assert_eq!(membership::Entity::find().count(&db).await?, 0);
        assert_eq!(session::Entity::find().count(&db).await?, 0);
        assert_eq!(tenant_plan::Entity::find().count(&db).await?, 0);
        assert_eq!(agent::Entity::find().count(&db).await?, 0);
        assert_eq!(conversation::Entity::find().count(&db).await?, 0);
        assert_eq!(message::Entity::find().count(&db).await?, 0);
        assert_eq!(task::Entity::find().count(&db).await?, 0);
        assert_eq!(usage_record::Entity::find().count(&db).await?, 0);
        assert_eq!(usage_counter::Entity::find().count(&db).await?, 0);
        assert_eq!(user::Entity::find().count(&db).await?, 1);
        db.close().await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn memberships_relate_users_and_tenants() {
    with_scratch_database("entity_relations", |url| async move {
        let db = migrated(&url).await?;
        let seed = Seed::new(Utc::now().trunc_subsecs(6));
        seed.insert_checked(&db).await?;

        let members = seed.tenant.find_related(user::Entity).all(&db).await?;
        assert_eq!(members, std::slice::from_ref(&seed.user));
        let tenants = seed.user.find_related(tenant::Entity).all(&db).await?;
        assert_eq!(tenants, std::slice::from_ref(&seed.tenant));
        let messages = seed
            .conversation
            .find_related(message::Entity)
            .all(&db)
            .await?;
        assert_eq!(messages, std::slice::from_ref(&seed.message));
        db.close().await?;
        Ok(())
    })
    .await;
}

async fn migrated(url: &str) -> Result<DatabaseConnection, DbErr> {
    ensure_database(url).await?;
    migrate(url).await?;
    Database::connect(url).await
}

/// Inserts `model` with every column set and returns the row as PostgreSQL stored it.
async fn insert<A>(
    db: &DatabaseConnection,
    model: <A::Entity as EntityTrait>::Model,
) -> Result<<A::Entity as EntityTrait>::Model, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    model.into_active_model().reset_all().insert(db).await
}

/// Inserts `model` and asserts that the stored row equals it.
async fn insert_checked<A>(
    db: &DatabaseConnection,
    model: <A::Entity as EntityTrait>::Model,
) -> TestResult
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + Clone + PartialEq + Debug,
{
    let stored = insert::<A>(db, model.clone()).await?;
    assert_eq!(stored, model);
    Ok(())
}

impl Seed {
    fn new(now: DateTime<Utc>) -> Self {
        let tenant = tenant::Model {
            id: Uuid::now_v7(),
            name: "Acme".to_owned(),
            status: TenantStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let user = user::Model {
            id: Uuid::now_v7(),
            email: "ada@example.com".to_owned(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
            full_name: "Ada Lovelace".to_owned(),
            created_at: now,
            updated_at: now,
        };
        let membership = membership::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            user_id: user.id,
            role: Role::Owner,
            created_at: now,
        };
        let session = session::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            user_id: user.id,
            refresh_token_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                .to_owned(),
            previous_refresh_token_hash: Some("previous".to_owned()),
            expires_at: now,
            revoked_at: Some(now),
            created_at: now,
            last_refreshed_at: Some(now),
        };
        let plan = tenant_plan::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            plan: PlanKind::Pro,
            monthly_token_limit: Some(LARGE),
            requests_per_minute: Some(600),
            tokens_per_minute: None,
            api_key_requests_per_minute: Some(300),
            api_key_tokens_per_minute: None,
            monthly_spend_limit_micros: Some(LARGE),
            max_agents: Some(50),
            max_members: None,
            features: Some(serde_json::json!({ "webhooks": true })),
            current_period_start: now,
            current_period_end: now,
            created_at: now,
            updated_at: now,
        };
        let agent = agent::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            name: "Researcher".to_owned(),
            description: Some("Finds sources".to_owned()),
            instructions: "Cite every claim.".to_owned(),
            provider: "openai".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            temperature: Some(0.25),
            max_tokens: Some(1024),
            fallback_provider: Some("anthropic".to_owned()),
            fallback_model: Some("claude-3-5-haiku-latest".to_owned()),
            tools: serde_json::json!(["calculate", "weather"]),
            max_steps: 5,
            run_timeout_seconds: 120,
            context_messages: Some(6),
            context_window_tokens: Some(32_000),
            response_cache_ttl_seconds: Some(2_592_000),
            created_by: Some(user.id),
            created_at: now,
            updated_at: now,
        };
        let conversation = conversation::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            user_id: Some(user.id),
            agent_id: Some(agent.id),
            title: "Sources".to_owned(),
            provider: "openai".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            created_at: now,
            updated_at: now,
        };
        let message = message::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            conversation_id: conversation.id,
            role: MessageRole::Assistant,
            content: "Here are three sources.".to_owned(),
            status: MessageStatus::Completed,
            finish_reason: Some(FinishReason::Stop),
            input_tokens: Some(LARGE),
            output_tokens: Some(LARGE + 1),
            cost_micros: Some(LARGE + 2),
            usage_estimated: true,
            error: Some("none".to_owned()),
            created_at: now,
            completed_at: Some(now),
        };
        let task = task::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            title: "Review sources".to_owned(),
            description: Some("Check the links".to_owned()),
            status: TaskStatus::InProgress,
            priority: TaskPriority::High,
            due_at: Some(now),
            assignee_id: Some(user.id),
            created_by: Some(user.id),
            created_at: now,
            updated_at: now,
        };
        let usage = usage_record::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            user_id: Some(user.id),
            agent_id: Some(agent.id),
            conversation_id: Some(conversation.id),
            message_id: Some(message.id),
            agent_run_id: None,
            provider: "openai".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            input_tokens: LARGE,
            output_tokens: LARGE + 1,
            cached_input_tokens: LARGE - 1,
            cost_micros: LARGE + 2,
            price_known: false,
            estimated: true,
            response_cache: Some(ResponseCacheLookup::Hit),
            created_at: now,
            counted_at: Some(now),
        };
        let counter = usage_counter::Model {
            tenant_id: tenant.id,
            period_start: now,
            input_tokens: LARGE,
            output_tokens: LARGE + 1,
            cost_micros: LARGE + 2,
            record_count: LARGE + 3,
            unpriced_record_count: LARGE + 4,
            response_cache_hit_tokens: LARGE + 5,
            updated_at: now,
        };

        Self {
            tenant,
            user,
            membership,
            session,
            plan,
            agent,
            conversation,
            message,
            task,
            usage,
            counter,
        }
    }

    /// Inserts every row in dependency order, asserting that each is stored unchanged.
    async fn insert_checked(&self, db: &DatabaseConnection) -> TestResult {
        insert_checked::<tenant::ActiveModel>(db, self.tenant.clone()).await?;
        insert_checked::<user::ActiveModel>(db, self.user.clone()).await?;
        insert_checked::<membership::ActiveModel>(db, self.membership.clone()).await?;
        insert_checked::<session::ActiveModel>(db, self.session.clone()).await?;
        insert_checked::<tenant_plan::ActiveModel>(db, self.plan.clone()).await?;
        insert_checked::<agent::ActiveModel>(db, self.agent.clone()).await?;
        insert_checked::<conversation::ActiveModel>(db, self.conversation.clone()).await?;
        insert_checked::<message::ActiveModel>(db, self.message.clone()).await?;
        insert_checked::<task::ActiveModel>(db, self.task.clone()).await?;
        insert_checked::<usage_record::ActiveModel>(db, self.usage.clone()).await?;
        insert_checked::<usage_counter::ActiveModel>(db, self.counter.clone()).await?;
        Ok(())
    }
}
