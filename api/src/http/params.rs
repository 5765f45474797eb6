//! GraphQL-over-HTTP request parameters (`query`, `operationName`, `variables`,
//! `extensions`) from a JSON body or a GET query string, with an error that names the
//! parameter when one has the wrong type.

use async_graphql::{Request, Value as ConstValue, Variables};
use axum::{extract::Query, http::Uri};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The operations of one HTTP request: a JSON object, or an array of them for a batch.
pub enum Operations {
    Single(Box<Request>),
    Batch(Vec<Request>),
}

/// Unusable request parameters, with the message of the 400 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsError(pub String);

/// Reads a POST body: one parameters object, or a non-empty array of at most
/// `max_batch_operations` of them.
pub fn from_json_body(body: &[u8], max_batch_operations: usize) -> Result<Operations, ParamsError> {
    if body.trim_ascii().is_empty() {
        return Err(ParamsError(
            "request body is empty: send a JSON object with a `query` string".into(),
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ParamsError(format!(
            "request body is not a valid GraphQL request: invalid JSON ({error})"
        ))
    })?;
    match value {
        Value::Object(object) => Ok(Operations::Single(Box::new(from_object(object)?))),
        Value::Array(items) => from_batch(items, max_batch_operations).map(Operations::Batch),
        other => Err(ParamsError(format!(
            "request body must be a JSON object, or an array of objects for a batch, not {}",
            json_type(&other)
        ))),
    }
}

fn from_batch(items: Vec<Value>, max_batch_operations: usize) -> Result<Vec<Request>, ParamsError> {
    if items.is_empty() {
        return Err(ParamsError(
            "batch request is empty: send at least one operation".into(),
        ));
    }
    if items.len() > max_batch_operations {
        return Err(ParamsError(format!(
            "batch request has {} operations, more than the maximum of {max_batch_operations}",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let Value::Object(object) = item else {
                return Err(ParamsError(format!(
                    "batch item {index} must be a JSON object, not {}",
                    json_type(&item)
                )));
            };
            from_object(object).map_err(|ParamsError(message)| {
                ParamsError(format!("batch item {index}: {message}"))
            })
        })
        .collect()
}

/// Reads one parameters object. Members other than the four parameters are ignored.
fn from_object(mut object: Map<String, Value>) -> Result<Request, ParamsError> {
    let query = match object.remove("query") {
        Some(Value::String(query)) => query,
        None | Some(Value::Null) => return Err(missing_query()),
        Some(other) => {
            return Err(ParamsError(format!(
                "`query` must be a string, not {}",
                json_type(&other)
            )));
        }
    };
    let operation_name = match object.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(other) => return Err(not_a_string_or_null("operationName", &other)),
    };
    let variables = optional_object("variables", object.remove("variables"))?;
    let extensions = optional_object("extensions", object.remove("extensions"))?;
    build_request(query, operation_name, variables, extensions)
}

/// Parameters of a GET request, in the URL's query string.
#[derive(Deserialize)]
struct QueryStringParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    /// JSON text of an object.
    variables: Option<String>,
    /// JSON text of an object.
    extensions: Option<String>,
}

/// Checks whether the URL's query string has a non-empty `query` parameter.
pub fn has_query(uri: &Uri) -> bool {
    Query::<QueryStringParams>::try_from_uri(uri)
        .is_ok_and(|Query(params)| params.query.is_some_and(|query| !query.is_empty()))
}

/// Reads the parameters of a GET request from its query string. `variables` and
/// `extensions` are JSON texts; an empty parameter counts as absent.
pub fn from_query_string(uri: &Uri) -> Result<Request, ParamsError> {
    let Query(params) = Query::<QueryStringParams>::try_from_uri(uri)
        .map_err(|rejection| ParamsError(rejection.body_text()))?;
    let non_empty = |value: Option<String>| value.filter(|value| !value.is_empty());
    let query = non_empty(params.query).ok_or_else(missing_query)?;
    let variables = json_parameter("variables", non_empty(params.variables))?;
    let extensions = json_parameter("extensions", non_empty(params.extensions))?;
    build_request(
        query,
        non_empty(params.operation_name),
        variables,
        extensions,
    )
}

/// Parses a query string parameter that contains the JSON text of an object, or null.
fn json_parameter(
    name: &str,
    text: Option<String>,
) -> Result<Option<Map<String, Value>>, ParamsError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|error| ParamsError(format!("`{name}` is not valid JSON: {error}")))?;
    optional_object(name, Some(value))
}

fn optional_object(
    name: &str,
    value: Option<Value>,
) -> Result<Option<Map<String, Value>>, ParamsError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(ParamsError(format!(
            "`{name}` must be a JSON object or null, not {}",
            json_type(&other)
        ))),
    }
}

fn build_request(
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    extensions: Option<Map<String, Value>>,
) -> Result<Request, ParamsError> {
    let mut request = Request::new(query);
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    for (name, value) in extensions.unwrap_or_default() {
        let value = ConstValue::from_json(value)
            .map_err(|error| ParamsError(format!("`extensions.{name}` is invalid: {error}")))?;
        request.extensions.0.insert(name, value);
    }
    Ok(request)
}

fn missing_query() -> ParamsError {
    ParamsError("`query` is missing: send the GraphQL document as a string".into())
}

fn not_a_string_or_null(name: &str, value: &Value) -> ParamsError {
    ParamsError(format!(
        "`{name}` must be a string or null, not {}",
        json_type(value)
    ))
}

/// Names the JSON type of a value for an error message.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn single(body: Value) -> Result<Request, ParamsError> {
        match from_json_body(body.to_string().as_bytes(), 10)? {
            Operations::Single(request) => Ok(*request),
            Operations::Batch(_) => panic!("expected a single operation"),
        }
    }

    fn message(result: Result<Request, ParamsError>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(ParamsError(message)) => message,
        }
    }

    #[test]
    fn all_parameters_read() {
        let request = single(json!({
            "query": "query Q($id: ID!) { agent(id: $id) { id } }",
            "operationName": "Q",
            "variables": { "id": "abc" },
            "extensions": { "trace": true },
            "unknown": 1,
        }))
        .unwrap();
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(
            request.variables.get("id"),
            Some(&ConstValue::String("abc".into()))
        );
        assert_eq!(
            request.extensions.0.get("trace"),
            Some(&ConstValue::Boolean(true))
        );
    }

    #[test]
    fn null_parameters_mean_absent() {
        let request = single(json!({
            "query": "{ __typename }",
            "operationName": null,
            "variables": null,
            "extensions": null,
        }))
        .unwrap();
        assert!(request.operation_name.is_none());
        assert!(request.variables.is_empty());
        assert!(request.extensions.0.is_empty());
    }

    #[test]
    fn wrong_parameter_types_named() {
        let cases = [
            (
                json!({}),
                "`query` is missing: send the GraphQL document as a string",
            ),
            (
                json!({ "query": 0 }),
                "`query` must be a string, not a number",
            ),
            (
                json!({ "query": "{ a }", "operationName": ["x"] }),
                "`operationName` must be a string or null, not an array",
            ),
            (
                json!({ "query": "{ a }", "variables": "string" }),
                "`variables` must be a JSON object or null, not a string",
            ),
            (
                json!({ "query": "{ a }", "extensions": false }),
                "`extensions` must be a JSON object or null, not a boolean",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(message(single(body.clone())), expected, "{body}");
        }
    }

    #[test]
    fn malformed_bodies_rejected() {
        let error = |body: &str| match from_json_body(body.as_bytes(), 10) {
            Ok(_) => panic!("expected an error for {body:?}"),
            Err(ParamsError(message)) => message,
        };
        assert!(error("").starts_with("request body is empty"));
        assert!(
            error("{ \"not a JSON")
                .starts_with("request body is not a valid GraphQL request: invalid JSON")
        );
        assert!(error("42").ends_with("not a number"));
        assert_eq!(
            error("[]"),
            "batch request is empty: send at least one operation"
        );
        assert_eq!(
            error("[{ \"query\": \"{ a }\" }, 3]"),
            "batch item 1 must be a JSON object, not a number"
        );
        assert_eq!(
            error("[{ \"query\": \"{ a }\" }, {}]"),
            "batch item 1: `query` is missing: send the GraphQL document as a string"
        );
    }

    #[test]
    fn batch_size_limited() {
        let batch = |count: usize| {
            let items: Vec<Value> = (0..count).map(|_| json!({ "query": "{ a }" })).collect();
            from_json_body(Value::Array(items).to_string().as_bytes(), 3)
        };
        assert!(matches!(batch(3), Ok(Operations::Batch(items)) if items.len() == 3));
        assert_eq!(
            batch(4).err(),
            Some(ParamsError(
                "batch request has 4 operations, more than the maximum of 3".into()
            ))
        );
    }

    #[test]
    fn query_string_read() {
        let uri: Uri = "/graphql?query=query%20Q(%24n%3A%20String!)%20%7B%20__type(name%3A%20%24n)\
            %20%7B%20name%20%7D%20%7D&variables=%7B%22n%22%3A%22Query%22%7D&operationName=Q"
            .parse()
            .unwrap();
        let request = from_query_string(&uri).unwrap();
        assert_eq!(
            request.query,
            "query Q($n: String!) { __type(name: $n) { name } }"
        );
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(
            request.variables.get("n"),
            Some(&ConstValue::String("Query".into()))
        );
    }

    #[test]
    fn query_string_errors_named() {
        let error = |query_string: &str| match from_query_string(
            &format!("/graphql?{query_string}").parse().unwrap(),
        ) {
            Ok(_) => panic!("expected an error for {query_string:?}"),
            Err(ParamsError(message)) => message,
        };
        assert!(error("").starts_with("`query` is missing"));
        assert!(error("query=%7Ba%7D&variables=%7Bx").starts_with("`variables` is not valid JSON"));
        assert_eq!(
            error("query=%7Ba%7D&variables=%5B1%5D"),
            "`variables` must be a JSON object or null, not an array"
        );
    }
}
