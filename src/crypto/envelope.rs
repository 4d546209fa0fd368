//! The stored layout of a sealed secret and the associated data that binds it to its row.
//! Every byte here is part of what is in the database: change it only by adding a new version.

use chacha20poly1305::XNonce;
use uuid::Uuid;

use super::{CryptoError, KeyId};

/// First byte of every envelope, so a future format can be told apart from this one.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Separates our associated data from that of any other use of the same key.
const AAD_DOMAIN: &[u8] = b"plugboard/v1/";

/// What a sealed secret belongs to. It is authenticated (not stored) with the ciphertext, so a
/// blob copied onto another row, team or kind of record fails to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    purpose: &'static str,
    team_id: Uuid,
    record_id: Uuid,
}

impl Binding {
    /// `purpose` names the kind of record (`"connection"`, `"webhook"`); it is fixed in code,
    /// because a secret sealed under one purpose can never be opened under another.
    pub fn new(purpose: &'static str, team_id: Uuid, record_id: Uuid) -> Self {
        Self { purpose, team_id, record_id }
    }

    /// `header || "plugboard/v1/" || purpose || "/" || team id || record id`.
    ///
    /// The header is length-prefixed and the ids have a fixed length, so no two different
    /// (key id, purpose, team, record) tuples give the same bytes. Covering the header means a
    /// rewritten key id or version fails to open, even if two key ids share the same bytes.
    pub(super) fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        [
            header,
            AAD_DOMAIN,
            self.purpose.as_bytes(),
            b"/",
            self.team_id.as_bytes(),
            self.record_id.as_bytes(),
        ]
        .concat()
    }
}

/// `version | key id length | key id`: the part of an envelope written before the nonce.
pub(super) fn header(key_id: &KeyId) -> Vec<u8> {
    let id = key_id.as_str().as_bytes();
    // A KeyId is at most 32 ASCII bytes, so its length always fits in one byte.
    let id_len = u8::try_from(id.len()).expect("a key id is at most 32 bytes");
    [&[VERSION, id_len][..], id].concat()
}

/// `header | nonce | ciphertext+tag`, the bytes that are stored.
pub(super) fn assemble(header: Vec<u8>, nonce: &XNonce, ciphertext: &[u8]) -> Vec<u8> {
    let mut blob = header;
    blob.reserve(nonce.len() + ciphertext.len());
    blob.extend_from_slice(nonce);
    blob.extend_from_slice(ciphertext);
    blob
}

/// A stored envelope split into its parts, without decrypting anything.
pub(super) struct Envelope<'a> {
    pub header: &'a [u8],
    pub key_id: KeyId,
    pub nonce: &'a XNonce,
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Self, CryptoError> {
        let (&version, rest) = blob.split_first().ok_or(CryptoError::Malformed)?;
        if version != VERSION {
            return Err(CryptoError::Malformed);
        }
        let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
        let (id, rest) = rest.split_at_checked(usize::from(id_len)).ok_or(CryptoError::Malformed)?;
        let key_id = std::str::from_utf8(id)
            .ok()
            .and_then(|id| KeyId::parse(id).ok())
            .ok_or(CryptoError::Malformed)?;
        let (nonce, ciphertext) = rest.split_at_checked(NONCE_LEN).ok_or(CryptoError::Malformed)?;
        if ciphertext.len() < TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        Ok(Self {
            header: &blob[..2 + id.len()],
            key_id,
            nonce: nonce.try_into().map_err(|_| CryptoError::Malformed)?,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_id(id: &str) -> KeyId {
        KeyId::parse(id).expect("valid key id")
    }

    #[test]
    fn header_is_version_length_and_key_id() {
        assert_eq!(header(&key_id("k1")), b"\x01\x02k1");
    }

    #[test]
    fn assembled_envelope_parses_back_into_its_parts() {
        let nonce = XNonce::from([7; NONCE_LEN]);
        let blob = assemble(header(&key_id("k1")), &nonce, &[9; TAG_LEN + 3]);
        let envelope = Envelope::parse(&blob).expect("well-formed envelope");
        assert_eq!(envelope.header, b"\x01\x02k1");
        assert_eq!(envelope.key_id, key_id("k1"));
        assert_eq!(envelope.nonce, &nonce);
        assert_eq!(envelope.ciphertext, &[9; TAG_LEN + 3]);
    }

    #[test]
    fn short_bad_version_and_bad_header_envelopes_are_malformed() {
        let good = assemble(header(&key_id("k1")), &XNonce::from([0; NONCE_LEN]), &[0; TAG_LEN]);
        let mut bad_version = good.clone();
        bad_version[0] = 2;
        let mut empty_id = good.clone();
        empty_id[1] = 0;
        let mut id_past_end = good.clone();
        id_past_end[1] = 255;
        let mut bad_id_char = good.clone();
        bad_id_char[2] = b'/';
        let cases: [(&str, &[u8]); 7] = [
            ("empty", &[]),
            ("version only", &[VERSION]),
            ("bad version", &bad_version),
            ("empty key id", &empty_id),
            ("key id past the end", &id_past_end),
            ("bad key id character", &bad_id_char),
            ("no room for the tag", &good[..good.len() - 1]),
        ];
        for (case, blob) in cases {
            assert!(matches!(Envelope::parse(blob), Err(CryptoError::Malformed)), "{case}");
        }
    }

    #[test]
    fn associated_data_covers_header_purpose_team_and_record() {
        let (team, record) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let aad = Binding::new("connection", team, record).associated_data(b"\x01\x02k1");
        let expected =
            [&b"\x01\x02k1plugboard/v1/connection/"[..], team.as_bytes(), record.as_bytes()].concat();
        assert_eq!(aad, expected);
    }
}
