//! Shared strategies of the `prop_*` robustness tests: arbitrary text, and valid documents
//! mutated by deleting, inserting, duplicating and replacing pieces, with tokens that matter to
//! each format.
//!
//! The case count is proptest's: 256 by default (what CI runs), `PROPTEST_CASES=200000` for a
//! long local run.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;

/// One edit of a document.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Remove up to `len` characters at a position.
    Delete(Index, usize),
    /// Insert a token at a position.
    Insert(Index, String),
    /// Replace up to `len` characters at a position with a token.
    Replace(Index, usize, String),
    /// Repeat a piece of up to `len` characters right after itself.
    Duplicate(Index, usize),
    /// Cut the document at a position.
    Truncate(Index),
}

/// A token: one of `tokens`, an arbitrary short string, or an arbitrary character.
pub fn token(tokens: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        4 => proptest::sample::select(tokens).prop_map(str::to_string),
        1 => ".{0,8}",
        1 => any::<char>().prop_map(String::from),
    ]
    .boxed()
}

/// One mutation using `tokens`.
pub fn mutation(tokens: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        3 => (any::<Index>(), token(tokens)).prop_map(|(i, t)| Mutation::Insert(i, t)),
        3 => (any::<Index>(), 1usize..8, token(tokens)).prop_map(|(i, n, t)| Mutation::Replace(i, n, t)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `mutations` in order (positions are in characters, so the text stays UTF-8).
pub fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in mutations {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Delete(i, n) => {
                let p = at(i, chars.len());
                let end = (p + n).min(chars.len());
                chars.drain(p..end);
            }
            Mutation::Insert(i, t) => {
                let p = at(i, chars.len());
                chars.splice(p..p, t.chars());
            }
            Mutation::Replace(i, n, t) => {
                let p = at(i, chars.len());
                let end = (p + n).min(chars.len());
                chars.splice(p..end, t.chars());
            }
            Mutation::Duplicate(i, n) => {
                let p = at(i, chars.len());
                let end = (p + n).min(chars.len());
                let piece: Vec<char> = chars[p..end].to_vec();
                chars.splice(end..end, piece);
            }
            Mutation::Truncate(i) => {
                let p = at(i, chars.len());
                chars.truncate(p);
            }
        }
    }
    chars.into_iter().collect()
}

/// `base` with 1 to 8 mutations drawn from `tokens`.
pub fn mutated(base: String, tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::collection::vec(mutation(tokens), 1..8).prop_map(move |ms| apply(&base, &ms))
}

/// Arbitrary text: any characters, or mostly the format's tokens glued together.
pub fn arbitrary_text(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), proptest::collection::vec(token(tokens), 0..40).prop_map(|v| v.concat()),]
}

/// Numbers as text that break naive parsers.
pub const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1.0000001",
    "1e-7",
    "1e309",
    "-1e309",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    "1e400",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "9223372036854775807",
    "-9223372036854775808",
    "0x10",
    "1_000",
    ".5",
    "5.",
    "+1",
    "1,5",
    "",
];
