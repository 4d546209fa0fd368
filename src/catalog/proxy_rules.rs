//! What the proxy may do on an app's behalf: the requests each module declares it makes (least
//! privilege per module), and the provider's published rate limits. Described here, enforced
//! by `proxy/`.

use std::time::Duration;

/// The module every app has: any request under the app's API base, and only there.
pub const GENERIC_MODULE_KEY: &str = "api-call";
pub const GENERIC_MODULE_NAME: &str = "Make an API call";

/// The methods a module may declare.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// One kind of request a module makes: a method and a path pattern under the API base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRule {
    pub(super) method: String,
    pub(super) path: PathPattern,
}

impl RequestRule {
    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn path(&self) -> &PathPattern {
        &self.path
    }

    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.path.matches(path)
    }
}

/// A path under the API base, segment by segment: a literal segment matches itself, `*` any
/// one segment, and a final `**` any number of segments (none included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

impl PathPattern {
    /// Parses `/repos/*/*/issues` or `/files/**`; the error says what is wrong.
    pub fn parse(source: &str) -> Result<Self, String> {
        let Some(rest) = source.strip_prefix('/') else {
            return Err(format!("`{source}` must start with `/`"));
        };
        if source.contains(['?', '#', '{', '}']) || source.chars().any(char::is_whitespace) {
            return Err(format!(
                "`{source}` may hold path segments, `*` and a final `**` only (no query, braces or spaces)"
            ));
        }
        let parts: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let segment = match *part {
                "" => return Err(format!("`{source}` has an empty segment (`//` or a trailing `/`)")),
                "." | ".." => return Err(format!("`{source}` may not hold `.` or `..` segments")),
                "*" => Segment::One,
                "**" if index + 1 == parts.len() => Segment::Rest,
                "**" => return Err(format!("`{source}`: `**` may only be the last segment")),
                literal if literal.contains('*') => {
                    return Err(format!("`{source}`: `*` stands for a whole segment, not part of one"));
                }
                literal => Segment::Literal(literal.to_owned()),
            };
            segments.push(segment);
        }
        Ok(Self { source: source.to_owned(), segments })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `path` (under the API base, starting with `/`, no query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let parts: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
        let mut parts = parts.into_iter();
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => match parts.next() {
                    Some(part) if !part.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// A provider's published limit: at most `requests` in any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub period: Duration,
}

/// The limits the proxy keeps to so the provider does not start throttling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Per connection (the provider's limit per token or account).
    pub per_connection: Option<RateLimit>,
    /// Per app, across every connection of this instance (the limit per OAuth client).
    pub per_app: Option<RateLimit>,
}

#[cfg(test)]
mod tests {
    use super::PathPattern;

    #[test]
    fn patterns_match_whole_segments() {
        let issues = PathPattern::parse("/repos/*/*/issues").unwrap();
        assert!(issues.matches("/repos/acme/app/issues"));
        assert!(!issues.matches("/repos/acme/app/issues/1"));
        assert!(!issues.matches("/repos/acme/issues"));
        assert!(!issues.matches("/repos//app/issues"));
        let files = PathPattern::parse("/files/**").unwrap();
        assert!(files.matches("/files"));
        assert!(files.matches("/files/a/b/c"));
        assert!(!files.matches("/filesystem"));
        let root = PathPattern::parse("/").unwrap();
        assert!(root.matches("/"));
        assert!(!root.matches("/x"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in ["repos", "/a//b", "/a/", "/**/x", "/a*", "/a?b=1", "/{id}", "/../x"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
