//! Records every GraphQL operation in the Prometheus metrics: queries and mutations by
//! operation name, type and outcome with their latency, and subscriptions while they stream.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use async_graphql::{
    Request, Response, ServerResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
        NextRequest, NextSubscribe,
    },
    futures_util::stream::{BoxStream, Stream, StreamExt},
    parser::types::ExecutableDocument,
};
use service::metrics;

use super::{
    document::{operation_keyword, selected_operation},
    error::code,
};

/// Type label of requests rejected before their operation was parsed: syntax errors,
/// oversized requests and throttled sign-ins.
const UNKNOWN_TYPE: &str = "unknown";

/// Schema extension that records operation metrics. Registered first, so that it gets
/// the request before any other extension can reject it.
pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(MetricsExtension::default())
    }
}

/// Schema extension that notes the operation's type for [`OperationMetrics`]. Registered
/// last, so that its parse step gets the document before the access check can reject it.
pub struct OperationType;

impl ExtensionFactory for OperationType {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(TypeExtension)
    }
}

/// The request's operation name and type, filled in as the request is prepared and parsed.
#[derive(Default)]
struct Operation {
    name: Option<String>,
    kind: Option<&'static str>,
}

/// The request's [`Operation`], shared by the two extensions through the request's data.
#[derive(Clone, Default)]
struct SharedOperation(Arc<Mutex<Operation>>);

impl SharedOperation {
    fn lock(&self) -> std::sync::MutexGuard<'_, Operation> {
        // The fields are plain values, so a poisoned lock is still consistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
struct MetricsExtension {
    operation: SharedOperation,
}

#[async_trait::async_trait]
impl Extension for MetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let operation = self.operation.lock();
        metrics::graphql_request(
            operation.name.as_deref(),
            operation.kind.unwrap_or(UNKNOWN_TYPE),
            outcome(&response),
            started.elapsed(),
        );
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        Box::pin(CountedSubscription {
            inner: next.run(ctx, stream),
            operation: self.operation.clone(),
            active: None,
            started: Instant::now(),
            recorded: false,
        })
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.operation
            .lock()
            .name
            .clone_from(&request.operation_name);
        request.data.insert(self.operation.clone());
        next.run(ctx, request).await
    }
}

struct TypeExtension;

#[async_trait::async_trait]
impl Extension for TypeExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Some(shared) = ctx.data_opt::<SharedOperation>() {
            let mut operation = shared.lock();
            if let Some(selected) = selected_operation(&document, operation.name.as_deref()) {
                operation.kind = Some(operation_keyword(selected.node.ty));
            }
        }
        Ok(document)
    }
}

/// `ok`, or the `code` extension of the response's first error.
fn outcome(response: &Response) -> &str {
    let Some(error) = response.errors.first() else {
        return "ok";
    };
    match error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
    {
        Some(Value::String(code)) => code,
        // Only errors raised before any resolver ran (syntax, validation, variables) lack
        // a code, and the HTTP layer gives them this one.
        _ => code::BAD_USER_INPUT,
    }
}

/// A subscription's response stream, counted as active from its first poll (when the
/// request has been parsed) until it is dropped. A subscription rejected with an error
/// before streaming is recorded with that error and never counted as active.
struct CountedSubscription<'s> {
    inner: BoxStream<'s, Response>,
    operation: SharedOperation,
    active: Option<metrics::Active>,
    started: Instant,
    recorded: bool,
}

impl Stream for CountedSubscription<'_> {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Response>> {
        let poll = self.inner.poll_next_unpin(cx);
        if !self.recorded {
            let rejected = match &poll {
                Poll::Ready(Some(response)) if !response.errors.is_empty() => Some(response),
                _ => None,
            };
            let operation = self.operation.lock();
            let name = operation.name.clone();
            let kind = operation.kind;
            drop(operation);
            match (rejected, kind) {
                (Some(response), _) => metrics::graphql_request(
                    name.as_deref(),
                    kind.unwrap_or(UNKNOWN_TYPE),
                    outcome(response),
                    self.started.elapsed(),
                ),
                (None, Some(_)) => {
                    self.active = Some(metrics::graphql_subscription(name.as_deref()))
                }
                // Not parsed yet: the next poll decides.
                (None, None) => return poll,
            }
            self.recorded = true;
        }
        poll
    }
}
