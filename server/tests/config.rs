//! The configuration file through the real binary: `check-config` says where each setting
//! comes from (command line over environment over file over default), keeps secrets out of
//! its output, and a mistake stops the server with the setting named in Chinese and English.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure

use std::process::Command;

const SERVER: &str = env!("CARGO_BIN_EXE_xuncha-server");

fn run(
    dir: &std::path::Path,
    file: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let path = dir.join("xuncha.toml");
    std::fs::write(&path, file).unwrap();
    let mut cmd = Command::new(SERVER);
    cmd.arg("--data")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&path);
    cmd.args(args);
    for var in [
        "XUNCHA_LISTEN",
        "XUNCHA_TILE_URL",
        "XUNCHA_NOTICE_AREA",
        "XUNCHA_CONFIG",
        "XUNCHA_WEBHOOK_SECRET",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_says_where_each_setting_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = r#"
        listen = "0.0.0.0:8443"
        notice_area = "幸福街道"
        tile_url = "https://file.example/{z}/{x}/{y}.png"
        webhook_secret = "s3cret-from-file"
        trusted_proxy = ["10.0.0.0/8"]
    "#;
    let (code, out, err) = run(
        dir.path(),
        file,
        &["--listen", "127.0.0.1:9", "check-config"],
        &[("XUNCHA_TILE_URL", "https://env.example/{z}/{x}/{y}.png")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("配置文件正确 / configuration file is valid"),
        "{out}"
    );
    for line in [
        "listen = 127.0.0.1:9  (命令行 / command line)",
        "tile-url = https://env.example/{z}/{x}/{y}.png  (环境变量 / environment)",
        "notice-area = 幸福街道  (配置文件 / file)",
        "trusted-proxy = 10.0.0.0/8  (配置文件 / file)",
        "tile-subdomains = abc  (默认 / default)",
        "demo = false  (默认 / default)",
        "webhook-secret = ***  (配置文件 / file)",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert!(!out.contains("s3cret-from-file"), "{out}");
}

#[test]
fn a_mistake_in_the_file_stops_the_server_and_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (file, named) in [
        (
            "listen = \"0.0.0.0:80\"\nreminder_hour = 25\n",
            "reminder_hour",
        ),
        ("listn = \"0.0.0.0:80\"\n", "listn"),
    ] {
        for args in [&["check-config"][..], &[][..]] {
            let (code, out, err) = run(dir.path(), file, args, &[]);
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            assert!(
                err.contains("配置有误") && err.contains("configuration error"),
                "{err}"
            );
            assert!(err.contains(named), "{err}");
        }
    }
    // A file that is not there is an error too, not a silent default.
    let out = Command::new(SERVER)
        .args(["--config", "/nonexistent/xuncha.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("无法读取配置文件"));
}
