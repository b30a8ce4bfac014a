//! Tests only: see `tests/` — `python_relay.rs` runs `examples/python-relay/relay.py`
//! through the end-to-end convergence checks, `node_read_path.rs` runs the Node.js
//! read path's own `node --test` suite against private servers.
