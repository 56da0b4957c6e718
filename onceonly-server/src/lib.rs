//! Self-hostable OnceOnly API server (arrives with the HTTP API work).
