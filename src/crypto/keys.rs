//! Reads master keys from `PLUGBOARD_MASTER_KEYS` and makes new ones.
//! Errors say which entry is wrong and why, by position and key id; they never show key text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretBox;
use secrecy::zeroize::Zeroizing;

use super::{InvalidKeyId, KeyId, MasterKey};

const KEY_LEN: usize = 32;

/// Why the configured master keys cannot be used. Entries are counted from 1.
#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error(
        "PLUGBOARD_MASTER_KEYS is empty: set it to `kid:base64key` (several comma-separated, \
         the first is active); generate a key with `openssl rand -base64 32`"
    )]
    Empty,
    #[error("PLUGBOARD_MASTER_KEYS entry {position} is empty: remove the extra comma")]
    EmptyEntry { position: usize },
    #[error("PLUGBOARD_MASTER_KEYS entry {position} has no `:`; each entry must be `kid:base64key`")]
    MissingColon { position: usize },
    #[error("PLUGBOARD_MASTER_KEYS entry {position} has a bad key id: {reason}")]
    BadKeyId { position: usize, reason: InvalidKeyId },
    #[error(
        "PLUGBOARD_MASTER_KEYS entry {position} (key id `{key_id}`): the key is not valid \
         standard base64 (A-Z a-z 0-9 + / with = padding); it must be 32 bytes, base64-encoded; \
         generate one with `openssl rand -base64 32`"
    )]
    BadBase64 { position: usize, key_id: KeyId },
    #[error(
        "PLUGBOARD_MASTER_KEYS entry {position} (key id `{key_id}`): the key is {len} bytes; \
         it must be 32 bytes, base64-encoded; generate one with `openssl rand -base64 32`"
    )]
    WrongLength { position: usize, key_id: KeyId, len: usize },
    #[error(
        "PLUGBOARD_MASTER_KEYS entry {position} repeats key id `{key_id}` of entry \
         {first_position}; each key id must be unique"
    )]
    DuplicateKeyId { position: usize, key_id: KeyId, first_position: usize },
}

/// Parses `kid:base64key,kid2:base64key2` (the first key is active). Whitespace around entries,
/// key ids and keys is ignored.
pub fn parse_master_keys(value: &str) -> Result<Vec<MasterKey>, KeyConfigError> {
    if value.trim().is_empty() {
        return Err(KeyConfigError::Empty);
    }
    let keys = value
        .split(',')
        .enumerate()
        .map(|(index, entry)| parse_entry(index + 1, entry.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    check_key_list(&keys)?;
    Ok(keys)
}

fn parse_entry(position: usize, entry: &str) -> Result<MasterKey, KeyConfigError> {
    if entry.is_empty() {
        return Err(KeyConfigError::EmptyEntry { position });
    }
    let (id, encoded) = entry.split_once(':').ok_or(KeyConfigError::MissingColon { position })?;
    let key_id = KeyId::parse(id.trim()).map_err(|reason| KeyConfigError::BadKeyId { position, reason })?;
    let Ok(decoded) = STANDARD.decode(encoded.trim()).map(Zeroizing::new) else {
        // The decode error is dropped on purpose: it quotes the offending byte of the key.
        return Err(KeyConfigError::BadBase64 { position, key_id });
    };
    if decoded.len() != KEY_LEN {
        return Err(KeyConfigError::WrongLength { position, key_id, len: decoded.len() });
    }
    let key = SecretBox::init_with_mut(|bytes: &mut [u8; KEY_LEN]| bytes.copy_from_slice(&decoded));
    Ok(MasterKey::new(key_id, key))
}

/// The rules every key list obeys, wherever it came from: not empty, no id twice.
pub(super) fn check_key_list(keys: &[MasterKey]) -> Result<(), KeyConfigError> {
    if keys.is_empty() {
        return Err(KeyConfigError::Empty);
    }
    for (index, key) in keys.iter().enumerate() {
        if let Some(first) = keys[..index].iter().position(|earlier| earlier.id() == key.id()) {
            return Err(KeyConfigError::DuplicateKeyId {
                position: index + 1,
                key_id: key.id().clone(),
                first_position: first + 1,
            });
        }
    }
    Ok(())
}

/// A new `kid:base64key` entry for `PLUGBOARD_MASTER_KEYS`, from 32 random bytes. `kid` is not
/// checked here; an invalid one is reported when the line is parsed.
///
/// # Panics
/// If the operating system's random number generator fails: there is then no safe way to make
/// a key.
pub fn generate_master_key_line(kid: &str) -> String {
    try_generate_master_key_line(kid).expect("the operating system's random generator failed")
}

pub(super) fn try_generate_master_key_line(kid: &str) -> Result<String, getrandom::Error> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut_slice())?;
    let mut line = format!("{kid}:");
    STANDARD.encode_string(key.as_slice(), &mut line);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    /// Its base64 contains `+` and `/`, so it also tests that standard base64 is expected.
    fn key_text() -> String {
        encoded(&[0xFB; KEY_LEN])
    }

    fn ids(keys: &[MasterKey]) -> Vec<&str> {
        keys.iter().map(|key| key.id().as_str()).collect()
    }

    #[test]
    fn parses_entries_in_order_ignoring_surrounding_whitespace() {
        let value = format!(" new : {} ,\n old:{}\n", key_text(), encoded(&[1; KEY_LEN]));
        let keys = parse_master_keys(&value).expect("valid keys");
        assert_eq!(ids(&keys), ["new", "old"]);
        assert_eq!(keys[0].bytes(), &[0xFB; KEY_LEN]);
        assert_eq!(keys[1].bytes(), &[1; KEY_LEN]);
    }

    /// Every parse error names the variable and never repeats key text.
    fn parse_error(value: &str) -> (KeyConfigError, String) {
        let Err(error) = parse_master_keys(value) else {
            panic!("{value:?} should not parse");
        };
        let message = error.to_string();
        assert!(message.contains("PLUGBOARD_MASTER_KEYS"), "{message}");
        assert!(!message.contains(&key_text()), "{message}");
        assert!(!message.contains("+/v7"), "{message}");
        (error, message)
    }

    #[test]
    fn empty_value_is_rejected() {
        for value in ["", "  \n"] {
            assert!(matches!(parse_error(value).0, KeyConfigError::Empty));
        }
    }

    #[test]
    fn empty_entry_is_rejected_with_its_position() {
        let (error, message) = parse_error(&format!("k1:{},", key_text()));
        assert!(matches!(error, KeyConfigError::EmptyEntry { position: 2 }));
        assert!(message.contains("entry 2"), "{message}");
    }

    #[test]
    fn entry_without_colon_is_rejected_without_echoing_it() {
        let (error, message) = parse_error(&key_text());
        assert!(matches!(error, KeyConfigError::MissingColon { position: 1 }));
        assert!(message.contains("entry 1") && message.contains("kid:base64key"), "{message}");
    }

    #[test]
    fn bad_key_id_is_rejected_without_echoing_it() {
        let (error, message) = parse_error(&format!("k1:{k},bad id:{k}", k = key_text()));
        assert!(matches!(
            error,
            KeyConfigError::BadKeyId { position: 2, reason: InvalidKeyId::BadCharacter }
        ));
        assert!(message.contains("entry 2") && !message.contains("bad id"), "{message}");
    }

    #[test]
    fn key_and_id_swapped_is_rejected_without_echoing_the_key() {
        let (error, _) = parse_error(&format!("{}:k1", key_text()));
        assert!(matches!(error, KeyConfigError::BadKeyId { position: 1, .. }));
    }

    #[test]
    fn bad_base64_is_rejected_with_position_and_key_id_only() {
        let mut text = key_text();
        text.replace_range(5..6, "*");
        let (error, message) = parse_error(&format!("k1:{text}"));
        assert!(matches!(error, KeyConfigError::BadBase64 { position: 1, .. }));
        assert!(message.contains("`k1`") && !message.contains(&text), "{message}");
        let (error, _) = parse_error(&format!("k1:{}", encoded(&[0xFB; KEY_LEN]).replace('+', "-")));
        assert!(matches!(error, KeyConfigError::BadBase64 { .. }), "url-safe base64 is not standard");
    }

    #[test]
    fn wrong_key_length_says_how_to_generate_a_key() {
        let short = encoded(&[0xFB; 16]);
        let (error, message) = parse_error(&format!("k1:{short}"));
        assert!(matches!(error, KeyConfigError::WrongLength { position: 1, len: 16, .. }));
        assert!(message.contains("must be 32 bytes, base64-encoded"), "{message}");
        assert!(message.contains("openssl rand -base64 32"), "{message}");
        assert!(!message.contains(&short), "{message}");
    }

    #[test]
    fn duplicate_key_id_names_both_entries() {
        let value = format!("k1:{},k1:{}", key_text(), encoded(&[1; KEY_LEN]));
        let (error, message) = parse_error(&value);
        assert!(matches!(error, KeyConfigError::DuplicateKeyId { position: 2, first_position: 1, .. }));
        assert!(message.contains("`k1`") && message.contains("entry 1"), "{message}");
    }

    #[test]
    fn generated_line_parses_to_a_random_key_with_that_id() {
        let first = generate_master_key_line("k7");
        let second = generate_master_key_line("k7");
        assert_ne!(first, second);
        let keys = parse_master_keys(&first).expect("generated line parses");
        assert_eq!(ids(&keys), ["k7"]);
    }
}
