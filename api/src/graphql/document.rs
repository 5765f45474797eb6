//! Inspection of parsed GraphQL documents before they run: the operation a request selects,
//! the fields at its root, and the aliases and directives it uses.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use async_graphql::{
    Name, Positioned, Request,
    parser::types::{
        DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType,
        Selection, SelectionSet,
    },
};

/// Returns the keyword of an operation type: `query`, `mutation` or `subscription`.
pub fn operation_keyword(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

/// The operation name of a request, kept by a schema extension from `prepare_request`,
/// which receives the request, for `parse_query`, which does not.
#[derive(Default)]
pub struct OperationName(Mutex<Option<String>>);

impl OperationName {
    pub fn remember(&self, request: &Request) {
        if let Ok(mut name) = self.0.lock() {
            name.clone_from(&request.operation_name);
        }
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().map(|name| name.clone()).unwrap_or_default()
    }
}

/// Returns the operation that a request with `operation_name` runs, by the rules that
/// async-graphql 7 applies: a named request picks that named operation, and an unnamed one
/// needs a document with exactly one operation. `None` when no operation matches, which
/// execution then reports as an error.
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => Some(operation),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Returns the fields of an operation's root selection set, looking through inline
/// fragments and fragment spreads, in document order. A fragment that spreads itself is
/// followed once, because validation rejects fragment cycles later.
///
/// A fragment appears once per spread, as execution runs it, so the output grows with
/// the expanded document: call this only on documents whose [`usage_counts`] passed a
/// field limit.
pub fn root_fields<'a>(
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
) -> Vec<&'a Positioned<Field>> {
    fn collect<'a>(
        document: &'a ExecutableDocument,
        selection_set: &'a SelectionSet,
        visiting: &mut HashSet<&'a Name>,
        fields: &mut Vec<&'a Positioned<Field>>,
    ) {
        for selection in &selection_set.items {
            match &selection.node {
                Selection::Field(field) => fields.push(field),
                Selection::InlineFragment(fragment) => {
                    collect(
                        document,
                        &fragment.node.selection_set.node,
                        visiting,
                        fields,
                    );
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let Some(fragment) = document.fragments.get(name) else {
                        continue;
                    };
                    if visiting.insert(name) {
                        collect(
                            document,
                            &fragment.node.selection_set.node,
                            visiting,
                            fields,
                        );
                        visiting.remove(name);
                    }
                }
            }
        }
    }

    let mut fields = Vec::new();
    collect(
        document,
        &operation.selection_set.node,
        &mut HashSet::new(),
        &mut fields,
    );
    fields
}

/// Fields, aliases and directives of one operation, with every fragment counted once per
/// spread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Field selections, `__typename` included: an upper bound of the fields that
    /// execution resolves for one object at each level.
    pub fields: usize,
    pub aliases: usize,
    pub directives: usize,
}

impl UsageCounts {
    fn add(self, other: Self) -> Self {
        Self {
            fields: self.fields.saturating_add(other.fields),
            aliases: self.aliases.saturating_add(other.aliases),
            directives: self.directives.saturating_add(other.directives),
        }
    }
}

/// Selection sets and fragments nest deeper than the limit given to [`usage_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NestingTooDeep {
    pub max_nesting: usize,
}

/// Counts the fields, aliases and directives that `operation` would run, fragments
/// included at every spread.
///
/// Each fragment is counted once and the result reused, so fragments that spread each
/// other many times cost linear time, and the sums saturate instead of overflowing.
/// Directives on the operation, fields, fragment spreads, inline fragments and fragment
/// definitions all count. Field selections, inline fragments and fragment spreads each
/// add a level of nesting, and more than `max_nesting` levels stop the count, which
/// bounds the recursion of this function.
pub fn usage_counts(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    max_nesting: usize,
) -> Result<UsageCounts, NestingTooDeep> {
    let mut counter = UsageCounter {
        document,
        max_nesting,
        fragments: HashMap::new(),
        visiting: HashSet::new(),
    };
    let own = UsageCounts {
        directives: operation.directives.len(),
        ..UsageCounts::default()
    };
    Ok(own.add(counter.selection_set(&operation.selection_set.node, 0)?))
}

struct UsageCounter<'a> {
    document: &'a ExecutableDocument,
    max_nesting: usize,
    fragments: HashMap<&'a Name, UsageCounts>,
    visiting: HashSet<&'a Name>,
}

impl<'a> UsageCounter<'a> {
    fn selection_set(
        &mut self,
        selection_set: &'a SelectionSet,
        nesting: usize,
    ) -> Result<UsageCounts, NestingTooDeep> {
        if nesting > self.max_nesting {
            return Err(NestingTooDeep {
                max_nesting: self.max_nesting,
            });
        }
        let mut counts = UsageCounts::default();
        for selection in &selection_set.items {
            let counted = match &selection.node {
                Selection::Field(field) => {
                    let own = UsageCounts {
                        fields: 1,
                        aliases: usize::from(field.node.alias.is_some()),
                        directives: field.node.directives.len(),
                    };
                    let selection_set = &field.node.selection_set.node;
                    if selection_set.items.is_empty() {
                        own
                    } else {
                        own.add(self.selection_set(selection_set, nesting + 1)?)
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let own = UsageCounts {
                        directives: fragment.node.directives.len(),
                        ..UsageCounts::default()
                    };
                    own.add(self.selection_set(&fragment.node.selection_set.node, nesting + 1)?)
                }
                Selection::FragmentSpread(spread) => {
                    let own = UsageCounts {
                        directives: spread.node.directives.len(),
                        ..UsageCounts::default()
                    };
                    own.add(self.fragment(&spread.node.fragment_name.node, nesting + 1)?)
                }
            };
            counts = counts.add(counted);
        }
        Ok(counts)
    }

    /// Counts a fragment definition with its own directives. An unknown fragment or one
    /// that is part of a cycle counts nothing here; validation rejects both.
    fn fragment(&mut self, name: &'a Name, nesting: usize) -> Result<UsageCounts, NestingTooDeep> {
        if let Some(counts) = self.fragments.get(name) {
            return Ok(*counts);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(UsageCounts::default());
        };
        if !self.visiting.insert(name) {
            return Ok(UsageCounts::default());
        }
        let own = UsageCounts {
            directives: fragment.node.directives.len(),
            ..UsageCounts::default()
        };
        let counts = own.add(self.selection_set(&fragment.node.selection_set.node, nesting)?);
        self.visiting.remove(name);
        self.fragments.insert(name, counts);
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::{parse_query, types::OperationType};

    use super::*;

    fn counts(query: &str) -> UsageCounts {
        let document = parse_query(query).unwrap();
        let operation = selected_operation(&document, None).unwrap();
        usage_counts(&document, &operation.node, 32).unwrap()
    }

    #[test]
    fn aliases_counted_at_every_level() {
        let query = "{ a: me { b: user { email } } c: me { role } }";
        assert_eq!(counts(query).aliases, 3);
    }

    #[test]
    fn fragment_counted_at_each_spread() {
        let query = "{ ...F ...F me { ...F } }
            fragment F on Query { x: __typename y: __typename @include(if: true) }";
        assert_eq!(
            counts(query),
            UsageCounts {
                fields: 7,
                aliases: 6,
                directives: 3
            }
        );
    }

    #[test]
    fn directives_on_every_location_counted() {
        let query = "query Q @a { f @b { ... @c { g } ...F @d } } fragment F on T @e { h @f }";
        let document = parse_query(query).unwrap();
        let operation = selected_operation(&document, Some("Q")).unwrap();
        assert_eq!(
            usage_counts(&document, &operation.node, 32)
                .unwrap()
                .directives,
            6
        );
    }

    #[test]
    fn fragment_explosion_counted_in_linear_time() {
        // Each fragment spreads the next one twice: 2^60 aliases once expanded.
        let mut query = String::from("{ ...F0 }\n");
        for level in 0..60 {
            query.push_str(&format!(
                "fragment F{level} on Query {{ ...F{next} ...F{next} }}\n",
                next = level + 1
            ));
        }
        query.push_str("fragment F60 on Query { a: __typename }\n");
        let document = parse_query(&query).unwrap();
        let operation = selected_operation(&document, None).unwrap();
        let counts = usage_counts(&document, &operation.node, 64).unwrap();
        assert_eq!(counts.aliases, 1 << 60);
        assert_eq!(counts.fields, 1 << 60);
    }

    #[test]
    fn fragment_chain_beyond_nesting_limit_stops() {
        let mut query = String::from("{ ...F0 }\n");
        for level in 0..100 {
            query.push_str(&format!(
                "fragment F{level} on Query {{ ...F{} }}\n",
                level + 1
            ));
        }
        query.push_str("fragment F100 on Query { __typename }\n");
        let document = parse_query(&query).unwrap();
        let operation = selected_operation(&document, None).unwrap();
        let error = usage_counts(&document, &operation.node, 32).unwrap_err();
        assert_eq!(error, NestingTooDeep { max_nesting: 32 });
    }

    #[test]
    fn nesting_at_limit_counted() {
        // Three levels: the root set, `a`'s set and `b`'s set.
        let document = parse_query("{ a { b { c } } }").unwrap();
        let operation = selected_operation(&document, None).unwrap();
        assert!(usage_counts(&document, &operation.node, 2).is_ok());
        assert!(usage_counts(&document, &operation.node, 1).is_err());
    }

    #[test]
    fn fragment_cycle_terminates() {
        let query = "{ ...A } fragment A on Query { x: __typename ...B }
            fragment B on Query { y: __typename ...A }";
        assert_eq!(counts(query).aliases, 2);
    }

    #[test]
    fn operation_selected_by_name() {
        let document = parse_query("query A { a } mutation B { b }").unwrap();
        let chosen = selected_operation(&document, Some("B")).unwrap();
        assert_eq!(chosen.node.ty, OperationType::Mutation);
        assert!(selected_operation(&document, None).is_none());
        assert!(selected_operation(&document, Some("C")).is_none());

        let single = parse_query("{ a }").unwrap();
        assert!(selected_operation(&single, None).is_some());
        assert!(selected_operation(&single, Some("A")).is_none());
    }

    #[test]
    fn root_fields_look_through_fragments() {
        let query = "mutation { a ... on Mutation { b } ...F } fragment F on Mutation { c ...F }";
        let document = parse_query(query).unwrap();
        let operation = selected_operation(&document, None).unwrap();
        let names: Vec<&str> = root_fields(&document, &operation.node)
            .iter()
            .map(|field| field.node.name.node.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
