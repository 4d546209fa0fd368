//! Seals and opens the secrets Plugboard stores (XChaCha20-Poly1305 under named master keys),
//! each bound to the team and record it belongs to, and re-seals them when keys rotate.
//! It must never log, print or put into an error any key material or plaintext.

mod dev_key_file;
mod envelope;
mod keys;
mod master_key;

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox};

pub use dev_key_file::load_or_create_dev_key_file;
pub use envelope::Binding;
use envelope::Envelope;
pub use keys::{KeyConfigError, generate_master_key_line, parse_master_keys};
pub use master_key::{InvalidKeyId, KeyId, MasterKey};

/// What can go wrong sealing or opening a secret. The messages are safe to log: they name at
/// most a key id, never bytes of the envelope, the key or the plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the sealed secret's envelope is malformed (too short, unknown version or bad header)")]
    Malformed,
    #[error(
        "the secret was sealed with master key `{0}`, which is not configured; \
         add that key to PLUGBOARD_MASTER_KEYS"
    )]
    UnknownKey(KeyId),
    #[error("the secret could not be decrypted: it was tampered with, or belongs to another record")]
    Decrypt,
    #[error("the secret could not be encrypted")]
    Encrypt,
}

/// Seals secrets under the active master key and opens them under any configured one, so keys
/// can rotate: add a new key first in the list, re-seal, then drop the old one.
#[derive(Debug)]
pub struct Sealer {
    /// Never empty; the first key is the active one.
    keys: Vec<MasterKey>,
}

impl Sealer {
    /// The first key is the one new secrets are sealed with; the others only open old ones.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, KeyConfigError> {
        keys::check_key_list(&keys)?;
        Ok(Self { keys })
    }

    /// A sealer with one fixed, public key (id `test`). For tests only: anything it seals is
    /// readable by anyone.
    pub fn for_testing() -> Self {
        let id = KeyId::parse("test").expect("`test` is a valid key id");
        Self { keys: vec![MasterKey::new(id, SecretBox::new(Box::new([0x42; 32])))] }
    }

    pub fn active_key_id(&self) -> &KeyId {
        self.active_key().id()
    }

    /// All configured key ids, the active one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(MasterKey::id)
    }

    /// Encrypts `plaintext` under the active key with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], binding: &Binding) -> Result<Vec<u8>, CryptoError> {
        let key = self.active_key();
        let nonce = XNonce::try_generate().map_err(|_| CryptoError::Encrypt)?;
        let header = envelope::header(key.id());
        let aad = binding.associated_data(&header);
        let ciphertext = cipher(key)
            .encrypt(&nonce, Payload { msg: plaintext, aad: &aad })
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(envelope::assemble(header, &nonce, &ciphertext))
    }

    /// Decrypts a blob sealed by [`Sealer::seal`] with any configured key, checking that it was
    /// sealed for `binding`.
    pub fn open(&self, blob: &[u8], binding: &Binding) -> Result<SecretBox<Vec<u8>>, CryptoError> {
        let envelope = Envelope::parse(blob)?;
        let key =
            self.key(&envelope.key_id).ok_or_else(|| CryptoError::UnknownKey(envelope.key_id.clone()))?;
        let aad = binding.associated_data(envelope.header);
        let plaintext = cipher(key)
            .decrypt(envelope.nonce, Payload { msg: envelope.ciphertext, aad: &aad })
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(SecretBox::new(Box::new(plaintext)))
    }

    /// The id of the key a blob was sealed with, read from its header without decrypting.
    pub fn envelope_key_id(blob: &[u8]) -> Result<KeyId, CryptoError> {
        Envelope::parse(blob).map(|envelope| envelope.key_id)
    }

    /// Whether key rotation can skip this blob. A malformed blob answers `false`, so rotation
    /// tries it and reports the error.
    pub fn is_sealed_with_active_key(&self, blob: &[u8]) -> bool {
        Self::envelope_key_id(blob).is_ok_and(|id| &id == self.active_key_id())
    }

    /// Opens a blob with whatever key sealed it and seals it again under the active key, for the
    /// same binding. Always re-encrypts (with a fresh nonce), even if the key is already active.
    pub fn reseal(&self, blob: &[u8], binding: &Binding) -> Result<Vec<u8>, CryptoError> {
        let plaintext = self.open(blob, binding)?;
        self.seal(plaintext.expose_secret(), binding)
    }

    fn active_key(&self) -> &MasterKey {
        // `new` and `for_testing` never build a sealer without keys.
        &self.keys[0]
    }

    fn key(&self, id: &KeyId) -> Option<&MasterKey> {
        self.keys.iter().find(|key| key.id() == id)
    }
}

fn cipher(key: &MasterKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.bytes().into())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use uuid::Uuid;

    use super::*;

    const SECRET: &[u8] = b"xoxb-super-secret-token";

    fn master_key(id: &str, byte: u8) -> MasterKey {
        MasterKey::new(KeyId::parse(id).expect("valid id"), SecretBox::new(Box::new([byte; 32])))
    }

    fn sealer(keys: &[(&str, u8)]) -> Sealer {
        Sealer::new(keys.iter().map(|&(id, byte)| master_key(id, byte)).collect()).expect("valid key list")
    }

    fn connection(team: u128, record: u128) -> Binding {
        Binding::new("connection", Uuid::from_u128(team), Uuid::from_u128(record))
    }

    fn open_bytes(sealer: &Sealer, blob: &[u8], binding: &Binding) -> Result<Vec<u8>, CryptoError> {
        sealer.open(blob, binding).map(|secret| secret.expose_secret().clone())
    }

    #[test]
    fn sealed_secret_opens_to_the_same_bytes() {
        let sealer = Sealer::for_testing();
        let binding = connection(1, 2);
        for plaintext in [SECRET, b"", &[0u8; 4096]] {
            let blob = sealer.seal(plaintext, &binding).expect("seal");
            assert_eq!(open_bytes(&sealer, &blob, &binding).expect("open"), plaintext);
        }
    }

    #[test]
    fn envelope_is_version_key_id_nonce_then_ciphertext_and_tag() {
        let sealer = sealer(&[("k1", 1)]);
        let blob = sealer.seal(SECRET, &connection(1, 2)).expect("seal");
        assert_eq!(&blob[..4], b"\x01\x02k1");
        assert_eq!(blob.len(), 4 + 24 + SECRET.len() + 16);
        assert!(!blob.windows(SECRET.len()).any(|window| window == SECRET));
    }

    #[test]
    fn sealing_twice_uses_a_fresh_nonce() {
        let sealer = Sealer::for_testing();
        let binding = connection(1, 2);
        let first = sealer.seal(SECRET, &binding).expect("seal");
        let second = sealer.seal(SECRET, &binding).expect("seal");
        assert_ne!(first[6..30], second[6..30]);
    }

    #[test]
    fn opening_with_another_team_record_or_purpose_fails_to_decrypt() {
        let sealer = Sealer::for_testing();
        let blob = sealer.seal(SECRET, &connection(1, 2)).expect("seal");
        let others = [
            connection(9, 2),
            connection(1, 9),
            Binding::new("webhook", Uuid::from_u128(1), Uuid::from_u128(2)),
        ];
        for other in others {
            let result = open_bytes(&sealer, &blob, &other);
            assert!(matches!(result, Err(CryptoError::Decrypt)), "{other:?}");
        }
    }

    #[test]
    fn blob_copied_onto_another_row_fails_to_open() {
        let sealer = Sealer::for_testing();
        let (row_a, row_b) = (connection(1, 10), connection(1, 11));
        let blob_a = sealer.seal(b"secret of a", &row_a).expect("seal");
        let blob_b = sealer.seal(b"secret of b", &row_b).expect("seal");
        assert!(matches!(sealer.open(&blob_a, &row_b), Err(CryptoError::Decrypt)));
        assert!(matches!(sealer.open(&blob_b, &row_a), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn unknown_key_id_names_the_key_and_the_variable() {
        let binding = connection(1, 2);
        let blob = sealer(&[("old-key", 1)]).seal(SECRET, &binding).expect("seal");
        let error = sealer(&[("new-key", 2)]).open(&blob, &binding).expect_err("unknown key");
        assert!(matches!(&error, CryptoError::UnknownKey(id) if id.as_str() == "old-key"));
        let message = error.to_string();
        assert!(message.contains("old-key"), "{message}");
        assert!(message.contains("PLUGBOARD_MASTER_KEYS"), "{message}");
    }

    #[test]
    fn flipping_any_bit_of_nonce_ciphertext_or_tag_fails_to_decrypt() {
        let sealer = Sealer::for_testing();
        let binding = connection(1, 2);
        let blob = sealer.seal(SECRET, &binding).expect("seal");
        let header_len = 2 + "test".len();
        for index in header_len..blob.len() {
            let mut tampered = blob.clone();
            tampered[index] ^= 0x01;
            let result = open_bytes(&sealer, &tampered, &binding);
            assert!(matches!(result, Err(CryptoError::Decrypt)), "byte {index}");
        }
    }

    #[test]
    fn rewritten_key_id_fails_even_when_both_ids_share_the_key_bytes() {
        let sealer = sealer(&[("k1", 7), ("k2", 7)]);
        let binding = connection(1, 2);
        let mut blob = sealer.seal(SECRET, &binding).expect("seal");
        blob[3] = b'2';
        assert_eq!(Sealer::envelope_key_id(&blob).expect("header").as_str(), "k2");
        assert!(matches!(sealer.open(&blob, &binding), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn truncated_or_unknown_version_blob_is_malformed_and_message_shows_no_bytes() {
        let sealer = Sealer::for_testing();
        let binding = connection(1, 2);
        let blob = sealer.seal(SECRET, &binding).expect("seal");
        let mut other_version = blob.clone();
        other_version[0] = 2;
        for bad in [&blob[..10], &[][..], &other_version] {
            let error = sealer.open(bad, &binding).expect_err("malformed");
            assert!(matches!(error, CryptoError::Malformed));
            assert!(error.to_string().contains("malformed"));
        }
    }

    #[test]
    fn sealer_with_new_and_old_keys_opens_blobs_of_both() {
        let binding = connection(1, 2);
        let old_blob = sealer(&[("old", 1)]).seal(b"old secret", &binding).expect("seal");
        let rotated = sealer(&[("new", 2), ("old", 1)]);
        let new_blob = rotated.seal(b"new secret", &binding).expect("seal");
        assert_eq!(open_bytes(&rotated, &old_blob, &binding).expect("open old"), b"old secret");
        assert_eq!(open_bytes(&rotated, &new_blob, &binding).expect("open new"), b"new secret");
        assert_eq!(Sealer::envelope_key_id(&new_blob).expect("header").as_str(), "new");
    }

    #[test]
    fn reseal_moves_a_blob_to_the_active_key() {
        let binding = connection(1, 2);
        let old_blob = sealer(&[("old", 1)]).seal(SECRET, &binding).expect("seal");
        let rotated = sealer(&[("new", 2), ("old", 1)]);
        assert!(!rotated.is_sealed_with_active_key(&old_blob));

        let resealed = rotated.reseal(&old_blob, &binding).expect("reseal");

        assert!(rotated.is_sealed_with_active_key(&resealed));
        let only_new = sealer(&[("new", 2)]);
        assert_eq!(open_bytes(&only_new, &resealed, &binding).expect("open"), SECRET);
    }

    #[test]
    fn reseal_keeps_the_binding_check() {
        let sealer = Sealer::for_testing();
        let blob = sealer.seal(SECRET, &connection(1, 2)).expect("seal");
        assert!(matches!(sealer.reseal(&blob, &connection(1, 3)), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn malformed_blob_is_not_sealed_with_the_active_key() {
        assert!(!Sealer::for_testing().is_sealed_with_active_key(b"\x01"));
    }

    #[test]
    fn key_ids_lists_the_active_key_first() {
        let sealer = sealer(&[("new", 2), ("old", 1)]);
        assert_eq!(sealer.active_key_id().as_str(), "new");
        let ids: Vec<&str> = sealer.key_ids().map(KeyId::as_str).collect();
        assert_eq!(ids, ["new", "old"]);
    }

    #[test]
    fn new_rejects_an_empty_list_and_duplicate_ids() {
        assert!(matches!(Sealer::new(Vec::new()), Err(KeyConfigError::Empty)));
        let duplicate = Sealer::new(vec![master_key("k1", 1), master_key("k1", 2)]);
        assert!(matches!(duplicate, Err(KeyConfigError::DuplicateKeyId { position: 2, .. })));
    }

    #[test]
    fn debug_of_master_key_and_sealer_shows_ids_but_no_key_bytes() {
        let key_bytes = [0x5A; 32];
        let sealer = sealer(&[("k1", 0x5A)]);
        let debug = format!("{sealer:?} {:?}", master_key("k1", 0x5A));
        assert!(debug.contains("k1"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        assert!(!debug.contains(&STANDARD.encode(key_bytes)), "{debug}");
        assert!(!debug.contains("90"), "decimal byte values leaked: {debug}");
        assert!(!debug.to_lowercase().contains("5a"), "hex byte values leaked: {debug}");
    }

    #[test]
    fn errors_never_contain_the_plaintext() {
        let sealer = Sealer::for_testing();
        let blob = sealer.seal(SECRET, &connection(1, 2)).expect("seal");
        let error = sealer.open(&blob, &connection(1, 3)).expect_err("wrong binding");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("xoxb"), "{shown}");
    }
}
