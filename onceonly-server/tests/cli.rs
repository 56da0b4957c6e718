//! The `onceonly-server` binary: configuration errors are clear and never echo a key; keys
//! from the flag, the environment and a keys file all work, with per-key plans.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_onceonly-server");

async fn fails_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("ONCEONLY_SERVER_API_KEYS")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} should fail with exit code 2"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn configuration_errors_are_explained() {
    let e = fails_with(&["--listen", "127.0.0.1:0"], &[]).await;
    assert!(
        e.contains("no API keys configured") && e.contains("--api-keys-file"),
        "{e}"
    );

    let e = fails_with(
        &["--store", "postgres://db/x", "--api-key", "k_secret_1"],
        &[],
    )
    .await;
    assert!(
        e.contains("--store: unsupported URL `postgres://db/x`"),
        "{e}"
    );
    let e = fails_with(
        &[
            "--store",
            "http://127.0.0.1:1/v1",
            "--api-key",
            "k_secret_1",
        ],
        &[],
    )
    .await;
    assert!(e.contains("is an HTTP API, not a store"), "{e}");

    let dir = std::env::temp_dir().join(format!("onceonly-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.txt");
    std::fs::write(&file, "good_key_1\nvery_secret_key make=lots\n").unwrap();
    let e = fails_with(&["--api-keys-file", file.to_str().unwrap()], &[]).await;
    assert!(
        e.contains("keys.txt:2:") && e.contains("whole number"),
        "{e}"
    );
    assert!(
        !e.contains("very_secret_key"),
        "the key is never echoed: {e}"
    );

    let e = fails_with(
        &["--api-key", "k_secret_1", "--quota-check-locks", "lots"],
        &[],
    )
    .await;
    assert!(
        e.contains("--quota-check-locks") && e.contains("whole number or `unlimited`"),
        "{e}"
    );

    let e = fails_with(&["--api-key", "has space"], &[]).await;
    assert!(e.contains("--api-key #1"), "{e}");
    let e = fails_with(&[], &[("ONCEONLY_SERVER_API_KEYS", "ok_key,bad key")]).await;
    assert!(e.contains("entry #2") && !e.contains("bad key"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn serves_keys_from_flag_env_and_file_with_plans() {
    let dir = std::env::temp_dir().join(format!("onceonly-cli-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.txt");
    std::fs::write(
        &file,
        "# tenants\nfile_key_1 plan=trial make=1 ai=unlimited\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--api-key", "flag_key_1"])
        .arg("--api-keys-file")
        .arg(&file)
        .env("ONCEONLY_SERVER_API_KEYS", "env_key_1, env_key_2")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("the address line");
    let base = line
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let http = reqwest::Client::new();
    let lock = |key: &'static str, id: &'static str| {
        let http = http.clone();
        let url = format!("{base}/check-lock");
        async move {
            http.post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({"key": id}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(lock("flag_key_1", "a").await, 200);
    assert_eq!(lock("env_key_2", "a").await, 200);
    assert_eq!(lock("file_key_1", "a").await, 200);
    assert_eq!(
        lock("file_key_1", "b").await,
        402,
        "plan from the keys file"
    );
    assert_eq!(lock("unknown_key", "a").await, 403);

    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut logs = String::new();
    let mut err = child.stderr.take().unwrap();
    tokio::io::AsyncReadExt::read_to_string(&mut err, &mut logs)
        .await
        .unwrap();
    for key in ["flag_key_1", "env_key_1", "env_key_2", "file_key_1"] {
        assert!(!logs.contains(key), "keys never reach the logs: {logs}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
