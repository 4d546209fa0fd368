//! Keeps what a request sent out of what the service stores or shows about the answer. A
//! provider may echo a secret as it arrived: raw, form-encoded, percent-encoded, inside an
//! HTTP Basic header (base64 of `user:password`) or JSON-escaped in a JSON body. Every one of
//! those encodings is replaced by `***`.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use url::form_urlencoded::byte_serialize;

const MASK: &str = "***";

/// The secrets of one request, in every encoding they may come back in. The encodings are
/// worked out on first use: most answers (a plain success) are never searched for secrets.
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<String>,
    /// Longest first, so that an encoding containing another is replaced whole.
    needles: OnceLock<Vec<String>>,
}

impl Redactor {
    pub fn new<'s>(secrets: impl IntoIterator<Item = &'s str>) -> Self {
        let mut redactor = Self::default();
        for secret in secrets {
            redactor.add(secret);
        }
        redactor
    }

    /// Adds one secret; an empty value is nothing to hide.
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        self.secrets.push(secret.to_owned());
        self.needles = OnceLock::new();
    }

    /// Adds HTTP Basic credentials as they were sent: the header's base64 of `user:password`
    /// hides a secret from a plain search, so the whole pair is a secret too. `user` and
    /// `password` are the values exactly as they went into the pair; whichever of them is
    /// secret on its own is added by the caller (a password may be a fixed `X`).
    pub fn add_basic(&mut self, user: &str, password: &str) {
        self.add(&format!("{user}:{password}"));
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in self.needles() {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), MASK);
            }
        }
        text
    }

    /// Whether `text` holds any secret.
    pub fn reveals(&self, text: &str) -> bool {
        self.needles().iter().any(|needle| text.contains(needle.as_str()))
    }

    fn needles(&self) -> &[String] {
        self.needles.get_or_init(|| {
            let mut needles: Vec<String> = self.secrets.iter().flat_map(|secret| encodings(secret)).collect();
            needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            needles.dedup();
            needles
        })
    }
}

/// Every way `secret` may come back: raw, form-encoded (`+` for space), percent-encoded (every
/// byte outside the unreserved set), base64 (standard and URL-safe, padded or not), and the
/// inside of a JSON string.
pub fn encodings(secret: &str) -> Vec<String> {
    let form: String = byte_serialize(secret.as_bytes()).collect();
    let percent: String = secret
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    let json = serde_json::Value::String(secret.to_owned()).to_string();
    let json = json[1..json.len() - 1].to_owned();
    let bytes = secret.as_bytes();
    let mut all = vec![
        secret.to_owned(),
        form,
        percent.clone(),
        lowercase_escapes(&percent),
        json,
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    all.sort();
    all.dedup();
    all
}

/// `%2F` as `%2f`: percent-escapes are case-insensitive, the text around them is not.
fn lowercase_escapes(percent: &str) -> String {
    let mut out = String::with_capacity(percent.len());
    let mut hex_left = 0;
    for c in percent.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_of_a_secret_is_masked() {
        let secret = "s3cr3t/+ &\"é";
        let mut redactor = Redactor::new([secret]);
        redactor.add_basic("client id", "s3cr3t/+ &\"é");
        assert!(!redactor.reveals("ABC%2Fdef"), "only the escapes are lowercased");
        let basic = STANDARD.encode("client id:s3cr3t/+ &\"é");
        let texts = [
            secret.to_owned(),
            byte_serialize(secret.as_bytes()).collect(),
            "s3cr3t%2F%2B%20%26%22%C3%A9".to_owned(),
            "s3cr3t%2f%2b%20%26%22%c3%a9".to_owned(),
            serde_json::json!({ "echo": secret }).to_string(),
            format!("Authorization: Basic {basic}"),
            STANDARD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ];
        for text in texts {
            let cleaned = redactor.redact(&text);
            assert!(!redactor.reveals(&cleaned), "{text} -> {cleaned}");
            assert!(cleaned.contains(MASK), "{text} -> {cleaned}");
        }
    }

    #[test]
    fn a_secret_added_after_a_search_is_masked_too() {
        let mut redactor = Redactor::new(["token-1"]);
        assert_eq!(redactor.redact("token-1, token-2"), "***, token-2");
        redactor.add("token-2");
        assert_eq!(redactor.redact("token-1, token-2"), "***, ***");
        assert!(redactor.reveals("dG9rZW4tMg=="), "the new secret's encodings count as well");
    }

    #[test]
    fn text_without_secrets_is_unchanged_and_empty_secrets_hide_nothing() {
        let redactor = Redactor::new(["", "token-1"]);
        assert_eq!(redactor.redact("no secret here"), "no secret here");
        assert_eq!(redactor.redact("token-1 and token-1"), "*** and ***");
    }
}
