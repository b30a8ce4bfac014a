//! Cache-key templates: parsing, validation and rendering.
//!
//! A template is literal text with `{column}` placeholders, e.g. `public.users:{id}`
//! or `acme/{org_id}/{user_id}`. `{{` and `}}` stand for literal braces; any other
//! brace is an error, as are empty placeholders, a column used twice, two
//! placeholders with nothing between them, and a template without placeholders.
//!
//! Rendering replaces each placeholder with the column's text output (the type's
//! output function, as `::text` of most types gives). So that two different key
//! tuples never render to the same string, each value is escaped: every character
//! that occurs in the literal text *between* two placeholders (the separators), and
//! the backslash itself, is prefixed with a backslash. A single-placeholder template
//! has no separators, so its value appears verbatim: `public.users:{id}` renders
//! `public.users:42`, and `public.tags:{name}` with name `a:b` renders `public.tags:a:b`.
//! With `public.t:{a}:{b}`, a=`x:y`, b=`z\` renders `public.t:x\:y:z\\`.

use std::fmt;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// A placeholder; the index into [`KeyTemplate::columns`].
    Column(usize),
}

/// A parsed, validated template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    segments: Vec<Segment>,
    columns: Vec<String>,
    escaped: Vec<char>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{' (write '{{{{' for a literal brace)")]
    Unclosed,
    #[error("unmatched '}}' (write '}}}}' for a literal brace)")]
    Unmatched,
    #[error("empty placeholder '{{}}'")]
    EmptyPlaceholder,
    #[error("column {0:?} is used twice")]
    Repeated(String),
    #[error("placeholders {{{0}}} and {{{1}}} need a separator between them")]
    Adjacent(String, String),
    #[error("no {{column}} placeholder: every row would get the same key")]
    NoPlaceholder,
}

impl KeyTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let mut segments: Vec<Segment> = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        let mut literal = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::Unmatched),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(TemplateError::Unclosed),
                            Some('}') => break,
                            Some('{') => return Err(TemplateError::Unclosed),
                            Some(ch) => name.push(ch),
                        }
                    }
                    if name.is_empty() {
                        return Err(TemplateError::EmptyPlaceholder);
                    }
                    if columns.contains(&name) {
                        return Err(TemplateError::Repeated(name));
                    }
                    if literal.is_empty() {
                        if let Some(Segment::Column(prev)) = segments.last() {
                            return Err(TemplateError::Adjacent(columns[*prev].clone(), name));
                        }
                    } else {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    columns.push(name);
                    segments.push(Segment::Column(columns.len() - 1));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        if columns.is_empty() {
            return Err(TemplateError::NoPlaceholder);
        }
        // Separators: literals with a placeholder on both sides.
        let mut escaped: Vec<char> = Vec::new();
        for w in segments.windows(3) {
            if let [Segment::Column(_), Segment::Literal(sep), Segment::Column(_)] = w {
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
        Ok(KeyTemplate {
            segments,
            columns,
            escaped,
        })
    }

    /// The default template of a table: `<schema>.<table>:{k1}:{k2}...`, with braces
    /// in the names doubled so they stay literal.
    pub fn default_for(schema: &str, table: &str, key_columns: &[String]) -> String {
        let lit = |s: &str| s.replace('{', "{{").replace('}', "}}");
        let mut t = format!("{}.{}", lit(schema), lit(table));
        for c in key_columns {
            t.push(':');
            t.push('{');
            t.push_str(c);
            t.push('}');
        }
        t
    }

    /// The parsed pieces, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Placeholder column names, in template order (= `vset.fill`'s key argument order).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Renders with `values[i]` for `columns()[i]`.
    pub fn render<S: AsRef<str>>(&self, values: &[S]) -> String {
        let mut out = String::with_capacity(64);
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => out.push_str(s),
                Segment::Column(i) => {
                    let v = values.get(*i).map(AsRef::as_ref).unwrap_or("");
                    if self.escaped.is_empty() {
                        out.push_str(v);
                    } else {
                        for ch in v.chars() {
                            if self.escaped.contains(&ch) {
                                out.push('\\');
                            }
                            out.push(ch);
                        }
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => f.write_str(&s.replace('{', "{{").replace('}', "}}"))?,
                Segment::Column(i) => write!(f, "{{{}}}", self.columns[*i])?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_column_renders_verbatim() {
        let t = KeyTemplate::parse("public.users:{id}").unwrap();
        assert_eq!(t.columns(), ["id"]);
        assert_eq!(t.render(&["42"]), "public.users:42");
        assert_eq!(t.render(&["a:b\\c"]), "public.users:a:b\\c");
    }

    #[test]
    fn multi_column_escapes_separator_and_backslash() {
        let t = KeyTemplate::parse("public.t:{a}:{b}").unwrap();
        assert_eq!(t.render(&["x:y", "z\\"]), "public.t:x\\:y:z\\\\");
        // The two tuples ("x:y","z") and ("x","y:z") must not collide.
        assert_ne!(t.render(&["x:y", "z"]), t.render(&["x", "y:z"]));
    }

    #[test]
    fn braces_and_errors() {
        let t = KeyTemplate::parse("{{lit}}-{id}").unwrap();
        assert_eq!(t.render(&["1"]), "{lit}-1");
        assert_eq!(t.to_string(), "{{lit}}-{id}");
        assert_eq!(KeyTemplate::parse("x{id"), Err(TemplateError::Unclosed));
        assert_eq!(KeyTemplate::parse("x}"), Err(TemplateError::Unmatched));
        assert_eq!(
            KeyTemplate::parse("x{}"),
            Err(TemplateError::EmptyPlaceholder)
        );
        assert_eq!(
            KeyTemplate::parse("plain"),
            Err(TemplateError::NoPlaceholder)
        );
        assert_eq!(
            KeyTemplate::parse("{a}{b}"),
            Err(TemplateError::Adjacent("a".into(), "b".into()))
        );
        assert_eq!(
            KeyTemplate::parse("{a}:{a}"),
            Err(TemplateError::Repeated("a".into()))
        );
    }

    #[test]
    fn default_template_doubles_braces() {
        let cols = vec!["a".to_string(), "b".to_string()];
        let d = KeyTemplate::default_for("s{x}", "t", &cols);
        assert_eq!(d, "s{{x}}.t:{a}:{b}");
        let t = KeyTemplate::parse(&d).unwrap();
        assert_eq!(t.render(&["1", "2"]), "s{x}.t:1:2");
    }
}
