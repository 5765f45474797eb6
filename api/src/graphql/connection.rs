//! Relay cursor connections built from service pages.

use async_graphql::{
    OutputType,
    connection::{Connection, Edge},
};
use service::pagination::{Page, PageRequest};

/// A connection whose cursors are the service's opaque page cursors.
pub type Paged<T> = Connection<String, T>;

pub fn page_request(first: Option<i32>, after: Option<String>) -> PageRequest {
    PageRequest { first, after }
}

pub fn to_connection<M, T: OutputType>(page: Page<M>, convert: impl Fn(M) -> T) -> Paged<T> {
    let mut connection = Connection::new(page.has_previous_page, page.has_next_page);
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|(cursor, item)| Edge::new(cursor, convert(item))),
    );
    connection
}
