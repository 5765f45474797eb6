//! Price lookup, cost rounding and token estimates.

#![allow(clippy::unwrap_used)]

use super::*;

fn usage(input: i64, output: i64, cached: Option<i64>) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
        reasoning_tokens: None,
    }
}

const CHEAP: Price = Price {
    input_per_million: 150_000,
    output_per_million: 600_000,
    cached_input_per_million: Some(75_000),
};

#[test]
fn table_prices_in_micros() {
    let price = price(ProviderKind::OpenAi, "gpt-4o-mini").unwrap();
    assert_eq!(price, CHEAP);
    let nano = super::price(ProviderKind::OpenAi, "gpt-5-nano").unwrap();
    assert_eq!(nano.cached_input_per_million, Some(5_000));
    let sonnet = super::price(ProviderKind::Anthropic, "claude-sonnet-4-5").unwrap();
    assert_eq!(sonnet.output_per_million, 15_000_000);
}

#[test]
fn snapshot_names_use_base_price() {
    let base = price(ProviderKind::OpenAi, "gpt-4o");
    assert!(base.is_some());
    assert_eq!(price(ProviderKind::OpenAi, "gpt-4o-2024-08-06"), base);
    assert_eq!(
        price(ProviderKind::Anthropic, "claude-sonnet-4-20250514"),
        price(ProviderKind::Anthropic, "claude-sonnet-4")
    );
    assert_eq!(
        price(ProviderKind::Anthropic, "claude-3-5-haiku-latest"),
        price(ProviderKind::Anthropic, "claude-3-5-haiku")
    );
    assert_eq!(
        price(ProviderKind::Gemini, "models/gemini-2.5-flash"),
        price(ProviderKind::Gemini, "gemini-2.5-flash")
    );
}

#[test]
fn mini_model_not_confused_with_base() {
    let mini = price(ProviderKind::OpenAi, "gpt-4o-mini-2024-07-18").unwrap();
    assert_eq!(mini.input_per_million, 150_000);
}

#[test]
fn unknown_model_has_no_price() {
    assert_eq!(price(ProviderKind::OpenAi, "gpt-unknown"), None);
    assert_eq!(price(ProviderKind::Groq, "gpt-4o"), None);
    assert_eq!(price(ProviderKind::OpenAi, "gpt-4o-20xx-08-06"), None);
}

#[test]
fn ollama_models_free() {
    let price = price(ProviderKind::Ollama, "llama3.2:3b").unwrap();
    assert_eq!(cost_micros(&price, &usage(1_000_000, 1_000_000, None)), 0);
}

#[test]
fn cheap_model_rounds_half_up_once() {
    // 0.15 micro-dollars per input token.
    assert_eq!(cost_micros(&CHEAP, &usage(1, 0, None)), 0);
    assert_eq!(cost_micros(&CHEAP, &usage(3, 0, None)), 0); // 0.45
    assert_eq!(cost_micros(&CHEAP, &usage(4, 0, None)), 1); // 0.60
    assert_eq!(cost_micros(&CHEAP, &usage(10, 0, None)), 2); // exactly 1.5 rounds up
    assert_eq!(cost_micros(&CHEAP, &usage(30, 0, None)), 5); // exactly 4.5 rounds up
}

#[test]
fn rounding_applies_to_the_sum() {
    // Input 3 tokens = 0.45 and output 1 token = 0.60: rounding each part would give 0 + 1,
    // the sum 1.05 rounds to 1. With 2 output tokens: 0.45 + 1.20 = 1.65 rounds to 2, while
    // rounding each part gives 0 + 1.
    assert_eq!(cost_micros(&CHEAP, &usage(3, 1, None)), 1);
    assert_eq!(cost_micros(&CHEAP, &usage(3, 2, None)), 2);
}

#[test]
fn cached_tokens_billed_at_cached_price() {
    // 1,000,000 input tokens of which 400,000 cached: 600,000 * 0.15 + 400,000 * 0.075
    // = 90,000 + 30,000 micro-dollars; 1,000 output tokens add 600.
    let cost = cost_micros(&CHEAP, &usage(1_000_000, 1_000, Some(400_000)));
    assert_eq!(cost, 120_600);
}

#[test]
fn cached_tokens_without_cached_price() {
    let price = Price {
        cached_input_per_million: None,
        ..CHEAP
    };
    let cost = cost_micros(&price, &usage(1_000_000, 0, Some(400_000)));
    assert_eq!(cost, 150_000);
}

#[test]
fn cached_count_clamped_to_input() {
    let cost = cost_micros(&CHEAP, &usage(100, 0, Some(1_000)));
    assert_eq!(cost, 8); // 100 * 0.075 = 7.5 rounds up
}

#[test]
fn large_counts_use_wide_arithmetic() {
    // 10^13 output tokens at $75 per million: the product 7.5 * 10^20 overflows i64, the
    // result 7.5 * 10^14 micro-dollars does not.
    let price = Price {
        input_per_million: 15_000_000,
        output_per_million: 75_000_000,
        cached_input_per_million: None,
    };
    let cost = cost_micros(&price, &usage(0, 10_000_000_000_000, None));
    assert_eq!(cost, 750_000_000_000_000);
}

#[test]
fn overflowing_cost_saturates() {
    let price = Price {
        input_per_million: i64::MAX,
        output_per_million: i64::MAX,
        cached_input_per_million: None,
    };
    assert_eq!(
        cost_micros(&price, &usage(i64::MAX, i64::MAX, None)),
        i64::MAX
    );
}

#[test]
fn negative_counts_cost_nothing() {
    assert_eq!(cost_micros(&CHEAP, &usage(-5, -5, Some(-1))), 0);
}

#[test]
fn estimate_rounds_up() {
    assert_eq!(estimate_tokens(""), 0);
    assert_eq!(estimate_tokens("a"), 1);
    assert_eq!(estimate_tokens("abcd"), 1);
    assert_eq!(estimate_tokens("abcde"), 2);
}

#[test]
fn estimate_counts_chars_not_bytes() {
    // Four characters, twelve bytes in UTF-8.
    assert_eq!(estimate_tokens("日本語だ"), 1);
}

#[test]
fn lookup_names_strip_prefix_and_snapshot() {
    let names: Vec<&str> = lookup_names("models/gemini-2.5-flash").collect();
    assert_eq!(names, ["gemini-2.5-flash"]);
    let names: Vec<&str> = lookup_names("gpt-4o-2024-08-06").collect();
    assert_eq!(names, ["gpt-4o-2024-08-06", "gpt-4o"]);
}

#[test]
fn table_lists_every_priced_model_once() {
    let entries: Vec<_> = table().collect();
    let gpt_4o_mini = entries
        .iter()
        .find(|(provider, model, _)| *provider == ProviderKind::OpenAi && *model == "gpt-4o-mini")
        .expect("gpt-4o-mini is in the table");
    assert_eq!(gpt_4o_mini.2.input_per_million, 150_000);
    for (provider, model, price) in &entries {
        assert_eq!(super::price(*provider, model), Some(*price), "{model}");
    }
    assert!(
        entries
            .iter()
            .all(|(provider, ..)| *provider != ProviderKind::Ollama)
    );
}
