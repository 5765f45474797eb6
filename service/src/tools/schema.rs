//! JSON Schemas of tool arguments: checked when a tool is defined, applied to the
//! arguments a model sends before the tool runs.

use serde_json::Value;

use crate::error::{ServiceError, ServiceResult};

use super::MAX_PARAMETERS_BYTES;

/// Checks that `parameters` is a valid JSON Schema whose top level describes an object,
/// as every provider requires of function parameters.
pub(super) fn check_parameters(field: &str, parameters: &Value) -> ServiceResult<()> {
    let size = parameters.to_string().len();
    if size > MAX_PARAMETERS_BYTES {
        return Err(ServiceError::invalid(
            field,
            format!("is {size} bytes; the limit is {MAX_PARAMETERS_BYTES}"),
        ));
    }
    if parameters.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ServiceError::invalid(
            field,
            "must be a JSON Schema with \"type\": \"object\" at the top level",
        ));
    }
    jsonschema::validator_for(parameters)
        .map(|_| ())
        .map_err(|error| {
            ServiceError::invalid(field, format!("is not a valid JSON Schema: {error}"))
        })
}

/// Returns why `arguments` do not match `parameters`, naming each failing location, or
/// `None` when they match. A schema that does not compile rejects every call.
pub(crate) fn argument_errors(parameters: &Value, arguments: &Value) -> Option<String> {
    let validator = match jsonschema::validator_for(parameters) {
        Ok(validator) => validator,
        Err(error) => return Some(format!("the tool's parameter schema is invalid: {error}")),
    };
    let errors: Vec<String> = validator
        .iter_errors(arguments)
        .take(5)
        .map(|error| {
            let path = error.instance_path().to_string();
            if path.is_empty() {
                error.to_string()
            } else {
                format!("{path}: {error}")
            }
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn object_schema_accepted() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "number"}}});
        assert!(check_parameters("parameters", &schema).is_ok());
    }

    #[test]
    fn non_object_schema_rejected() {
        let error = check_parameters("parameters", &json!({"type": "string"})).unwrap_err();
        assert!(
            error.to_string().contains("\"type\": \"object\""),
            "{error}"
        );
    }

    #[test]
    fn broken_schema_rejected() {
        let schema = json!({"type": "object", "properties": {"a": {"type": 12}}});
        let error = check_parameters("parameters", &schema).unwrap_err();
        assert!(
            error.to_string().contains("not a valid JSON Schema"),
            "{error}"
        );
    }

    #[test]
    fn arguments_checked_against_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": false
        });
        assert_eq!(argument_errors(&schema, &json!({"city": "Oslo"})), None);
        let missing = argument_errors(&schema, &json!({})).unwrap();
        assert!(missing.contains("city"), "{missing}");
        let wrong_type = argument_errors(&schema, &json!({"city": 3})).unwrap();
        assert!(wrong_type.starts_with("/city"), "{wrong_type}");
    }
}
