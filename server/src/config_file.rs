//! The configuration file (`/etc/xuncha/xuncha.toml`, or `--config PATH`, or
//! `XUNCHA_CONFIG`): every option of the command line, by its long name (`listen`,
//! `tile_url` or `tile-url`, `trusted_proxy = ["10.0.0.0/8"]`, `secure_cookies = true`).
//!
//! Precedence, highest first: the command line, the environment (`XUNCHA_…`), the file, the
//! built-in defaults. The file's values become the options' defaults, so clap applies the
//! order and checks every value with the same parsers as on the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Command;

/// Where the file is looked for when neither `--config` nor `XUNCHA_CONFIG` names one.
pub const DEFAULT_PATH: &str = "/etc/xuncha/xuncha.toml";

/// A mistake in the file, said in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 中文.
    pub zh: String,
    /// English.
    pub en: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.zh, self.en)
    }
}

impl std::error::Error for ConfigError {}

/// The file's settings: option id to its values (one, or several for a list).
pub type Settings = BTreeMap<String, Vec<String>>;

/// The configuration file named by the arguments or the environment, else the default one
/// if it exists. `Ok(None)`: no file.
pub fn locate(args: &[String], env: Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    let mut named = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--config" {
            named = it.next().cloned();
            if named.is_none() {
                return Err(ConfigError {
                    zh: "--config 后缺少文件路径".into(),
                    en: "--config needs a file path".into(),
                });
            }
        } else if let Some(p) = a.strip_prefix("--config=") {
            named = Some(p.to_owned());
        }
    }
    match named.or(env.filter(|e| !e.is_empty())) {
        Some(p) => Ok(Some(PathBuf::from(p))),
        None if Path::new(DEFAULT_PATH).exists() => Ok(Some(PathBuf::from(DEFAULT_PATH))),
        None => Ok(None),
    }
}

/// Reads and checks a file against the options of `command` (the serving options and the
/// global ones; subcommands take their own arguments).
pub fn read(path: &Path, command: &Command) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        zh: format!("无法读取配置文件 {}：{e}", path.display()),
        en: format!("cannot read the configuration file {}: {e}", path.display()),
    })?;
    parse(&text, command).map_err(|e| ConfigError {
        zh: format!("配置文件 {}：{}", path.display(), e.zh),
        en: format!("configuration file {}: {}", path.display(), e.en),
    })
}

/// Parses the file's text into settings, refusing keys that are not options and values of
/// the wrong shape; then checks each value with the option's own parser.
pub fn parse(text: &str, command: &Command) -> Result<Settings, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        zh: format!("不是有效的 TOML：{}", e.message()),
        en: format!("not valid TOML: {}", e.message()),
    })?;
    let settable: BTreeMap<String, &clap::Arg> = command
        .get_arguments()
        .filter(|a| {
            a.get_long().is_some() && !matches!(a.get_id().as_str(), "help" | "version" | "config")
        })
        .map(|a| (a.get_id().as_str().to_owned(), a))
        .collect();
    let mut out = Settings::new();
    for (key, value) in &table {
        // By the option's long name (`tile-url`, `trusted-proxy`), with `_` for `-` as TOML
        // keys are usually written.
        let long = key.replace('_', "-");
        let Some(arg) = settable
            .values()
            .find(|a| a.get_long() == Some(long.as_str()))
        else {
            let known: Vec<String> = settable
                .values()
                .filter_map(|a| a.get_long().map(|l| l.replace('-', "_")))
                .collect();
            return Err(ConfigError {
                zh: format!("未知的设置项 {key}（可用：{}）", known.join("、")),
                en: format!("unknown setting {key} (known: {})", known.join(", ")),
            });
        };
        let values = match value {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Integer(n) => vec![n.to_string()],
            toml::Value::Float(x) => vec![x.to_string()],
            toml::Value::Boolean(b) => vec![b.to_string()],
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    toml::Value::Integer(n) => Ok(n.to_string()),
                    other => Err(other.type_str()),
                })
                .collect::<Result<_, _>>()
                .map_err(|t| ConfigError {
                    zh: format!("{key} 的列表只能包含文字或数字，不能包含 {t}"),
                    en: format!("the list of {key} holds text or numbers, not {t}"),
                })?,
            other => {
                return Err(ConfigError {
                    zh: format!("{key} 的值不能是 {}", other.type_str()),
                    en: format!("{key} cannot be a {}", other.type_str()),
                });
            }
        };
        out.insert(arg.get_id().as_str().to_owned(), values);
    }
    check(&out, command)?;
    Ok(out)
}

/// `command` with the settings as its options' defaults.
pub fn with_defaults(command: Command, settings: &Settings) -> Command {
    settings.iter().fold(command, |cmd, (id, values)| {
        let values: Vec<clap::builder::OsStr> = values
            .iter()
            .map(|v| clap::builder::OsStr::from(clap::builder::Str::from(v.clone())))
            .collect();
        cmd.mut_arg(id, |a| a.default_values(values))
    })
}

/// Each value through its option's parser, one setting at a time so the error names it.
fn check(settings: &Settings, command: &Command) -> Result<(), ConfigError> {
    for (id, values) in settings {
        let one: Settings = [(id.clone(), values.clone())].into();
        let probe = with_defaults(command.clone(), &one)
            .subcommand_required(false)
            .ignore_errors(false);
        if let Err(e) = probe.try_get_matches_from(["xuncha-server"]) {
            let why = e
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_owned();
            return Err(ConfigError {
                zh: format!("{id} 的值 {values:?} 不正确：{why}"),
                en: format!("{id} = {values:?} is not valid: {why}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<Settings, ConfigError> {
        parse(text, &crate::cli::command())
    }

    #[test]
    fn options_are_set_by_their_long_names_with_lists_and_flags() {
        let s = settings(
            r#"
            listen = "0.0.0.0:8443"
            tile_url = "https://t{s}.tianditu.gov.cn/vec_w/wmts?tk=KEY"
            trusted_proxy = ["10.0.0.0/8", "192.168.1.1"]
            secure-cookies = true
            reminder_hour = 8
            "#,
        )
        .unwrap();
        assert_eq!(s["listen"], ["0.0.0.0:8443"]);
        assert_eq!(s["trusted_proxies"], ["10.0.0.0/8", "192.168.1.1"]);
        assert_eq!(s["secure_cookies"], ["true"]);
        assert_eq!(s["reminder_hour"], ["8"]);
    }

    #[test]
    fn the_command_line_beats_the_file_and_the_file_beats_the_defaults() {
        let s = settings("listen = \"0.0.0.0:8443\"\nnotice_area = \"幸福街道\"").unwrap();
        let cmd = with_defaults(crate::cli::command(), &s);
        let m = cmd
            .try_get_matches_from(["xuncha-server", "--listen", "127.0.0.1:1"])
            .unwrap();
        assert_eq!(
            m.get_one::<std::net::SocketAddr>("listen")
                .unwrap()
                .to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(m.get_one::<String>("notice_area").unwrap(), "幸福街道");
        assert_eq!(m.get_one::<String>("tile_subdomains").unwrap(), "abc");
    }

    #[test]
    fn mistakes_name_the_setting_in_both_languages() {
        for (text, named) in [
            ("lisen = \"0.0.0.0:80\"", "lisen"),
            ("listen = \"nowhere\"", "listen"),
            ("reminder_hour = 30", "reminder_hour"),
            ("trusted_proxy = [\"not a network\"]", "trusted_proxies"),
            ("secure_cookies = \"maybe\"", "secure_cookies"),
            ("listen = { host = \"x\" }", "listen"),
            ("listen = ", "TOML"),
        ] {
            let e = settings(text).unwrap_err();
            assert!(e.zh.contains(named) && e.en.contains(named), "{text}: {e}");
            assert!(e.zh.chars().any(|c| c > '\u{2e80}'), "Chinese: {e}");
        }
    }
}
