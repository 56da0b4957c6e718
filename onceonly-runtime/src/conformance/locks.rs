//! Check-locks: the claim race, expiry to the millisecond, fenced release.

use super::*;

/// Many concurrent check-locks of one free key: exactly one locks.
pub async fn lock_claim_race<S: Store>(store: S) {
    let (engine, _) = engine(store);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.check_lock(lock("race", TTL)).await.unwrap() })
        })
        .collect();
    let mut locked = 0;
    let mut first_seen = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_ne!(r.locked, r.duplicate);
        if r.locked {
            locked += 1;
            assert!(r.first_seen_at.is_none());
        } else {
            first_seen.insert(r.first_seen_at.expect("duplicates carry first_seen_at"));
        }
    }
    assert_eq!(locked, 1, "exactly one caller locks");
    assert_eq!(
        first_seen.len(),
        1,
        "every duplicate sees the same first_seen_at"
    );
}

/// A lock expires exactly at its TTL, and a duplicate does not refresh it.
pub async fn lock_expiry_edge<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let first = engine.check_lock(lock("edge", TTL)).await.unwrap();
    assert!(first.locked);
    clock.advance(TTL / 2);
    assert!(
        engine
            .check_lock(lock("edge", TTL))
            .await
            .unwrap()
            .duplicate
    );
    clock.advance(TTL / 2 - MS);
    let dup = engine.check_lock(lock("edge", TTL)).await.unwrap();
    assert!(dup.duplicate, "still locked 1 ms before expiry");
    clock.advance(MS);
    let again = engine.check_lock(lock("edge", TTL)).await.unwrap();
    assert!(
        again.locked,
        "free exactly at expiry: the duplicate did not refresh the TTL"
    );
}

/// Releasing a lock lets the next check-lock in; releasing nothing says so.
pub async fn lock_release<S: Store>(store: S) {
    let (engine, _) = engine(store);
    assert!(engine.check_lock(lock("rel", TTL)).await.unwrap().locked);
    assert!(engine.release_lock("rel", None).await.unwrap());
    assert!(!engine.release_lock("rel", None).await.unwrap());
    assert!(engine.check_lock(lock("rel", TTL)).await.unwrap().locked);
    assert!(
        engine.check_lock(lock("other", TTL)).await.unwrap().locked,
        "keys are independent"
    );
}

/// A release with a lock id removes only that lock: a holder that outlived its TTL cannot
/// delete the lock of whoever claimed the key after it.
pub async fn lock_release_fenced<S: Store>(store: S) {
    let (engine, clock) = engine(store);
    let first = engine.check_lock(lock("fence", TTL)).await.unwrap();
    let first_id = first.lock_id.expect("the claiming call gets a lock id");
    let dup = engine.check_lock(lock("fence", TTL)).await.unwrap();
    assert_eq!(dup.lock_id, None, "a duplicate holds no lock");

    clock.advance(TTL);
    let second = engine.check_lock(lock("fence", TTL)).await.unwrap();
    let second_id = second.lock_id.expect("the lock was claimed again");
    assert_ne!(first_id, second_id, "every claim gets its own id");
    assert!(
        !engine.release_lock("fence", Some(&first_id)).await.unwrap(),
        "the expired holder's release is refused"
    );
    assert!(
        engine
            .check_lock(lock("fence", TTL))
            .await
            .unwrap()
            .duplicate,
        "the second holder's lock survived"
    );
    assert!(
        engine
            .release_lock("fence", Some(&second_id))
            .await
            .unwrap()
    );
    assert!(
        !engine
            .release_lock("fence", Some(&second_id))
            .await
            .unwrap(),
        "released once"
    );
    assert!(engine.check_lock(lock("fence", TTL)).await.unwrap().locked);
    assert!(matches!(
        engine.release_lock("fence", Some("")).await,
        Err(Error::Validation(_))
    ));
}
