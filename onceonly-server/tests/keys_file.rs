//! Property tests of the keys-file and key-list parsers: every key written with any spacing,
//! comments and settings order comes back (it authenticates, on its plan), and any text either
//! parses or fails naming its file and line, never the key.
//!
//! Each property runs 64 cases; `PROPTEST_CASES=N` runs N instead.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use onceonly_runtime::store::MemoryStore;
use onceonly_runtime::time::SystemClock;
use onceonly_runtime::{Engine, EngineConfig};
use onceonly_server::{
    ApiKey, AppState, CUSTOM_PLAN, DEFAULT_BODY_LIMIT, parse_key_list, parse_keys_file, router,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

/// What one line of a generated keys file says.
#[derive(Debug, Clone)]
struct Line {
    key: String,
    plan: Option<String>,
    make: Option<Option<u64>>,
    ai: Option<Option<u64>>,
}

impl Line {
    /// The `/v1/me` fields this key's tenant must show.
    fn expected(&self) -> Value {
        let limit = |l: Option<Option<u64>>| l.flatten();
        let limited = limit(self.make).is_some() || limit(self.ai).is_some();
        let plan = match &self.plan {
            Some(name) => name.clone(),
            None if limited => CUSTOM_PLAN.to_owned(),
            None => "unlimited".to_owned(),
        };
        json!({"plan": plan, "limits": {"make": limit(self.make), "ai": limit(self.ai)}})
    }
}

fn limit_text(limit: Option<u64>, upper: bool) -> String {
    match (limit, upper) {
        (Some(n), _) => n.to_string(),
        (None, false) => "unlimited".into(),
        (None, true) => "UNLIMITED".into(),
    }
}

/// A keys-file line: key, settings in any order, any blanks, maybe a comment.
fn line() -> impl Strategy<Value = (Line, String)> {
    // Visible ASCII without commas; a leading `#` would make the line a comment.
    let key = "[!-+\\--~]{1,40}".prop_filter("not a comment", |k| !k.starts_with('#'));
    let limit = prop::option::of(prop::option::of(any::<u64>()));
    (
        key,
        prop::option::of("[!-~]{1,12}"),
        limit.clone(),
        limit,
        any::<bool>(),
        "[ \t]{1,3}",
        prop::option::of("[ -~]{0,20}"),
        any::<u64>(),
    )
        .prop_map(|(key, plan, make, ai, upper, gap, comment, order)| {
            let line = Line {
                key,
                plan,
                make,
                ai,
            };
            let mut parts = vec![line.key.clone()];
            let mut settings = Vec::new();
            if let Some(p) = &line.plan {
                settings.push(format!("plan={p}"));
            }
            if let Some(m) = line.make {
                settings.push(format!("make={}", limit_text(m, upper)));
            }
            if let Some(a) = line.ai {
                settings.push(format!("ai={}", limit_text(a, upper)));
            }
            let n = settings.len().max(1);
            settings.rotate_left(order as usize % n);
            parts.extend(settings);
            let mut text = format!("{gap}{}{gap}", parts.join(&gap));
            if let Some(c) = comment {
                text.push_str(&format!("# {c}"));
            }
            (line, text)
        })
}

/// A file of lines with unique keys, comment lines and blank lines between them.
fn keys_file() -> impl Strategy<Value = (Vec<Line>, String)> {
    let filler = prop_oneof![Just(String::new()), "[ \t]{0,3}", "[ \t]{0,2}#[ -~]{0,20}"];
    prop::collection::vec((line(), prop::option::of(filler)), 1..6).prop_map(|lines| {
        let mut text = String::new();
        let mut out = Vec::new();
        for (i, ((mut line, mut written), filler)) in lines.into_iter().enumerate() {
            // Unique keys: the same key twice is a configuration question of its own.
            let unique = format!("k{i}_");
            written = written.replacen(&line.key, &format!("{unique}{}", line.key), 1);
            line.key = format!("{unique}{}", line.key);
            if let Some(f) = filler {
                text.push_str(&f);
                text.push('\n');
            }
            text.push_str(&written);
            text.push('\n');
            out.push(line);
        }
        (out, text)
    })
}

/// `GET /v1/me` as each key against a server configured with `keys`.
fn me_as_each(keys: &[ApiKey], tokens: &[&str]) -> Vec<(StatusCode, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = Engine::with_config(
            MemoryStore::new(),
            EngineConfig::default(),
            Arc::new(SystemClock),
        );
        let state =
            AppState::new(&engine, keys, Duration::from_secs(1), DEFAULT_BODY_LIMIT).unwrap();
        let app = router(state);
        let mut answers = Vec::new();
        for token in tokens {
            let req = Request::get("/v1/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let body = to_bytes(res.into_body(), usize::MAX).await.unwrap();
            answers.push((status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        }
        answers
    })
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn keys_files_round_trip((lines, text) in keys_file()) {
        let keys = parse_keys_file(&text, "keys.txt")
            .map_err(|e| TestCaseError::fail(format!("{e} in:\n{text}")))?;
        prop_assert_eq!(keys.len(), lines.len(), "{}", text);
        let tokens: Vec<&str> = lines.iter().map(|l| l.key.as_str()).collect();
        for ((status, me), line) in me_as_each(&keys, &tokens).into_iter().zip(&lines) {
            prop_assert_eq!(status, StatusCode::OK, "{:?} in:\n{}", line, text);
            let shown = json!({"plan": me["plan"], "limits": me["limits"]});
            prop_assert_eq!(shown, line.expected(), "in:\n{}", text);
        }
    }

    #[test]
    fn any_text_parses_or_names_its_line_but_never_the_key(
        lines in prop::collection::vec("[ -~\t]{0,60}", 1..8),
        secret in "[a-zA-Z0-9_]{16,24}",
        at in any::<prop::sample::Index>(),
    ) {
        // One line starts with a distinctive key; whatever the rest says, an error about any
        // line must not repeat it.
        let mut lines = lines;
        let i = at.index(lines.len());
        lines[i] = format!("{secret} {}", lines[i]);
        let text = lines.join("\n");
        match parse_keys_file(&text, "keys.txt") {
            Ok(keys) => prop_assert!(keys.len() <= lines.len()),
            Err(e) => {
                let line: usize = e
                    .0
                    .strip_prefix("keys.txt:")
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| TestCaseError::fail(format!("no file and line in {e}")))?;
                prop_assert!((1..=lines.len()).contains(&line), "{}", e);
                prop_assert!(!e.0.contains(&secret), "the key is echoed: {}", e);
            }
        }
    }

    #[test]
    fn key_lists_round_trip(
        keys in prop::collection::vec("[!-+\\--~]{1,30}", 0..6),
        gaps in prop::collection::vec(("[ \t]{0,2}", "[ \t]{0,2}", any::<bool>()), 6),
    ) {
        let keys: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("k{i}_{k}")).collect();
        let mut list = String::new();
        for (key, (before, after, blank)) in keys.iter().zip(&gaps) {
            if *blank {
                list.push_str(" ,");
            }
            list.push_str(&format!("{before}{key}{after},"));
        }
        let parsed = parse_key_list(&list).map_err(|e| TestCaseError::fail(e.0))?;
        prop_assert_eq!(parsed.len(), keys.len(), "{}", list);
        let tokens: Vec<&str> = keys.iter().map(String::as_str).collect();
        for (status, me) in me_as_each(&parsed, &tokens) {
            prop_assert_eq!(status, StatusCode::OK, "{}", list);
            prop_assert_eq!(&me["plan"], "unlimited");
        }
    }
}
