//! Cursor pagination over UUIDv7 primary keys, which sort in creation order.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, ModelTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::{
    Platform,
    context::TenantId,
    error::{ServiceError, ServiceResult},
};

/// A page request as the client sent it: `first` items after the opaque cursor `after`.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub first: Option<i32>,
    pub after: Option<String>,
}

/// Sort order of a list by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// One page of items, each with its cursor.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    pub fn map<U>(self, mut convert: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self
                .items
                .into_iter()
                .map(|(cursor, item)| (cursor, convert(item)))
                .collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(field: &str, cursor: &str) -> ServiceResult<Uuid> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| ServiceError::invalid(field, "is not a cursor returned by this list"))
}

/// Runs `select` for one page ordered by `id_column`, after checking `first` and `after`.
pub async fn fetch_page<E, C>(
    platform: &Platform,
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    order: Order,
    request: &PageRequest,
    id_of: impl Fn(&E::Model) -> Uuid,
) -> ServiceResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + ModelTrait + Send + Sync,
    C: ConnectionTrait,
{
    let size = page_size(platform, request.first)?;
    let mut select = select;
    if let Some(after) = &request.after {
        let after = decode_cursor("after", after)?;
        select = match order {
            Order::NewestFirst => select.filter(id_column.lt(after)),
            Order::OldestFirst => select.filter(id_column.gt(after)),
        };
    }
    select = match order {
        Order::NewestFirst => select.order_by_desc(id_column),
        Order::OldestFirst => select.order_by_asc(id_column),
    };
    let mut rows = select.limit(size + 1).all(db).await?;
    let has_next_page = rows.len() as u64 > size;
    rows.truncate(size as usize);
    Ok(Page {
        items: rows
            .into_iter()
            .map(|row| (encode_cursor(id_of(&row)), row))
            .collect(),
        has_next_page,
        has_previous_page: request.after.is_some(),
    })
}

/// Runs [`fetch_page`] in a transaction of its own that reads only `tenant`'s rows.
pub async fn fetch_tenant_page<E>(
    platform: &Platform,
    tenant: TenantId,
    select: Select<E>,
    id_column: E::Column,
    order: Order,
    request: &PageRequest,
    id_of: impl Fn(&E::Model) -> Uuid,
) -> ServiceResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + ModelTrait + Send + Sync,
{
    let txn = platform.tenant_tx(tenant).await?;
    let page = fetch_page(platform, &txn, select, id_column, order, request, id_of).await?;
    txn.commit().await?;
    Ok(page)
}

/// Checks `first` against the configured maximum and applies the default.
pub fn page_size(platform: &Platform, first: Option<i32>) -> ServiceResult<u64> {
    let max = platform.settings.max_page_size;
    match first {
        None => Ok(platform.settings.default_page_size),
        Some(first) if first >= 1 && (first as u64) <= max => Ok(first as u64),
        Some(first) => Err(ServiceError::invalid(
            "first",
            format!("must be between 1 and {max} (got {first})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor("after", &encode_cursor(id)).unwrap(), id);
    }

    #[test]
    fn foreign_cursor_rejected() {
        let error = decode_cursor("after", "not-a-cursor").unwrap_err();
        assert_eq!(
            error.to_string(),
            "after: is not a cursor returned by this list"
        );
    }
}
