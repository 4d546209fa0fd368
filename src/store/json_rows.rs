//! A batch of rows bound as one JSON parameter, read back in SQL as a table.
//!
//! The scheduler writes hundreds of rows per statement. Bound value by value, a batch of 500
//! results is 6,000 parameters, each copied into its own allocation, and a statement text that
//! changes with the batch's size, so SQLite prepares it again for nearly every batch, all while
//! the transaction holds the one writer. As one JSON array of arrays the text never changes
//! (each pooled connection prepares it once) and there is one parameter to bind.
//!
//! Each value is written as the database driver would bind it: on SQLite a UUID is its 16
//! bytes (`unhex` of its hex digits) and a timestamp the RFC 3339 text sqlx writes; on
//! PostgreSQL both are cast from text, a timestamp cut to the microseconds sqlx sends.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sea_orm::DatabaseBackend;
use sea_orm::sea_query::{BinOper, Expr, ExprTrait, IntoColumnRef};

/// How a column of the batch is read back in SQL.
#[derive(Clone, Copy)]
pub enum Kind {
    Uuid,
    Text,
    Time,
    Integer,
}

/// The first two parameters' placeholders, as the backend writes them.
pub fn placeholders(backend: DatabaseBackend) -> (&'static str, &'static str) {
    match backend {
        DatabaseBackend::Postgres => ("$1", "$2"),
        _ => ("?1", "?2"),
    }
}

/// `SELECT <columns> FROM <the rows of parameter `param`>`, each column named as given.
pub fn select(backend: DatabaseBackend, param: &str, columns: &[(&str, Kind)]) -> String {
    let mut sql = String::from("SELECT ");
    for (index, (name, kind)) in columns.iter().enumerate() {
        if index > 0 {
            sql.push_str(", ");
        }
        let value = match backend {
            DatabaseBackend::Postgres => format!("r ->> {index}"),
            _ => format!("r.value ->> {index}"),
        };
        let read = match (backend, kind) {
            (DatabaseBackend::Postgres, Kind::Uuid) => format!("({value})::uuid"),
            (DatabaseBackend::Postgres, Kind::Time) => format!("({value})::timestamptz"),
            (DatabaseBackend::Postgres, Kind::Integer) => format!("({value})::integer"),
            (_, Kind::Uuid) => format!("unhex({value})"),
            (_, Kind::Text | Kind::Time | Kind::Integer) => value,
        };
        sql.push_str(&format!("{read} AS {name}"));
    }
    sql.push_str(&from(backend, param));
    sql
}

/// ` FROM <the elements of parameter `param`>`, each element named `r`.
fn from(backend: DatabaseBackend, param: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => format!(" FROM jsonb_array_elements({param}::jsonb) AS r"),
        // `jsonb_each` hands each row over as JSONB, which `->>` reads without parsing it again;
        // `json_each` would hand it over as text, parsed again for every column.
        _ => format!(" FROM jsonb_each({param}) AS r"),
    }
}

/// `SELECT <each element, a UUID> AS id` of parameter `param`, a JSON array of ids (`ids`).
pub fn select_ids(backend: DatabaseBackend, param: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("SELECT (r #>> '{{}}')::uuid AS id{}", from(backend, param)),
        _ => format!("SELECT unhex(r.value) AS id{}", from(backend, param)),
    }
}

/// `<column> IN (<ids>)` for a query built with sea-query, the ids bound as one JSON array
/// (`select_ids`): one value to bind however many ids there are, and a statement text that does
/// not change with their number.
pub fn is_in(
    backend: DatabaseBackend,
    column: impl IntoColumnRef,
    list: impl IntoIterator<Item = uuid::Uuid>,
) -> Expr {
    // sea-query numbers `$1` in a custom expression on PostgreSQL; elsewhere it takes `?`.
    let param = match backend {
        DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    // sea-query puts the right side of `IN` in brackets.
    let ids_table = Expr::cust_with_values(select_ids(backend, param), [ids(list)]);
    Expr::col(column).binary(BinOper::In, ids_table)
}

/// A JSON array of ids, for `select_ids`.
pub fn ids(ids: impl IntoIterator<Item = uuid::Uuid>) -> String {
    let mut out = String::from("[");
    for (index, id) in ids.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_uuid(&mut out, id);
    }
    out.push(']');
    out
}

/// A UUID as a JSON string of its hex digits, which both backends read back (see `select`).
fn push_uuid(out: &mut String, id: uuid::Uuid) {
    out.push('"');
    out.push_str(id.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
    out.push('"');
}

/// Writes the JSON array of rows, a row at a time, values in the order of `select`'s columns.
pub struct Rows {
    backend: DatabaseBackend,
    out: String,
    rows: usize,
    values: usize,
}

impl Rows {
    pub fn new(backend: DatabaseBackend) -> Self {
        Rows { backend, out: String::from("["), rows: 0, values: 0 }
    }

    /// Starts the next row.
    pub fn row(&mut self) -> &mut Self {
        if self.rows > 0 {
            self.out.push_str("],");
        }
        self.out.push('[');
        self.rows += 1;
        self.values = 0;
        self
    }

    pub fn uuid(&mut self, id: uuid::Uuid) -> &mut Self {
        self.separate();
        push_uuid(&mut self.out, id);
        self
    }

    pub fn text(&mut self, text: Option<&str>) -> &mut Self {
        self.separate();
        match text {
            // Writing into a String cannot fail, nor can encoding a str.
            Some(text) => self.out.push_str(&serde_json::to_string(text).unwrap_or_default()),
            None => self.out.push_str("null"),
        }
        self
    }

    pub fn time(&mut self, time: Option<DateTime<Utc>>) -> &mut Self {
        let text = time.map(|time| match self.backend {
            DatabaseBackend::Postgres => time.trunc_subsecs(6).to_rfc3339_opts(SecondsFormat::Micros, true),
            // What sqlx binds: `to_rfc3339_opts(SecondsFormat::AutoSi, false)`.
            _ => crate::rfc3339::write(&time),
        });
        self.text(text.as_deref())
    }

    pub fn integer(&mut self, value: i64) -> &mut Self {
        self.separate();
        self.out.push_str(&value.to_string());
        self
    }

    /// The array, ready to bind as text.
    pub fn finish(mut self) -> String {
        if self.rows > 0 {
            self.out.push(']');
        }
        self.out.push(']');
        self.out
    }

    fn separate(&mut self) {
        if self.values > 0 {
            self.out.push(',');
        }
        self.values += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_an_array_of_arrays_with_values_escaped() {
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let at = DateTime::parse_from_rfc3339("2026-12-01T03:04:05.123456789Z").unwrap().to_utc();
        let mut rows = Rows::new(DatabaseBackend::Sqlite);
        rows.row().uuid(id).text(Some("say \"hi\"\n")).time(Some(at)).integer(-3);
        rows.row().uuid(id).text(None).time(None).integer(0);
        let json: serde_json::Value = serde_json::from_str(&rows.finish()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                [
                    "0123456789abcdef0123456789abcdef",
                    "say \"hi\"\n",
                    "2026-12-01T03:04:05.123456789+00:00",
                    -3
                ],
                ["0123456789abcdef0123456789abcdef", null, null, 0],
            ])
        );
        assert_eq!(Rows::new(DatabaseBackend::Sqlite).finish(), "[]");
    }

    #[test]
    fn postgres_times_are_cut_to_microseconds_as_the_driver_sends_them() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T03:04:05.123456789Z").unwrap().to_utc();
        let mut rows = Rows::new(DatabaseBackend::Postgres);
        rows.row().time(Some(at));
        assert_eq!(rows.finish(), r#"[["2026-12-01T03:04:05.123456Z"]]"#);
    }

    #[test]
    fn an_id_list_is_one_parameter_numbered_where_it_falls() {
        use sea_orm::sea_query::{Alias, PostgresQueryBuilder, Query, SqliteQueryBuilder};
        let id = uuid::Uuid::from_u128(0xabcdef);
        let query = |backend| {
            Query::select()
                .column(Alias::new("id"))
                .from(Alias::new("connections"))
                .and_where(Expr::col(Alias::new("claimed_by")).eq("sweep"))
                .and_where(is_in(backend, Alias::new("id"), [id, id]))
                .to_owned()
        };
        let ids = format!(r#"["{0}","{0}"]"#, id.simple());
        let (sql, values) = query(DatabaseBackend::Postgres).build(PostgresQueryBuilder);
        assert_eq!(
            sql,
            r#"SELECT "id" FROM "connections" WHERE "claimed_by" = $1 AND "id" IN (SELECT (r #>> '{}')::uuid AS id FROM jsonb_array_elements($2::jsonb) AS r)"#
        );
        assert_eq!(values.0, vec!["sweep".into(), ids.clone().into()]);
        let (sql, values) = query(DatabaseBackend::Sqlite).build(SqliteQueryBuilder);
        assert_eq!(
            sql,
            r#"SELECT "id" FROM "connections" WHERE "claimed_by" = ? AND "id" IN (SELECT unhex(r.value) AS id FROM jsonb_each(?) AS r)"#
        );
        assert_eq!(values.0, vec!["sweep".into(), ids.into()]);
    }
}
