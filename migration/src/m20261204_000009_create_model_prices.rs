//! Creates `model_prices`: a tenant's own price for a model, used instead of the platform's
//! price table, for example for negotiated rates or models the table lacks.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::{drop_tables, one_of, tenant_foreign_key, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(model_prices()).await?;
        // One price per tenant, provider and model; every finished reply looks it up.
        manager
            .create_index(unique_index(
                ModelPrices::Table,
                [
                    ModelPrices::TenantId,
                    ModelPrices::Provider,
                    ModelPrices::Model,
                ],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [ModelPrices::Table.into_iden()]).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ModelPrices {
    Table,
    Id,
    TenantId,
    Provider,
    Model,
    InputPerMillion,
    OutputPerMillion,
    CachedInputPerMillion,
    CreatedAt,
    UpdatedAt,
}

fn non_negative(column: ModelPrices) -> SimpleExpr {
    Expr::col(column).gte(0)
}

fn model_prices() -> TableCreateStatement {
    Table::create()
        .table(ModelPrices::Table)
        .col(pk_uuid(ModelPrices::Id))
        .col(uuid(ModelPrices::TenantId))
        .col(text(ModelPrices::Provider).check(one_of(
            ModelPrices::Table,
            ModelPrices::Provider,
            &["openai", "anthropic", "gemini", "groq", "ollama"],
        )))
        .col(text(ModelPrices::Model))
        .col(
            big_integer(ModelPrices::InputPerMillion)
                .check(non_negative(ModelPrices::InputPerMillion)),
        )
        .col(
            big_integer(ModelPrices::OutputPerMillion)
                .check(non_negative(ModelPrices::OutputPerMillion)),
        )
        .col(
            big_integer_null(ModelPrices::CachedInputPerMillion)
                .check(non_negative(ModelPrices::CachedInputPerMillion)),
        )
        .col(timestamp_with_time_zone(ModelPrices::CreatedAt))
        .col(timestamp_with_time_zone(ModelPrices::UpdatedAt))
        .foreign_key(&mut tenant_foreign_key(ModelPrices::Table))
        .to_owned()
}
