//! Integration tests of the vset module against real `redis-server` processes
//! (started by the shared harness `vset-tests` on free loopback ports).
//! Every line of issue 2's "What it must show" has a test here; `make test-redis`
//! builds the module first.

mod cluster;
mod commands;
mod common;
mod floors;
mod lifecycle;
mod persistence;
mod replication;
