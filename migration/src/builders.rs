//! Schema-builder shortcuts shared by the migrations: tenant ownership, foreign keys, indexes
//! and CHECK constraints on text enumerations.
//!
//! Constraint and index names follow PostgreSQL's own defaults (`{table}_{column}_fkey`,
//! `_check`, `_idx`, `_key`). Applied migrations must keep producing the same SQL, so change
//! a helper only by adding a new one.

use sea_orm_migration::prelude::*;

/// Foreign key from `table.tenant_id` to `tenants(id)` that deletes the row with its tenant.
pub fn tenant_foreign_key(table: impl IntoIden) -> ForeignKeyCreateStatement {
    foreign_key(table, "tenant_id", "tenants", ForeignKeyAction::Cascade)
}

/// Foreign key `{table}_{column}_fkey` from `table.column` to `referenced(id)`.
pub fn foreign_key(
    table: impl IntoIden,
    column: impl IntoIden,
    referenced: impl IntoIden,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    let table = table.into_iden();
    let column = column.into_iden();

    ForeignKey::create()
        .name(format!("{table}_{column}_fkey"))
        .from(table, column)
        .to(referenced, "id")
        .on_delete(on_delete)
        .to_owned()
}

/// CHECK constraint `{table}_{column}_check` that limits a text column to `values`.
pub fn one_of(table: impl IntoIden, column: impl IntoIden, values: &[&'static str]) -> Check {
    let table = table.into_iden();
    let column = column.into_iden();
    let name = format!("{table}_{column}_check");

    Check::named(name, Expr::col(column).is_in(values.iter().copied()))
}

/// Index `{table}_{columns}_idx` on `columns` of `table`, in the order given.
pub fn index<C: IntoIden>(
    table: impl IntoIden,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    named_index(table.into_iden(), columns, "idx")
}

/// Unique index `{table}_{columns}_key` on `columns` of `table`.
pub fn unique_index<C: IntoIden>(
    table: impl IntoIden,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    named_index(table.into_iden(), columns, "key")
        .unique()
        .to_owned()
}

fn named_index<C: IntoIden>(
    table: DynIden,
    columns: impl IntoIterator<Item = C>,
    suffix: &str,
) -> IndexCreateStatement {
    let columns: Vec<DynIden> = columns.into_iter().map(IntoIden::into_iden).collect();
    let column_names: Vec<String> = columns.iter().map(ToString::to_string).collect();

    let mut statement = Index::create();
    statement
        .name(format!("{table}_{}_{suffix}", column_names.join("_")))
        .table(table);
    for column in columns {
        statement.col(column);
    }
    statement
}

/// Drops `tables` in the order given.
pub async fn drop_tables(
    manager: &SchemaManager<'_>,
    tables: impl IntoIterator<Item = DynIden>,
) -> Result<(), DbErr> {
    for table in tables {
        manager
            .drop_table(Table::drop().table(table).to_owned())
            .await?;
    }
    Ok(())
}
