//! What vset stores and what it reads from the system catalogs: its own tables and
//! sequence ([`schema`]), the rows of `vset.tracked` ([`tracked`]), facts about a
//! user table ([`table`]), which of its keys can serve as cache keys ([`keys`]), key types and
//! namespaces ([`namespaces`]), the
//! refusal to drop a tracked table ([`drop_guard`]), what other DDL on a tracked table
//! gets ([`ddl_guard`]), the TRUNCATE guard for partitions added later
//! ([`partition_guard`]), and catalog work done as
//! the extension's owner once the caller's rights were checked ([`owner`]).

pub mod ddl_guard;
pub mod drop_guard;
pub mod keys;
pub mod namespaces;
pub mod owner;
pub mod partition_guard;
pub mod schema;
pub mod table;
pub mod tracked;
