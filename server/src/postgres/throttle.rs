//! Sign-in throttling shared by every instance: failures per user name and per client address
//! in one table, on the database's clock, with the rule of `login.rs` (one rule, two stores).
//! An attempt is counted when it starts (so attempts made at once on several instances cannot
//! all pass the check before any is counted) and taken back when the password was right.

use std::time::Duration;

use postgres::GenericClient;

use super::{Client, PgError};
use crate::login::{LoginLimits, one_more, refused_for};

/// Starts an attempt for `user` from `address`: `Ok(Err(seconds))` when either has used up
/// its failures (nothing counted), else counted as failed until [`succeeded`].
pub fn begin(
    client: &mut Client,
    limits: &LoginLimits,
    user: &str,
    address: Option<&str>,
) -> Result<Result<(), u64>, PgError> {
    let mut keys = vec![(format!("user:{user}"), limits.attempts)];
    if let Some(a) = address {
        keys.push((format!("addr:{a}"), limits.attempts_per_address));
    }
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let mut tx = client.transaction()?;
    let window_ms = limits.window.as_millis() as i64;
    tx.execute(
        "DELETE FROM login_failures WHERE since_ms < now_ms() - 2 * $1::bigint",
        &[&window_ms],
    )?;
    // Rows for keys never seen, then every row locked: concurrent attempts on one key queue.
    tx.execute(
        "INSERT INTO login_failures (key, count, since_ms)
         SELECT k, 0, now_ms() FROM unnest($1::text[]) AS k ON CONFLICT (key) DO NOTHING",
        &[&names],
    )?;
    let rows = tx.query(
        "SELECT key, count, now_ms() - since_ms FROM login_failures
         WHERE key = ANY($1) ORDER BY key FOR UPDATE",
        &[&names],
    )?;
    let mut state = Vec::with_capacity(keys.len());
    for (key, allowed) in &keys {
        let Some(row) = rows.iter().find(|r| r.get::<_, &str>(0) == key) else {
            continue;
        };
        let count = row.get::<_, i32>(1).max(0) as u32;
        let elapsed = Duration::from_millis(row.get::<_, i64>(2).max(0) as u64);
        if let Some(seconds) = refused_for(count, elapsed, *allowed, limits.window) {
            return Ok(Err(seconds));
        }
        state.push((key.as_str(), count, elapsed));
    }
    for (key, count, elapsed) in state {
        let (count, new_window) = one_more(count, elapsed, limits.window);
        tx.execute(
            "UPDATE login_failures SET count = $2,
                 since_ms = CASE WHEN $3 THEN now_ms() ELSE since_ms END
             WHERE key = $1",
            &[&key, &(count as i32), &new_window],
        )?;
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// The password was right: the name's failures are forgotten and this attempt does not count
/// against the address.
pub fn succeeded(
    client: &mut impl GenericClient,
    user: &str,
    address: Option<&str>,
) -> Result<(), PgError> {
    client.execute(
        "DELETE FROM login_failures WHERE key = $1",
        &[&format!("user:{user}")],
    )?;
    if let Some(a) = address {
        client.execute(
            "UPDATE login_failures SET count = GREATEST(count - 1, 0) WHERE key = $1",
            &[&format!("addr:{a}")],
        )?;
    }
    Ok(())
}
