//! Statements built ahead of the transaction that runs them. On SQLite a transaction holds the
//! one writer from its first write to its commit; building the SQL and the bound values of 500
//! rows is work that need not hold it.

use sea_orm::{ConnectionTrait, DbErr, Statement};

/// Writes to run in order, inside whatever transaction the caller holds.
#[derive(Default)]
pub struct PreparedWrites(Vec<Statement>);

impl PreparedWrites {
    pub fn extend(&mut self, statements: impl IntoIterator<Item = Statement>) {
        self.0.extend(statements);
    }

    pub async fn run(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        for statement in self.0 {
            db.execute_raw(statement).await?;
        }
        Ok(())
    }
}
