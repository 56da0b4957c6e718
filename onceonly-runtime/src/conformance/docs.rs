//! Keyed documents: last write wins, prefix listings in byte order, no expiry, tenants apart.

use super::*;

fn doc(v: serde_json::Value) -> JsonMap {
    result(v).expect("a JSON object")
}

/// The keys of a listing, in its order.
async fn listed<S: Store>(store: &S, prefix: &str, limit: usize) -> Vec<String> {
    let docs = store.list_docs(prefix, limit).await.unwrap();
    docs.into_iter().map(|(key, _)| key).collect()
}

async fn put_all<S: Store>(store: &S, keys: &[&str]) {
    for key in keys {
        store
            .put_doc(key, doc(serde_json::json!({ "key": key })))
            .await
            .unwrap();
    }
}

/// A document reads back as written; an unknown key reads as `None`.
pub async fn doc_round_trip<S: Store>(store: S) {
    let value = doc(serde_json::json!({
        "agent_id": "bot",
        "max_spend_usd": 12.5,
        "allowed_tools": ["send_email", "search*"],
        "nested": {"on": true, "n": null},
        "text": "héllo \"quoted\" \n €",
    }));
    store
        .put_doc("gov/policy/bot", value.clone())
        .await
        .unwrap();
    let read = store.get_doc("gov/policy/bot").await.unwrap();
    assert_eq!(read.as_deref(), Some(&value));
    assert_eq!(store.get_doc("gov/policy/other").await.unwrap(), None);
    assert_eq!(
        store.get_doc("gov/policy/bo").await.unwrap(),
        None,
        "a key is read whole, not by prefix"
    );
}

/// Last write wins, and it replaces the whole document (no merge of fields).
pub async fn doc_overwrite<S: Store>(store: S) {
    store
        .put_doc("gov/agent/bot", doc(serde_json::json!({"a": 1, "b": 1})))
        .await
        .unwrap();
    let second = doc(serde_json::json!({"a": 2}));
    store
        .put_doc("gov/agent/bot", second.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get_doc("gov/agent/bot").await.unwrap().as_deref(),
        Some(&second)
    );
    let listing = store.list_docs("gov/agent/", 10).await.unwrap();
    assert_eq!(
        listing.len(),
        1,
        "an overwrite is one document, listed once"
    );
    assert_eq!(*listing[0].1, second);
}

/// Deleting answers whether the document existed; a deleted document is gone from reads and
/// listings, and may be written again.
pub async fn doc_delete<S: Store>(store: S) {
    put_all(&store, &["gov/tool/a", "gov/tool/b"]).await;
    assert!(store.delete_doc("gov/tool/a").await.unwrap());
    assert!(
        !store.delete_doc("gov/tool/a").await.unwrap(),
        "deleted once"
    );
    assert!(!store.delete_doc("gov/tool/never").await.unwrap());
    assert_eq!(store.get_doc("gov/tool/a").await.unwrap(), None);
    assert_eq!(listed(&store, "gov/tool/", 10).await, ["gov/tool/b"]);
    put_all(&store, &["gov/tool/a"]).await;
    assert_eq!(
        listed(&store, "gov/tool/", 10).await,
        ["gov/tool/a", "gov/tool/b"]
    );
}

/// A listing holds the keys starting with the prefix, whole, in byte order (not insertion
/// order, not case-insensitive), at most `limit` of them.
pub async fn doc_list_prefix_order_limit<S: Store>(store: S) {
    put_all(
        &store,
        &[
            "gov/tool/s1/zeta",
            "gov/tool/s1/Beta",
            "gov/tool/s1/alpha",
            "gov/tool/s1/alpha-2",
            "gov/tool/s1/10",
            "gov/tool/s1/9",
            "gov/tool/s10/x",
            "gov/tool/s1",
            "gov/tool/s0/x",
            "gov/policy/s1",
        ],
    )
    .await;
    let all = [
        "gov/tool/s1/10",
        "gov/tool/s1/9",
        "gov/tool/s1/Beta",
        "gov/tool/s1/alpha",
        "gov/tool/s1/alpha-2",
        "gov/tool/s1/zeta",
    ];
    assert_eq!(listed(&store, "gov/tool/s1/", 100).await, all);
    assert_eq!(listed(&store, "gov/tool/s1/", 3).await, all[..3]);
    assert_eq!(listed(&store, "gov/tool/s1/", 6).await, all);
    assert_eq!(listed(&store, "gov/tool/s1/", 1).await, all[..1]);
    let docs = store.list_docs("gov/tool/s1/", 2).await.unwrap();
    for (key, value) in &docs {
        assert_eq!(
            value.get("key").and_then(|k| k.as_str()),
            Some(key.as_str()),
            "each key comes with its own document"
        );
    }
    let around = [
        &["gov/policy/s1", "gov/tool/s0/x", "gov/tool/s1"],
        &all[..],
        &["gov/tool/s10/x"],
    ];
    assert_eq!(listed(&store, "gov/", 100).await, around.concat());
    assert_eq!(
        listed(&store, "", 2).await,
        ["gov/policy/s1", "gov/tool/s0/x"],
        "an empty prefix lists from the first key"
    );
}

/// A prefix that ends inside a key component lists every key that starts with it, and a prefix
/// ending in the separator lists only that component's keys.
pub async fn doc_list_component_prefix<S: Store>(store: S) {
    put_all(
        &store,
        &[
            "gov/tool/ab",
            "gov/tool/a",
            "gov/tool/a/x",
            "gov/tool/ab/y",
            "gov/tool/a0",
            "gov/tool/b",
            "gov/tool/",
        ],
    )
    .await;
    assert_eq!(
        listed(&store, "gov/tool/a/", 10).await,
        ["gov/tool/a/x"],
        "`a/` is not `ab/`"
    );
    assert_eq!(
        listed(&store, "gov/tool/a", 10).await,
        [
            "gov/tool/a",
            "gov/tool/a/x",
            "gov/tool/a0",
            "gov/tool/ab",
            "gov/tool/ab/y"
        ]
    );
    assert_eq!(
        listed(&store, "gov/tool/ab", 10).await,
        ["gov/tool/ab", "gov/tool/ab/y"]
    );
    assert_eq!(
        listed(&store, "gov/tool/", 1).await,
        ["gov/tool/"],
        "a key equal to the prefix is listed"
    );
    assert_eq!(listed(&store, "gov/tool/a/x/", 10).await, [] as [&str; 0]);
}

/// Keys with non-ASCII characters list in byte order, and a prefix's listing ends where its
/// keys end whatever follows its last character (a character above U+00FF, or the prefix
/// ending in U+00FF, U+D7FF or U+10FFFF).
pub async fn doc_list_non_ascii<S: Store>(store: S) {
    let keys = [
        "gov/é",
        "gov/é€",
        "gov/éa",
        "gov/é😀",
        "gov/ê",
        "gov/ÿ",
        "gov/ÿ€",
        "gov/ÿ\u{10ffff}",
        "gov/Ā",
        "gov/\u{d7ff}",
        "gov/\u{d7ff}\u{e000}",
        "gov/\u{e000}",
        "gov/\u{10ffff}",
        "gov/\u{10ffff}x",
        "gov0",
    ];
    put_all(&store, &keys).await;
    let mut by_bytes: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| k.starts_with("gov/"))
        .collect();
    by_bytes.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(listed(&store, "gov/", 100).await, by_bytes);
    assert_eq!(
        listed(&store, "gov/é", 10).await,
        ["gov/é", "gov/éa", "gov/é€", "gov/é😀"]
    );
    assert_eq!(
        listed(&store, "gov/ÿ", 10).await,
        ["gov/ÿ", "gov/ÿ€", "gov/ÿ\u{10ffff}"]
    );
    assert_eq!(
        listed(&store, "gov/\u{d7ff}", 10).await,
        ["gov/\u{d7ff}", "gov/\u{d7ff}\u{e000}"]
    );
    assert_eq!(
        listed(&store, "gov/\u{10ffff}", 10).await,
        ["gov/\u{10ffff}", "gov/\u{10ffff}x"]
    );
    assert_eq!(listed(&store, "gov/ë", 10).await, [] as [&str; 0]);
    let read = store.get_doc("gov/é😀").await.unwrap().unwrap();
    assert_eq!(read.get("key").and_then(|k| k.as_str()), Some("gov/é😀"));
}

/// Listings of an empty store, of a prefix nothing starts with, and with a limit of 0 are empty.
pub async fn doc_list_empty<S: Store>(store: S) {
    assert!(store.list_docs("", 10).await.unwrap().is_empty());
    assert!(store.list_docs("gov/", 10).await.unwrap().is_empty());
    put_all(&store, &["gov/tool/a"]).await;
    assert!(store.list_docs("gov/tool/a", 0).await.unwrap().is_empty());
    assert!(store.list_docs("gov/tool/b", 10).await.unwrap().is_empty());
    assert!(store.list_docs("gov/tool/a/", 10).await.unwrap().is_empty());
    assert!(store.list_docs("gov/tool/aa", 10).await.unwrap().is_empty());
    assert_eq!(listed(&store, "gov/tool/", 10).await, ["gov/tool/a"]);
}

/// A count of a prefix agrees with its listing, non-ASCII keys and deletes included.
pub async fn doc_count_prefix<S: Store>(store: S) {
    assert_eq!(store.count_docs("").await.unwrap(), 0);
    let keys = [
        "gov/a/1",
        "gov/a/2",
        "gov/ab",
        "gov/b/é",
        "gov/b/\u{10FFFF}",
        "other",
    ];
    put_all(&store, &keys).await;
    for prefix in [
        "",
        "gov/",
        "gov/a",
        "gov/a/",
        "gov/b/",
        "gov/b/\u{10FFFF}",
        "x",
        "gov/c",
    ] {
        let listed = store.list_docs(prefix, 100).await.unwrap().len() as u64;
        assert_eq!(
            store.count_docs(prefix).await.unwrap(),
            listed,
            "prefix {prefix:?}"
        );
    }
    assert_eq!(store.count_docs("gov/a").await.unwrap(), 3);
    assert!(store.delete_doc("gov/a/1").await.unwrap());
    assert_eq!(store.count_docs("gov/a/").await.unwrap(), 1);
    assert_eq!(store.count_docs("").await.unwrap(), 5);
}

/// Documents have no deadline: years later, after purges, they are all still there.
pub async fn doc_never_expires<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let store = engine.store();
    put_all(store, &["gov/policy/a", "gov/kill/a"]).await;
    clock.advance(RETENTION * 24 * 365 * 10);
    engine.purge_expired().await.unwrap();
    store.purge_expired(u64::MAX).await.unwrap();
    assert!(store.get_doc("gov/policy/a").await.unwrap().is_some());
    assert_eq!(
        listed(store, "gov/", 10).await,
        ["gov/kill/a", "gov/policy/a"]
    );
}

/// Many concurrent writers of one document leave one writer's whole document, never a mix;
/// writes racing with deletes leave the document and its listing in agreement.
pub async fn doc_concurrent_puts<S: Store>(store: S) {
    let store = Arc::new(store);
    let writers: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let value = (0..8).map(|f| (format!("f{f}"), i.into())).collect();
                store.put_doc("gov/race", value).await.unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let read = store.get_doc("gov/race").await.unwrap().unwrap();
    let first = read.get("f0").cloned().expect("a whole document");
    assert_eq!(read.len(), 8);
    assert!(
        read.values().all(|v| *v == first),
        "one writer's document: {read:?}"
    );
    let listing = store.list_docs("gov/race", 10).await.unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].1, read);

    for round in 0..16 {
        let racers: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    if (i + round) % 2 == 0 {
                        store
                            .put_doc("gov/flip", doc(serde_json::json!({ "i": i })))
                            .await
                            .unwrap();
                    } else {
                        store.delete_doc("gov/flip").await.unwrap();
                    }
                })
            })
            .collect();
        for r in racers {
            r.await.unwrap();
        }
        let read = store.get_doc("gov/flip").await.unwrap();
        let listing = store.list_docs("gov/flip", 10).await.unwrap();
        assert_eq!(
            listing.first().map(|(_, d)| d),
            read.as_ref(),
            "a read and a listing agree after racing writes and deletes"
        );
        assert!(listing.len() <= 1);
    }
}

/// Two tenants (one id a prefix of the other's) never see, list or delete each other's
/// documents; each lists its own keys without the tenant prefix.
pub async fn doc_tenant_isolation<S: Store>(store: S) {
    let (root, _) = engine(store);
    let a = root
        .tenant(Account::tenant("a", Plan::unlimited()))
        .unwrap();
    let ab = root
        .tenant(Account::tenant("ab", Plan::unlimited()))
        .unwrap();
    let (a, ab) = (a.store(), ab.store());
    a.put_doc("gov/policy/bot", doc(serde_json::json!({"owner": "a"})))
        .await
        .unwrap();
    assert_eq!(ab.get_doc("gov/policy/bot").await.unwrap(), None);
    assert!(ab.list_docs("", 10).await.unwrap().is_empty());
    assert!(!ab.delete_doc("gov/policy/bot").await.unwrap());
    ab.put_doc("gov/policy/bot", doc(serde_json::json!({"owner": "ab"})))
        .await
        .unwrap();
    ab.put_doc("gov/tool/x", doc(serde_json::json!({"owner": "ab"})))
        .await
        .unwrap();
    let owner = |d: &Arc<JsonMap>| d.get("owner").and_then(|o| o.as_str()).map(str::to_owned);
    let a_docs = a.list_docs("", 10).await.unwrap();
    assert_eq!(a_docs.len(), 1);
    assert_eq!(a_docs[0].0, "gov/policy/bot");
    assert_eq!(owner(&a_docs[0].1).as_deref(), Some("a"));
    assert_eq!(
        listed(ab, "gov/", 10).await,
        ["gov/policy/bot", "gov/tool/x"]
    );
    let a_doc = a.get_doc("gov/policy/bot").await.unwrap().unwrap();
    assert_eq!(
        owner(&a_doc).as_deref(),
        Some("a"),
        "ab did not overwrite a's"
    );
    assert!(ab.delete_doc("gov/policy/bot").await.unwrap());
    assert!(a.get_doc("gov/policy/bot").await.unwrap().is_some());
    assert_eq!(
        listed(root.store(), "t/a/", 10).await,
        ["t/a/gov/policy/bot"]
    );
}
