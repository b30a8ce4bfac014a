//! Every refusal vset can give, typed, each with the SQLSTATE a client can match on.
//! Functions return `Result<_, VsetError>`; [`VsetError::raise`] turns one into a
//! PostgreSQL ERROR (which rolls back whatever the statement did: refusals change nothing).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

use crate::trigger::key::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum VsetError {
    #[error("vset: {table} is a {kind}; vset tracks ordinary and partitioned tables only")]
    NotATable { table: String, kind: &'static str },
    #[error("vset: {table} is a partition of {root}; track {root} instead (its trigger covers every partition)")]
    IsPartition { table: String, root: String },
    #[error("vset: {table} belongs to vset or to the system catalogs and cannot be tracked")]
    ReservedTable { table: String },
    #[error("vset: must be owner of table {table} to track or untrack it")]
    NotOwner { table: String },
    #[error("vset: table {table} is already tracked; pass replace => true to change how")]
    AlreadyTracked { table: String },
    #[error("vset: table {table} is not tracked by vset")]
    NotTracked { table: String },
    #[error("vset: table {table} has no primary key or UNIQUE NOT NULL index, so its rows have no stable cache key; add one (or a key_template over one)")]
    NoUniqueKey { table: String },
    #[error("vset: the key template of {table} uses columns ({used}), which are not exactly the columns of a UNIQUE NOT NULL key; usable keys: {candidates}")]
    KeyNotUnique {
        table: String,
        used: String,
        candidates: String,
    },
    #[error("vset: invalid key_template {template:?}: {source}")]
    Template {
        template: String,
        #[source]
        source: TemplateError,
    },
    #[error("vset: key template {template:?} for {table} can render the same cache key as {other}, so one table's changes would overwrite the other's cached rows; give it a distinct literal prefix (e.g. the default '<schema>.<table>:{{key}}')")]
    KeyOverlap {
        table: String,
        template: String,
        other: String,
    },
    #[error("vset: key column {column:?} of {table} has a type whose text form depends on session settings (reg* types follow search_path, money follows lc_monetary), so two sessions could render different keys for one row; key the template on another unique column")]
    KeyTypeDependsOnSettings { table: String, column: String },
    #[error("vset: {table} is a {kind} table: crash recovery or the end of its session empties it without a row trigger firing, which would leave its cached rows stale; {remedy}")]
    NotDurable {
        table: String,
        kind: &'static str,
        remedy: &'static str,
    },
    #[error("vset: {what} on tracked table {table} is refused: writes would no longer be captured, so its cached rows would go stale; to stop caching it, SELECT vset.untrack('{table}') (which also deletes its cached keys)")]
    DdlBypassesCapture { table: String, what: String },
    #[error("vset: {what} of column {column:?} of tracked table {table} is refused: vset's {role} uses it, so every later write would fail; in one transaction run SELECT vset.untrack('{table}'), then the ALTER TABLE, then vset.track again with the new columns")]
    DdlBreaksTracking {
        table: String,
        column: String,
        role: &'static str,
        what: &'static str,
    },
    #[error("vset: this ALTER TYPE changes how rows of tracked table {table} render (its keys or payloads); in one transaction run SELECT vset.untrack('{table}'), the ALTER TYPE, then vset.track again")]
    TypeInUse { table: String },
    #[error("vset: DETACH PARTITION … CONCURRENTLY from tracked table {table} is refused: the del records for the partition's rows must be written in the same transaction; detach without CONCURRENTLY")]
    DetachConcurrently { table: String },
    #[error("vset: DROP TRIGGER {trigger} on {table} is refused: it keeps Redis in step with the table; SELECT vset.untrack(...) on the tracked table removes it (and deletes the cached keys)")]
    DropVsetTrigger { table: String, trigger: String },
    #[error("vset: column {column:?} of table {table} does not exist")]
    UnknownColumn { table: String, column: String },
    #[error("vset: column {column:?} is listed twice")]
    DuplicateColumn { column: String },
    #[error("vset: columns must name at least one column (or be NULL for all columns)")]
    EmptyColumns,
    #[error("vset: mode must be 'set' or 'invalidate', not {0:?}")]
    BadMode(String),
    #[error("vset: channel must be 1 to 63 bytes, not {0:?}")]
    BadChannel(String),
    #[error("vset: {what} must not be NULL")]
    NullArgument { what: &'static str },
    #[error("vset: table {table} is keyed by {expected} column(s) ({columns}), but {got} key value(s) were given")]
    KeyArity {
        table: String,
        expected: usize,
        got: usize,
        columns: String,
    },
    #[error("vset: TRUNCATE of {table} is refused: vset tracks it and TRUNCATE fires no row triggers, so every cached row would stay stale. Use DELETE FROM {table} (captured row by row), or SELECT vset.untrack('{table}') first and flush the cache yourself")]
    Truncate { table: String },
    #[error("vset: {0}")]
    TriggerMisuse(String),
    #[error("vset: key column {column:?} of {table} is NULL, so the row has no cache key; nothing was written. Its NOT NULL constraint was dropped after vset.track(): restore it, or vset.untrack() the table")]
    NullKey { table: String, column: String },
    #[error("vset: trigger {trigger:?} on {table} calls vset.capture() but is not the trigger vset.track() installed for it (its arguments differ from vset.tracked, or the table is not tracked); nothing was written. Use vset.track() to capture a table")]
    NotInstalledByTrack { table: String, trigger: String },
    #[error("vset: the extension's {0} is missing or was altered; reinstall the extension")]
    Altered(&'static str),
    #[error("vset: vset.version_seq must have CACHE 1, a positive INCREMENT and NO CYCLE, or versions stop following commit order; nothing was written. Run: ALTER SEQUENCE vset.version_seq CACHE 1 INCREMENT 1 NO CYCLE")]
    SequenceAltered,
    #[error("vset: the key ({columns}) of {table} is no longer a primary key or UNIQUE NOT NULL, immediate, non-partial index, so it cannot order writers of a row; nothing was written. Restore the key, or vset.track() the table again over a usable key (usable now: {candidates})")]
    KeyNoLongerUnique {
        table: String,
        columns: String,
        candidates: String,
    },
    #[error("vset: vset.wait_for_commit needs vset in shared_preload_libraries (then restart PostgreSQL); without it, LISTEN on the tracked tables' channel (vset.wakeup() says which to use)")]
    NotPreloaded,
    #[error("vset: timeout_ms must be between 0 and {max}, not {given}")]
    BadTimeout { given: String, max: i32 },
    #[error("vset: {table}: untrack, a re-track that changes keys or payload, and DDL that needs a del per row must run in a READ COMMITTED transaction (they lock the table, then read every row; an older snapshot would miss rows written meanwhile)")]
    NeedsReadCommitted { table: String },
    #[error("vset: fill of {table}: the row changed between reading and locking it {attempts} times in a row; try again")]
    FillContended { table: String, attempts: usize },
    #[error("vset: fill runs on the primary only: its version comes from the primary's vset.version_seq and its row lock orders it against writers there; send read-miss fills to the primary (cache reads from Redis need no database)")]
    FillOnStandby,
    #[error("vset: fill of {table}: this transaction inserted or updated the row, so its value is not committed yet; fill after COMMIT (or from another transaction)")]
    FillOfOwnChange { table: String },
    #[error("vset: SPI error: {0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

impl VsetError {
    fn code(&self) -> Code {
        match self {
            VsetError::NotATable { .. }
            | VsetError::IsPartition { .. }
            | VsetError::ReservedTable { .. } => Code::ERRCODE_WRONG_OBJECT_TYPE,
            VsetError::NotOwner { .. } => Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            VsetError::AlreadyTracked { .. } => Code::ERRCODE_DUPLICATE_OBJECT,
            VsetError::NotTracked { .. } | VsetError::NoUniqueKey { .. } => {
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            VsetError::KeyNotUnique { .. }
            | VsetError::Template { .. }
            | VsetError::EmptyColumns
            | VsetError::BadMode(_)
            | VsetError::BadChannel(_)
            | VsetError::KeyArity { .. } => Code::ERRCODE_INVALID_PARAMETER_VALUE,
            VsetError::KeyOverlap { .. } => Code::ERRCODE_DUPLICATE_OBJECT,
            VsetError::KeyTypeDependsOnSettings { .. } | VsetError::NotDurable { .. } => {
                Code::ERRCODE_FEATURE_NOT_SUPPORTED
            }
            VsetError::DdlBypassesCapture { .. }
            | VsetError::DdlBreaksTracking { .. }
            | VsetError::TypeInUse { .. } => Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            VsetError::DetachConcurrently { .. } => Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            VsetError::DropVsetTrigger { .. } => Code::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            VsetError::UnknownColumn { .. } => Code::ERRCODE_UNDEFINED_COLUMN,
            VsetError::DuplicateColumn { .. } => Code::ERRCODE_DUPLICATE_COLUMN,
            VsetError::NullArgument { .. } => Code::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            VsetError::Truncate { .. } => Code::ERRCODE_FEATURE_NOT_SUPPORTED,
            VsetError::TriggerMisuse(_) => Code::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            VsetError::NotInstalledByTrack { .. } => Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            VsetError::NullKey { .. } => Code::ERRCODE_NOT_NULL_VIOLATION,
            VsetError::Altered(_) => Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            VsetError::SequenceAltered | VsetError::KeyNoLongerUnique { .. } => {
                Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            VsetError::NotPreloaded => Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            VsetError::NeedsReadCommitted { .. } => Code::ERRCODE_ACTIVE_SQL_TRANSACTION,
            VsetError::FillContended { .. } => Code::ERRCODE_LOCK_NOT_AVAILABLE,
            VsetError::FillOfOwnChange { .. } => Code::ERRCODE_INVALID_TRANSACTION_STATE,
            VsetError::FillOnStandby => Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            VsetError::BadTimeout { .. } => Code::ERRCODE_INVALID_PARAMETER_VALUE,
            VsetError::Spi(_) => Code::ERRCODE_INTERNAL_ERROR,
        }
    }

    /// Raise as a PostgreSQL ERROR with this error's SQLSTATE.
    pub fn raise(self) -> ! {
        ErrorReport::new(self.code(), self.to_string(), "vset").report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// `Result<T, VsetError>` → `T`, raising the error as a PostgreSQL ERROR.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, VsetError> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.raise(),
        }
    }
}
