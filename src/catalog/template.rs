//! `{name}` templates of the catalog (URLs, header names and values, request bodies). They are
//! parsed when the catalog loads, so a typo in a provider file stops the start instead of
//! breaking a connection later. Values are inserted verbatim: a caller that needs escaping
//! escapes first.

use std::fmt;

/// A string with `{name}` placeholders. A `{` directly followed by a letter, digit, `_` or `-`
/// opens a placeholder, which must close with `}` and name a field (`[a-z0-9_]+`). `{{` and
/// `}}` are literal braces, and so is any other lone brace: a JSON body may be written with
/// escapes (`{{"a": 1}}`) or as sent, with a space or a quote after each `{`.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(String),
}

/// Why a template string could not be parsed. Positions are byte offsets in the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{name}` at position {at} is not closed by `}}` (write `{{{{` for a literal brace)")]
    Unclosed { at: usize, name: String },
    #[error("`{{{name}}}` is not a valid placeholder: use lowercase letters, digits and `_`")]
    BadName { name: String },
}

/// A placeholder had no value when the template was rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no value for `{{{name}}}`")]
pub struct MissingValue {
    pub name: String,
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while let Some(brace) = rest.find(['{', '}']) {
            literal.push_str(&rest[..brace]);
            let (c, after) = (&rest[brace..=brace], &rest[brace + 1..]);
            if let Some(unescaped) = after.strip_prefix(c) {
                literal.push_str(c);
                rest = unescaped;
                continue;
            }
            let len = after.find(|c: char| !is_name_char(c)).unwrap_or(after.len());
            if c == "}" || len == 0 {
                literal.push_str(c);
                rest = after;
                continue;
            }
            let name = &after[..len];
            if !after[len..].starts_with('}') {
                return Err(TemplateError::Unclosed {
                    at: source.len() - rest.len() + brace,
                    name: name.to_owned(),
                });
            }
            if !is_placeholder_name(name) {
                return Err(TemplateError::BadName { name: name.to_owned() });
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Placeholder(name.to_owned()));
            rest = &after[len + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { source: source.to_owned(), parts })
    }

    /// The template as written in the provider file.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The placeholder names, in order of appearance, repeats included.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Placeholder(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills every placeholder with `lookup(name)`; the first name without a value is an error.
    pub fn render<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> Result<String, MissingValue> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder(name) => match lookup(name) {
                    Some(value) => out.push_str(value),
                    None => return Err(MissingValue { name: name.clone() }),
                },
            }
        }
        Ok(out)
    }

    /// The placeholder the template starts with, if any: in a URL it may supply the scheme and
    /// host (generic apps), which validation needs to know.
    /// The placeholders that fill the scheme or host of a URL template: a leading one that
    /// supplies the whole URL (`{base_url}/v2`), or one inside the authority
    /// (`https://{host}/api`, `https://{site}.atlassian.net`).
    pub fn host_placeholders(&self) -> Vec<&str> {
        let mut found = Vec::new();
        let mut text = String::new();
        for part in &self.parts {
            let authority_over =
                text.split_once("://").is_some_and(|(_, rest)| rest.contains(['/', '?', '#']));
            if authority_over {
                break;
            }
            match part {
                Part::Literal(literal) => text.push_str(literal),
                Part::Placeholder(name) => {
                    found.push(name.as_str());
                    // A leading placeholder is a whole URL: what follows is its path.
                    if text.is_empty() {
                        break;
                    }
                    text.push('x');
                }
            }
        }
        found
    }

    pub(super) fn leading_placeholder(&self) -> Option<&str> {
        match self.parts.first() {
            Some(Part::Placeholder(name)) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

/// Characters that continue a placeholder after `{`: wider than valid names, so that `{Site}`
/// or `{api-key}` is reported rather than sent as literal text.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_placeholder_name(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(key: &str) -> Option<&'static str> {
        match key {
            "site" => Some("acme"),
            "api_key" => Some("k-123"),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_listed_in_order() {
        let template = Template::parse("https://{site}.example.com/{api_key}/{site}").unwrap();
        let names: Vec<_> = template.placeholders().collect();
        assert_eq!(names, ["site", "api_key", "site"]);
    }

    #[test]
    fn render_fills_placeholders() {
        let template = Template::parse("https://{site}.example.com/v1").unwrap();
        assert_eq!(template.render(values).unwrap(), "https://acme.example.com/v1");
    }

    #[test]
    fn braces_that_open_no_placeholder_are_literal() {
        let body = r#"{"query": "{ viewer { id } }", "key": "{api_key}", "empty": {} }"#;
        let template = Template::parse(body).unwrap();
        assert_eq!(template.placeholders().collect::<Vec<_>>(), ["api_key"]);
        assert_eq!(
            template.render(values).unwrap(),
            r#"{"query": "{ viewer { id } }", "key": "k-123", "empty": {} }"#
        );
        // `}}` is always an escape, even where it was meant as two braces.
        let nested = Template::parse(r#"{"a": {"b": 1}}"#).unwrap();
        assert_eq!(nested.render(values).unwrap(), r#"{"a": {"b": 1}"#);
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        let body = r#"{{"query": "{{ viewer {{ id }} }}", "key": "{api_key}"}}"#;
        let template = Template::parse(body).unwrap();
        assert_eq!(template.placeholders().collect::<Vec<_>>(), ["api_key"]);
        assert_eq!(template.render(values).unwrap(), r#"{"query": "{ viewer { id } }", "key": "k-123"}"#);
        let template = Template::parse("{{site}}").unwrap();
        assert_eq!(template.placeholders().count(), 0);
        assert_eq!(template.render(values).unwrap(), "{site}");
    }

    #[test]
    fn render_names_the_missing_value() {
        let template = Template::parse("Bearer {access_token}").unwrap();
        let error = template.render(values).unwrap_err();
        assert_eq!(error.name, "access_token");
        assert_eq!(error.to_string(), "no value for `{access_token}`");
    }

    #[test]
    fn an_unclosed_placeholder_is_rejected() {
        assert_eq!(
            Template::parse("Bearer {api_key"),
            Err(TemplateError::Unclosed { at: 7, name: "api_key".to_owned() })
        );
        assert!(Template::parse("https://{site.example.com").is_err());
        assert!(Template::parse("{viewer{id}}").is_err());
    }

    #[test]
    fn placeholder_names_are_field_keys() {
        for bad in ["{Site}", "{api-key}", "{API_KEY}"] {
            assert!(
                matches!(Template::parse(bad), Err(TemplateError::BadName { .. })),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn a_template_without_placeholders_renders_as_written() {
        let template = Template::parse("https://api.example.com").unwrap();
        assert_eq!(template.placeholders().count(), 0);
        assert_eq!(template.render(|_| None).unwrap(), "https://api.example.com");
        assert_eq!(template.leading_placeholder(), None);
    }

    #[test]
    fn host_placeholders_are_those_before_the_path() {
        for (source, expected) in [
            ("{base_url}/v2/{version}", vec!["base_url"]),
            ("https://{host}/api/{version}", vec!["host"]),
            ("https://{site}.atlassian.net/x/{id}", vec!["site"]),
            ("https://{a}.{b}.example.com?x={c}", vec!["a", "b"]),
            ("https://api.example.com/{tenant}/token", vec![]),
        ] {
            assert_eq!(Template::parse(source).unwrap().host_placeholders(), expected, "{source}");
        }
    }
}
