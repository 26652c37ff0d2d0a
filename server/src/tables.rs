//! What a handler works with: the replica (the core's store, derived from the op log) and the
//! server's own tables (accounts, photos, webhooks, quarantine, jobs), each behind its
//! interface. On SQLite both are one database; on PostgreSQL the tables are shared by every
//! instance and the replica is this instance's copy of the log's state (docs/scale-out.md).

use ref_cast::RefCast;
use rusqlite::Connection;
use xuncha_core::store::Store;

use crate::account_tables::AccountTables;
use crate::job_tables::JobTables;
use crate::photo_tables::PhotoTables;
use crate::quarantine_tables::QuarantineTables;
use crate::webhook_tables::WebhookTables;

/// Every table interface of the server, as one handle.
pub trait ServerTables:
    AccountTables + PhotoTables + WebhookTables + QuarantineTables + JobTables
{
}

impl<T: AccountTables + PhotoTables + WebhookTables + QuarantineTables + JobTables + ?Sized>
    ServerTables for T
{
}

/// The server's tables in a SQLite database (the one server's, beside its replica). A type of
/// its own rather than the interfaces on `Connection`, so that no code reaches the tables
/// through the replica's connection by mistake: on PostgreSQL they are elsewhere.
#[derive(Debug, RefCast)]
#[repr(transparent)]
pub struct SqliteTables(Connection);

impl SqliteTables {
    /// The tables in `conn`'s database.
    pub fn of(conn: &Connection) -> &SqliteTables {
        SqliteTables::ref_cast(conn)
    }
}

impl std::ops::Deref for SqliteTables {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0
    }
}

/// The writer's view: the replica, to write ops and read state, and the server's tables,
/// written in the same unit of work (one SQLite transaction, or on PostgreSQL the transaction
/// that holds the log's lock).
pub struct Writer<'a> {
    store: &'a mut Store,
    /// The shared tables; `None`: they live in the replica's database.
    shared: Option<&'a dyn ServerTables>,
}

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> Writer<'a> {
    pub(crate) fn new(store: &'a mut Store, shared: Option<&'a dyn ServerTables>) -> Self {
        Writer { store, shared }
    }

    /// The replica, to write.
    pub fn store(&mut self) -> &mut Store {
        self.store
    }

    /// The replica, to read.
    pub fn replica(&self) -> &Store {
        self.store
    }

    /// The server's own tables.
    pub fn tables(&self) -> &dyn ServerTables {
        match self.shared {
            Some(shared) => shared,
            None => SqliteTables::of(self.store.conn()),
        }
    }

    /// Runs `f` all or nothing on the replica (one transaction, or a savepoint of the one
    /// open), with the same tables.
    pub fn all_or_nothing<T>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, crate::error::ApiError>,
    ) -> Result<T, crate::error::ApiError> {
        let shared = self.shared;
        self.store
            .atomic(|store| f(&mut Writer::new(store, shared)))
    }

    /// The shared tables when they are not in the replica's database (for code that holds
    /// the replica's transaction and must still reach them).
    pub(crate) fn shared(&self) -> Option<&'a dyn ServerTables> {
        self.shared
    }
}
