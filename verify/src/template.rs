//! Cache-key templates (`public.users:{id}`) turned into the three things a check
//! needs: a SQL expression that renders a row's key, a Redis SCAN glob for the
//! keys a table may own, and a regex that tells whether a scanned key can belong
//! to the table at all.
//!
//! The SQL expression mirrors the extension's renderer (pg-extension/src), so that
//! the key verify expects is byte for byte the key the trigger writes.

use crate::error::{Result, VerifyError};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Column(String),
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    pub parts: Vec<Part>,
}

impl KeyTemplate {
    /// Parses `{column}` placeholders; `{{` and `}}` stand for literal braces.
    pub fn parse(table: &str, template: &str) -> Result<Self> {
        let bad = |reason: String| VerifyError::Catalog {
            table: table.to_string(),
            reason,
        };
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => {
                                return Err(bad(format!(
                                    "unclosed '{{' in key template {template:?}"
                                )))
                            }
                        }
                    }
                    if name.is_empty() {
                        return Err(bad(format!(
                            "empty placeholder in key template {template:?}"
                        )));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Column(name));
                }
                other => lit.push(other),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        if !parts.iter().any(|p| matches!(p, Part::Column(_))) {
            return Err(bad(format!("key template {template:?} names no column")));
        }
        Ok(Self { parts })
    }

    /// SQL text expression rendering the key of row alias `t`.
    pub fn sql(&self) -> String {
        let escaped = self.escaped_chars();
        let pieces: Vec<String> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => quote_literal(s),
                Part::Column(c) => escaped_value_sql(&format!("t.{}", quote_ident(c)), &escaped),
            })
            .collect();
        format!("({})", pieces.join(" || "))
    }

    /// Characters escaped inside rendered values, as the extension does
    /// (pg-extension/src/trigger/key.rs): every character of a literal that sits
    /// between two placeholders (a separator), plus the backslash; nothing at all
    /// for a single-placeholder template.
    pub fn escaped_chars(&self) -> Vec<char> {
        let mut escaped: Vec<char> = Vec::new();
        for w in self.parts.windows(3) {
            if let [Part::Column(_), Part::Literal(sep), Part::Column(_)] = w {
                for ch in sep.chars() {
                    if !escaped.contains(&ch) {
                        escaped.push(ch);
                    }
                }
            }
        }
        if !escaped.is_empty() && !escaped.contains(&'\\') {
            escaped.push('\\');
        }
        escaped
    }

    /// SCAN MATCH glob: the literal prefix up to the first placeholder, then `*`.
    pub fn scan_glob(&self) -> String {
        let mut glob = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => {
                    for c in s.chars() {
                        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                            glob.push('\\');
                        }
                        glob.push(c);
                    }
                }
                Part::Column(_) => break,
            }
        }
        glob.push('*');
        glob
    }

    /// Anchored regex a key must match to possibly belong to this template.
    pub fn key_regex(&self) -> regex::Regex {
        let mut re = String::from("^");
        for p in &self.parts {
            match p {
                Part::Literal(s) => re.push_str(&regex::escape(s)),
                Part::Column(_) => re.push_str("(?s:.*)"),
            }
        }
        re.push('$');
        // Every literal is escaped and placeholders are a fixed pattern, so the
        // regex is always valid.
        regex::Regex::new(&re).unwrap_or_else(|_| regex::Regex::new("^$").expect("valid regex"))
    }

    /// Length of the literal text: when a key matches several tables' templates,
    /// the most specific (longest literal) is tried first.
    pub fn literal_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.len(),
                Part::Column(_) => 0,
            })
            .sum()
    }
}

/// How one column value appears inside a key: its text output, with each of
/// `escaped` prefixed by a backslash (the backslash itself first, so escapes added
/// for the other characters are not escaped again).
pub fn escaped_value_sql(expr: &str, escaped: &[char]) -> String {
    let mut sql = format!("({expr})::text");
    let mut order: Vec<char> = escaped.iter().copied().filter(|c| *c == '\\').collect();
    order.extend(escaped.iter().copied().filter(|c| *c != '\\'));
    for c in order {
        let from = quote_literal(&c.to_string());
        let to = quote_literal(&format!("\\{c}"));
        sql = format!("replace({sql}, {from}, {to})");
    }
    sql
}

/// `'text'` with quotes doubled (standard_conforming_strings is on since 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"ident"` with quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_template() {
        let t = KeyTemplate::parse("users", "public.users:{id}").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Literal("public.users:".into()),
                Part::Column("id".into())
            ]
        );
        assert_eq!(t.scan_glob(), "public.users:*");
        assert!(t.key_regex().is_match("public.users:42"));
        assert!(!t.key_regex().is_match("public.users2:42"));
    }

    #[test]
    fn escapes_glob_and_braces() {
        let t = KeyTemplate::parse("x", "a*{{b}}:{k}:{j}").unwrap();
        assert_eq!(t.scan_glob(), "a\\*{b}:*");
        assert_eq!(t.literal_len(), "a*{b}:".len() + 1);
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(KeyTemplate::parse("x", "no-columns").is_err());
        assert!(KeyTemplate::parse("x", "a:{id").is_err());
        assert!(KeyTemplate::parse("x", "a:{}").is_err());
    }

    #[test]
    fn escapes_only_separators_like_the_extension() {
        let one = KeyTemplate::parse("u", "public.users:{id}").unwrap();
        assert!(one.escaped_chars().is_empty());
        assert_eq!(one.sql(), "('public.users:' || (t.\"id\")::text)");
        let two = KeyTemplate::parse("t", "public.t:{a}:{b}").unwrap();
        assert_eq!(two.escaped_chars(), vec![':', '\\']);
        assert_eq!(
            two.sql(),
            "('public.t:' || replace(replace((t.\"a\")::text, '\\', '\\\\'), ':', '\\:') \
             || ':' || replace(replace((t.\"b\")::text, '\\', '\\\\'), ':', '\\:'))"
        );
    }

    #[test]
    fn quotes_sql() {
        assert_eq!(quote_literal("o'k"), "'o''k'");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
