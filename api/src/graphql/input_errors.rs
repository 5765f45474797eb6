//! Labels the errors that async-graphql raises itself (syntax, validation, values that
//! fail to parse), which carry no code. Every transport then returns them
//! as BAD_USER_INPUT, with the input field in `extensions.field` where the message names
//! one, as the service's own input errors have.

use std::sync::Arc;

use async_graphql::{
    PathSegment, Response, ServerError,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe},
    futures_util::stream::BoxStream,
    registry::{MetaInputValue, MetaType, Registry},
};
use futures_util::StreamExt;

use super::error::code;

/// The schema extension that labels the errors of every response.
pub struct InputErrors;

impl ExtensionFactory for InputErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(InputErrors)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for InputErrors {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        name_parsed_fields(&mut response.errors, &ctx.schema_env.registry);
        label(&mut response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let schema = ctx.schema_env.clone();
        Box::pin(next.run(ctx, stream).map(move |mut response| {
            name_parsed_fields(&mut response.errors, &schema.registry);
            label(&mut response.errors);
            response
        }))
    }
}

/// Gives BAD_USER_INPUT, and the field the message names, to errors that carry no code.
/// Only errors raised before any resolver ran lack one, because every resolver error goes
/// through `to_graphql_error`.
pub fn label(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_some() {
            continue;
        }
        extensions.set("code", code::BAD_USER_INPUT);
        if let Some(field) = field_named(&error.message) {
            extensions.set("field", field);
        }
    }
}

/// Names the field of errors from values that pass validation but fail to parse when the
/// resolver reads them, such as a `DateTime` of "tomorrow". Their message names the
/// scalar and the input object, or else the root field's arguments hold the value. The
/// field is the only one there of that scalar's type; where several have it, none is
/// named.
fn name_parsed_fields(errors: &mut [ServerError], registry: &Registry) {
    for error in errors {
        let labelled = error
            .extensions
            .as_ref()
            .is_some_and(|extensions| extensions.get("code").is_some());
        if labelled {
            continue;
        }
        let root_field = match error.path.first() {
            Some(PathSegment::Field(name)) => Some(name.as_str()),
            _ => None,
        };
        if let Some(field) = parsed_field(&error.message, root_field, registry) {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            extensions.set("code", code::BAD_USER_INPUT);
            extensions.set("field", field);
        }
    }
}

/// Returns the field of `Failed to parse "DateTime": ... (occurred while parsing
/// "CreateTaskInput")`, or of `Failed to parse "DateTime": ...` in an argument of
/// `root_field`, when exactly one field there has that type.
fn parsed_field(message: &str, root_field: Option<&str>, registry: &Registry) -> Option<String> {
    let rest = message.strip_prefix("Failed to parse \"")?;
    let (scalar, rest) = rest.split_once('"')?;
    let inputs: Vec<&MetaInputValue> = match rest.split_once("(occurred while parsing \"") {
        Some((_, input_object)) => {
            let (input_object, _) = input_object.split_once('"')?;
            match registry.types.get(input_object)? {
                MetaType::InputObject { input_fields, .. } => input_fields.values().collect(),
                _ => return None,
            }
        }
        None => {
            let root_field = root_field?;
            [Some(&registry.query_type), registry.mutation_type.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|root| registry.types.get(root)?.field_by_name(root_field))
                .flat_map(|field| field.args.values())
                .collect()
        }
    };
    let mut of_type = inputs
        .into_iter()
        .filter(|input| input.ty.trim_matches(|c| matches!(c, '[' | ']' | '!')) == scalar);
    match (of_type.next(), of_type.next()) {
        (Some(only), None) => Some(only.name.clone()),
        _ => None,
    }
}

/// Returns the input field that an async-graphql validation message names: the missing
/// field of `Invalid value for argument "input", field "scopes" of type ... is required`,
/// or else the last named part of the path in `Invalid value for argument
/// "input.scopes.0", ...`, skipping list positions.
fn field_named(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Invalid value for argument \"")?;
    let (path, rest) = rest.split_once('"')?;
    if let Some(missing) = rest.strip_prefix(", field \"")
        && let Some((field, _)) = missing.split_once('"')
    {
        return Some(field.to_owned());
    }
    path.rsplit('.')
        .find(|part| !part.is_empty() && !part.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use async_graphql::Value;

    use super::*;

    fn labelled(message: &str) -> (Option<Value>, Option<Value>) {
        let mut errors = vec![ServerError::new(message, None)];
        label(&mut errors);
        let extensions = errors[0].extensions.as_ref().unwrap();
        (
            extensions.get("code").cloned(),
            extensions.get("field").cloned(),
        )
    }

    #[test]
    fn list_item_names_its_field() {
        let (code, field) = labelled(
            "Invalid value for argument \"input.scopes.0\", enumeration type \"ApiKeyScope\" \
             does not contain the value \"BOGUS\"",
        );
        assert_eq!(code, Some(Value::from(code::BAD_USER_INPUT)));
        assert_eq!(field, Some(Value::from("scopes")));
    }

    #[test]
    fn missing_field_named() {
        let (_, field) = labelled(
            "Invalid value for argument \"input\", field \"scopes\" of type \
             \"[ApiKeyScope!]!\" is required but not provided",
        );
        assert_eq!(field, Some(Value::from("scopes")));
    }

    #[test]
    fn plain_argument_named() {
        let (_, field) = labelled("Invalid value for argument \"first\", expected type \"Int\"");
        assert_eq!(field, Some(Value::from("first")));
    }

    #[test]
    fn syntax_error_has_no_field() {
        let (code, field) = labelled("syntax error");
        assert_eq!(code, Some(Value::from(code::BAD_USER_INPUT)));
        assert_eq!(field, None);
    }

    #[test]
    fn coded_errors_kept() {
        let mut error = ServerError::new("Invalid value for argument \"first\"", None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", code::FORBIDDEN);
        error.extensions = Some(extensions);
        let mut errors = vec![error];
        label(&mut errors);
        let extensions = errors[0].extensions.as_ref().unwrap();
        assert_eq!(extensions.get("code"), Some(&Value::from(code::FORBIDDEN)));
        assert_eq!(extensions.get("field"), None);
    }
}
