//! The memory store against the shared conformance suite.

onceonly_runtime::store_conformance_tests!(|| async {
    onceonly_runtime::store::MemoryStore::new()
});
