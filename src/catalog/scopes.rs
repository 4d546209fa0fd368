//! Scopes that include others, as a provider defines them (`implied_scopes` in a provider
//! file). Some providers answer a grant with the including scope only: Shopify names
//! `write_products` alone when `read_products` was granted with it, and GitHub's `repo`
//! includes `public_repo`. A module asking for the included scope is then served.
//!
//! A rule maps a granted scope to those it includes. A `*` in the granted scope matches any
//! text, which the included scopes repeat where they have a `*` (`"write_*" = ["read_*"]`).
//! Rules are applied once: list every scope a granted one includes.

use std::collections::BTreeMap;

/// The rules of one app.
#[derive(Debug, Clone, Default)]
pub struct ScopeImplications {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// The granted scope, split at its `*` when it has one.
    granted: Pattern,
    includes: Vec<String>,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Around { before: String, after: String },
}

impl Pattern {
    /// What `*` stood for in `scope`, or `""` for an exact match; `None` when it does not match.
    fn matches<'s>(&self, scope: &'s str) -> Option<&'s str> {
        match self {
            Pattern::Exact(exact) => (exact == scope).then_some(""),
            Pattern::Around { before, after } => scope
                .strip_prefix(before.as_str())
                .and_then(|rest| rest.strip_suffix(after.as_str()))
                .filter(|middle| !middle.is_empty()),
        }
    }
}

impl ScopeImplications {
    /// Reads the rules of a provider file; answers the problems, each with where it is, when
    /// any is malformed.
    pub(super) fn parse(raw: BTreeMap<String, Vec<String>>) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut rules = Vec::with_capacity(raw.len());
        for (granted, includes) in raw {
            let at = format!("implied_scopes.{granted}");
            let stars = granted.matches('*').count();
            if granted.is_empty() || granted.chars().any(char::is_whitespace) || granted == "*" || stars > 1 {
                problems.push((at.clone(), "a granted scope is a non-empty scope without whitespace, with at most one `*` beside other text".to_owned()));
                continue;
            }
            if includes.is_empty() {
                problems.push((at.clone(), "list the scopes it includes".to_owned()));
            }
            for (index, included) in includes.iter().enumerate() {
                let allowed_stars = usize::from(stars == 1);
                if included.is_empty()
                    || included.chars().any(char::is_whitespace)
                    || included.matches('*').count() > allowed_stars
                {
                    problems.push((
                        format!("{at}[{index}]"),
                        "an included scope is a non-empty scope without whitespace; it may repeat the granted scope's `*` once".to_owned(),
                    ));
                }
            }
            let pattern = match granted.split_once('*') {
                Some((before, after)) => {
                    Pattern::Around { before: before.to_owned(), after: after.to_owned() }
                }
                None => Pattern::Exact(granted),
            };
            rules.push(Rule { granted: pattern, includes });
        }
        if problems.is_empty() { Ok(ScopeImplications { rules }) } else { Err(problems) }
    }

    /// Whether `granted` covers `required`: it holds it, or a scope it holds includes it.
    pub fn covers(&self, granted: &[String], required: &str) -> bool {
        granted
            .iter()
            .any(|scope| scope == required || self.included_by(scope).any(|included| included == required))
    }

    /// The scopes `scope` includes.
    fn included_by<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = String> + 'a {
        self.rules
            .iter()
            .filter_map(move |rule| rule.granted.matches(scope).map(|middle| (rule, middle)))
            .flat_map(|(rule, middle)| {
                rule.includes.iter().map(move |included| included.replacen('*', middle, 1))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(pairs: &[(&str, &[&str])]) -> ScopeImplications {
        let raw = pairs
            .iter()
            .map(|(granted, includes)| {
                (granted.to_string(), includes.iter().map(|s| s.to_string()).collect())
            })
            .collect();
        ScopeImplications::parse(raw).expect("valid rules")
    }

    fn granted(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_pattern_carries_what_its_star_matched() {
        let shopify = rules(&[("write_*", &["read_*"])]);
        let scopes = granted(&["write_products", "read_orders"]);
        assert!(shopify.covers(&scopes, "read_products"));
        assert!(shopify.covers(&scopes, "write_products"));
        assert!(shopify.covers(&scopes, "read_orders"));
        assert!(!shopify.covers(&scopes, "write_orders"), "read does not include write");
        assert!(!shopify.covers(&scopes, "read_customers"));
        assert!(!shopify.covers(&granted(&["write_"]), "read_"), "the star matches some text");
    }

    #[test]
    fn an_exact_rule_includes_what_it_lists() {
        let github =
            rules(&[("repo", &["public_repo", "repo:status"]), ("admin:org", &["write:org", "read:org"])]);
        assert!(github.covers(&granted(&["repo"]), "public_repo"));
        assert!(github.covers(&granted(&["admin:org"]), "read:org"));
        assert!(!github.covers(&granted(&["public_repo"]), "repo"));
        assert!(!github.covers(&granted(&["repository"]), "public_repo"));
        assert!(ScopeImplications::default().covers(&granted(&["a"]), "a"));
        assert!(!ScopeImplications::default().covers(&granted(&["a"]), "b"));
    }

    #[test]
    fn malformed_rules_are_named() {
        let raw = |granted: &str, includes: &[&str]| {
            BTreeMap::from([(granted.to_owned(), includes.iter().map(|s| s.to_string()).collect())])
        };
        for (granted, includes) in [
            ("*", &["read"][..]),
            ("a*b*", &["c"][..]),
            ("with space", &["c"][..]),
            ("repo", &[][..]),
            ("repo", &["pub*"][..]),
            ("write_*", &["read_**"][..]),
        ] {
            let problems = ScopeImplications::parse(raw(granted, includes)).expect_err(granted);
            assert!(problems[0].0.starts_with(&format!("implied_scopes.{granted}")), "{problems:?}");
        }
    }
}
