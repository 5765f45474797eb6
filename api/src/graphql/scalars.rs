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
            Value::Number(number) => number
                .as_i64()
                .map(BigInt)
                .ok_or_else(|| InputValueError::custom("BigInt must be a whole number")),
            Value::String(text) => text
                .parse()
                .map(BigInt)
                .map_err(|_| InputValueError::custom("BigInt string must be a whole number")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

impl From<i64> for BigInt {
    fn from(value: i64) -> Self {
        BigInt(value)
    }
}
