//! What vset stores and what it reads from the system catalogs: its own tables and
//! sequence ([`schema`]), the rows of `vset.tracked` ([`tracked`]), facts about a
//! user table ([`table`]), which of its keys can serve as cache keys ([`keys`]) and
//! the cleanup of catalog rows of dropped tables ([`cleanup`]).

pub mod cleanup;
pub mod keys;
pub mod schema;
pub mod table;
pub mod tracked;
