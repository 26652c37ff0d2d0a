//! Jobs that run once per period across instances: escalation, the morning digest, webhook
//! delivery, quarantine release, scheduled backups.
//!
//! Two guards, for two different promises:
//! - **Leadership** ([`Leadership::try_lead`]): a session-level advisory lock per job. One
//!   instance holds it and runs the job; the others skip. When the leader dies its session
//!   ends (TCP keepalive bounds how long that takes), the lock is free, and the next instance
//!   to try takes over. This keeps the work in one place; it is not what makes it run once,
//!   since a leader may stall past its session's end.
//! - **Claiming the period** ([`run_once`]): the run inserts `(job, period)` in the same
//!   transaction as the work it does in the database. A second instance's insert waits on
//!   the first's; if the first commits, the second finds the period taken and does nothing; if
//!   the first dies, its transaction rolls back and the second runs the period. Work in the
//!   database therefore happens exactly once per period; work outside it (a webhook, a backup
//!   file) happens at least once, and is made idempotent where it lands.

use postgres::GenericClient;

use super::tables::PgTables;
use super::{Client, PgError, Transaction};
use crate::error::ApiError;
use crate::job_tables::JobTables;

/// The first key of the job leadership locks ("XUNJ"), beside the server's other locks.
const JOB_LOCK_SPACE: i32 = 0x5855_4E4A;

/// The advisory lock a job's leader holds, `(space, key)`: the key is a stable digest of the
/// job's name, the same on every instance and build.
pub fn lock_of(job: &str) -> (i32, i32) {
    (JOB_LOCK_SPACE, job_key(job))
}

fn job_key(job: &str) -> i32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(job.as_bytes());
    i32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The jobs this instance leads, on a session kept for that (dropping it gives them up).
pub struct Leadership {
    session: Client,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").finish_non_exhaustive()
    }
}

impl Leadership {
    /// Leadership held on `session`, a connection used for nothing else.
    pub fn new(session: Client) -> Leadership {
        Leadership { session }
    }

    /// Whether this instance leads `job`: takes the lead when it is free, keeps it when held
    /// already (asking again while leading is answered yes without stacking the lock).
    pub fn try_lead(&mut self, job: &str) -> Result<bool, PgError> {
        let key = job_key(job);
        let held: bool = self
            .session
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                   AND pid = pg_backend_pid() AND classid = $1::int::oid AND objid = $2::int::oid
                   AND objsubid = 2 AND granted)",
                &[&JOB_LOCK_SPACE, &key],
            )?
            .get(0);
        if held {
            return Ok(true);
        }
        Ok(self
            .session
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&JOB_LOCK_SPACE, &key],
            )?
            .get(0))
    }

    /// Gives up the lead of `job` (on shutdown, so another instance need not wait for the
    /// session to end).
    pub fn resign(&mut self, job: &str) -> Result<(), PgError> {
        self.session.execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&JOB_LOCK_SPACE, &job_key(job)],
        )?;
        Ok(())
    }
}

/// Runs `work` for `(job, period)` unless some instance already has: claims the period and
/// does the work in one transaction. `Ok(None)`: the period was run already (here or on
/// another instance). An error from `work` rolls the claim back with it.
pub fn run_once<T>(
    client: &mut Client,
    job: &str,
    period: &str,
    instance: &str,
    work: impl FnOnce(&mut Transaction<'_>) -> Result<T, PgError>,
) -> Result<Option<T>, PgError> {
    let mut tx = client.transaction()?;
    let claimed = tx.query_opt(
        "INSERT INTO job_runs (job, period, instance, ran_ms)
         VALUES ($1, $2, $3, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
         ON CONFLICT (job, period) DO NOTHING RETURNING 1",
        &[&job, &period, &instance],
    )?;
    if claimed.is_none() {
        return Ok(None);
    }
    let out = work(&mut tx)?;
    tx.commit()?;
    Ok(Some(out))
}

/// The instance that ran `(job, period)`, if any has.
pub fn ran_by(client: &mut Client, job: &str, period: &str) -> Result<Option<String>, PgError> {
    Ok(client
        .query_opt(
            "SELECT instance FROM job_runs WHERE job = $1 AND period = $2",
            &[&job, &period],
        )?
        .map(|r| r.get(0)))
}

impl<C: GenericClient> JobTables for PgTables<'_, C> {
    fn claim_period(&self, job: &str, period: &str) -> Result<bool, ApiError> {
        Ok(self.execute(
            "INSERT INTO job_runs (job, period, instance, ran_ms)
             VALUES ($1, $2, current_setting('application_name'), now_ms())
             ON CONFLICT (job, period) DO NOTHING",
            &[&job, &period],
        )? > 0)
    }
}
