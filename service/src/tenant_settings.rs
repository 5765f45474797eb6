//! Tenant settings: the default provider and model of new conversations, the providers and
//! models members may use, and how long messages are kept.

use chrono::Utc;
use entity::{Role, tenant_setting};
use providers::ProviderKind;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Set, Statement,
    sea_query::OnConflict,
};
use serde_json::json;
use tracing::info;
use uuid::Uuid;

use crate::{
    Platform, RequestContext, TenantId,
    audit::{self, Action, Target, TargetType},
    chat::provider_available,
    error::{ServiceError, ServiceResult},
    validation::{self, MAX_NAME_CHARS},
};

/// Maximum retention a tenant may set: ten years.
pub const MAX_RETENTION_DAYS: i32 = 3_650;
/// Models a tenant may list as allowed.
pub const MAX_ALLOWED_MODELS: usize = 200;
/// Messages deleted per statement by the retention sweep.
const RETENTION_BATCH_ROWS: i64 = 1_000;

/// The settings that apply to a tenant. The defaults, without a stored row, restrict
/// nothing and keep messages forever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSettings {
    pub default_provider: Option<ProviderKind>,
    pub default_model: Option<String>,
    /// `None` allows every provider.
    pub allowed_providers: Option<Vec<ProviderKind>>,
    /// `None` allows every model.
    pub allowed_models: Option<Vec<String>>,
    pub message_retention_days: Option<i32>,
}

impl TenantSettings {
    /// Fails with BAD_USER_INPUT on `provider_field` or `model_field` when the settings do
    /// not allow the provider or the model.
    pub fn check_allowed(
        &self,
        provider: ProviderKind,
        model: &str,
        provider_field: &str,
        model_field: &str,
    ) -> ServiceResult<()> {
        if let Some(allowed) = &self.allowed_providers
            && !allowed.contains(&provider)
        {
            return Err(ServiceError::invalid(
                provider_field,
                format!(
                    "{} is not among the providers this tenant allows",
                    provider.as_str()
                ),
            ));
        }
        if let Some(allowed) = &self.allowed_models
            && !allowed.iter().any(|name| name == model)
        {
            return Err(ServiceError::invalid(
                model_field,
                format!("{model} is not among the models this tenant allows"),
            ));
        }
        Ok(())
    }
}

/// Reads the tenant's settings, or the defaults when it stored none.
pub async fn for_tenant<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
) -> ServiceResult<TenantSettings> {
    let row = tenant_setting::Entity::find()
        .filter(tenant_setting::Column::TenantId.eq(tenant_id.as_uuid()))
        .one(db)
        .await?;
    row.map(decode).transpose().map(Option::unwrap_or_default)
}

/// Returns the caller's tenant settings. Needs the viewer role.
pub async fn get(platform: &Platform, ctx: &RequestContext) -> ServiceResult<TenantSettings> {
    ctx.require(Role::Viewer)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let settings = for_tenant(&txn, ctx.tenant_id).await?;
    txn.commit().await?;
    Ok(settings)
}

/// Replaces the tenant's settings. Needs the admin role.
pub async fn update(
    platform: &Platform,
    ctx: &RequestContext,
    settings: TenantSettings,
) -> ServiceResult<TenantSettings> {
    ctx.require(Role::Admin)?;
    let settings = check(platform, settings)?;
    let now = Utc::now();
    let row = tenant_setting::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        default_provider: Set(settings
            .default_provider
            .map(|kind| kind.as_str().to_owned())),
        default_model: Set(settings.default_model.clone()),
        allowed_providers: Set(settings
            .allowed_providers
            .as_ref()
            .map(|kinds| json!(kinds.iter().map(|kind| kind.as_str()).collect::<Vec<_>>()))),
        allowed_models: Set(settings.allowed_models.as_ref().map(|models| json!(models))),
        message_retention_days: Set(settings.message_retention_days),
        updated_at: Set(now),
    };
    let upsert = OnConflict::column(tenant_setting::Column::TenantId)
        .update_columns([
            tenant_setting::Column::DefaultProvider,
            tenant_setting::Column::DefaultModel,
            tenant_setting::Column::AllowedProviders,
            tenant_setting::Column::AllowedModels,
            tenant_setting::Column::MessageRetentionDays,
            tenant_setting::Column::UpdatedAt,
        ])
        .to_owned();

    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let saved = tenant_setting::Entity::insert(row)
        .on_conflict(upsert)
        .exec_with_returning(&txn)
        .await?;
    let summary = json!({
        "defaultProvider": saved.default_provider,
        "defaultModel": saved.default_model,
        "allowedProviders": saved.allowed_providers,
        "allowedModels": saved.allowed_models,
        "messageRetentionDays": saved.message_retention_days,
    });
    audit::record(
        &txn,
        ctx,
        Action::TenantSettingsUpdate,
        Target::new(TargetType::Tenant, ctx.tenant()),
        summary,
    )
    .await?;
    txn.commit().await?;

    info!(tenant.id = %ctx.tenant(), user.id = %ctx.user_id, "tenant settings updated");
    decode(saved)
}

/// Deletes the messages of every tenant that are older than its retention, in batches,
/// and returns how many were deleted. Usage records stay: they are the billing history.
pub async fn delete_expired_messages(platform: &Platform) -> ServiceResult<u64> {
    const SQL: &str = r#"
        DELETE FROM messages WHERE id IN (
            SELECT message.id FROM messages AS message
            JOIN tenant_settings AS settings ON settings.tenant_id = message.tenant_id
            WHERE settings.message_retention_days IS NOT NULL
              AND message.status <> 'streaming'
              AND message.created_at
                  < now() - make_interval(days => settings.message_retention_days)
            LIMIT $1
        )
    "#;
    let mut deleted = 0;
    loop {
        // Every tenant's messages, one batch per transaction.
        let txn = platform.cross_tenant_tx().await?;
        let result = txn
            .execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                SQL,
                [RETENTION_BATCH_ROWS.into()],
            ))
            .await?;
        txn.commit().await?;
        deleted += result.rows_affected();
        if result.rows_affected() < RETENTION_BATCH_ROWS as u64 {
            break;
        }
    }
    if deleted > 0 {
        info!(
            messages = deleted,
            "deleted messages past their tenant's retention"
        );
    }
    Ok(deleted)
}

fn check(platform: &Platform, mut settings: TenantSettings) -> ServiceResult<TenantSettings> {
    for kind in settings.allowed_providers.iter().flatten() {
        if !provider_available(platform, *kind) {
            return Err(ServiceError::invalid(
                "allowedProviders",
                format!("{} is not enabled on this platform", kind.as_str()),
            ));
        }
    }
    if let Some(models) = settings.allowed_models.take() {
        if models.len() > MAX_ALLOWED_MODELS {
            return Err(ServiceError::invalid(
                "allowedModels",
                format!("may list at most {MAX_ALLOWED_MODELS} models"),
            ));
        }
        let mut checked = Vec::with_capacity(models.len());
        for model in &models {
            checked.push(validation::required_text(
                "allowedModels",
                model,
                MAX_NAME_CHARS,
            )?);
        }
        checked.sort();
        checked.dedup();
        settings.allowed_models = Some(checked);
    }
    settings.default_model = settings
        .default_model
        .as_deref()
        .map(|model| validation::required_text("defaultModel", model, MAX_NAME_CHARS))
        .transpose()?;
    if let Some(days) = settings.message_retention_days
        && !(1..=MAX_RETENTION_DAYS).contains(&days)
    {
        return Err(ServiceError::invalid(
            "messageRetentionDays",
            format!("must be between 1 and {MAX_RETENTION_DAYS} days (got {days})"),
        ));
    }
    match (settings.default_provider, settings.default_model.as_deref()) {
        (Some(provider), Some(model)) => {
            settings.check_allowed(provider, model, "defaultProvider", "defaultModel")?;
        }
        (None, None) => {}
        (None, Some(_)) => {
            return Err(ServiceError::invalid(
                "defaultProvider",
                "is required with a default model",
            ));
        }
        (Some(_), None) => {
            return Err(ServiceError::invalid(
                "defaultModel",
                "is required with a default provider",
            ));
        }
    }
    Ok(settings)
}

fn decode(row: tenant_setting::Model) -> ServiceResult<TenantSettings> {
    let invalid = |what: &str| {
        ServiceError::internal(format!("tenant settings {} have an invalid {what}", row.id))
    };
    let parse_kind = |name: &str| {
        name.parse::<ProviderKind>()
            .map_err(|_| invalid("provider"))
    };
    let allowed_providers = match &row.allowed_providers {
        Some(value) => {
            let names: Vec<String> =
                serde_json::from_value(value.clone()).map_err(|_| invalid("provider list"))?;
            Some(
                names
                    .iter()
                    .map(|name| parse_kind(name))
                    .collect::<ServiceResult<Vec<_>>>()?,
            )
        }
        None => None,
    };
    let allowed_models = match &row.allowed_models {
        Some(value) => Some(
            serde_json::from_value::<Vec<String>>(value.clone())
                .map_err(|_| invalid("model list"))?,
        ),
        None => None,
    };
    Ok(TenantSettings {
        default_provider: row
            .default_provider
            .as_deref()
            .map(parse_kind)
            .transpose()?,
        default_model: row.default_model.clone(),
        allowed_providers,
        allowed_models,
        message_retention_days: row.message_retention_days,
    })
}
