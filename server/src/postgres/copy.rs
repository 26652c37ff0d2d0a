//! Copying a SQLite server into PostgreSQL, for moving a district onto several instances
//! (issue #20's `migrate-to-postgres`): the op log into an empty shared log
//! ([`log_from_sqlite`]), the server's own tables ([`server_tables_from_sqlite`]) and the
//! verified photos into object storage ([`photos_between`]).
//!
//! Ops keep their arrival order (the SQLite log's row order), their scope (the pull index's
//! premises and grid, and when the server received them) and, for ops set aside, the reason.
//! Positions and the chain are the new log's own, and the log has a new identity, so phones
//! pull again from the start, as after a restore. Replicas following the copy derive the same
//! state the SQLite server holds (same digest).

use postgres::types::ToSql;
use rusqlite::Connection;
use xuncha_core::clock::Hlc;
use xuncha_core::model::{DeviceId, UserId};
use xuncha_core::op::{Op, OpBody};
use xuncha_core::sync::SetAside;

use super::log::{self, Entry};
use super::{Client, PgError};

/// Ops copied per transaction.
const PAGE: i64 = 2_000;

/// What a copy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Ops copied.
    pub ops: usize,
    /// Of them, ops set aside.
    pub set_aside: usize,
    /// The end of the new log.
    pub end: i64,
}

/// One op of the SQLite log with what the server kept beside it.
struct Row {
    op: Op,
    premises_id: Option<String>,
    grid_id: Option<String>,
    received_ms: i64,
    aside: Option<SetAside>,
}

/// Copies the whole op log of the SQLite server database `source` into the shared log, which
/// must be empty (a second copy would double every op's position).
pub fn log_from_sqlite(source: &Connection, client: &mut Client) -> Result<Copied, PgError> {
    let (end, _) = log::end(client)?;
    if end > 0 {
        return Err(PgError::LogNotEmpty { end });
    }
    let mut copied = Copied::default();
    let mut after = 0i64;
    loop {
        let (rows, last) = page(source, after).map_err(|e| PgError::Replica(e.into()))?;
        let Some(last) = last else { break };
        after = last;
        let entries: Vec<Entry<'_>> = rows
            .iter()
            .map(|r| Entry {
                op: &r.op,
                premises_id: r.premises_id.as_deref(),
                grid_id: r.grid_id.as_deref(),
                aside: r.aside.as_ref(),
                received_ms: r.received_ms,
                refile: false,
                let_through: false,
            })
            .collect();
        let mut tx = client.transaction()?;
        let appended = log::append_in(&mut tx, &entries)?;
        copied.ops += appended.positions.iter().flatten().count();
        copied.end = appended.end;
        tx.commit()?;
        copied.set_aside += rows.iter().filter(|r| r.aside.is_some()).count();
    }
    Ok(copied)
}

/// The ops after row `after`, at most [`PAGE`], and the last row id read.
fn page(source: &Connection, after: i64) -> rusqlite::Result<(Vec<Row>, Option<i64>)> {
    let mut stmt = source.prepare_cached(
        "SELECT o.id, d.device_id, o.seq, o.hlc, o.author, o.schema, o.wall_ms, o.kind, o.data,
                s.premises_id, s.grid_id, COALESCE(s.received_ms, o.wall_ms),
                a.code, a.message, a.message_en
         FROM ops o JOIN devices d USING (device_no)
              LEFT JOIN server_op_scope s ON s.op_id = o.id
              LEFT JOIN set_aside a ON a.op_id = o.id
         WHERE o.id > ?1 ORDER BY o.id LIMIT ?2",
    )?;
    let mut rows = Vec::new();
    let mut last = None;
    let mut query = stmt.query(rusqlite::params![after, PAGE])?;
    while let Some(r) = query.next()? {
        last = Some(r.get::<_, i64>(0)?);
        let kind: String = r.get(7)?;
        let schema: u32 = r.get(5)?;
        let data: String = r.get(8)?;
        let body = OpBody::decode(&kind, schema, &data).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
        })?;
        let seq = r.get::<_, i64>(2)? as u64;
        let aside = match r.get::<_, Option<String>>(12)? {
            Some(code) => Some(SetAside {
                seq,
                code,
                message: r.get(13)?,
                message_en: r.get(14)?,
            }),
            None => None,
        };
        rows.push(Row {
            op: Op {
                device: DeviceId(r.get(1)?),
                seq,
                hlc: Hlc::from_u64(r.get::<_, i64>(3)? as u64),
                author: UserId(r.get(4)?),
                schema,
                wall_ms: r.get(6)?,
                body,
            },
            premises_id: r.get(9)?,
            grid_id: r.get(10)?,
            received_ms: r.get(11)?,
            aside,
        });
    }
    Ok((rows, last))
}

/// Rows copied per table, by table name.
pub type TableCounts = Vec<(&'static str, i64)>;

/// A server table and how its rows go across: the SQLite query (columns in the PostgreSQL
/// table's order) and their PostgreSQL types.
struct Table {
    name: &'static str,
    select: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// An identity column whose numbers are kept (device numbers are on notices).
    identity: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    NullableText,
    Int,
    NullableInt,
    Bool,
}

const TABLES: &[Table] = &[
    Table {
        name: "server_users",
        select:
            "SELECT id, display_name, role, password_hash, disabled, created_ms, reminders, phone
                 FROM server_users",
        columns: &[
            ("id", Kind::Text),
            ("display_name", Kind::Text),
            ("role", Kind::Text),
            ("password_hash", Kind::Text),
            ("disabled", Kind::Bool),
            ("created_ms", Kind::Int),
            ("reminders", Kind::Bool),
            ("phone", Kind::NullableText),
        ],
        identity: None,
    },
    Table {
        name: "server_grids",
        select: "SELECT id, name, community, subdistrict, epoch, geometry FROM server_grids",
        columns: &[
            ("id", Kind::Text),
            ("name", Kind::Text),
            ("community", Kind::Text),
            ("subdistrict", Kind::Text),
            ("epoch", Kind::Int),
            ("geometry", Kind::NullableText),
        ],
        identity: None,
    },
    Table {
        name: "server_user_areas",
        select: "SELECT user_id, level, area FROM server_user_areas",
        columns: &[
            ("user_id", Kind::Text),
            ("level", Kind::Text),
            ("area", Kind::Text),
        ],
        identity: None,
    },
    Table {
        name: "server_devices",
        select: "SELECT rowid, device_id, user_id, name, token_hash, enrolled_ms, revoked
                 FROM server_devices ORDER BY rowid",
        columns: &[
            ("device_no", Kind::Int),
            ("device_id", Kind::Text),
            ("user_id", Kind::Text),
            ("name", Kind::NullableText),
            ("token_hash", Kind::Text),
            ("enrolled_ms", Kind::Int),
            ("revoked", Kind::Bool),
        ],
        identity: Some("device_no"),
    },
    Table {
        name: "server_sessions",
        select: "SELECT device_id, csrf, expires_ms FROM server_sessions",
        columns: &[
            ("device_id", Kind::Text),
            ("csrf", Kind::Text),
            ("expires_ms", Kind::Int),
        ],
        identity: None,
    },
    Table {
        name: "server_photos",
        select: "SELECT sha256, bytes, width, height, uploaded_by, uploaded_ms FROM server_photos",
        columns: &[
            ("sha256", Kind::Text),
            ("bytes", Kind::Int),
            ("width", Kind::Int),
            ("height", Kind::Int),
            ("uploaded_by", Kind::Text),
            ("uploaded_ms", Kind::Int),
        ],
        identity: None,
    },
    Table {
        name: "server_webhook_deliveries",
        select: "SELECT id, event, body, created_ms, attempts, next_attempt_ms, last_status,
                        last_error, delivered_ms
                 FROM server_webhook_deliveries ORDER BY id",
        columns: &[
            ("id", Kind::Int),
            ("event", Kind::Text),
            ("body", Kind::Text),
            ("created_ms", Kind::Int),
            ("attempts", Kind::Int),
            ("next_attempt_ms", Kind::Int),
            ("last_status", Kind::NullableInt),
            ("last_error", Kind::NullableText),
            ("delivered_ms", Kind::NullableInt),
        ],
        identity: Some("id"),
    },
    Table {
        name: "server_quarantine",
        select: "SELECT device_id, seq, hlc, received_ms, op FROM server_quarantine",
        columns: &[
            ("device_id", Kind::Text),
            ("seq", Kind::Int),
            ("hlc", Kind::Int),
            ("received_ms", Kind::Int),
            ("op", Kind::Text),
        ],
        identity: None,
    },
    // Settings that carry over: the calendar feed secret and each user's feed generation (so
    // feed addresses keep working), the revocation stamp, the jobs' last days.
    Table {
        name: "server_meta",
        select: "SELECT key, CAST(value AS TEXT) FROM server_meta
                 WHERE key IN ('feed_secret', 'revocations', 'digest_date', 'reminder_date')
                    OR key LIKE 'feed_generation/%'",
        columns: &[("key", Kind::Text), ("value", Kind::Text)],
        identity: None,
    },
];

/// Copies the server's own tables (accounts, grids, devices with their token hashes, sessions,
/// photo records, webhook deliveries, quarantine, the settings that carry over) from the SQLite
/// server database `source` into PostgreSQL, in one transaction, so phones and browsers keep
/// their tokens and notices keep their device numbers. The accounts must be empty there.
pub fn server_tables_from_sqlite(
    source: &Connection,
    client: &mut Client,
) -> Result<TableCounts, PgError> {
    let mut tx = client.transaction()?;
    let users: i64 = tx
        .query_one("SELECT COUNT(*) FROM server_users", &[])?
        .get(0);
    if users > 0 {
        return Err(PgError::TablesNotEmpty {
            table: "server_users",
        });
    }
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let rows = read_table(source, table).map_err(|e| PgError::Replica(e.into()))?;
        let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let overriding = if table.identity.is_some() {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let conflict = if table.name == "server_meta" {
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        } else {
            ""
        };
        let insert = tx.prepare(&format!(
            "INSERT INTO {} ({}){overriding} VALUES ({}){conflict}",
            table.name,
            names.join(", "),
            placeholders.join(", "),
        ))?;
        for row in &rows {
            let params: Vec<&(dyn ToSql + Sync)> =
                row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            tx.execute(&insert, &params)?;
        }
        if let Some(column) = table.identity {
            // The next number after the copied ones.
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{}', '{column}'),
                        GREATEST((SELECT MAX({column}) FROM {}), 1))",
                    table.name, table.name
                ),
                &[],
            )?;
        }
        counts.push((table.name, rows.len() as i64));
    }
    tx.commit()?;
    Ok(counts)
}

/// A value on its way to PostgreSQL.
#[derive(Debug)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Text(v) => v.to_sql(ty, out),
            // The column may be INTEGER or BIGINT.
            Value::Int(v) if *ty == postgres::types::Type::INT4 => {
                v.map(i32::try_from).transpose()?.to_sql(ty, out)
            }
            Value::Int(v) => v.to_sql(ty, out),
            Value::Bool(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <Option<String> as ToSql>::accepts(ty)
            || <i64 as ToSql>::accepts(ty)
            || <i32 as ToSql>::accepts(ty)
            || <bool as ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

fn read_table(source: &Connection, table: &Table) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut stmt = source.prepare(table.select)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(table.columns.len());
        for (i, (_, kind)) in table.columns.iter().enumerate() {
            row.push(match kind {
                Kind::Text => Value::Text(Some(r.get(i)?)),
                Kind::NullableText => Value::Text(r.get(i)?),
                Kind::Int => Value::Int(Some(r.get(i)?)),
                Kind::NullableInt => Value::Int(r.get(i)?),
                Kind::Bool => Value::Bool(r.get(i)?),
            });
        }
        out.push(row);
    }
    Ok(out)
}

/// What a copy of photos did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopiedPhotos {
    /// Photos copied (each with its thumbnail).
    pub photos: usize,
    /// Bytes of the photos and thumbnails.
    pub bytes: u64,
}

/// The photos the SQLite server database `source` holds records of.
pub fn photo_records(source: &Connection) -> rusqlite::Result<Vec<String>> {
    source
        .prepare("SELECT sha256 FROM server_photos ORDER BY sha256")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Copies the photos `sha256s` and their thumbnails from one storage to another (the photo
/// folder into a bucket), each photo checked against its name (its SHA-256) on the way. A
/// photo missing or not matching its name stops the copy with its name: the source lost it.
pub fn photos_between(
    sha256s: &[String],
    from: &dyn crate::photos::PhotoStorage,
    to: &dyn crate::photos::PhotoStorage,
) -> Result<CopiedPhotos, String> {
    use crate::photos::Variant;
    use sha2::Digest;
    let mut copied = CopiedPhotos::default();
    for sha in sha256s {
        let read = |variant| {
            from.get(sha, variant)
                .map_err(|e| format!("photo {sha}: {e}"))?
                .ok_or_else(|| format!("photo {sha}: missing from the source"))
        };
        let full = read(Variant::Full)?;
        if hex::encode(sha2::Sha256::digest(&full)) != *sha {
            return Err(format!("photo {sha}: its bytes do not match its name"));
        }
        let thumb = read(Variant::Thumbnail)?;
        to.put(sha, Variant::Thumbnail, &thumb)
            .and_then(|()| to.put(sha, Variant::Full, &full))
            .map_err(|e| format!("photo {sha}: {e}"))?;
        copied.photos += 1;
        copied.bytes += (full.len() + thumb.len()) as u64;
    }
    Ok(copied)
}
