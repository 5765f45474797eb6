//! Reports the INTERNAL errors of queries and mutations to the error tracker, tagged with
//! the request id, the tenant, and the operation (its type and root fields).

use std::sync::{Arc, Mutex};

use async_graphql::{
    Request, Response, ServerResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest,
    },
    parser::types::ExecutableDocument,
};
use service::{RequestOrigin, ServiceError, error_tracking};

use super::{
    context::Caller,
    document::{OperationName, operation_keyword, root_fields, selected_operation},
};

/// Schema extension that reports internal errors; the schema has it only while error
/// tracking is on.
pub struct ErrorReport;

impl ExtensionFactory for ErrorReport {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorReportExtension::default())
    }
}

#[derive(Default)]
struct ErrorReportExtension {
    operation_name: OperationName,
    /// The operation as reported: its type and root fields, such as `mutation sendMessage`.
    operation: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for ErrorReportExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.operation_name.remember(&request);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operation_name = self.operation_name.get();
        if let Some(operation) = selected_operation(&document, operation_name.as_deref()) {
            let kind = operation_keyword(operation.node.ty);
            let fields: Vec<&str> = root_fields(&document, &operation.node)
                .iter()
                .map(|field| field.node.name.node.as_str())
                .collect();
            if let Ok(mut label) = self.operation.lock() {
                *label = Some(format!("{kind} {}", fields.join(",")));
            }
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        let internal = response.errors.iter().filter_map(|error| {
            error
                .source
                .as_ref()
                .and_then(|source| source.downcast_ref::<ServiceError>())
        });
        let operation = self
            .operation
            .lock()
            .ok()
            .and_then(|label| label.clone())
            .unwrap_or_default();
        let (tenant_id, request_id) = match ctx.data_opt::<Caller>() {
            Some(Caller::Authenticated(caller)) => {
                (caller.tenant().to_string(), caller.request_id.clone())
            }
            _ => (
                String::new(),
                ctx.data_opt::<RequestOrigin>()
                    .map(|origin| origin.request_id.clone())
                    .unwrap_or_default(),
            ),
        };
        for error in internal {
            error_tracking::report(
                error,
                &[
                    ("request_id", &request_id),
                    ("tenant_id", &tenant_id),
                    ("operation", &operation),
                ],
            );
        }
        response
    }
}
