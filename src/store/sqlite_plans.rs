//! Keeps SQLite's prepared statements prepared.
//!
//! SQLite plans a statement for the values bound to it when they could change the plan: a
//! `LIMIT ?` (every `one()` and every page), a bound `LIKE` pattern. Such a statement is marked
//! expired whenever its bindings are cleared, which sqlx does before every execution, so SQLite
//! parsed and planned it again every time: a profile of the list scenario spent an eighth of all
//! its instructions re-preparing statements. The query planner stability guarantee (QPSG) plans
//! without looking at bound values, so a cached statement is reused as it is.

use sea_orm::sqlx::{self, sqlite::SqliteConnection};

pub(super) async fn keep_prepared(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection `handle` holds locked for the duration of the call;
    // SQLITE_DBCONFIG_ENABLE_QPSG takes an int (1: on) and an optional int pointer for the
    // previous setting, here null.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!("SQLite refused the query planner setting QPSG (code {rc})").into(),
        ))
    }
}
