//! Tests only (`make test-examples`), in `tests/`:
//! - `python_relay.rs`: `examples/python-relay/relay.py` through cold start, SIGTERM
//!   mid-batch, server restarts, NOTIFY wake-up and bad flags;
//! - `python_relay_convergence.rs`: the relay convergence scenario of `tests/` with
//!   one, two and four Python relays;
//! - `node_read_path.rs`: the Node.js read path's own `node --test` suite against
//!   private servers;
//! - `deploy_snippets.rs`: `deploy/redis.conf` and `deploy/postgresql.conf` loaded
//!   by real servers; the systemd unit's command with `deploy/relay.env.example`
//!   runs `vset-relay`.
