//! Tower layer for OnceOnly (arrives with the webhook deduplication work).
