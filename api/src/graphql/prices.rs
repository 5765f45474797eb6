//! Model prices: the platform's table and the tenant's own prices that replace it.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use service::prices::{self, EffectivePrice, PriceSource, SetModelPrice};

use super::{
    agents::Provider,
    context::{caller, platform},
    error::GqlResult,
    scalars::BigInt,
};

/// The origin of a price.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ModelPriceSource {
    /// The platform's price table.
    Platform,
    /// A price the tenant set, which replaces the platform's for this tenant.
    Tenant,
}

/// The price of one model, in micro-dollars per million tokens. A cost is
/// `tokens * price / 1_000_000` micro-dollars, summed over input, cached input and output
/// and rounded half up once.
#[derive(SimpleObject)]
pub struct ModelPrice {
    pub provider: Provider,
    /// The model the price is stored under. A dated snapshot such as `gpt-4o-2024-08-06`
    /// uses its base model's price when it has none of its own.
    pub model: String,
    pub input_per_million: BigInt,
    pub output_per_million: BigInt,
    /// Price of input tokens read from the provider's prompt cache, or null when they are
    /// billed as ordinary input tokens.
    pub cached_input_per_million: Option<BigInt>,
    pub source: ModelPriceSource,
}

impl From<EffectivePrice> for ModelPrice {
    fn from(effective: EffectivePrice) -> Self {
        Self {
            provider: Provider::from_stored(effective.provider.as_str()),
            model: effective.model,
            input_per_million: BigInt(effective.price.input_per_million),
            output_per_million: BigInt(effective.price.output_per_million),
            cached_input_per_million: effective.price.cached_input_per_million.map(BigInt),
            source: match effective.source {
                PriceSource::Platform => ModelPriceSource::Platform,
                PriceSource::Tenant => ModelPriceSource::Tenant,
            },
        }
    }
}

#[derive(InputObject)]
pub struct SetModelPriceInput {
    pub provider: Provider,
    /// The model name as the provider spells it, up to 200 characters. Gemini's `models/`
    /// prefix is dropped.
    pub model: String,
    /// Micro-dollars per million input tokens, from 0 to 10^12.
    pub input_per_million: BigInt,
    /// Micro-dollars per million output tokens, from 0 to 10^12.
    pub output_per_million: BigInt,
    /// Micro-dollars per million cached input tokens, from 0 to 10^12, or null to bill
    /// them as input tokens.
    pub cached_input_per_million: Option<BigInt>,
}

#[derive(InputObject)]
pub struct DeleteModelPriceInput {
    pub provider: Provider,
    pub model: String,
}

#[derive(SimpleObject)]
pub struct ModelPricePayload {
    pub price: ModelPrice,
}

#[derive(SimpleObject)]
pub struct DeleteModelPricePayload {
    pub provider: Provider,
    pub model: String,
    /// The price that applies to the model now, or null when the platform's table has none,
    /// so that its usage is recorded with an unknown cost.
    pub price: Option<ModelPrice>,
}

#[derive(Default)]
pub struct PriceQuery;

#[Object]
impl PriceQuery {
    /// The prices that apply to the tenant: the platform's table, with the tenant's own
    /// prices in place of the entries they replace, ordered by provider and model. Ollama's
    /// models are free unless the tenant priced them. Needs the member role.
    async fn model_prices(
        &self,
        ctx: &Context<'_>,
        provider: Option<Provider>,
    ) -> async_graphql::Result<Vec<ModelPrice>> {
        let prices = prices::list(platform(ctx), caller(ctx)?, provider.map(Into::into))
            .await
            .gql()?;
        Ok(prices.into_iter().map(Into::into).collect())
    }

    /// The price a reply from this model is billed at, or null when the model has no known
    /// price. Needs the member role.
    async fn model_price(
        &self,
        ctx: &Context<'_>,
        provider: Provider,
        model: String,
    ) -> async_graphql::Result<Option<ModelPrice>> {
        let price = prices::get(platform(ctx), caller(ctx)?, provider.into(), &model)
            .await
            .gql()?;
        Ok(price.map(Into::into))
    }
}

#[derive(Default)]
pub struct PriceMutation;

#[Object]
impl PriceMutation {
    /// Sets the tenant's price for a model, replacing the platform's price and any earlier
    /// price of the tenant. Replies that finish from then on are billed at it. Needs the
    /// admin role.
    async fn set_model_price(
        &self,
        ctx: &Context<'_>,
        input: SetModelPriceInput,
    ) -> async_graphql::Result<ModelPricePayload> {
        let input = SetModelPrice {
            provider: input.provider.into(),
            model: input.model,
            input_per_million: input.input_per_million.0,
            output_per_million: input.output_per_million.0,
            cached_input_per_million: input.cached_input_per_million.map(|price| price.0),
        };
        let price = prices::set(platform(ctx), caller(ctx)?, input)
            .await
            .gql()?;
        Ok(ModelPricePayload {
            price: price.into(),
        })
    }

    /// Deletes the tenant's price for a model, so that the platform's price applies again.
    /// Needs the admin role.
    async fn delete_model_price(
        &self,
        ctx: &Context<'_>,
        input: DeleteModelPriceInput,
    ) -> async_graphql::Result<DeleteModelPricePayload> {
        let provider = input.provider;
        let (model, price) =
            prices::delete(platform(ctx), caller(ctx)?, provider.into(), &input.model)
                .await
                .gql()?;
        Ok(DeleteModelPricePayload {
            provider,
            model,
            price: price.map(Into::into),
        })
    }
}
