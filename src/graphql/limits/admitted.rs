//! Documents that passed the parse and the depth check, by their text. Clients send the same
//! few operations over and over, and parsing one costs about as much as answering a page of
//! 50 connections; a copy of the parsed document costs a fraction of that.
//!
//! Only what passed is kept, so a hit skips no check, and the checks that depend on more than
//! the text (variables, complexity) still run on every request. Bounded in entries and in the
//! size of each text: a client sending endless different documents gains nothing and can make
//! it hold at most `CAPACITY` documents of at most `MAX_TEXT` bytes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;

const CAPACITY: usize = 256;
/// Larger documents are parsed every time; the operations a frontend sends are far smaller.
const MAX_TEXT: usize = 16 * 1024;

#[derive(Default)]
pub struct AdmittedDocuments(Mutex<HashMap<String, ExecutableDocument>>);

impl AdmittedDocuments {
    /// A copy of the document admitted for `text`, if any.
    pub fn get(&self, text: &str) -> Option<ExecutableDocument> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(text).cloned()
    }

    /// Keeps `document`, admitted for `text`; when full, forgets every other one first.
    pub fn keep(&self, text: &str, document: &ExecutableDocument) {
        if text.len() > MAX_TEXT {
            return;
        }
        let mut documents = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if documents.len() >= CAPACITY && !documents.contains_key(text) {
            documents.clear();
        }
        documents.insert(text.to_owned(), document.clone());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(text).unwrap()
    }

    #[test]
    fn a_kept_document_comes_back_as_parsed() {
        let documents = AdmittedDocuments::default();
        let text = "query($t: ID!) { team(id: $t) { name } }";
        assert!(documents.get(text).is_none());
        documents.keep(text, &parsed(text));
        assert_eq!(format!("{:?}", documents.get(text).unwrap()), format!("{:?}", parsed(text)));
        assert!(documents.get("{ __typename }").is_none());
    }

    #[test]
    fn it_holds_a_bounded_number_of_small_documents() {
        let documents = AdmittedDocuments::default();
        for i in 0..CAPACITY * 2 + 7 {
            let text = format!("{{ a{i}: __typename }}");
            documents.keep(&text, &parsed(&text));
            assert!(documents.len() <= CAPACITY);
        }
        let large = format!("{{ __typename {} }}", " ".repeat(MAX_TEXT));
        documents.keep(&large, &parsed(&large));
        assert!(documents.get(&large).is_none());
    }
}
