//! Custom scalars: `BigInt` for token counts and micro-dollar amounts.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// A 64-bit signed integer, for values that can pass GraphQL `Int`'s 32 bits: token
/// counts and micro-dollar amounts. Serialized as a JSON number; accepted as a number or
/// a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BigInt(pub i64);

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(number) => match number.as_i64() {
                Some(whole) => Ok(BigInt(whole)),
                None if number.is_u64() || number.as_f64().is_some_and(|n| n.fract() == 0.0) => {
                    Err(out_of_range())
                }
                None => Err(InputValueError::custom("BigInt must be a whole number")),
            },
            Value::String(text) => match text.parse::<i64>() {
                Ok(whole) => Ok(BigInt(whole)),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                    ) =>
                {
                    Err(out_of_range())
                }
                Err(_) => Err(InputValueError::custom(
                    "BigInt string must be a whole number",
                )),
            },
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    /// Checks values during validation, so that an invalid one is refused with its input
    /// field's path before anything runs.
    fn is_valid(value: &Value) -> bool {
        Self::parse(value.clone()).is_ok()
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

fn out_of_range() -> InputValueError<BigInt> {
    InputValueError::custom(format!(
        "BigInt must be between {} and {}",
        i64::MIN,
        i64::MAX
    ))
}

impl From<i64> for BigInt {
    fn from(value: i64) -> Self {
        BigInt(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<i64, String> {
        BigInt::parse(Value::from_json(value).unwrap())
            .map(|big| big.0)
            .map_err(|error| error.into_server_error(Default::default()).message)
    }

    #[test]
    fn numbers_and_strings_parse() {
        assert_eq!(
            parse(serde_json::json!(9_223_372_036_854_775_807_i64)),
            Ok(i64::MAX)
        );
        assert_eq!(parse(serde_json::json!("-42")), Ok(-42));
    }

    #[test]
    fn out_of_range_named_as_such() {
        let range = "between -9223372036854775808 and 9223372036854775807";
        let too_big = parse(serde_json::json!(9_223_372_036_854_775_808_u64)).unwrap_err();
        assert!(too_big.contains(range), "{too_big}");
        let too_long = parse(serde_json::json!("99999999999999999999")).unwrap_err();
        assert!(too_long.contains(range), "{too_long}");
        let fraction = parse(serde_json::json!(1.5)).unwrap_err();
        assert!(fraction.contains("must be a whole number"), "{fraction}");
    }
}
