//! PostgreSQL for several server instances on one database (issue #20, docs/scale-out.md):
//! connecting, the numbered migrations, the shared op log ([`log`]), each instance's replica
//! following it ([`follow`]) and writing the state it derives to tables ([`projections`]), and jobs that run once per period across instances ([`jobs`]).
//!
//! Synchronous (`postgres`, over tokio-postgres): the server reaches its database from
//! blocking threads, as it does SQLite.

pub mod account_tables;
pub mod copy;
pub mod follow;
pub mod jobs;
pub mod log;
pub mod photo_tables;
pub mod projections;
pub mod quarantine_tables;
pub mod replica;
pub mod tables;
pub mod throttle;
pub mod webhook_tables;

use std::time::Duration;

pub use postgres::{Client, Transaction};

/// The first key of every advisory lock the server takes ("XUNC"), so its locks do not
/// collide with another application's on a shared database.
const LOCK_SPACE: i32 = 0x5855_4E43;
/// Second keys under [`LOCK_SPACE`]; jobs use their own space ([`jobs`]).
const LOCK_LOG_APPEND: i32 = 1;
const LOCK_MIGRATE: i32 = 2;

/// Errors of the PostgreSQL backend.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("数据库错误 / database error: {0}")]
    Db(#[from] postgres::Error),
    #[error(
        "数据库版本 {found} 比本程序新（{known}）/ the database is at version {found}, newer than this build ({known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error(
        "同一设备的序号 {seq} 已有另一条记录 / device {device} already sent another op as seq {seq}"
    )]
    OpConflict { device: String, seq: u64 },
    #[error("日志中的记录无法读取 / an op in the log cannot be read: {0}")]
    Decode(String),
    #[error("本地副本出错 / the local replica failed: {0}")]
    Replica(#[source] xuncha_core::Error),
    #[error(
        "本地副本跟随的是另一个数据库的日志（{followed}，此处为 {here}）；请删除副本文件后重启 / the local replica followed another database's log ({followed}, this one is {here}); remove the replica file and start again"
    )]
    OtherLog { followed: String, here: String },
    #[error(
        "共享日志已有 {end} 条记录，只能复制到空数据库 / the shared log already holds {end} ops; copy into an empty database"
    )]
    LogNotEmpty { end: i64 },
    #[error(
        "{table} 已有数据，只能复制到空数据库 / {table} already holds rows; copy into an empty database"
    )]
    TablesNotEmpty { table: &'static str },
}

/// A migration file: its name and its SQL.
macro_rules! migration {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../migrations/postgres/", $name)),
        )
    };
}

/// The PostgreSQL migrations, numbered like the SQLite ones.
pub const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001_shared_log.sql"),
    migration!("0002_projections.sql"),
    migration!("0003_accounts.sql"),
    migration!("0004_login_failures.sql"),
    migration!("0005_photos.sql"),
    migration!("0006_webhooks.sql"),
    migration!("0007_quarantine.sql"),
    migration!("0008_refile.sql"),
    migration!("0009_let_through.sql"),
];

/// Connects to `url` (`postgres://user:password@host:port/database`, or `host=/socket/dir`).
/// TCP keepalives are on, so an instance whose machine vanishes loses its session, and with it
/// the advisory locks it held, within about a minute rather than the kernel's two hours.
pub fn connect(url: &str, instance: &str) -> Result<Client, PgError> {
    let mut config: postgres::Config = url.parse()?;
    config
        .application_name(&format!("xuncha-server {instance}"))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_retries(3)
        .connect_timeout(Duration::from_secs(10));
    Ok(config.connect(postgres::NoTls)?)
}

/// `url` with its database replaced by `name`, in the URL form (`postgres://…/DB?…`) or the
/// `key=value` form.
pub fn url_with_database(url: &str, name: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (head, query) = url.split_once('?').unwrap_or((url, ""));
        let authority_end = head
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| head[start..].find('/').map(|j| start + j))
            .unwrap_or(head.len());
        let mut out = format!("{}/{name}", &head[..authority_end]);
        if !query.is_empty() {
            out.push('?');
            out.push_str(query);
        }
        out
    } else {
        format!("{url} dbname={name}")
    }
}

/// Makes an empty database `name` on the PostgreSQL server of `url` (dropping one of that name
/// first) and returns its URL: for tests and benchmarks, each on a database of its own.
pub fn fresh_database(url: &str, name: &str) -> Result<String, PgError> {
    let mut admin = connect(url, "xuncha-fresh-database")?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    Ok(url_with_database(url, name))
}

/// Brings the database to this build's schema. Instances starting together take turns (an
/// advisory lock), and each migration commits with its version, so a crash leaves the database
/// at a whole version. Returns the migrations applied.
pub fn migrate(client: &mut Client) -> Result<Vec<&'static str>, PgError> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_SPACE, &LOCK_MIGRATE],
    )?;
    let version = schema_version(&mut tx)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(PgError::SchemaTooNew {
            found: version,
            known,
        });
    }
    let mut applied = Vec::new();
    for (number, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&(number + 1).to_string()],
        )?;
        applied.push(*name);
    }
    tx.commit()?;
    Ok(applied)
}

/// The schema version the database is at (0: empty).
fn schema_version(tx: &mut Transaction<'_>) -> Result<i64, PgError> {
    let has_meta: bool = tx
        .query_one("SELECT to_regclass('server_meta') IS NOT NULL", &[])?
        .get(0);
    if !has_meta {
        return Ok(0);
    }
    let version: Option<String> = tx
        .query_opt(
            "SELECT value FROM server_meta WHERE key = 'schema_version'",
            &[],
        )?
        .map(|r| r.get(0));
    Ok(version.and_then(|v| v.parse().ok()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::url_with_database;

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            url_with_database("postgres://u:p@db:5432/postgres?sslmode=disable", "city"),
            "postgres://u:p@db:5432/city?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://u@db", "city"),
            "postgres://u@db/city"
        );
        assert_eq!(
            url_with_database("host=/run/postgresql user=x", "city"),
            "host=/run/postgresql user=x dbname=city"
        );
    }
}
