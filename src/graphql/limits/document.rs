//! A lexical pass over a GraphQL document that bounds it before the parser sees it.
//!
//! The parser and every later pass recurse once per nesting level, so a small document of
//! thousands of `[`, `{` or `(` overflows a thread's stack before any depth rule runs. This
//! pass never recurses: it counts brackets outside strings and comments, and the tokens of the
//! whole document, and refuses past the limits. It must stay linear and allocation-free.

/// Why a document was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentRefusal {
    #[error(
        "the document nests brackets deeper than {limit} levels (selections, lists, objects and argument lists count); \
         flatten the query or pass deep values as variables"
    )]
    TooDeeplyNested { limit: usize },
    #[error("the document has more than {limit} tokens; split it into smaller requests")]
    TooManyTokens { limit: usize },
}

#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    pub max_nesting: usize,
    pub max_tokens: usize,
}

/// Checks `text` against `limits` in one pass over its bytes.
pub fn check(text: &str, limits: DocumentLimits) -> Result<(), DocumentRefusal> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut tokens = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let start = i;
        i += 1;
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => continue,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[start..].starts_with(b"\"\"\"") => i = skip_block_string(bytes, start + 3),
            b'"' => i = skip_string(bytes, i),
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(DocumentRefusal::TooDeeplyNested { limit: limits.max_nesting });
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            byte if is_word(byte) => {
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
            }
            _ => {}
        }
        tokens += 1;
        if tokens > limits.max_tokens {
            return Err(DocumentRefusal::TooManyTokens { limit: limits.max_tokens });
        }
    }
    Ok(())
}

/// Names, numbers and the `...` of a spread each count as one token.
fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'+' | b'.')
}

/// The index after the closing quote of a string starting before `i` (or the end of the line:
/// an unterminated string is the parser's to report).
fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index after the closing `"""` of a block string whose content starts at `i`; `\"""` is
/// an escaped delimiter.
fn skip_block_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits { max_nesting: 8, max_tokens: 100 };

    fn nested(open: &str, close: &str, levels: usize) -> String {
        format!("{{ viewer(x: {}1{}) {{ email }} }}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn ordinary_documents_pass() {
        let query = r#"query Q($a: [[String!]!]) { viewer { teams { id name } } } # a { comment [[[["#;
        assert_eq!(check(query, LIMITS), Ok(()));
    }

    #[test]
    fn deep_lists_objects_and_selections_are_refused() {
        for (open, close) in [("[", "]"), ("{a:", "}"), ("(", ")")] {
            let refused = check(&nested(open, close, 3000), LIMITS);
            assert_eq!(refused, Err(DocumentRefusal::TooDeeplyNested { limit: 8 }), "{open}");
        }
        let selections = format!("{}{}", "{ a ".repeat(20), "}".repeat(20));
        assert!(check(&selections, LIMITS).is_err());
    }

    #[test]
    fn brackets_inside_strings_and_comments_do_not_count() {
        let inside = format!("{{ a(s: \"{0}\", b: \"\"\"{0} \\\"\"\" {0}\"\"\") }} # {0}", "[".repeat(100));
        assert_eq!(check(&inside, LIMITS), Ok(()));
        // An escaped quote does not end the string.
        assert_eq!(check(r#"{ a(s: "\"[[[[[[[[[[[[") }"#, LIMITS), Ok(()));
    }

    #[test]
    fn closing_brackets_never_underflow() {
        assert_eq!(check("}}}}]]])))) { a }", LIMITS), Ok(()));
    }

    #[test]
    fn token_count_is_bounded() {
        let many = format!("{{ {} }}", "a ".repeat(200));
        assert_eq!(check(&many, LIMITS), Err(DocumentRefusal::TooManyTokens { limit: 100 }));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic spray of every byte pattern around the special characters.
        let alphabet: &[u8] = b"\"\\#{}[]()\n\r ab.,\xc3\xa9";
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..2000 {
            let mut doc = Vec::new();
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                doc.push(alphabet[seed as usize % alphabet.len()]);
            }
            let text = String::from_utf8_lossy(&doc);
            let _ = check(&text, LIMITS);
        }
    }
}
