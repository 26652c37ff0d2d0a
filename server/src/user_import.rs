//! `POST /v1/admin/users/import`: accounts from a spreadsheet (CSV or XLSX), as an office
//! keeps its list of grid workers. The same rules as the premises import: columns found by
//! their Chinese or English header, GBK CSV read, every row checked before anything is stored,
//! a bad row named by its line in both languages with the values accepted, all rows or none.
//! Importing the file again updates names, roles, areas and phones instead of failing on
//! users already there; passwords are only ever set for new users (left blank, one is made and
//! shown once to the admin, to hand out).

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use xuncha_core::sync::Role;

use crate::AppState;
use crate::account_tables::{AccountTables, KnownAreas, Profile};
use crate::accounts::{self, Areas, Caller};
use crate::error::ApiError;
use crate::import::{Refusal, column, header_and_data, skipped};

/// Users imported at most per file (each new one costs a password hash).
pub const MAX_USERS: usize = 5_000;

/// The columns understood, each with the headers that name it.
const COLUMNS: &[(&str, &[&str])] = &[
    ("id", &["用户名", "账号", "登录名", "user", "id", "user_id"]),
    ("name", &["姓名", "名字", "display_name", "name"]),
    ("role", &["角色", "role"]),
    ("grids", &["网格", "grids", "grid"]),
    ("communities", &["社区", "communities", "community"]),
    ("subdistricts", &["街道", "subdistricts", "subdistrict"]),
    ("phone", &["电话", "手机", "联系电话", "phone"]),
    ("password", &["初始密码", "密码", "password"]),
];

const ROLES_ACCEPTED: &str = "网格员、网格长、管理员";

fn role(s: &str) -> Option<Role> {
    match s.trim().to_ascii_lowercase().as_str() {
        "网格员" | "worker" => Some(Role::Worker),
        "网格长" | "社区" | "街道" | "督查" | "supervisor" => Some(Role::Supervisor),
        "管理员" | "admin" => Some(Role::Admin),
        _ => None,
    }
}

/// A cell listing several areas: separated by commas, 、 or semicolons (ASCII or full-width).
fn list(cell: &str) -> Vec<String> {
    cell.split([',', '，', '、', ';', '；'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One account as a row of the file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The file's line (header is line 1), for messages.
    pub line: usize,
    /// User name (login).
    pub id: String,
    /// Name shown everywhere (the user name when the cell is blank).
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Areas covered.
    pub areas: Areas,
    /// Phone number, if given.
    pub phone: Option<String>,
    /// Initial password, if given (used for new users only).
    pub password: Option<String>,
}

/// The accounts described by the rows (header first), or the first problem with its line.
pub fn users_from_rows(rows: &[Vec<String>]) -> Result<Vec<UserRow>, Refusal> {
    let (header, data) = header_and_data(rows, MAX_USERS)?;
    let col = |name: &str| column(header, COLUMNS, name);
    let (Some(id_col), Some(role_col)) = (col("id"), col("role")) else {
        return Err(Refusal::new(
            "表头须有“用户名”“角色”两列（可下载模板）",
            "the header must name the columns 用户名/user and 角色/role (see the template)",
        ));
    };
    let [name, grids, communities, subdistricts, phone, password] = [
        "name",
        "grids",
        "communities",
        "subdistricts",
        "phone",
        "password",
    ]
    .map(col);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(data.len());
    for (i, row) in data.iter().enumerate() {
        let line = i + 2;
        if skipped(row) {
            continue;
        }
        let cell = |c: Option<usize>| c.and_then(|c| row.get(c)).map_or("", |s| s.as_str());
        let wrong = |zh: String, en: String| {
            Refusal::new(format!("第 {line} 行：{zh}"), format!("line {line}: {en}"))
        };
        let id = cell(Some(id_col)).to_owned();
        accounts::check_user_id(&id).map_err(|e| wrong(e.zh, e.en))?;
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(wrong(
                format!("用户名“{id}”与第 {first} 行重复"),
                format!("user {id:?} is already on line {first}"),
            ));
        }
        let role_text = cell(Some(role_col));
        let role = role(role_text).ok_or_else(|| {
            wrong(
                format!("角色“{role_text}”无法识别，可填：{ROLES_ACCEPTED}"),
                format!(
                    "role {role_text:?} is not understood; accepted: {ROLES_ACCEPTED} (worker, supervisor, admin)"
                ),
            )
        })?;
        let areas = Areas {
            grids: list(cell(grids)),
            communities: list(cell(communities)),
            subdistricts: list(cell(subdistricts)),
        };
        // Someone in the field or reviewing it with no area would see nothing at all.
        if role != Role::Admin
            && areas.grids.is_empty()
            && areas.communities.is_empty()
            && areas.subdistricts.is_empty()
        {
            return Err(wrong(
                "网格员和网格长须填写网格、社区或街道".to_owned(),
                "a worker or supervisor needs grids, communities or a sub-district".to_owned(),
            ));
        }
        let password = Some(cell(password).to_owned()).filter(|p| !p.is_empty());
        if let Some(p) = &password {
            accounts::check_password(p).map_err(|e| wrong(e.zh, e.en))?;
        }
        let display_name = match cell(name) {
            "" => id.clone(),
            n => n.to_owned(),
        };
        out.push(UserRow {
            line,
            id,
            display_name,
            role,
            areas,
            phone: Some(cell(phone).to_owned()).filter(|p| !p.is_empty()),
            password,
        });
    }
    if out.is_empty() {
        return Err(Refusal::new("文件中没有用户", "the file lists no users"));
    }
    Ok(out)
}

/// The import template: every column, an example of each role and the values accepted.
pub const TEMPLATE_CSV: &str = "\u{feff}用户名,姓名,角色,网格,社区,街道,电话,初始密码\n\
w-zhang,张伟,网格员,XF-01、XF-02,,,13800000001,\n\
l-li,李娜,网格长,,幸福社区,,13800000002,\n\
# 角色可填：网格员、网格长、管理员；网格、社区可填多个，用顿号或逗号分隔；初始密码至少 8 个字符，留空则自动生成（只对新用户）；以 # 开头的行不导入,,,,,,,\n";

/// A new account's password: the one given, or one made here to be handed out.
fn new_password(given: Option<&str>) -> Result<(String, bool), ApiError> {
    if let Some(p) = given {
        return Ok((p.to_owned(), false));
    }
    // Letters and digits that cannot be misread from paper (no 0/O, 1/l/I).
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let made = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok((made, true))
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// New accounts.
    pub added: usize,
    /// Accounts already there whose name, role, areas or phone changed.
    pub updated: usize,
    /// Accounts already there, as imported.
    pub unchanged: usize,
    /// Passwords made for new accounts whose row left it blank: shown this once.
    pub passwords: Vec<MadePassword>,
}

/// A password made by the import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MadePassword {
    /// The account.
    pub user: String,
    /// Its first password.
    pub password: String,
}

/// An account as stored, to tell an update from no change.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    profile: Profile,
    areas: Areas,
}

fn stored(conn: &dyn AccountTables, id: &str) -> Result<Option<Stored>, ApiError> {
    let Some(profile) = conn.profile(id)? else {
        return Ok(None);
    };
    Ok(Some(Stored {
        profile,
        areas: conn.areas_of(id)?,
    }))
}

/// Areas sorted and without repeats, as [`stored`] reads them back.
fn normalised(areas: &Areas) -> Areas {
    let sorted = |v: &Vec<String>| {
        let mut v = v.clone();
        v.sort();
        v.dedup();
        v
    };
    Areas {
        grids: sorted(&areas.grids),
        communities: sorted(&areas.communities),
        subdistricts: sorted(&areas.subdistricts),
    }
}

/// Every area named must exist: a typo would give someone an area no shop is in.
fn check_areas(conn: &dyn AccountTables, users: &[UserRow]) -> Result<(), Refusal> {
    let KnownAreas {
        grids,
        communities,
        subdistricts,
    } = conn
        .known_areas()
        .map_err(|e| Refusal::new("无法读取网格", e.en))?;
    for u in users {
        for (list, known, zh, en) in [
            (&u.areas.grids, &grids, "网格", "grid"),
            (&u.areas.communities, &communities, "社区", "community"),
            (&u.areas.subdistricts, &subdistricts, "街道", "sub-district"),
        ] {
            if let Some(a) = list.iter().find(|a| !known.contains(*a)) {
                return Err(Refusal::new(
                    format!("第 {} 行：{zh}“{a}”不存在，请先导入网格", u.line),
                    format!(
                        "line {}: there is no {en} {a:?}; import the grids first",
                        u.line
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Passwords for the accounts of `users` that `existing` lacks, hashed: user -> (hash, the
/// password when it was made here).
pub type NewPasswords = HashMap<String, (String, Option<String>)>;

/// Makes and hashes the first passwords of the new accounts (slow: run it off the writer).
pub fn hash_new(users: &[UserRow], existing: &HashSet<String>) -> Result<NewPasswords, ApiError> {
    users
        .iter()
        .filter(|u| !existing.contains(&u.id))
        .map(|u| {
            let (password, made) = new_password(u.password.as_deref())?;
            let hash = accounts::hash_password(&password)?;
            Ok((u.id.clone(), (hash, made.then_some(password))))
        })
        .collect()
}

/// The accounts of `users` already there.
pub fn existing(conn: &dyn AccountTables, users: &[UserRow]) -> Result<HashSet<String>, ApiError> {
    let all = conn.user_ids()?;
    Ok(users
        .iter()
        .filter(|u| all.contains(&u.id))
        .map(|u| u.id.clone())
        .collect())
}

/// Stores the accounts in the caller's transaction (which makes it all or none): new ones with
/// the passwords of `hashed`, those already there updated. `me`: the admin importing, who may
/// not change their own role.
pub fn store_users_in(
    tx: &dyn AccountTables,
    users: &[UserRow],
    hashed: &NewPasswords,
    me: Option<&str>,
    now: i64,
) -> Result<Outcome, ApiError> {
    check_areas(tx, users)?;
    let mut outcome = Outcome::default();
    for u in users {
        let wanted = Stored {
            profile: Profile {
                display_name: u.display_name.clone(),
                role: u.role.as_str().to_owned(),
                phone: u.phone.clone(),
            },
            areas: normalised(&u.areas),
        };
        match stored(tx, &u.id)? {
            Some(had) if had == wanted => outcome.unchanged += 1,
            Some(had) => {
                if Some(u.id.as_str()) == me && had.profile.role != wanted.profile.role {
                    return Err(Refusal::new(
                        format!("第 {} 行：不能更改自己的角色", u.line),
                        format!("line {}: you cannot change your own role", u.line),
                    )
                    .into());
                }
                tx.set_profile(&u.id, &wanted.profile)?;
                accounts::set_areas(tx, &u.id, &u.areas)?;
                outcome.updated += 1;
            }
            None => {
                // Added by someone else since it was read: the admin imports again.
                let Some((hash, made)) = hashed.get(&u.id) else {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "user_exists",
                        format!("用户 {} 刚被添加，请重新导入", u.id),
                        format!("user {} was just added; import again", u.id),
                    ));
                };
                accounts::insert_user(tx, &u.id, &u.display_name, u.role, hash, now)?;
                tx.set_profile(&u.id, &wanted.profile)?;
                accounts::set_areas(tx, &u.id, &u.areas)?;
                if let Some(password) = made {
                    outcome.passwords.push(MadePassword {
                        user: u.id.clone(),
                        password: password.clone(),
                    });
                }
                outcome.added += 1;
            }
        }
    }
    Ok(outcome)
}

/// `GET /v1/admin/users/template.csv`: the import template.
pub async fn template(caller: Caller) -> Result<axum::response::Response, ApiError> {
    crate::admin::require_admin(&caller)?;
    Ok(crate::import::csv_download(
        "users-template.csv",
        TEMPLATE_CSV,
    ))
}

/// `POST /v1/admin/users/import` (body: the file; `Content-Type` says CSV or XLSX).
pub async fn import_users(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::admin::require_admin(&caller)?;
    let xlsx = crate::import::is_xlsx(&headers);
    let users = crate::import::parse_upload(body, xlsx, users_from_rows).await?;
    // Passwords are hashed before the writer is taken (a hash costs tens of milliseconds and
    // the writer serves every phone's push meanwhile).
    let (users, existing) = state
        .read(move |_, tables| {
            let found = existing(tables, &users)?;
            Ok((users, found))
        })
        .await?;
    let (users, hashed) = tokio::task::spawn_blocking(move || {
        let hashed = hash_new(&users, &existing)?;
        Ok::<_, ApiError>((users, hashed))
    })
    .await
    .map_err(ApiError::internal)??;
    let me = caller.user.as_str().to_owned();
    let now = state.now_ms();
    let outcome = state
        .tables_atomic(move |tx| store_users_in(tx, &users, &hashed, Some(&me), now))
        .await?;
    // Areas changed: cached scopes go.
    state.forget_tokens();
    Ok((StatusCode::CREATED, Json(json!(outcome))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::import::rows;

    fn table(csv: &str) -> Vec<Vec<String>> {
        rows(csv.as_bytes(), false).unwrap()
    }

    #[test]
    fn the_template_reads_as_two_users() {
        let users = users_from_rows(&rows(TEMPLATE_CSV.as_bytes(), false).unwrap()).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].role, Role::Worker);
        assert_eq!(users[0].areas.grids, ["XF-01", "XF-02"]);
        assert_eq!(users[0].display_name, "张伟");
        assert_eq!(users[0].password, None);
        assert_eq!(users[1].role, Role::Supervisor);
        assert_eq!(users[1].areas.communities, ["幸福社区"]);
    }

    #[test]
    fn a_bad_row_is_named_with_its_line_and_what_is_accepted() {
        let refusal = users_from_rows(&table("用户名,角色,网格\nw1,网格员,XF-01\nw2,组长,XF-01\n"))
            .unwrap_err();
        assert!(refusal.zh.starts_with("第 3 行"), "{refusal:?}");
        assert!(refusal.zh.contains(ROLES_ACCEPTED), "{refusal:?}");
        assert!(refusal.en.starts_with("line 3"), "{refusal:?}");
    }

    #[test]
    fn repeats_short_passwords_bad_names_and_workers_without_an_area_are_refused() {
        for (csv, says) in [
            ("user,role,grids\nw1,worker,A\nw1,worker,B\n", "第 2 行重复"),
            ("user,role,grids,password\nw1,worker,A,short\n", "至少 8"),
            ("user,role,grids\nw 1,worker,A\n", "用户名"),
            ("user,role\nw1,worker\n", "须填写网格"),
            ("name,role\n张三,worker\n", "表头"),
            ("user,role\n", "没有用户"),
        ] {
            let refusal = users_from_rows(&table(csv)).unwrap_err();
            assert!(refusal.zh.contains(says), "{csv}: {refusal:?}");
        }
    }

    #[test]
    fn an_admin_needs_no_area_and_english_headers_work() {
        let users =
            users_from_rows(&table("user,role,name,phone\nboss,admin,王主任,138\n")).unwrap();
        assert_eq!(users[0].role, Role::Admin);
        assert_eq!(users[0].phone.as_deref(), Some("138"));
    }

    #[test]
    fn made_passwords_are_long_and_differ() {
        let (a, made) = new_password(None).unwrap();
        let (b, _) = new_password(None).unwrap();
        assert!(made && a.len() == 12 && a != b);
        assert_eq!(
            new_password(Some("given-pass")).unwrap(),
            ("given-pass".into(), false)
        );
    }
}
