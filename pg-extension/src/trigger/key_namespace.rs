//! Key namespaces: two tracked tables must never render the same cache key, or one
//! table's changes would overwrite (or delete) the other's cached rows.
//!
//! `vset.track` refuses a template when some key it can render is also a key another
//! tracked table's template can render. Each template is read as a pattern: its
//! literal text, and for each placeholder any string its column's type can print
//! ([`ValueClass`]). Two patterns overlap when one string matches both, which a
//! walk over pairs of pattern positions decides exactly for such patterns. It is
//! conservative where it has to be: a `text` value may be any string (so
//! `user:{name}` and `user:{name}:posts` overlap: name = `x:posts`), escaping is
//! ignored, and every value may be empty.

use std::collections::HashSet;

use crate::trigger::key::{KeyTemplate, Segment};

/// The characters a key column's text output can contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueClass {
    /// `smallint`, `integer`, `bigint` (and domains over them): digits and a minus sign.
    Integer,
    /// `uuid`: lowercase hex digits and dashes.
    Uuid,
    /// Anything else.
    Any,
}

impl ValueClass {
    fn admits(self, c: char) -> bool {
        match self {
            ValueClass::Integer => c.is_ascii_digit() || c == '-',
            ValueClass::Uuid => c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-',
            ValueClass::Any => true,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Char(char),
    Value(ValueClass),
}

fn tokens(template: &KeyTemplate, classes: &[ValueClass]) -> Vec<Token> {
    let mut out = Vec::new();
    for seg in template.segments() {
        match seg {
            Segment::Literal(s) => out.extend(s.chars().map(Token::Char)),
            Segment::Column(i) => out.push(Token::Value(
                classes.get(*i).copied().unwrap_or(ValueClass::Any),
            )),
        }
    }
    out
}

/// Whether some key can be rendered by both templates. `classes_a[i]` is the value
/// class of `a.columns()[i]` (missing entries count as [`ValueClass::Any`]).
pub fn can_overlap(
    a: &KeyTemplate,
    classes_a: &[ValueClass],
    b: &KeyTemplate,
    classes_b: &[ValueClass],
) -> bool {
    let (ta, tb) = (tokens(a, classes_a), tokens(b, classes_b));
    // State (i, j): a prefix of one string matched ta[..i] and tb[..j]. A value token
    // may end (skip it), or consume a character the other side offers.
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        if !seen.insert((i, j)) {
            continue;
        }
        if i == ta.len() && j == tb.len() {
            return true;
        }
        let mut push = |s: (usize, usize)| {
            if !seen.contains(&s) {
                stack.push(s);
            }
        };
        match (ta.get(i), tb.get(j)) {
            (Some(Token::Value(_)), _) | (_, Some(Token::Value(_))) => {
                if let Some(Token::Value(ca)) = ta.get(i) {
                    push((i + 1, j));
                    if let Some(Token::Char(c)) = tb.get(j) {
                        if ca.admits(*c) {
                            push((i, j + 1));
                        }
                    }
                }
                if let Some(Token::Value(cb)) = tb.get(j) {
                    push((i, j + 1));
                    if let Some(Token::Char(c)) = ta.get(i) {
                        if cb.admits(*c) {
                            push((i + 1, j));
                        }
                    }
                }
            }
            (Some(Token::Char(x)), Some(Token::Char(y))) if x == y => push((i + 1, j + 1)),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use ValueClass::*;

    fn overlap(a: &str, ca: &[ValueClass], b: &str, cb: &[ValueClass]) -> bool {
        let (ta, tb) = (
            KeyTemplate::parse(a).unwrap(),
            KeyTemplate::parse(b).unwrap(),
        );
        let forward = can_overlap(&ta, ca, &tb, cb);
        assert_eq!(
            forward,
            can_overlap(&tb, cb, &ta, ca),
            "symmetric: {a} / {b}"
        );
        forward
    }

    #[test]
    fn distinct_prefixes_do_not_overlap() {
        assert!(!overlap(
            "public.users:{id}",
            &[Any],
            "public.orders:{id}",
            &[Any]
        ));
        assert!(!overlap(
            "public.users:{id}",
            &[Any],
            "public.users_archive:{id}",
            &[Any]
        ));
        assert!(!overlap("a:{x}", &[Any], "b:{x}", &[Any]));
    }

    #[test]
    fn same_prefix_or_same_default_name_overlaps() {
        assert!(overlap(
            "public.users:{id}",
            &[Integer],
            "public.users:{id}",
            &[Integer]
        ));
        // Table "b" in schema "a.x" vs table "x.b" in schema "a": both default to a.x.b.
        assert!(overlap("a.x.b:{id}", &[Integer], "a.x.b:{id}", &[Uuid]));
        assert!(overlap("user:{id}", &[Integer], "user:{email}", &[Any]));
    }

    #[test]
    fn a_lone_placeholder_overlaps_everything_it_can_print() {
        assert!(overlap("{name}", &[Any], "public.users:{id}", &[Integer]));
        assert!(!overlap(
            "{id}",
            &[Integer],
            "public.users:{id}",
            &[Integer]
        ));
        assert!(overlap("{id}", &[Integer], "{n}", &[Integer]));
    }

    #[test]
    fn value_classes_separate_what_text_would_not() {
        // user:1:posts is user:{id} with id = "1:posts" when id is text, never when integer.
        assert!(overlap("user:{id}", &[Any], "user:{id}:posts", &[Integer]));
        assert!(!overlap(
            "user:{id}",
            &[Integer],
            "user:{id}:posts",
            &[Integer]
        ));
        assert!(
            overlap("u:{id}", &[Integer], "u:{id}", &[Uuid]),
            "42 prints in both"
        );
        assert!(!overlap("u:{a}:x", &[Integer], "u:{b}:y", &[Uuid]));
        assert!(overlap("u:{a}:{b}", &[Integer, Any], "u:{c}", &[Any]));
    }
}
