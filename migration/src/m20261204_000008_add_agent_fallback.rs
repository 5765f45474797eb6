//! Adds an agent's fallback provider and model, used when the primary cannot open a stream.

use sea_orm_migration::{prelude::*, schema::*};

use crate::builders::one_of;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Name of the constraint that keeps the two fallback columns both set or both null.
const PAIR_CHECK: &str = "agents_fallback_pair_check";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Agents::Table)
                    .add_column(text_null(Agents::FallbackProvider).check(one_of(
                        Agents::Table,
                        Agents::FallbackProvider,
                        &["openai", "anthropic", "gemini", "groq", "ollama"],
                    )))
                    .add_column(text_null(Agents::FallbackModel))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE agents ADD CONSTRAINT {PAIR_CHECK} \
                 CHECK ((fallback_provider IS NULL) = (fallback_model IS NULL))"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping the columns drops the constraints on them as well.
        manager
            .alter_table(
                Table::alter()
                    .table(Agents::Table)
                    .drop_column(Agents::FallbackModel)
                    .drop_column(Agents::FallbackProvider)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Agents {
    Table,
    FallbackProvider,
    FallbackModel,
}
