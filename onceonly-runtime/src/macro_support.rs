//! Helpers for the code `#[idempotent]` and `#[idempotent_ai]` generate (re-exported in
//! `__private`).
//!
//! Why they exist: the generated code should stay short and readable in an expansion, and a
//! misuse should fail with a message about the user's code, not about a bound deep inside
//! `run_fn`. So the checks the macros emit are calls to the small functions here, spanned on
//! the user's tokens, whose traits carry `#[diagnostic::on_unimplemented]` messages. Nothing
//! here is a stable API.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::BoxFuture;
use crate::client::OnceOnly;
use crate::error::{Error, JsonMap};
use crate::key::canonical_hash;
use crate::run_fn::RunFn;

// ---------------------------------------------------------------------------------------------
// The client

/// What `client = ..` accepts: a client, a reference to one, or an `Arc` of one.
#[diagnostic::on_unimplemented(
    message = "`client = ..` must be a `OnceOnly` client or a reference to one, not `{Self}`",
    label = "expected `OnceOnly`, `&OnceOnly` or `Arc<OnceOnly>`"
)]
pub trait ClientSource {
    /// The client to run with (a cheap clone).
    fn into_client(self) -> OnceOnly;
}

impl ClientSource for OnceOnly {
    fn into_client(self) -> OnceOnly {
        self
    }
}

impl ClientSource for &OnceOnly {
    fn into_client(self) -> OnceOnly {
        self.clone()
    }
}

impl ClientSource for Arc<OnceOnly> {
    fn into_client(self) -> OnceOnly {
        (*self).clone()
    }
}

impl ClientSource for &Arc<OnceOnly> {
    fn into_client(self) -> OnceOnly {
        (**self).clone()
    }
}

/// The client of a `client = ..` expression.
pub fn client(source: impl ClientSource) -> OnceOnly {
    source.into_client()
}

// ---------------------------------------------------------------------------------------------
// Keys

/// A function argument that takes part in an `#[idempotent]` key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of an idempotency key: it does not implement `serde::Serialize`",
    label = "this argument is hashed into the key",
    note = "exclude the argument with `skip(name)`, or derive `Serialize` for its type"
)]
pub trait KeyArg {
    /// The argument as a JSON value.
    fn to_key_value(&self) -> serde_json::Result<Value>;
}

// The message of the trait, not a list of every `Serialize` type, is what helps here.
#[diagnostic::do_not_recommend]
impl<T: Serialize + ?Sized> KeyArg for T {
    fn to_key_value(&self) -> serde_json::Result<Value> {
        serde_json::to_value(self)
    }
}

/// Builds the key of an `#[idempotent]` call: `<prefix>:<hex sha256>` of the canonical JSON
/// of `{"v": version, "fn": prefix, "args": {name: value, ...}}`.
#[derive(Debug)]
pub struct ArgsKey {
    version: &'static str,
    prefix: &'static str,
    args: JsonMap,
    error: Option<Error>,
}

impl ArgsKey {
    /// An empty argument set for the function `prefix`.
    pub fn new(version: &'static str, prefix: &'static str) -> Self {
        ArgsKey {
            version,
            prefix,
            args: JsonMap::new(),
            error: None,
        }
    }

    /// Adds the argument `name`. A value that does not serialize (a map with non-string keys,
    /// a failing `Serialize` impl) is remembered and reported by [`ArgsKey::finish`].
    pub fn arg<V: KeyArg + ?Sized>(&mut self, name: &'static str, value: &V) {
        match value.to_key_value() {
            Ok(value) => {
                self.args.insert(name.to_owned(), value);
            }
            Err(e) => {
                self.error.get_or_insert_with(|| {
                    Error::Validation(format!(
                        "argument `{name}` of `{}` cannot be hashed into an idempotency key: {e}",
                        self.prefix
                    ))
                });
            }
        }
    }

    /// The key.
    pub fn finish(self) -> Result<String, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut canonical = JsonMap::with_capacity(3);
        canonical.insert("v".to_owned(), Value::from(self.version));
        canonical.insert("fn".to_owned(), Value::from(self.prefix));
        canonical.insert("args".to_owned(), Value::Object(self.args));
        let hash = canonical_hash(&canonical)?;
        Ok(format!("{}:{hash}", self.prefix))
    }
}

/// What `key = ..` of `#[idempotent_ai]` accepts.
#[diagnostic::on_unimplemented(
    message = "`key = ..` must be a `String` or `&str`, not `{Self}`",
    label = "the key expression",
    note = "build it with `format!(..)`, for example `key = format!(\"welcome:{{user_id}}\")`"
)]
pub trait KeyExpr {
    /// The key.
    fn into_key(self) -> String;
}

#[diagnostic::do_not_recommend]
impl<T: Into<String>> KeyExpr for T {
    fn into_key(self) -> String {
        self.into()
    }
}

/// The key of a `key = ..` expression.
pub fn key(key: impl KeyExpr) -> String {
    key.into_key()
}

// ---------------------------------------------------------------------------------------------
// Checks of the signature, spanned on the user's types

/// A value an idempotent function can return: it is stored as JSON and replayed, typed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of an idempotent function: it must implement `Serialize` and `DeserializeOwned`",
    label = "the first call's value of this type is stored and replayed to later calls",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it (borrowed types such as `&str` cannot be replayed: return an owned type)"
)]
pub trait StoredValue: Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> StoredValue for T {}

/// Fails to compile, on the caller's span, unless `T` can be stored and replayed.
pub fn assert_stored<T: StoredValue>() {}

/// An error type an idempotent function can return: runtime errors convert into it.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of an idempotent function must implement `From<onceonly_runtime::Error>`",
    label = "runtime failures (outage, timeout, previously failed) are returned as this type",
    note = "add a variant such as `OnceOnly(#[from] onceonly_runtime::Error)` to the error enum"
)]
pub trait RuntimeErrorInto: From<Error> {}

#[diagnostic::do_not_recommend]
impl<E: From<Error>> RuntimeErrorInto for E {}

/// Fails to compile, on the caller's span, unless `E: From<onceonly_runtime::Error>`.
pub fn assert_error<E: RuntimeErrorInto>() {}

/// A `Result<T, E>`, named through an alias or not.
#[diagnostic::on_unimplemented(
    message = "an idempotent function must return `Result<T, E>`, not `{Self}`",
    label = "expected `Result<T, E>`"
)]
pub trait ResultType {
    /// `T`.
    type Ok;
    /// `E`.
    type Err;
}

impl<T, E> ResultType for Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// Fails to compile, on the caller's span, unless `R` is a `Result<T, E>` whose `T` is stored
/// and whose `E` takes runtime errors. Used when the return type is an alias without
/// arguments, where `T` and `E` cannot be underlined on their own.
pub fn assert_result<R>()
where
    R: ResultType,
    R::Ok: StoredValue,
    R::Err: RuntimeErrorInto,
{
}

// ---------------------------------------------------------------------------------------------
// Running

/// Starts a configured `run_fn` call: exactly `builder.into_future()`, with the bounds of
/// `IntoFuture for RunFn` spelled as the traits above, so that a type that does not fit is
/// reported with their messages rather than as "`RunFn` is not a future".
pub fn run<'a, F, Fut, T, E>(builder: RunFn<'a, F>) -> BoxFuture<'a, Result<T, E>>
where
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = Result<T, E>> + Send + 'a,
    T: StoredValue + Send + 'a,
    E: RuntimeErrorInto + Send + 'a,
{
    std::future::IntoFuture::into_future(builder)
}

// ---------------------------------------------------------------------------------------------
// Options

/// Adds `run_id` to the metadata of a run (`run_id = ..`), which ties the run to a timeline.
pub fn with_run_id(mut metadata: JsonMap, run_id: impl Display) -> JsonMap {
    metadata.insert("run_id".to_owned(), Value::String(run_id.to_string()));
    metadata
}

// ---------------------------------------------------------------------------------------------
// fail_open

/// The error of a fail-open run: the function's own error, or the runtime's, kept apart so
/// that only outages of the runtime fail open.
#[derive(Debug)]
pub enum Outcome<E> {
    /// The function's own `Err`.
    User(E),
    /// A runtime error (leasing, waiting, completing).
    Runtime(Error),
}

impl<E> From<Error> for Outcome<E> {
    fn from(e: Error) -> Self {
        Outcome::Runtime(e)
    }
}

/// Takes the (not yet started) body out of `slot` and runs it, tagging its error. What is
/// left in `slot` afterwards tells whether the body was started.
pub fn take_body<Fut, T, E>(
    slot: &mut Option<Fut>,
) -> impl Future<Output = Result<T, Outcome<E>>> + use<Fut, T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let body = slot.take();
    async move {
        match body {
            Some(body) => body.await.map_err(Outcome::User),
            None => Err(Outcome::Runtime(Error::Config(
                "the body of an idempotent function was started twice".to_owned(),
            ))),
        }
    }
}

/// Finishes a fail-open run: when leasing failed with an outage and `enabled`, runs the body
/// that never started, without the exactly-once guarantee, and logs a warning.
pub async fn finish_fail_open<Fut, T, E>(
    enabled: bool,
    key: &str,
    outcome: Result<T, Outcome<E>>,
    unstarted: Option<Fut>,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    match outcome {
        Ok(value) => Ok(value),
        Err(Outcome::User(e)) => Err(e),
        Err(Outcome::Runtime(e)) => match unstarted {
            Some(body) if enabled && e.is_outage() => {
                tracing::warn!(
                    %key,
                    error = %e,
                    "idempotent function failed open: running it without the exactly-once guarantee"
                );
                body.await
            }
            _ => Err(E::from(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_key_matches_the_documented_canonical_form() {
        let mut k = ArgsKey::new("v1", "billing::charge");
        k.arg("order_id", "o-1");
        k.arg("cents", &500u64);
        // python3: hashlib.sha256(b'{"args":{"cents":500,"order_id":"o-1"},"fn":"billing::charge","v":"v1"}').hexdigest()
        assert_eq!(
            k.finish().unwrap(),
            "billing::charge:bfc0e1b0a4a13055096a8b89eace57e3b455930438c583c5f12d8b9d0d292024"
        );
    }

    #[test]
    fn an_unserializable_argument_is_a_validation_error_naming_it() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "x");
        let mut k = ArgsKey::new("v1", "f");
        k.arg("pairs", &map);
        let e = k.finish().unwrap_err();
        assert!(
            matches!(e, Error::Validation(ref m) if m.contains("`pairs`")),
            "{e}"
        );
    }

    #[test]
    fn run_id_goes_into_metadata() {
        let m = with_run_id(JsonMap::new(), "run_1");
        assert_eq!(m["run_id"], "run_1");
    }

    #[test]
    fn only_outages_fail_open() {
        assert!(Error::Store("down".into()).is_outage());
        assert!(Error::Timeout(std::time::Duration::from_secs(1)).is_outage());
        assert!(
            Error::Api {
                status: 503,
                detail: Value::Null
            }
            .is_outage()
        );
        let busy = Error::InProgress {
            key: "k".into(),
            retry_after: None,
        };
        assert!(
            !busy.is_outage(),
            "a key held elsewhere is a conflict, not an outage"
        );
        assert!(
            !Error::Unauthorized {
                detail: String::new()
            }
            .is_outage()
        );
    }
}
