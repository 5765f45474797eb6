//! Model prices and the conversion of token usage into micro-dollars.
//!
//! Money is integer micro-dollars (one millionth of a US dollar). Prices are micro-dollars
//! per million tokens, so a model that costs $0.15 per million input tokens has
//! `input_per_million = 150_000`, which is 0.15 micro-dollars per token.

use crate::{ProviderKind, Usage};

/// The price of one model in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input_per_million: i64,
    pub output_per_million: i64,
    /// The price of input tokens read from the prompt cache. `None` bills them as ordinary
    /// input tokens.
    pub cached_input_per_million: Option<i64>,
}

const TOKENS_PER_PRICE_UNIT: i128 = 1_000_000;

const fn micros(input: i64, output: i64, cached_input: Option<i64>) -> Price {
    Price {
        input_per_million: input,
        output_per_million: output,
        cached_input_per_million: cached_input,
    }
}

/// Local models served by Ollama cost nothing per token.
const FREE: Price = Price {
    input_per_million: 0,
    output_per_million: 0,
    cached_input_per_million: None,
};

// NOTE: standard-tier list prices, converted to micro-dollars per million tokens, as
// published by each provider in 2025. Prices change: review the tables before relying on
// them for invoices. Anthropic's cache writes (billed above the input price) and Gemini 2.5
// Pro's higher price for prompts over 200,000 tokens are not modelled.

#[rustfmt::skip]
const OPENAI_PRICES: &[(&str, Price)] = &[
    ("gpt-5",        micros(1_250_000, 10_000_000, Some(125_000))),
    ("gpt-5-mini",   micros(250_000, 2_000_000, Some(25_000))),
    ("gpt-5-nano",   micros(50_000, 400_000, Some(5_000))),
    ("gpt-4.1",      micros(2_000_000, 8_000_000, Some(500_000))),
    ("gpt-4.1-mini", micros(400_000, 1_600_000, Some(100_000))),
    ("gpt-4.1-nano", micros(100_000, 400_000, Some(25_000))),
    ("gpt-4o",       micros(2_500_000, 10_000_000, Some(1_250_000))),
    ("gpt-4o-mini",  micros(150_000, 600_000, Some(75_000))),
    ("o3",           micros(2_000_000, 8_000_000, Some(500_000))),
    ("o4-mini",      micros(1_100_000, 4_400_000, Some(275_000))),
];

#[rustfmt::skip]
const ANTHROPIC_PRICES: &[(&str, Price)] = &[
    // Models released in 2025 and 2026, priced from Anthropic's pricing page in 2026.
    ("claude-sonnet-5",   micros(2_000_000, 10_000_000, Some(200_000))),
    ("claude-opus-4-7",   micros(5_000_000, 25_000_000, Some(500_000))),
    ("claude-opus-4-6",   micros(5_000_000, 25_000_000, Some(500_000))),
    ("claude-opus-4-5",   micros(5_000_000, 25_000_000, Some(500_000))),
    ("claude-sonnet-4-6", micros(3_000_000, 15_000_000, Some(300_000))),
    ("claude-opus-4-1",   micros(15_000_000, 75_000_000, Some(1_500_000))),
    ("claude-opus-4",     micros(15_000_000, 75_000_000, Some(1_500_000))),
    ("claude-opus-4-0",   micros(15_000_000, 75_000_000, Some(1_500_000))),
    ("claude-sonnet-4-5", micros(3_000_000, 15_000_000, Some(300_000))),
    ("claude-sonnet-4",   micros(3_000_000, 15_000_000, Some(300_000))),
    ("claude-sonnet-4-0", micros(3_000_000, 15_000_000, Some(300_000))),
    ("claude-haiku-4-5",  micros(1_000_000, 5_000_000, Some(100_000))),
    ("claude-3-5-haiku",  micros(800_000, 4_000_000, Some(80_000))),
];

#[rustfmt::skip]
const GEMINI_PRICES: &[(&str, Price)] = &[
    ("gemini-2.5-pro",        micros(1_250_000, 10_000_000, Some(125_000))),
    ("gemini-2.5-flash",      micros(300_000, 2_500_000, Some(30_000))),
    ("gemini-2.5-flash-lite", micros(100_000, 400_000, Some(10_000))),
    ("gemini-2.0-flash",      micros(100_000, 400_000, Some(25_000))),
];

#[rustfmt::skip]
const GROQ_PRICES: &[(&str, Price)] = &[
    ("llama-3.3-70b-versatile", micros(590_000, 790_000, None)),
    ("llama-3.1-8b-instant",    micros(50_000, 80_000, None)),
    ("openai/gpt-oss-120b",     micros(150_000, 750_000, None)),
    ("openai/gpt-oss-20b",      micros(100_000, 500_000, None)),
];

/// Looks up a model's price in the platform's table. Every Ollama model is free.
///
/// A dated snapshot name falls back to its base model: `gpt-4o-2024-08-06`,
/// `claude-sonnet-4-20250514` and `claude-3-5-haiku-latest` are priced as `gpt-4o`,
/// `claude-sonnet-4` and `claude-3-5-haiku`. Gemini's `models/` prefix is ignored.
pub fn price(provider: ProviderKind, model: &str) -> Option<Price> {
    if provider == ProviderKind::Ollama {
        return Some(FREE);
    }
    lookup_names(model).find_map(|name| lookup(provider, name))
}

/// Returns the names a price for `model` is looked up under, most specific first: the name
/// without Gemini's `models/` prefix, then its base model when it names a dated snapshot.
pub fn lookup_names(model: &str) -> impl Iterator<Item = &str> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    std::iter::once(model).chain(strip_snapshot_suffix(model))
}

/// Returns every model of the platform's table with its price, by provider. Ollama has no
/// entries, because all of its models are free.
pub fn table() -> impl Iterator<Item = (ProviderKind, &'static str, Price)> {
    let tables = [
        (ProviderKind::OpenAi, OPENAI_PRICES),
        (ProviderKind::Anthropic, ANTHROPIC_PRICES),
        (ProviderKind::Gemini, GEMINI_PRICES),
        (ProviderKind::Groq, GROQ_PRICES),
    ];
    tables.into_iter().flat_map(|(provider, entries)| {
        entries
            .iter()
            .map(move |(model, price)| (provider, *model, *price))
    })
}

fn lookup(provider: ProviderKind, model: &str) -> Option<Price> {
    let table = match provider {
        ProviderKind::OpenAi => OPENAI_PRICES,
        ProviderKind::Anthropic => ANTHROPIC_PRICES,
        ProviderKind::Gemini => GEMINI_PRICES,
        ProviderKind::Groq => GROQ_PRICES,
        ProviderKind::Ollama => &[],
    };
    table
        .iter()
        .find(|(name, _)| *name == model)
        .map(|(_, price)| *price)
}

/// Removes a trailing `-YYYY-MM-DD`, `-YYYYMMDD` or `-latest` from a model name.
fn strip_snapshot_suffix(model: &str) -> Option<&str> {
    if let Some(base) = model.strip_suffix("-latest") {
        return Some(base);
    }

    let (base, suffix) = model.rsplit_once('-')?;
    if suffix.len() == 8 && suffix.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(base);
    }

    // A dashed date is three parts: YYYY, MM and DD, where DD is the suffix already split off.
    let day = suffix;
    let (rest, month) = base.rsplit_once('-')?;
    let (base, year) = rest.rsplit_once('-')?;
    let is_digits = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|byte| byte.is_ascii_digit())
    };
    (is_digits(year, 4) && is_digits(month, 2) && is_digits(day, 2)).then_some(base)
}

/// Computes the cost of one usage record in micro-dollars, rounded half up once.
///
/// The sum is computed in 128-bit integers, because cheap models cost a fraction of a
/// micro-dollar per token and only the total may be rounded. Cached input tokens are part
/// of `input_tokens` and are billed at the cached price when the price has one. Reasoning
/// tokens are part of `output_tokens` and are billed as output. Negative counts are treated
/// as zero, and a cost above `i64::MAX` saturates.
pub fn cost_micros(price: &Price, usage: &Usage) -> i64 {
    let input = i128::from(usage.input_tokens.max(0));
    let output = i128::from(usage.output_tokens.max(0));
    let cached = i128::from(usage.cached_input_tokens.unwrap_or(0).max(0)).min(input);
    let cached_price = price
        .cached_input_per_million
        .unwrap_or(price.input_per_million);

    // Each product is below 2^126 and the input terms share one token count, so the sum
    // stays below 2^127 and cannot overflow.
    let total = (input - cached) * i128::from(price.input_per_million)
        + cached * i128::from(cached_price)
        + output * i128::from(price.output_per_million);
    let rounded = (total + TOKENS_PER_PRICE_UNIT / 2) / TOKENS_PER_PRICE_UNIT;

    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// Estimates the token count of `text` as one token per four characters, rounded up.
///
/// This is an estimate for replies whose stream ended before the provider reported usage.
/// Real tokenizers differ by model and language. Empty text is 0 tokens and any other text
/// at least 1.
pub fn estimate_tokens(text: &str) -> i64 {
    let chars = text.chars().count();
    i64::try_from(chars.div_ceil(4)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
