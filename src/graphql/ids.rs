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
}
