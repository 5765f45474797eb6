//! Model prices: the platform's table from [`providers::pricing`], and each tenant's own
//! prices that replace it for that tenant, such as negotiated rates or models the table lacks.

use chrono::Utc;
use entity::{Role, model_price};
use providers::{
    ProviderKind,
    pricing::{self, Price},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::OnConflict,
};
use serde_json::json;
use tracing::{info, warn};
use uuid::Uuid;

use crate::{
    Platform, RequestContext, TenantId,
    audit::{self, Action, Target, TargetType},
    chat::provider_available,
    error::{ServiceError, ServiceResult},
    validation::{self, MAX_NAME_CHARS},
};

/// Highest accepted price: one million dollars per million tokens, in micro-dollars.
pub const MAX_PRICE_PER_MILLION: i64 = 1_000_000_000_000;

/// The origin of an effective price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// The platform's price table.
    Platform,
    /// A price the tenant set, which replaces the platform's.
    Tenant,
}

/// The price that applies to one model for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePrice {
    pub provider: ProviderKind,
    /// The name the price is stored under, which is the base model for a dated snapshot.
    pub model: String,
    pub price: Price,
    pub source: PriceSource,
}

pub struct SetModelPrice {
    pub provider: ProviderKind,
    pub model: String,
    pub input_per_million: i64,
    pub output_per_million: i64,
    pub cached_input_per_million: Option<i64>,
}

/// Returns the price that applies to `model` for the tenant: its own price for the model
/// or the model's base name, else the platform's, else `None` when neither has a price for it.
pub async fn price_for<C: ConnectionTrait>(
    db: &C,
    tenant_id: TenantId,
    provider: ProviderKind,
    model: &str,
) -> ServiceResult<Option<EffectivePrice>> {
    let names: Vec<&str> = pricing::lookup_names(model).collect();
    let overrides = model_price::Entity::find()
        .filter(model_price::Column::TenantId.eq(tenant_id.as_uuid()))
        .filter(model_price::Column::Provider.eq(provider.as_str()))
        .filter(model_price::Column::Model.is_in(names.iter().copied()))
        .all(db)
        .await?;
    // The most specific name wins: a snapshot's own price over its base model's.
    let tenant_price = names.iter().find_map(|name| {
        overrides
            .iter()
            .find(|row| row.model == *name)
            .map(|row| effective(provider, row))
    });
    if tenant_price.is_some() {
        return Ok(tenant_price);
    }

    Ok(pricing::price(provider, model).map(|price| {
        let model = names
            .iter()
            .copied()
            .find(|name| pricing::price(provider, name).is_some())
            .unwrap_or(model);
        EffectivePrice {
            provider,
            model: model.to_owned(),
            price,
            source: PriceSource::Platform,
        }
    }))
}

/// Returns the price of [`price_for`], or the platform's price when reading the tenant's
/// prices fails, so that a reply is still stored and billed. Logs the failure.
pub async fn lookup_or_platform(
    platform: &Platform,
    tenant_id: TenantId,
    provider: ProviderKind,
    model: &str,
) -> Option<Price> {
    let read = async {
        let txn = platform.tenant_tx(tenant_id).await?;
        let price = price_for(&txn, tenant_id, provider, model).await?;
        txn.commit().await?;
        ServiceResult::Ok(price)
    };
    match read.await {
        Ok(price) => price.map(|effective| effective.price),
        Err(error) => {
            warn!(
                %error,
                tenant.id = %tenant_id.as_uuid(),
                provider = provider.as_str(),
                model,
                "reading the tenant's model prices failed, billing at the platform's price"
            );
            pricing::price(provider, model)
        }
    }
}

/// Lists the prices that apply to the tenant: the platform's table with the tenant's own
/// prices in place of the entries they replace, ordered by provider and model. Ollama's
/// models are free unless the tenant priced them, so only its tenant prices are listed.
pub async fn list(
    platform: &Platform,
    ctx: &RequestContext,
    provider: Option<ProviderKind>,
) -> ServiceResult<Vec<EffectivePrice>> {
    ctx.require(Role::Member)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let mut select =
        model_price::Entity::find().filter(model_price::Column::TenantId.eq(ctx.tenant()));
    if let Some(provider) = provider {
        select = select.filter(model_price::Column::Provider.eq(provider.as_str()));
    }
    let overrides = select
        .order_by_asc(model_price::Column::Provider)
        .order_by_asc(model_price::Column::Model)
        .all(&txn)
        .await?;
    txn.commit().await?;

    let mut prices: Vec<EffectivePrice> = pricing::table()
        .filter(|(kind, ..)| provider.is_none_or(|wanted| wanted == *kind))
        .filter(|(kind, model, _)| {
            !overrides
                .iter()
                .any(|row| row.provider == kind.as_str() && row.model == *model)
        })
        .map(|(provider, model, price)| EffectivePrice {
            provider,
            model: model.to_owned(),
            price,
            source: PriceSource::Platform,
        })
        .collect();
    for row in &overrides {
        let kind = stored_provider(row)?;
        prices.push(effective(kind, row));
    }
    prices.sort_by(|a, b| (a.provider.as_str(), &a.model).cmp(&(b.provider.as_str(), &b.model)));
    Ok(prices)
}

/// Stores the tenant's price for a model, replacing an earlier one. Replies finished from
/// then on are billed at it. Needs the admin role.
pub async fn set(
    platform: &Platform,
    ctx: &RequestContext,
    input: SetModelPrice,
) -> ServiceResult<EffectivePrice> {
    ctx.require(Role::Admin)?;
    if !provider_available(platform, input.provider) {
        return Err(ServiceError::invalid(
            "provider",
            format!(
                "{} is not enabled on this platform",
                input.provider.as_str()
            ),
        ));
    }
    let model = check_model(&input.model)?;
    let input_per_million = check_price("inputPerMillion", input.input_per_million)?;
    let output_per_million = check_price("outputPerMillion", input.output_per_million)?;
    let cached_input_per_million = input
        .cached_input_per_million
        .map(|price| check_price("cachedInputPerMillion", price))
        .transpose()?;

    let now = Utc::now();
    let row = model_price::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(ctx.tenant()),
        provider: Set(input.provider.as_str().to_owned()),
        model: Set(model),
        input_per_million: Set(input_per_million),
        output_per_million: Set(output_per_million),
        cached_input_per_million: Set(cached_input_per_million),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // One atomic statement, so two admins setting the same price at once both succeed.
    let upsert = OnConflict::columns([
        model_price::Column::TenantId,
        model_price::Column::Provider,
        model_price::Column::Model,
    ])
    .update_columns([
        model_price::Column::InputPerMillion,
        model_price::Column::OutputPerMillion,
        model_price::Column::CachedInputPerMillion,
        model_price::Column::UpdatedAt,
    ])
    .to_owned();
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let saved = model_price::Entity::insert(row)
        .on_conflict(upsert)
        .exec_with_returning(&txn)
        .await?;
    let summary = json!({
        "provider": saved.provider,
        "model": saved.model,
        "inputPerMillion": saved.input_per_million,
        "outputPerMillion": saved.output_per_million,
        "cachedInputPerMillion": saved.cached_input_per_million,
    });
    audit::record(
        &txn,
        ctx,
        Action::ModelPriceSet,
        Target::new(TargetType::ModelPrice, saved.id),
        summary,
    )
    .await?;
    txn.commit().await?;

    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        provider = input.provider.as_str(),
        model = %saved.model,
        input_per_million,
        output_per_million,
        cached_input_per_million,
        "model price set"
    );
    Ok(effective(input.provider, &saved))
}

/// Deletes the tenant's price for a model, so that the platform's price applies again.
/// Returns the model name as stored and the price that applies now, which is `None` when
/// the platform has none for the model. Needs the admin role.
pub async fn delete(
    platform: &Platform,
    ctx: &RequestContext,
    provider: ProviderKind,
    model: &str,
) -> ServiceResult<(String, Option<EffectivePrice>)> {
    ctx.require(Role::Admin)?;
    let model = check_model(model)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let deleted = model_price::Entity::delete_many()
        .filter(model_price::Column::TenantId.eq(ctx.tenant()))
        .filter(model_price::Column::Provider.eq(provider.as_str()))
        .filter(model_price::Column::Model.eq(&model))
        .exec_with_returning(&txn)
        .await?;
    let Some(price) = deleted.into_iter().next() else {
        return Err(ServiceError::not_found("model price"));
    };
    audit::record(
        &txn,
        ctx,
        Action::ModelPriceDelete,
        Target::new(TargetType::ModelPrice, price.id),
        json!({ "provider": price.provider, "model": price.model }),
    )
    .await?;
    let price = price_for(&txn, ctx.tenant_id, provider, &model).await?;
    txn.commit().await?;
    info!(
        tenant.id = %ctx.tenant(),
        user.id = %ctx.user_id,
        provider = provider.as_str(),
        model = %model,
        "model price deleted"
    );
    Ok((model, price))
}

/// Returns the price that applies to one model for the caller's tenant. Needs the member
/// role.
pub async fn get(
    platform: &Platform,
    ctx: &RequestContext,
    provider: ProviderKind,
    model: &str,
) -> ServiceResult<Option<EffectivePrice>> {
    ctx.require(Role::Member)?;
    let model = check_model(model)?;
    let txn = platform.tenant_tx(ctx.tenant_id).await?;
    let price = price_for(&txn, ctx.tenant_id, provider, &model).await?;
    txn.commit().await?;
    Ok(price)
}

/// Trims the model name, drops Gemini's `models/` prefix so that lookups find the price,
/// and checks the length.
fn check_model(model: &str) -> ServiceResult<String> {
    let model = validation::required_text("model", model, MAX_NAME_CHARS)?;
    let model = model.strip_prefix("models/").unwrap_or(&model).trim();
    if model.is_empty() {
        return Err(ServiceError::invalid(
            "model",
            "must name a model after \"models/\"",
        ));
    }
    Ok(model.to_owned())
}

fn check_price(field: &str, value: i64) -> ServiceResult<i64> {
    if !(0..=MAX_PRICE_PER_MILLION).contains(&value) {
        return Err(ServiceError::invalid(
            field,
            format!(
                "must be between 0 and {MAX_PRICE_PER_MILLION} micro-dollars per million \
                 tokens (got {value})"
            ),
        ));
    }
    Ok(value)
}

fn effective(provider: ProviderKind, row: &model_price::Model) -> EffectivePrice {
    EffectivePrice {
        provider,
        model: row.model.clone(),
        price: Price {
            input_per_million: row.input_per_million,
            output_per_million: row.output_per_million,
            cached_input_per_million: row.cached_input_per_million,
        },
        source: PriceSource::Tenant,
    }
}

fn stored_provider(row: &model_price::Model) -> ServiceResult<ProviderKind> {
    row.provider.parse().map_err(|_| {
        ServiceError::internal(format!(
            "model price {} has unknown provider {:?}",
            row.id, row.provider
        ))
    })
}
