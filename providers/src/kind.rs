//! The provider kinds the platform supports and their stable string names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An LLM provider that has an adapter in this crate.
///
/// The string names from [`ProviderKind::as_str`] are stored in the database and used in
/// configuration, so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Gemini,
    Groq,
    Ollama,
}

impl ProviderKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Groq,
        ProviderKind::Ollama,
    ];

    /// Returns the stable lowercase name, such as `"openai"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Groq => "groq",
            ProviderKind::Ollama => "ollama",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Error for a provider name that matches none of [`ProviderKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?}: expected one of openai, anthropic, gemini, groq, ollama")]
pub struct UnknownProviderKind(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownProviderKind;

    /// Parses the exact lowercase name returned by [`ProviderKind::as_str`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownProviderKind(name.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn serde_uses_stable_names() {
        let json = serde_json::to_string(&ProviderKind::OpenAi).unwrap();
        assert_eq!(json, "\"openai\"");
        let kind: ProviderKind = serde_json::from_str("\"groq\"").unwrap();
        assert_eq!(kind, ProviderKind::Groq);
    }

    #[test]
    fn unknown_name_rejected() {
        let error = "OpenAI".parse::<ProviderKind>().unwrap_err();
        assert_eq!(error, UnknownProviderKind("OpenAI".to_owned()));
        assert!(error.to_string().contains("expected one of openai"));
    }
}
