//! `schema.graphql` must match the schema the code builds.

use std::path::PathBuf;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql")
}

#[test]
fn schema_file_matches_code() {
    let generated = api::graphql::sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|value| value == "1") {
        std::fs::write(schema_path(), &generated).unwrap();
    }
    let committed = std::fs::read_to_string(schema_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "schema.graphql is out of date; regenerate it with \
         UPDATE_SCHEMA=1 cargo test -p tests --test schema"
    );
}

#[test]
fn token_and_money_fields_are_bigint() {
    let sdl = api::graphql::sdl();
    let mut checked = 0;
    for line in sdl.lines().map(str::trim) {
        let Some((name, field_type)) = line.split_once(':') else {
            continue;
        };
        let name = name.split('(').next().unwrap_or(name);
        // maxTokens and contextWindowTokens are agent settings, not counts, and their
        // ranges fit GraphQL Int.
        let setting = matches!(name, "maxTokens" | "contextWindowTokens");
        let counts = name.ends_with("Tokens") && !setting;
        if counts || name.ends_with("Micros") || name == "recordCount" {
            checked += 1;
            assert!(
                field_type.trim().starts_with("BigInt"),
                "{line} must use BigInt"
            );
        }
    }
    assert!(
        checked >= 10,
        "expected token and cost fields in the schema, found {checked}"
    );
}
