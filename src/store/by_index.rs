//! Reading a row's columns by position, straight from sqlx, for the hot read paths.
//!
//! sea-orm's own decoding looks every column up by name and turns every NULL into an error
//! value with a formatted message before it becomes `None`; a page of 50 rows paid for that
//! about a thousand times. A query that reads here must select its columns in the order it
//! decodes them.

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, Row as _};
use sea_orm::{DbErr, QueryResult};

use super::stored_time;

/// One row of either backend.
pub(super) enum Row<'a> {
    Postgres(&'a sqlx::postgres::PgRow),
    Sqlite(&'a sqlx::sqlite::SqliteRow),
}

impl<'a> Row<'a> {
    pub(super) fn of(result: &'a QueryResult) -> Result<Self, DbErr> {
        if let Some(row) = result.try_as_pg_row() {
            return Ok(Row::Postgres(row));
        }
        if let Some(row) = result.try_as_sqlite_row() {
            return Ok(Row::Sqlite(row));
        }
        Err(DbErr::Custom("a row of a backend the store does not read by position".into()))
    }

    /// The value at `index`, or a type error naming the column's position.
    pub(super) fn get<T>(&self, index: usize) -> Result<T, DbErr>
    where
        T: sqlx::Decode<'a, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + sqlx::Decode<'a, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>,
    {
        match *self {
            Row::Postgres(row) => row.try_get(index),
            Row::Sqlite(row) => row.try_get(index),
        }
        .map_err(|err| DbErr::Type(format!("column {index}: {err}")))
    }

    /// A text column borrowed from the row, without a copy.
    pub(super) fn str(&self, index: usize) -> Result<&'a str, DbErr> {
        match *self {
            Row::Postgres(row) => row.try_get::<&'a str, _>(index),
            Row::Sqlite(row) => row.try_get::<&'a str, _>(index),
        }
        .map_err(|err| DbErr::Type(format!("column {index}: {err}")))
    }

    /// A timestamp column. On SQLite, the text sqlx wrote is read directly (see
    /// `stored_time`); any other shape goes through sqlx's decoding.
    pub(super) fn time(&self, index: usize) -> Result<DateTime<Utc>, DbErr> {
        self.time_opt(index)?
            .ok_or_else(|| DbErr::Type(format!("column {index}: a null where a time must be")))
    }

    /// A nullable timestamp column.
    pub(super) fn time_opt(&self, index: usize) -> Result<Option<DateTime<Utc>>, DbErr> {
        if let Row::Sqlite(row) = *self
            && let Ok(text) = row.try_get_unchecked::<Option<&'a str>, _>(index)
        {
            match text.map(stored_time::parse) {
                None => return Ok(None),
                Some(Some(at)) => return Ok(Some(at)),
                Some(None) => {}
            }
        }
        self.get(index)
    }

    /// A JSON column (`json` on PostgreSQL, text on SQLite) parsed into `T`.
    pub(super) fn json<T: serde::de::DeserializeOwned>(&self, index: usize) -> Result<T, DbErr> {
        self.get::<sqlx::types::Json<T>>(index).map(|json| json.0)
    }

    /// A nullable JSON column.
    pub(super) fn json_opt<T: serde::de::DeserializeOwned>(&self, index: usize) -> Result<Option<T>, DbErr> {
        self.get::<Option<sqlx::types::Json<T>>>(index).map(|json| json.map(|j| j.0))
    }
}
