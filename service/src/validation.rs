//! Input checks shared by every service: each failure names the input field.

use crate::error::{ServiceError, ServiceResult};

/// Maximum length of names and titles, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Maximum length of a chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 100_000;
/// Maximum length of agent instructions and descriptions, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Trims `value` and checks that it is not empty and at most `max` characters long.
pub fn required_text(field: &str, value: &str, max: usize) -> ServiceResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    check_length(field, trimmed, max)?;
    Ok(trimmed.to_owned())
}

/// Like [`required_text`] for optional fields: blank becomes `None`.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> ServiceResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => {
            check_length(field, text, max)?;
            Ok(Some(text.to_owned()))
        }
    }
}

pub fn check_length(field: &str, value: &str, max: usize) -> ServiceResult<()> {
    let length = value.chars().count();
    if length > max {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {max} characters (got {length})"),
        ));
    }
    Ok(())
}

/// Lower-cases and checks an email address: one `@`, a dotted domain, at most 254 characters.
pub fn email(field: &str, value: &str) -> ServiceResult<String> {
    let email = value.trim().to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !valid {
        return Err(ServiceError::invalid(
            field,
            "must be an email address like name@example.com",
        ));
    }
    check_length(field, &email, 254)?;
    Ok(email)
}

pub fn password(field: &str, value: &str) -> ServiceResult<()> {
    let length = value.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(ServiceError::invalid(
            field,
            format!("must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks a sampling temperature: 0.0 to 2.0, the range the providers accept.
pub fn temperature(field: &str, value: Option<f64>) -> ServiceResult<Option<f64>> {
    match value {
        Some(t) if !(0.0..=2.0).contains(&t) || t.is_nan() => Err(ServiceError::invalid(
            field,
            format!("must be between 0 and 2 (got {t})"),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text_trims_and_checks() {
        assert_eq!(required_text("name", "  Ada ", 10).unwrap(), "Ada");
        assert_eq!(
            required_text("name", "   ", 10).unwrap_err().to_string(),
            "name: must not be empty"
        );
        let error = required_text("name", &"x".repeat(11), 10).unwrap_err();
        assert_eq!(
            error.to_string(),
            "name: must be at most 10 characters (got 11)"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert!(check_length("title", &"é".repeat(10), 10).is_ok());
    }

    #[test]
    fn email_rules() {
        assert_eq!(
            email("email", " Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn password_length_bounds() {
        assert!(password("password", "1234567").is_err());
        assert!(password("password", "12345678").is_ok());
        assert!(password("password", &"p".repeat(128)).is_ok());
        assert!(password("password", &"p".repeat(129)).is_err());
    }

    #[test]
    fn temperature_range() {
        assert!(temperature("temperature", Some(2.5)).is_err());
        assert!(temperature("temperature", Some(f64::NAN)).is_err());
        assert_eq!(temperature("temperature", Some(0.7)).unwrap(), Some(0.7));
    }
}
