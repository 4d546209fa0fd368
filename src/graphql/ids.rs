//! Parsing ids and cursors that clients send. A malformed one is bad input naming its argument.

use std::str::FromStr;

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{AppError, AppResult};

pub fn parse_id<T: FromStr>(id: &ID, argument: &str) -> AppResult<T> {
    id.parse()
        .map_err(|_| AppError::bad_input(argument, format!("{:?} is not a valid id (a UUID)", id.as_str())))
}

/// An opaque cursor: the kind of list and the position's id, so cursors of one list are not
/// accepted by another.
pub fn encode_cursor(kind: &str, id: impl std::fmt::Display) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

/// `encode_cursor(kind, id)` for a UUID, written without the formatting machinery (a page
/// writes one per edge).
pub fn encode_uuid_cursor(kind: &str, id: uuid::Uuid) -> String {
    let mut raw = [0u8; 64 + uuid::fmt::Hyphenated::LENGTH];
    let len = kind.len() + 1 + uuid::fmt::Hyphenated::LENGTH;
    if len > raw.len() {
        return encode_cursor(kind, id);
    }
    raw[..kind.len()].copy_from_slice(kind.as_bytes());
    raw[kind.len()] = b':';
    id.hyphenated().encode_lower(&mut raw[kind.len() + 1..len]);
    URL_SAFE_NO_PAD.encode(&raw[..len])
}

pub fn decode_cursor<T: FromStr>(kind: &str, cursor: &str, argument: &str) -> AppResult<T> {
    let bad =
        || AppError::bad_input(argument, "not a cursor from this list; pass an endCursor you were given");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let id = text.strip_prefix(kind).and_then(|rest| rest.strip_prefix(':')).ok_or_else(bad)?;
    id.parse().map_err(|_| bad())
}

/// The page size a client gets when it sends none (or null).
pub const DEFAULT_PAGE_SIZE: i32 = 50;

/// Checks a page size against the maximum a client may ask for.
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;

pub fn page_size(first: Option<i32>, max: i32) -> AppResult<u64> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=max).contains(&first) {
        return Err(AppError::bad_input("first", format!("must be between 1 and {max}")));
    }
    Ok(first as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ConnectionId;

    #[test]
    fn cursors_round_trip_and_refuse_other_lists() {
        let id = ConnectionId::new();
        let cursor = encode_cursor("connection", id);
        assert_eq!(decode_cursor::<ConnectionId>("connection", &cursor, "after").unwrap(), id);
        assert!(decode_cursor::<ConnectionId>("audit", &cursor, "after").is_err());
        assert!(decode_cursor::<ConnectionId>("connection", "garbage!", "after").is_err());
    }

    #[test]
    fn uuid_cursors_are_the_cursors_encode_cursor_writes() {
        for id in [uuid::Uuid::nil(), uuid::Uuid::max(), uuid::Uuid::new_v4(), uuid::Uuid::now_v7()] {
            for kind in ["connection", "api-call", "", &"k".repeat(64), &"k".repeat(65)] {
                assert_eq!(encode_uuid_cursor(kind, id), encode_cursor(kind, id));
            }
        }
    }
}
