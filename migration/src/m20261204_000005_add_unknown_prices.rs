//! Marks usage of models without a known price, so that such usage never reads as free.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UsageRecords::Table)
                    .add_column(
                        ColumnDef::new(UsageRecords::PriceKnown)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UsageCounters::Table)
                    .add_column(
                        ColumnDef::new(UsageCounters::UnpricedRecordCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UsageCounters::Table)
                    .drop_column(UsageCounters::UnpricedRecordCount)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UsageRecords::Table)
                    .drop_column(UsageRecords::PriceKnown)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum UsageRecords {
    Table,
    PriceKnown,
}

#[derive(DeriveIden)]
enum UsageCounters {
    Table,
    UnpricedRecordCount,
}
