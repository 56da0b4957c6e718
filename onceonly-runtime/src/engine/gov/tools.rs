//! The tools registry: HTTP tools registered per scope (`global` or `agent:<id>`) as store
//! documents, and — in-process only — Rust async functions registered as tools.
//!
//! An agent's call of a tool name resolves in its own scope first, then `global`; a registered
//! function of that name comes before both (it exists only in the process that registered it).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use super::names;
use crate::backend::BoxFuture;
use crate::engine::Engine;
use crate::error::{Error, JsonMap, Result};
use crate::models::{Tool, ToolDeleted, ToolSpec};
use crate::store::Store;
use crate::tools::{StoredTool, ToolCaller, ToolHosts, validate_scope};

/// Most tools in one scope.
pub(crate) const MAX_TOOLS_PER_SCOPE: usize = 1_000;

/// A Rust async function registered as a tool: it takes the call's arguments and answers a
/// JSON object, or an error message the caller sees as the tool's failure.
pub trait ToolFn: Send + Sync + 'static {
    /// Runs the tool.
    fn call(&self, args: JsonMap) -> BoxFuture<'static, std::result::Result<JsonMap, String>>;
}

impl<F, Fut, E> ToolFn for F
where
    F: Fn(JsonMap) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<JsonMap, E>> + Send + 'static,
    E: std::fmt::Display,
{
    fn call(&self, args: JsonMap) -> BoxFuture<'static, std::result::Result<JsonMap, String>> {
        let fut = self(args);
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
    }
}

/// What the engine needs to run tools: the outbound caller (with its host allow-list) and the
/// registered functions. Shared by a root engine and its tenants.
pub(crate) struct ToolRuntime {
    pub(crate) caller: ToolCaller,
    fns: RwLock<HashMap<String, Arc<dyn ToolFn>>>,
}

impl std::fmt::Debug for ToolRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRuntime")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl ToolRuntime {
    pub(crate) fn new(hosts: ToolHosts) -> Self {
        ToolRuntime {
            caller: ToolCaller::new(hosts),
            fns: RwLock::new(HashMap::new()),
        }
    }

    fn function(&self, name: &str) -> Option<Arc<dyn ToolFn>> {
        let fns = self.fns.read().unwrap_or_else(|e| e.into_inner());
        fns.get(name).cloned()
    }
}

/// A tool an agent's call resolved to.
pub(crate) enum Resolved {
    Function(Arc<dyn ToolFn>),
    Http(Box<StoredTool>),
}

fn tool_doc(scope: &str, name: &str) -> String {
    format!("{}{name}", scope_prefix(scope))
}

fn scope_prefix(scope: &str) -> String {
    format!("{}{scope}/", names::TOOL_DOCS)
}

impl<S: Store> Engine<S> {
    /// Registers `f` as the tool `name` for every agent of this engine (and its tenants), in
    /// this process only. It is governed like any tool: policies, limits, dedup, audit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use onceonly_runtime::{Engine, JsonMap, models::ToolCallRequest};
    ///
    /// let engine = Engine::memory();
    /// engine.register_tool_fn("echo", |args: JsonMap| async move { Ok::<_, String>(args) })?;
    /// let mut args = JsonMap::new();
    /// args.insert("text".into(), "hi".into());
    /// let res = engine.run_tool(ToolCallRequest::new("bot", "echo").args(args)).await?;
    /// assert_eq!(res.decision, "executed");
    /// assert_eq!(res.result.unwrap()["text"], "hi");
    /// # Ok(()) }
    /// ```
    pub fn register_tool_fn(&self, name: &str, f: impl ToolFn) -> Result<()> {
        self.register_tool_fn_arc(name, Arc::new(f))
    }

    pub(crate) fn register_tool_fn_arc(&self, name: &str, f: Arc<dyn ToolFn>) -> Result<()> {
        names::tool_name(name)?;
        let mut fns = self
            .inner
            .tools
            .fns
            .write()
            .unwrap_or_else(|e| e.into_inner());
        fns.insert(name.to_owned(), f);
        Ok(())
    }

    /// `POST /tools`: registers (or replaces, by name and scope) an HTTP tool.
    pub async fn create_tool(&self, spec: ToolSpec) -> Result<Tool> {
        self.store_tool(StoredTool::from_spec(&spec)?).await
    }

    /// Stores a checked tool; at most [`MAX_TOOLS_PER_SCOPE`] per scope and
    /// [`MAX_GOV_DOCS`](super::MAX_GOV_DOCS) in all.
    pub(crate) async fn store_tool(&self, mut tool: StoredTool) -> Result<Tool> {
        // An outage fails the registration (writing now would give an unchanged secret a new
        // id); a damaged document keeps no id and is replaced.
        match self.stored_tool(&tool.name, &tool.scope_id).await {
            Ok(Some(earlier)) => tool.keep_secret_id_of(&earlier),
            Err(e) if e.is_outage() => return Err(e),
            Ok(None) | Err(_) => {}
        }
        let key = tool_doc(&tool.scope_id, &tool.name);
        let scope = scope_prefix(&tool.scope_id);
        let caps = [
            (scope.as_str(), MAX_TOOLS_PER_SCOPE, "tools in this scope"),
            (names::TOOL_DOCS, super::MAX_GOV_DOCS, "registered tools"),
        ];
        self.put_gov_doc(&key, tool.to_doc(), &caps).await?;
        Ok(tool.view())
    }

    /// `GET /tools?scope_id=`: the tools of a scope, by name.
    pub async fn list_tools(&self, scope: &str) -> Result<Vec<Tool>> {
        validate_scope(scope)?;
        let docs = self
            .inner
            .store
            .list_docs(&scope_prefix(scope), MAX_TOOLS_PER_SCOPE)
            .await?;
        docs.iter()
            .map(|(_, doc)| Ok(StoredTool::from_doc(doc)?.view()))
            .collect()
    }

    async fn stored_tool(&self, name: &str, scope: &str) -> Result<Option<StoredTool>> {
        names::tool_name(name)?;
        validate_scope(scope)?;
        let doc = self.inner.store.get_doc(&tool_doc(scope, name)).await?;
        doc.map(|d| StoredTool::from_doc(&d)).transpose()
    }

    /// `GET /tools/{name}?scope_id=`.
    pub async fn get_tool(&self, name: &str, scope: &str) -> Result<Tool> {
        self.stored_tool(name, scope)
            .await?
            .map(|t| t.view())
            .ok_or_else(|| Error::tool_not_found(name, scope))
    }

    /// `POST /tools/{name}/toggle?scope_id=`: switches a tool on or off.
    pub async fn toggle_tool(&self, name: &str, enabled: bool, scope: &str) -> Result<Tool> {
        let mut tool = self
            .stored_tool(name, scope)
            .await?
            .ok_or_else(|| Error::tool_not_found(name, scope))?;
        tool.enabled = enabled;
        self.inner
            .store
            .put_doc(&tool_doc(scope, name), tool.to_doc())
            .await?;
        Ok(tool.view())
    }

    /// `DELETE /tools/{name}?scope_id=`.
    pub async fn delete_tool(&self, name: &str, scope: &str) -> Result<ToolDeleted> {
        names::tool_name(name)?;
        validate_scope(scope)?;
        if !self.inner.store.delete_doc(&tool_doc(scope, name)).await? {
            return Err(Error::tool_not_found(name, scope));
        }
        Ok(ToolDeleted {
            ok: true,
            deleted: name.to_owned(),
        })
    }

    /// The tool `agent` calls by `name`: a registered function, else the agent's scope, else
    /// `global`. `Ok(None)`: no such tool.
    pub(crate) async fn resolve_tool(&self, agent: &str, name: &str) -> Result<Option<Resolved>> {
        if let Some(f) = self.inner.tools.function(name) {
            return Ok(Some(Resolved::Function(f)));
        }
        for scope in [format!("agent:{agent}"), "global".to_owned()] {
            if let Some(t) = self.stored_tool(name, &scope).await? {
                return Ok(Some(Resolved::Http(Box::new(t))));
            }
        }
        Ok(None)
    }
}
