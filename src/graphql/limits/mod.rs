//! What one request may ask of the service, checked before anything recurses or executes.
//!
//! In order: the body size (in `http`), the number of operations in a batch, then per
//! operation a lexical pass over the document (bracket nesting, token count), the nesting of
//! its variables, the parse, and the depth of its selections (data and introspection apart)
//! with the number of selections its fragments expand to;
//! a document that passed the last two is kept by its text and not parsed again (`admitted`).
//! Complexity is async-graphql's, with list fields weighing their page size; a batch shares
//! one budget. Provider-reaching mutations are counted per request and per token. Every
//! refusal is a `BAD_USER_INPUT` (or `RATE_LIMITED`) that names the limit.

mod admitted;
mod depth;
mod document;
mod provider_calls;
mod variables;

use async_graphql::{Request, ServerError};

pub use admitted::AdmittedDocuments;
pub use depth::MAX_INTROSPECTION_DEPTH;
pub use document::DocumentLimits;
pub use provider_calls::{CallerBuckets, ProviderCallLimits, RequestCalls};

/// The limits of the GraphQL endpoint, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub document: DocumentLimits,
    /// Deepest selection of data fields.
    pub max_depth: usize,
    /// Complexity budget of one HTTP request, shared by the operations of a batch.
    pub max_complexity: usize,
    /// Operations in one JSON batch.
    pub max_batch: usize,
    pub provider_calls: ProviderCallLimits,
}

/// Bounds `request` and parses it, so execution starts from a checked document.
pub fn admit(
    mut request: Request,
    limits: &RequestLimits,
    admitted: &AdmittedDocuments,
) -> Result<Request, ServerError> {
    let refused = |message: String| ServerError::new(message, None);
    document::check(&request.query, limits.document).map_err(|err| refused(err.to_string()))?;
    variables::check(&request.variables, limits.document.max_nesting)
        .map_err(|err| refused(err.to_string()))?;
    let parsed = match admitted.get(&request.query) {
        Some(parsed) => parsed,
        None => {
            let parsed = async_graphql::parser::parse_query(&request.query).map_err(ServerError::from)?;
            // A document may expand to as many selections as it may hold tokens.
            depth::check(&parsed, limits.max_depth, limits.document.max_tokens)
                .map_err(|err| refused(err.to_string()))?;
            admitted.keep(&request.query, &parsed);
            parsed
        }
    };
    request.set_parsed_query(parsed);
    Ok(request)
}

/// What the whole app catalog weighs: about the number of apps it holds (45 built in, and an
/// operator's own), each weighing its selections.
const CATALOG_WEIGHT: usize = 50;

/// The complexity of `apps`, which answers the whole catalog (fewer when searched, which
/// cannot be known before it runs).
pub fn catalog_complexity(child_complexity: usize) -> usize {
    CATALOG_WEIGHT.saturating_mul(child_complexity.max(1))
}

/// The complexity of a list field: its page size (the default when absent) times its items'.
/// A size past the largest page counts as the largest: the field refuses it with its own
/// message.
pub fn list_complexity(first: Option<i32>, default: i32, child_complexity: usize) -> usize {
    let size = first.unwrap_or(default).clamp(1, crate::graphql::ids::MAX_PAGE_SIZE) as usize;
    size.saturating_mul(child_complexity.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        document: DocumentLimits { max_nesting: 32, max_tokens: 10_000 },
        max_depth: 12,
        max_complexity: 2000,
        max_batch: 10,
        provider_calls: ProviderCallLimits { per_request: 5, per_minute: 60 },
    };

    /// Random documents built from GraphQL's pieces, some nested thousands deep, go through
    /// the whole admission (the parser included) on a test thread's ordinary stack: each is
    /// admitted or refused, and none overflows or panics.
    #[test]
    fn random_documents_are_admitted_or_refused_without_overflowing() {
        let pieces: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            "(",
            ")",
            "a",
            "b: ",
            "...F",
            "... on T ",
            "fragment F on T ",
            "query ",
            "$v: [[Int]] = ",
            "@include(if: true) ",
            "\"s{[\" ",
            "\"\"\"b[[\"\"\" ",
            "# c\n",
            "1",
            "{a:",
            ", ",
            "__schema ",
            "__type(name: \"x\") ",
            "ofType ",
        ];
        let mut seed = 0x2545_f491_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let mut doc = String::new();
            let length = 1 + next() as usize % 200;
            for _ in 0..length {
                let piece = pieces[next() as usize % pieces.len()];
                // Every so often, one piece repeated thousands of times.
                let times = if next() % 50 == 0 { 1 + next() as usize % 5000 } else { 1 };
                doc.push_str(&piece.repeat(times));
            }
            if round % 3 == 0 {
                doc = format!("{{ {doc} }}");
            }
            let _ = admit(Request::new(doc), &LIMITS, &AdmittedDocuments::default());
        }
    }
}
