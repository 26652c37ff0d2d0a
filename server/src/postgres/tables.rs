//! The handle through which the server's own tables are reached on PostgreSQL: one type
//! implementing every table interface (`AccountTables`, `PhotoTables`, `WebhookTables`,
//! `QuarantineTables`, `JobTables`; each in its own module), over a client or a transaction.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{GenericClient, Statement};

use super::PgError;
use crate::error::ApiError;

/// The server's own tables reached through a PostgreSQL client (each statement its own
/// transaction) or a transaction (the caller's unit of work: every method runs in it).
pub struct PgTables<'a, C: GenericClient> {
    client: RefCell<&'a mut C>,
    /// Read once per handle (a handle lives for one request or one group of pushes): the
    /// log's identity, and whether the quarantine holds anything (almost always not; every
    /// push asks, under the log's lock).
    pub(super) log_id: std::cell::OnceCell<String>,
    pub(super) nothing_held: std::cell::Cell<Option<bool>>,
    /// Statements prepared through this handle, by their SQL: a group of pushes asks the
    /// same questions once per push, and a statement prepared once is one round trip per
    /// use instead of two (prepare, then execute).
    statements: RefCell<HashMap<String, Statement>>,
}

impl<C: GenericClient> std::fmt::Debug for PgTables<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTables").finish_non_exhaustive()
    }
}

impl<'a, C: GenericClient> PgTables<'a, C> {
    pub fn new(client: &'a mut C) -> Self {
        PgTables {
            client: RefCell::new(client),
            log_id: std::cell::OnceCell::new(),
            nothing_held: std::cell::Cell::new(None),
            statements: RefCell::new(HashMap::new()),
        }
    }

    /// `sql` prepared on this handle's connection (once per handle).
    fn statement(&self, sql: &str) -> Result<Statement, ApiError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .borrow_mut()
            .prepare(sql)
            .map_err(PgError::from)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(super) fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, ApiError> {
        let statement = self.statement(sql)?;
        Ok(self
            .client
            .borrow_mut()
            .execute(&statement, params)
            .map_err(PgError::from)?)
    }

    pub(super) fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, ApiError> {
        let statement = self.statement(sql)?;
        Ok(self
            .client
            .borrow_mut()
            .query(&statement, params)
            .map_err(PgError::from)?)
    }

    pub(super) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<postgres::Row>, ApiError> {
        let statement = self.statement(sql)?;
        Ok(self
            .client
            .borrow_mut()
            .query_opt(&statement, params)
            .map_err(PgError::from)?)
    }

    pub(super) fn exists(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<bool, ApiError> {
        Ok(self.query_opt(sql, params)?.is_some())
    }
}
