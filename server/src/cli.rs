//! The `xuncha-server` command line: serve (the default), and account tools that work on the
//! database directly (also while the server runs: SQLite WAL allows it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use xuncha_core::calendar::YearStatus;
use xuncha_core::sync::Role;

use crate::accounts::{self, Areas, Grid};
use crate::db::Db;
use crate::escalation::{self, EscalationRules};
use crate::webhook::{self, WebhookConfig};
use crate::{AppState, Config, app, db_path, demo, sync};

/// Xuncha (巡查) server: sync for phones, accounts, and the supervisors' dashboard.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory for the SQLite database and the photos.
    #[arg(long, global = true, env = "XUNCHA_DATA", default_value = "./data")]
    data: PathBuf,
    /// Keep the server's state in PostgreSQL (`postgres://USER:PASSWORD@HOST:PORT/DB`), so
    /// that several instances serve the same phones; each keeps a replica in --data. Default:
    /// the SQLite file in --data.
    #[arg(long, global = true, env = "XUNCHA_DATABASE", value_parser = parse_database_url)]
    database: Option<String>,
    /// Configuration file (TOML: any option by its long name); by default
    /// /etc/xuncha/xuncha.toml if it exists. The command line and the environment override it.
    #[arg(long, global = true, env = "XUNCHA_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, env = "XUNCHA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the operations listener: /status, /v1/status and /metrics without signing
    /// in, for monitoring (on the public address they are for admins only). `off`: none.
    #[arg(long, env = "XUNCHA_OPS_LISTEN", default_value = "127.0.0.1:9180")]
    ops_listen: String,
    /// The log (one line per request, the jobs' outcomes, start-up settings) on stderr:
    /// `text` for journald, or `json`.
    #[arg(long, env = "XUNCHA_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: crate::access_log::LogFormat,
    /// Least severe events logged: error, warn, info (every request) or debug.
    #[arg(long, env = "XUNCHA_LOG_LEVEL", default_value = "info")]
    log_level: tracing::Level,
    /// Fill an empty database with demo data first.
    #[arg(long, env = "XUNCHA_DEMO")]
    demo: bool,
    /// Ops stamped further ahead of the server's clock than this many seconds are quarantined.
    #[arg(long, env = "XUNCHA_MAX_CLOCK_AHEAD_SECS", default_value_t = 12 * 3600)]
    max_clock_ahead_secs: i64,
    /// The issuing office, printed on rectification notices and in their numbers (e.g.
    /// 幸福街道); by default the sub-district (on notices: and community) of the shop's grid.
    #[arg(long, env = "XUNCHA_NOTICE_AREA", default_value = "")]
    notice_area: String,
    /// How shops reach the issuing office, printed on notices (e.g. 联系电话 021-5555 0101).
    #[arg(long, env = "XUNCHA_NOTICE_CONTACT", default_value = "")]
    notice_contact: String,
    /// The hour (China time, 0 to 23) from which each worker's morning reminder of the day's
    /// due and overdue visits and re-checks goes to the webhook.
    #[arg(long, env = "XUNCHA_REMINDER_HOUR", default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..24))]
    reminder_hour: u32,
    /// Largest request body, after decompression, in bytes.
    #[arg(long, env = "XUNCHA_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    max_body_bytes: usize,
    /// Where verified photos are kept: `s3://BUCKET/PREFIX` for S3-compatible object storage
    /// (MinIO, Ceph, OSS, COS, OBS; endpoint, region and keys from AWS_ENDPOINT_URL,
    /// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); default: photos/ in --data.
    #[arg(long, env = "XUNCHA_PHOTOS", value_parser = crate::object_storage::parse_url)]
    photos: Option<String>,
    /// Largest photo accepted for upload, in bytes.
    #[arg(long, env = "XUNCHA_MAX_PHOTO_BYTES", default_value_t = 20 << 20)]
    max_photo_bytes: u64,
    /// Base map tile URL for the dashboard ({z}/{x}/{y}, {s} for subdomains); none: the map
    /// shows grids and hazards on a plain background. See the README for Chinese providers.
    #[arg(long, env = "XUNCHA_TILE_URL")]
    tile_url: Option<String>,
    /// A second tile layer drawn over the base map (the street names of providers that serve
    /// them apart, such as 天地图's cva_w); same template and subdomains.
    #[arg(long, env = "XUNCHA_TILE_LABELS_URL", requires = "tile_url")]
    tile_labels_url: Option<String>,
    /// Attribution shown for the tiles.
    #[arg(long, env = "XUNCHA_TILE_ATTRIBUTION", default_value = "")]
    tile_attribution: String,
    /// Subdomains for {s} in the tile URL.
    #[arg(long, env = "XUNCHA_TILE_SUBDOMAINS", default_value = "abc")]
    tile_subdomains: String,
    /// The tiles use GCJ-02 (AMap, Tencent and other Chinese providers): positions are shifted.
    #[arg(long, env = "XUNCHA_TILES_GCJ02")]
    tiles_gcj02: bool,
    /// Serve HTTPS with this certificate chain (PEM; re-read on SIGHUP or when it changes).
    /// Then HSTS is sent and the session cookie is Secure.
    #[arg(long, env = "XUNCHA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "XUNCHA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With HTTPS: also listen for plain HTTP here and redirect every request to HTTPS
    /// (e.g. 0.0.0.0:80).
    #[arg(long, env = "XUNCHA_HTTP_REDIRECT_LISTEN", requires = "tls_cert")]
    http_redirect_listen: Option<SocketAddr>,
    /// Mark the dashboard's session cookie Secure (set when served over HTTPS).
    #[arg(long, env = "XUNCHA_SECURE_COOKIES")]
    secure_cookies: bool,
    /// A reverse proxy (address or CIDR, repeatable or comma-separated) whose
    /// X-Forwarded-For and X-Forwarded-Proto are believed: login limits and the log count the
    /// real client's address, and the session cookie is Secure when it says https.
    #[arg(
        long = "trusted-proxy",
        env = "XUNCHA_TRUSTED_PROXY",
        value_delimiter = ',',
        value_parser = parse_proxy
    )]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Take backup copies into this directory on a schedule (database and photos, as
    /// `xuncha-server backup`; photos an earlier copy holds are hard-linked).
    #[arg(long, env = "XUNCHA_BACKUP_DIR")]
    backup_dir: Option<PathBuf>,
    /// How often: 24h, 6h, 30m (periods of a day or more fall at --backup-at).
    #[arg(long, env = "XUNCHA_BACKUP_EVERY", default_value = "24h", value_parser = crate::backup_schedule::parse_every)]
    backup_every: Duration,
    /// Time of day (China time) of daily backups.
    #[arg(long, env = "XUNCHA_BACKUP_AT", default_value = "02:00", value_parser = parse_time_of_day)]
    backup_at: chrono::NaiveTime,
    /// Days whose newest copy is kept.
    #[arg(long, env = "XUNCHA_BACKUP_KEEP_DAILY", default_value_t = 7)]
    backup_keep_daily: usize,
    /// Weeks whose newest copy is kept.
    #[arg(long, env = "XUNCHA_BACKUP_KEEP_WEEKLY", default_value_t = 4)]
    backup_keep_weekly: usize,
    /// How often quarantined ops are checked for release, in seconds.
    #[arg(long, env = "XUNCHA_QUARANTINE_CHECK_SECS", default_value_t = 60)]
    quarantine_check_secs: u64,
    /// How often overdue hazards are checked for escalation, in seconds.
    #[arg(long, env = "XUNCHA_ESCALATION_CHECK_SECS", default_value_t = 900)]
    escalation_check_secs: u64,
    /// Webhook receiver for escalations and daily overdue digests (e.g. an SMS gateway).
    #[arg(long, env = "XUNCHA_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Secret for the webhook's HMAC-SHA256 signature.
    #[arg(
        long,
        env = "XUNCHA_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    webhook_secret: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage grids.
    #[command(subcommand)]
    Grid(GridCommand),
    /// Bring the database up to this build's schema (the server also does it at start);
    /// with --dry-run, only list what would be applied.
    Migrate {
        /// List the migrations an upgrade would apply, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy this server (the SQLite database in --data, and its photos) into the PostgreSQL
    /// database of --database, empty, and into the object storage of --photos if given (else
    /// the photos stay in --data/photos); then check the copy by digest and counts. Stop the
    /// server first. Phones keep their tokens; each pulls again where its cursor no longer
    /// fits, as after a restore.
    MigrateToPostgres,
    /// Check the configuration file and show where each setting comes from (command line,
    /// environment, file or default), without starting anything.
    CheckConfig,
    /// Copy the database and photos into a new directory, while the server runs. To restore,
    /// start the server with `--data` on the copy: phones send again what it lacks.
    Backup {
        /// Directory for the copy (created; must not already hold a database).
        dest: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. The password comes from XUNCHA_NEW_PASSWORD.
    Add {
        /// User name (letters, digits, . _ -).
        id: String,
        /// worker, supervisor or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Name shown to people.
        #[arg(long)]
        name: Option<String>,
        /// Password (prefer the environment variable: arguments show up in `ps`).
        #[arg(long, env = "XUNCHA_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Add or update users from a spreadsheet (CSV in UTF-8 or GBK, or XLSX; the columns of
    /// the admin tab's template). Every row is checked first; passwords made for rows that
    /// leave them blank are printed once.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// Disable a user: signed out on every phone and dashboard at once, sign-in refused
    /// (`--enable` lets them enroll again).
    Disable {
        /// User name.
        id: String,
        /// Enable instead.
        #[arg(long)]
        enable: bool,
    },
    /// List a user's devices (phones and dashboard sessions), to find a lost phone.
    Devices {
        /// User name.
        id: String,
    },
    /// Revoke one device (a lost or stolen phone): its token stops working at once.
    RevokeDevice {
        /// Device id (from `user devices`).
        device: String,
    },
    /// Sign a user out on every phone and dashboard.
    SignOut {
        /// User name.
        id: String,
    },
    /// Give a user a new calendar feed address (the old one stops working).
    RotateFeed {
        /// User name.
        id: String,
    },
    /// Set a user's password (from XUNCHA_NEW_PASSWORD); signs them out everywhere.
    Password {
        /// User name.
        id: String,
        /// New password.
        #[arg(long, env = "XUNCHA_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Replace the areas a user covers.
    Areas {
        /// User name.
        id: String,
        /// Grid ids.
        #[arg(long = "grid")]
        grids: Vec<String>,
        /// Whole communities.
        #[arg(long = "community")]
        communities: Vec<String>,
        /// Whole sub-districts.
        #[arg(long = "subdistrict")]
        subdistricts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum GridCommand {
    /// Add or update a grid.
    Add {
        /// Grid id.
        id: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Community (社区).
        #[arg(long, default_value = "")]
        community: String,
        /// Sub-district (街道).
        #[arg(long, default_value = "")]
        subdistrict: String,
    },
}

/// `02:00` (hours and minutes).
fn parse_time_of_day(s: &str) -> Result<chrono::NaiveTime, String> {
    chrono::NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| format!("{s:?} is not a time like 02:00"))
}

/// A network (`10.0.0.0/8`) or one address (`192.168.1.1`, as a network of one).
fn parse_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an address nor a network like 10.0.0.0/8"))
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: worker, supervisor or admin"))
}

/// The command line's definition (for the configuration file's checks).
pub fn command() -> clap::Command {
    Args::command()
}

/// The command line, with the configuration file's settings as its defaults.
fn configured(
    argv: &[String],
) -> Result<
    (
        clap::Command,
        Option<(PathBuf, crate::config_file::Settings)>,
    ),
    crate::config_file::ConfigError,
> {
    let command = Args::command();
    let Some(path) = crate::config_file::locate(argv, std::env::var("XUNCHA_CONFIG").ok())? else {
        return Ok((command, None));
    };
    let settings = crate::config_file::read(&path, &command)?;
    Ok((
        crate::config_file::with_defaults(command, &settings),
        Some((path, settings)),
    ))
}

/// `--demo` with `--database`: the demo district is made in a SQLite file beside the data
/// and copied into an empty shared database, as `migrate-to-postgres` would copy a server.
fn seed_shared(data: &std::path::Path, url: &str, photos: Option<&str>) -> AnyResult {
    use crate::postgres as pg;
    let mut client = pg::connect(url, "xuncha-server-demo")?;
    pg::migrate(&mut client)?;
    if pg::log::end(&mut client)?.0 > 0 {
        println!("数据库已有数据，未写入演示数据 / database not empty, demo data not added");
        return Ok(());
    }
    let work = data.join("demo-seed");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let now = chrono::Utc::now().timestamp_millis();
    let d = match photos {
        Some(url) => demo::seed_with(&work, &crate::object_storage::S3Storage::open(url)?, now)?,
        None => demo::seed_with(
            &work,
            &crate::photos::FileStorage::new(data.join("photos")),
            now,
        )?,
    };
    {
        let source = rusqlite::Connection::open(db_path(&work))?;
        pg::copy::server_tables_from_sqlite(&source, &mut client)?;
        pg::copy::log_from_sqlite(&source, &mut client)?;
    }
    std::fs::remove_dir_all(&work)?;
    println!(
        "演示数据已写入 / demo data written: {} grids, {} premises, {} inspections, {} hazards",
        d.grids, d.premises, d.inspections, d.hazards
    );
    Ok(())
}

/// `--database`: a PostgreSQL connection URL.
fn parse_database_url(url: &str) -> Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "须为 postgres://用户:密码@主机:端口/数据库 / must be postgres://USER:PASSWORD@HOST:PORT/DB, not {url:?}"
        ))
    }
}

/// Entry point of the binary.
pub fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let (command, config) = match configured(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "xuncha-server: 配置有误 / configuration error:\n  {}\n  {}",
                e.zh, e.en
            );
            std::process::exit(2);
        }
    };
    let matches = command.get_matches_from(&argv);
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match args.command {
        Some(Command::CheckConfig) => {
            check_config(&matches, config.as_ref());
            Ok(())
        }
        Some(Command::Backup { .. } | Command::Migrate { .. }) if args.database.is_some() => {
            Err(
                "使用 --database 时，备份与升级由 PostgreSQL 完成（pg_dump；服务启动时自动升级）/ with --database, back up with pg_dump; the schema is upgraded when the server starts"
                    .into(),
            )
        }
        Some(Command::MigrateToPostgres) => match &args.database {
            Some(url) => migrate_to_postgres(&args.data, url, args.serve.photos.as_deref()),
            None => Err("需要 --database postgres://... / --database postgres://... is needed".into()),
        },
        Some(Command::Backup { dest }) => backup(&args.data, &dest),
        Some(Command::Migrate { dry_run }) => migrate(&args.data, dry_run),
        Some(command) => manage(&args.data, args.database.as_deref(), command),
        None => serve(&args.data, args.database, args.serve),
    };
    if let Err(e) = result {
        eprintln!("xuncha-server: {e}");
        std::process::exit(1);
    }
}

type AnyResult = Result<(), Box<dyn std::error::Error>>;

/// `check-config`: the file was read and every value checked (else the command stopped with
/// the mistake); says where each setting comes from.
fn check_config(
    matches: &clap::ArgMatches,
    file: Option<&(PathBuf, crate::config_file::Settings)>,
) {
    use clap::parser::ValueSource;
    match file {
        Some((path, _)) => println!(
            "配置文件正确 / configuration file is valid: {}",
            path.display()
        ),
        None => println!(
            "没有配置文件（{}）；使用命令行、环境变量和默认值 / no configuration file ({}): command line, environment and defaults",
            crate::config_file::DEFAULT_PATH,
            crate::config_file::DEFAULT_PATH
        ),
    }
    let command = Args::command();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version" | "config") || arg.is_hide_set() {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "命令行 / command line",
            Some(ValueSource::EnvVariable) => "环境变量 / environment",
            // The file's settings became the defaults.
            Some(ValueSource::DefaultValue)
                if file.is_some_and(|(_, settings)| settings.contains_key(id)) =>
            {
                "配置文件 / file"
            }
            Some(ValueSource::DefaultValue) => "默认 / default",
            _ => "未设置 / not set",
        };
        let secret = arg.is_hide_env_values_set();
        let value: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let shown = if secret && !value.iter().all(String::is_empty) {
            "***".to_owned()
        } else {
            value.join(",")
        };
        println!("  {long} = {shown}  ({source})");
    }
}

/// `migrate [--dry-run]`.
fn migrate(data: &std::path::Path, dry_run: bool) -> AnyResult {
    let path = db_path(data);
    if !path.is_file() {
        return Err(format!("{}: 没有数据库 / no database here", path.display()).into());
    }
    let pending = crate::db::pending_migrations(&path)?;
    if pending.is_empty() {
        println!(
            "数据库已是最新结构 / the database is up to date: {}",
            path.display()
        );
        return Ok(());
    }
    let verb = if dry_run {
        "升级将执行 / an upgrade would apply"
    } else {
        "执行 / applying"
    };
    println!("{verb} ({}):", pending.len());
    for name in &pending {
        println!("  {name}");
    }
    if !dry_run {
        drop(Db::open(&path)?);
        println!("完成 / done");
    }
    Ok(())
}

/// `migrate-to-postgres`: the copies of `postgres::copy`, then a replica following the new log
/// must hold what the SQLite server held (digest, ops, records), or the command fails.
fn migrate_to_postgres(data: &std::path::Path, url: &str, photos: Option<&str>) -> AnyResult {
    use crate::postgres as pg;
    let path = db_path(data);
    if !path.is_file() {
        return Err(format!("{}: 没有数据库 / no database here", path.display()).into());
    }
    // Brought to this build's schema first, as the server would at start.
    drop(Db::open(&path)?);
    let source = rusqlite::Connection::open(&path)?;
    // One snapshot of the source for every copy.
    source.execute_batch("BEGIN")?;
    let mut client = pg::connect(url, "xuncha-server-migrate")?;
    pg::migrate(&mut client)?;
    let tables = pg::copy::server_tables_from_sqlite(&source, &mut client)?;
    let rows: Vec<String> = tables.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!("账号与设置 / server tables: {}", rows.join(", "));
    let copied = pg::copy::log_from_sqlite(&source, &mut client)?;
    println!(
        "记录 / ops: {} ({} set aside)",
        copied.ops, copied.set_aside
    );
    if let Some(bucket) = photos {
        let to = crate::object_storage::S3Storage::open(bucket)?;
        let from = crate::photos::FileStorage::new(data.join("photos"));
        let shas = pg::copy::photo_records(&source)?;
        let moved = pg::copy::photos_between(&shas, &from, &to)?;
        println!(
            "照片 / photos: {} ({} MB) to {bucket}",
            moved.photos,
            moved.bytes / 1_000_000
        );
    }
    source.execute_batch("COMMIT")?;
    // The check: a replica following the copy holds the same state as the source.
    let before = Db::open(&path)?;
    let both = |e: crate::ApiError| format!("{} / {}", e.zh, e.en);
    let (digest, ops, counts) = before
        .write(|w| {
            let s = w.replica();
            Ok((s.digest()?, s.op_count()?, s.counts()?))
        })
        .map_err(both)?;
    let after = Db::open_shared_in_memory(url, "xuncha-server-migrate")?;
    let (digest2, ops2, counts2) = after
        .write(|w| {
            let s = w.replica();
            Ok((s.digest()?, s.op_count()?, s.counts()?))
        })
        .map_err(both)?;
    if (digest.as_str(), ops, &counts) != (digest2.as_str(), ops2, &counts2) {
        return Err(format!(
            "复制结果不一致 / the copy differs: digest {digest} vs {digest2}, ops {ops} vs {ops2}, {counts:?} vs {counts2:?}"
        )
        .into());
    }
    println!(
        "已核对 / checked: digest {digest}, {ops} ops, {} premises, {} inspections, {} open hazards",
        counts.premises, counts.inspections, counts.open_hazards
    );
    println!("完成；今后请以 --database 启动 / done; start the server with --database from now on");
    Ok(())
}

fn backup(data: &std::path::Path, dest: &std::path::Path) -> AnyResult {
    let report = crate::backup::backup(data, dest)?;
    println!(
        "备份完成 / backup written: {} (database {:.1} MB, {} photo files)",
        dest.display(),
        report.database_bytes as f64 / 1e6,
        report.photo_files
    );
    Ok(())
}

/// `user import FILE`: as the admin tab does it, from the command line (beside the running
/// server). Passwords are hashed before the database is written, so its writes never wait.
fn import_users(db: &Db, file: &std::path::Path, now: i64) -> AnyResult {
    use crate::user_import as import;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let xlsx = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    let users = crate::import::rows(&bytes, xlsx)
        .map_err(|e| crate::import::Refusal::new(format!("无法读取文件（{e}）"), e))
        .and_then(|r| import::users_from_rows(&r))
        .map_err(|why| format!("导入文件有误：{} / {}", why.zh, why.en))?;
    let both = |e: crate::ApiError| format!("{} / {}", e.zh, e.en);
    let existing = db
        .read(|_, tables| import::existing(tables, &users))
        .map_err(both)?;
    let hashed = import::hash_new(&users, &existing).map_err(both)?;
    let outcome = db
        .tables_atomic(|tx| import::store_users_in(tx, &users, &hashed, None, now))
        .map_err(both)?;
    println!(
        "新增 {} 个，更新 {} 个，未变 {} 个 / {} added, {} updated, {} unchanged",
        outcome.added,
        outcome.updated,
        outcome.unchanged,
        outcome.added,
        outcome.updated,
        outcome.unchanged
    );
    if !outcome.passwords.is_empty() {
        println!("初始密码（只显示这一次）/ first passwords (shown this once):");
        for made in &outcome.passwords {
            println!("{}\t{}", made.user, made.password);
        }
    }
    Ok(())
}

fn manage(data: &std::path::Path, database: Option<&str>, command: Command) -> AnyResult {
    let db = match database {
        // Accounts live in the shared database; no replica is needed for them.
        Some(url) => Db::open_tables_only(url, "xuncha-server-cli")?,
        None => {
            std::fs::create_dir_all(data)?;
            Db::open(&db_path(data))?
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    if let Command::User(UserCommand::Import { file }) = &command {
        return import_users(&db, file, now);
    }
    db.tables(|conn| {
        match command {
            // `main` handles these without opening the database here.
            Command::CheckConfig | Command::Migrate { .. } | Command::MigrateToPostgres => {}
            // Handled above (hashing first, then one write).
            Command::User(UserCommand::Import { .. }) => {}
            // `main` sends it to `backup` without opening the database first.
            Command::Backup { dest } => {
                crate::backup::backup(data, &dest).map_err(crate::ApiError::internal)?;
            }
            Command::User(UserCommand::Add {
                id,
                role,
                name,
                password,
            }) => {
                accounts::create_user(
                    conn,
                    &id,
                    name.as_deref().unwrap_or(&id),
                    role,
                    &password,
                    now,
                )?;
                println!("已添加用户 / user added: {id} ({})", role.as_str());
            }
            Command::User(UserCommand::Password { id, password }) => {
                crate::revoke::change_password(conn, &id, &password, None)?;
                println!(
                    "密码已更新，已在所有设备上退出 / password set, signed out everywhere: {id}"
                );
            }
            Command::User(UserCommand::Disable { id, enable }) => {
                crate::revoke::set_disabled(conn, &id, !enable)?;
                if enable {
                    println!("已启用 / enabled: {id}");
                } else {
                    println!("已停用，已在所有设备上退出 / disabled, signed out everywhere: {id}");
                }
            }
            Command::User(UserCommand::Devices { id }) => {
                for d in crate::revoke::devices_of(conn, &id)? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        d.device_id,
                        d.name.as_deref().unwrap_or("-"),
                        chrono::DateTime::from_timestamp_millis(d.enrolled_ms)
                            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default(),
                        if d.revoked {
                            "已吊销 / revoked"
                        } else {
                            "有效 / active"
                        }
                    );
                }
            }
            Command::User(UserCommand::RevokeDevice { device }) => {
                crate::revoke::revoke_device(conn, &device)?;
                println!("设备已吊销 / device revoked: {device}");
            }
            Command::User(UserCommand::SignOut { id }) => {
                let n = crate::revoke::sign_out_everywhere(conn, &id, None)?;
                println!("已退出 {n} 个设备 / signed out of {n} devices: {id}");
            }
            Command::User(UserCommand::RotateFeed { id }) => {
                crate::revoke::rotate_feed(conn, &id)?;
                println!(
                    "日历订阅地址 / calendar feed: {}",
                    crate::ical::feed_path(conn, &id)?
                );
            }
            Command::User(UserCommand::Areas {
                id,
                grids,
                communities,
                subdistricts,
            }) => {
                let areas = Areas {
                    grids,
                    communities,
                    subdistricts,
                };
                accounts::set_areas(conn, &id, &areas)?;
                println!("负责区域已更新 / areas set: {id}");
            }
            Command::Grid(GridCommand::Add {
                id,
                name,
                community,
                subdistrict,
            }) => {
                accounts::upsert_grid(
                    conn,
                    &Grid {
                        id: id.clone(),
                        name,
                        community,
                        subdistrict,
                    },
                )?;
                println!("网格已保存 / grid saved: {id}");
            }
        }
        Ok(())
    })
    .map_err(crate::ServerError::from)?;
    Ok(())
}

fn serve(data: &std::path::Path, database: Option<String>, args: ServeArgs) -> AnyResult {
    crate::access_log::init(args.log_format, args.log_level);
    std::fs::create_dir_all(data)?;
    let db = db_path(data);
    if database.is_some() && args.backup_dir.is_some() {
        return Err("--backup-dir 备份的是 SQLite 文件；使用 --database 时请用 pg_dump 备份 PostgreSQL / --backup-dir copies the SQLite file; with --database, back up PostgreSQL with pg_dump".into());
    }
    if let (true, Some(url)) = (args.demo, &database) {
        seed_shared(data, url, args.photos.as_deref())?;
    } else if args.demo {
        let empty = xuncha_core::store::Store::open(&db)?.op_count()? == 0;
        if empty {
            let now = chrono::Utc::now().timestamp_millis();
            let d = match &args.photos {
                Some(url) => {
                    let bucket = crate::object_storage::S3Storage::open(url)?;
                    demo::seed_with(data, &bucket, now)?
                }
                None => demo::seed(data, now)?,
            };
            println!(
                "演示数据已写入 / demo data written: {} grids, {} premises, {} inspections, {} hazards",
                d.grids, d.premises, d.inspections, d.hazards
            );
        } else {
            println!("数据库已有数据，未写入演示数据 / database not empty, demo data not added");
        }
    }
    // HTTPS: a certificate that cannot be used stops the server here, before anything runs.
    let certificates = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(std::sync::Arc::new(crate::tls::Certificates::open(
            cert, key,
        )?)),
        _ => None,
    };
    // What this server runs with, secrets left out.
    tracing::info!(
        data = %data.display(),
        listen = %args.listen,
        https = certificates.is_some(),
        ops_listen = %args.ops_listen,
        backup_dir = ?args.backup_dir,
        photos = args.photos.as_deref().unwrap_or("photos/"),
        webhook = args.webhook_url.is_some(),
        tiles = args.tile_url.is_some(),
        trusted_proxies = args.trusted_proxies.len(),
        "starting"
    );
    let config = Config {
        max_body_bytes: args.max_body_bytes,
        max_clock_ahead_ms: args.max_clock_ahead_secs.saturating_mul(1000),
        notice_area: args.notice_area.clone(),
        notice_contact: args.notice_contact.clone(),
        reminder_hour: args.reminder_hour,
        max_photo_bytes: args.max_photo_bytes,
        photo_store: args.photos.clone(),
        database: database.clone(),
        tiles: crate::dashboard::Tiles {
            url: args.tile_url.clone(),
            labels_url: args.tile_labels_url.clone(),
            attribution: args.tile_attribution.clone(),
            subdomains: args.tile_subdomains.clone(),
            gcj02: args.tiles_gcj02,
        },
        secure_cookies: args.secure_cookies || certificates.is_some(),
        login_limits: crate::login::LoginLimits::default(),
        trusted_proxies: args.trusted_proxies.clone(),
    };
    let state = AppState::open(data, config)?;
    let admin_password = std::env::var("XUNCHA_ADMIN_PASSWORD").ok();
    let now = state.now_ms();
    let generated = state
        .db()
        .tables(|tables| accounts::ensure_admin(tables, admin_password.as_deref(), now))
        .map_err(crate::ServerError::from)?;
    if let Some(password) = generated {
        println!(
            "已创建管理员 admin，一次性密码（只显示这一次）: {password}\n\
             created administrator 'admin' with one-time password (shown only now): {password}\n\
             change it: XUNCHA_NEW_PASSWORD=... xuncha-server user password admin"
        );
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(
            state,
            Listen {
                addr: args.listen,
                certificates,
                redirect: args.http_redirect_listen,
                ops: args.ops_listen.clone(),
            },
            args.backup_dir.map(|dir| {
                (
                    data.to_owned(),
                    crate::backup_schedule::Schedule {
                        dir,
                        every: args.backup_every,
                        at: args.backup_at,
                        keep_daily: args.backup_keep_daily.max(1),
                        keep_weekly: args.backup_keep_weekly,
                    },
                )
            }),
            Duration::from_secs(args.quarantine_check_secs.max(1)),
            Duration::from_secs(args.escalation_check_secs.max(1)),
            args.webhook_url.map(|url| WebhookConfig {
                url,
                secret: args.webhook_secret,
                max_attempts: 12,
                first_retry: Duration::from_secs(30),
            }),
            args.demo,
        ))
}

/// Starts the operations listener unless `off`. Its port taken (a second server on the
/// machine) is said and the server goes on: admins still reach the endpoints signed in.
async fn serve_ops(state: &AppState, ops_listen: &str) -> AnyResult {
    if ops_listen.eq_ignore_ascii_case("off") {
        return Ok(());
    }
    let addr: SocketAddr = ops_listen.parse().map_err(|_| {
        format!("--ops-listen 不是地址 / is not an address: {ops_listen:?} (e.g. 127.0.0.1:9180, or off)")
    })?;
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            println!(
                "运维接口 / operations: http://{}/status, /metrics",
                listener.local_addr()?
            );
            let ops = crate::ops_app(state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, ops).await {
                    tracing::error!(error = %e, "operations listener stopped");
                }
            });
        }
        Err(e) => eprintln!(
            "运维接口未启动（{addr}：{e}）；管理员登录后仍可访问 /status 与 /metrics / operations listener not started ({addr}: {e}); admins still reach /status and /metrics signed in"
        ),
    }
    Ok(())
}

/// Takes the scheduled backups for as long as the server runs; a failure is kept for
/// `/status` and `/metrics` until a backup succeeds again.
fn scheduled_backups(state: AppState, data: PathBuf, schedule: crate::backup_schedule::Schedule) {
    println!(
        "定时备份 / scheduled backups: {} every {:?} (keeping {} daily, {} weekly)",
        schedule.dir.display(),
        schedule.every,
        schedule.keep_daily,
        schedule.keep_weekly
    );
    tokio::spawn(async move {
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            let next = crate::backup_schedule::next_run(now, schedule.every, schedule.at);
            tokio::time::sleep(Duration::from_millis((next - now).max(0) as u64)).await;
            let (data, plan) = (data.clone(), schedule.clone());
            let at = chrono::Utc::now().timestamp_millis();
            let done = tokio::task::spawn_blocking(move || {
                crate::backup_schedule::run_once(&data, &plan, at)
            })
            .await;
            let outcome = match done {
                Ok(Ok(dest)) => {
                    tracing::info!(copy = %dest.display(), "backup written");
                    state
                        .write(|w| Ok(crate::backup::clear_failure(w.replica().conn())?))
                        .await
                }
                Ok(Err(e)) => {
                    let why = e.to_string();
                    tracing::error!(error = %why, "backup failed");
                    state
                        .write(move |w| {
                            Ok(crate::backup::record_failure(w.replica().conn(), at, &why)?)
                        })
                        .await
                }
                Err(e) => {
                    let why = e.to_string();
                    state
                        .write(move |w| {
                            Ok(crate::backup::record_failure(w.replica().conn(), at, &why)?)
                        })
                        .await
                }
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e.en, "backup bookkeeping failed");
            }
        }
    });
}

/// Where the public listener is, and whether it speaks HTTPS.
struct Listen {
    addr: SocketAddr,
    certificates: Option<std::sync::Arc<crate::tls::Certificates>>,
    redirect: Option<SocketAddr>,
    /// `--ops-listen`.
    ops: String,
}

async fn run(
    state: AppState,
    listen: Listen,
    backups: Option<(PathBuf, crate::backup_schedule::Schedule)>,
    quarantine_every: Duration,
    escalation_every: Duration,
    webhook: Option<WebhookConfig>,
    demo: bool,
) -> AnyResult {
    let listener = tokio::net::TcpListener::bind(listen.addr).await?;
    let local = listener.local_addr()?;
    // The address line is read by tests and scripts that start the server on port 0.
    let scheme = if listen.certificates.is_some() {
        "https"
    } else {
        "http"
    };
    println!("巡查服务器 / Xuncha server: {scheme}://{local}/");
    if let Some(redirect) = listen.redirect {
        let plain = tokio::net::TcpListener::bind(redirect).await?;
        println!(
            "HTTP 跳转到 HTTPS / plain HTTP redirected to HTTPS: {}",
            plain.local_addr()?
        );
        let app = crate::tls::redirect_app(local.port());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(plain, app).await {
                tracing::error!(error = %e, "redirect listener stopped");
            }
        });
    }
    serve_ops(&state, &listen.ops).await?;
    if demo {
        println!(
            "演示登录 / demo login: {} / {} (网格员 / workers w01..w12, 社区网格长 / community leaders leader-xf, leader-hp, leader-xh: same password)",
            demo::DEMO_USER,
            demo::DEMO_PASSWORD
        );
    }
    // Deadlines count working days: say when this or next year's calendar is not official.
    let now = state.now_ms();
    let years = state
        .read_store(move |s, _| Ok(crate::status::calendar_years(s.calendar(), now)))
        .await
        .unwrap_or_default();
    for y in years.iter().filter(|y| y.status != YearStatus::Official) {
        println!(
            "工作日历 {} 年为{}；国务院通知发布后请用 PUT /v1/admin/calendar 更新 / working-day calendar for {} is {:?}: update it with PUT /v1/admin/calendar once the State Council's notice is out",
            y.year,
            if y.status == YearStatus::Provisional {
                "暂定"
            } else {
                "缺失"
            },
            y.year,
            y.status,
        );
    }
    // Build the dashboard's map index now rather than on the first page view (seconds for a
    // city with a million hazards).
    let warm = state.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::dashboard::with_index(&warm, |_, _, _| Ok(())).await {
            eprintln!("map index: {}", e.en);
        }
    });
    let jobs = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(quarantine_every);
        loop {
            tick.tick().await;
            let now = jobs.now_ms();
            let bound = jobs.config.max_clock_ahead_ms;
            match jobs
                .write(move |s| sync::release_quarantine(s, now, bound, false))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "quarantine: ops released"),
                Err(e) => tracing::error!(error = %e.en, "quarantine release failed"),
            }
        }
    });
    let jobs = state.clone();
    let webhooks = webhook.is_some();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(escalation_every);
        loop {
            tick.tick().await;
            let now = jobs.now_ms();
            let hour = jobs.config.reminder_hour;
            let run = jobs.write(move |w| {
                let rules = EscalationRules::default();
                let calendar = w.replica().calendar().clone();
                let done = escalation::run_job(w, now, &rules, &calendar, webhooks)?;
                if webhooks {
                    w.all_or_nothing(|w| crate::reminders::queue(w, now, hour))?;
                }
                Ok(done)
            });
            match run.await {
                Ok(done) if done.is_empty() => {}
                Ok(done) => tracing::info!(
                    escalated = done.len(),
                    "escalation: overdue hazards escalated"
                ),
                Err(e) => tracing::error!(error = %e.en, "escalation failed"),
            }
        }
    });
    if let Some(config) = webhook {
        let jobs = state.clone();
        xuncha_core::sync::client::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                if let Err(e) = webhook::deliver_due(&jobs, &http, &config, jobs.now_ms()).await {
                    tracing::warn!(error = %e.en, "webhook delivery failed");
                }
            }
        });
    }
    if let Some((data, schedule)) = backups {
        scheduled_backups(state.clone(), data, schedule);
    }
    // Access cut off from the command line (another process) reaches the token caches
    // within a second.
    {
        let watch = state.clone();
        tokio::spawn(async move {
            let mut seen = None;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = watch.read(|_, t| crate::revoke::stamp(t)).await.ok();
                if now.is_some() && seen.is_some() && now != seen {
                    watch.forget_tokens();
                }
                seen = now.or(seen);
            }
        });
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match listen.certificates {
        Some(certificates) => {
            certificates.watch();
            // (tap_io: axum hands the peer's address to handlers for any listener it wraps.)
            let tls = axum::serve::ListenerExt::tap_io(
                crate::tls::TlsListener::new(listener, certificates)?,
                |_| {},
            );
            let app = app(state).layer(axum::middleware::from_fn(crate::tls::hsts));
            axum::serve(
                tls,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?;
        }
        None => {
            axum::serve(
                listener,
                app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?;
        }
    }
    Ok(())
}
