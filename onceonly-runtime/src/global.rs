//! The process-wide default client used by the macros when no `client = ..` is given.

use std::sync::RwLock;

use crate::client::OnceOnly;
use crate::error::Result;

static GLOBAL: RwLock<Option<OnceOnly>> = RwLock::new(None);

impl OnceOnly {
    /// Makes `client` the process-wide default (replacing any earlier one).
    pub fn set_global(client: OnceOnly) {
        *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
    }

    /// The process-wide default: the one given to [`OnceOnly::set_global`], or else one built
    /// by [`OnceOnly::from_env`] on first use (and kept). An unconfigured environment is an
    /// error, not a silent embedded fallback.
    pub fn global() -> Result<OnceOnly> {
        if let Some(client) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(client.clone());
        }
        let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = OnceOnly::from_env()?;
        *slot = Some(client.clone());
        Ok(client)
    }
}
