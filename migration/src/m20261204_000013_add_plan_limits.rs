//! Adds a tenant's own limits to its plan. Each column left null takes the plan's default,
//! so that a custom plan, or a negotiated exception on a standard one, changes only the
//! limits it names. `monthly_token_limit` already exists and follows the same rule.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const LIMIT_COLUMNS: [Subscriptions; 5] = [
    Subscriptions::RequestsPerMinute,
    Subscriptions::TokensPerMinute,
    Subscriptions::MonthlySpendLimitMicros,
    Subscriptions::MaxAgents,
    Subscriptions::MaxMembers,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut alter = Table::alter();
        alter.table(Subscriptions::Table);
        for column in LIMIT_COLUMNS {
            alter.add_column(
                ColumnDef::new(column)
                    .big_integer()
                    .null()
                    .check(Expr::col(column).gte(0)),
            );
        }
        // A JSON object of feature names to true or false, over the plan's defaults.
        alter.add_column(ColumnDef::new(Subscriptions::Features).json_binary().null());
        manager.alter_table(alter.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut alter = Table::alter();
        alter.table(Subscriptions::Table);
        for column in LIMIT_COLUMNS {
            alter.drop_column(column);
        }
        alter.drop_column(Subscriptions::Features);
        manager.alter_table(alter.to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Subscriptions {
    Table,
    RequestsPerMinute,
    TokensPerMinute,
    MonthlySpendLimitMicros,
    MaxAgents,
    MaxMembers,
    Features,
}
