//! Limits on the size of GraphQL operations, checked before anything runs. Each error
//! names the limit and its value.
//!
//! Aliases, directives and field selections are counted on the parsed document before
//! async-graphql analyses it, because its own depth and complexity passes expand every
//! fragment spread and take exponential time on fragments that spread each other twice.
//! Depth and complexity come from async-graphql's validation (its complexity counts one
//! per field unless a field declares a cost, and leaves `__typename` out).

use std::sync::Arc;

use async_graphql::{
    ErrorExtensionValues, Request, ServerError, ServerResult, ValidationResult,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextValidation,
    },
};
use service::config::GraphqlSettings;

use super::{
    document::{NestingTooDeep, UsageCounts, usage_counts},
    error::code,
};

/// Nesting of selection sets, inline fragments and fragment spreads that async-graphql 7
/// accepts by default (`SchemaBuilder::limit_recursive_depth`).
pub const MAX_NESTING: usize = 32;

/// The limits of [`GraphqlSettings`] as a schema extension.
#[derive(Clone)]
pub struct QueryLimits {
    settings: Arc<GraphqlSettings>,
}

impl QueryLimits {
    pub fn new(settings: GraphqlSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimits {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let document = request.parsed_query()?;
        // Every operation is checked, not only the selected one, because async-graphql's
        // validation walks them all.
        for (name, operation) in document.operations.iter() {
            let counts =
                usage_counts(document, &operation.node, MAX_NESTING).map_err(nesting_error)?;
            let name = name.map(|name| name.as_str());
            check_counts(&self.settings, name, counts)?;
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let limits = &self.settings;
        if result.depth > limits.max_depth {
            return Err(vec![limit_error(format!(
                "query depth is {}, more than the maximum of {} nested fields",
                result.depth, limits.max_depth
            ))]);
        }
        if result.complexity > limits.max_complexity {
            return Err(vec![limit_error(format!(
                "query complexity is {}, more than the maximum of {}",
                result.complexity, limits.max_complexity
            ))]);
        }
        Ok(result)
    }
}

/// Checks one operation's counts against the limits.
fn check_counts(
    limits: &GraphqlSettings,
    operation_name: Option<&str>,
    counts: UsageCounts,
) -> ServerResult<()> {
    let operation = match operation_name {
        Some(name) => format!("operation {name}"),
        None => "operation".to_owned(),
    };
    if counts.aliases > limits.max_aliases {
        return Err(limit_error(format!(
            "{operation} has {} aliases, more than the maximum of {}",
            counts.aliases, limits.max_aliases
        )));
    }
    if counts.directives > limits.max_directives {
        return Err(limit_error(format!(
            "{operation} has {} directives, more than the maximum of {}",
            counts.directives, limits.max_directives
        )));
    }
    // Every field adds at least one to the complexity, so an operation that selects more
    // fields than the complexity limit cannot pass it.
    if counts.fields > limits.max_complexity {
        return Err(limit_error(format!(
            "{operation} selects {} fields once fragments are expanded, more than the \
             maximum complexity of {}",
            counts.fields, limits.max_complexity
        )));
    }
    Ok(())
}

fn nesting_error(error: NestingTooDeep) -> ServerError {
    limit_error(format!(
        "selection sets and fragments are nested more than {} levels deep",
        error.max_nesting
    ))
}

/// Builds a request error with code BAD_USER_INPUT for an operation over a limit.
fn limit_error(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code::BAD_USER_INPUT);
    error.extensions = Some(extensions);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GraphqlSettings {
        GraphqlSettings {
            max_depth: 15,
            max_complexity: 1000,
            max_aliases: 30,
            max_directives: 50,
            max_batch_operations: 10,
            introspection: true,
            field_suggestions: true,
        }
    }

    fn counts(fields: usize, aliases: usize, directives: usize) -> UsageCounts {
        UsageCounts {
            fields,
            aliases,
            directives,
        }
    }

    #[test]
    fn counts_at_limits_accepted() {
        assert!(check_counts(&limits(), None, counts(1000, 30, 50)).is_ok());
    }

    #[test]
    fn each_count_over_limit_named() {
        let cases = [
            (
                counts(1, 31, 0),
                "operation Q has 31 aliases, more than the maximum of 30",
            ),
            (
                counts(1, 0, 51),
                "operation Q has 51 directives, more than the maximum of 50",
            ),
            (
                counts(1001, 0, 0),
                "operation Q selects 1001 fields once fragments are expanded, more than the \
                 maximum complexity of 1000",
            ),
        ];
        for (counts, expected) in cases {
            let error = check_counts(&limits(), Some("Q"), counts).unwrap_err();
            assert_eq!(error.message, expected);
        }
    }
}
