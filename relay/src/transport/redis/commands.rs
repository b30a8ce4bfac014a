//! The vset module's commands as the relay sends them, and how their replies are
//! read. Kept apart from the connection code so standalone and cluster agree.

use redis::Value;

use super::Outcome;
use crate::change::{Action, Claimed};
use crate::error::{RelayError, Result};

/// The command for one claimed row, or `None` when there is nothing to send.
pub fn command_for(row: &Claimed) -> Option<redis::Cmd> {
    match row {
        Claimed::Change(c) => {
            let mut cmd;
            match &c.action {
                Action::Set { payload } => {
                    cmd = redis::cmd("VSET");
                    cmd.arg(&c.cache_key).arg(c.version).arg(payload);
                }
                Action::Delete | Action::TombstoneMalformed { .. } => {
                    cmd = redis::cmd("VDEL");
                    cmd.arg(&c.cache_key).arg(c.version);
                }
            }
            Some(cmd)
        }
        Claimed::Unversioned(u) => {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(&u.cache_key);
            Some(cmd)
        }
        Claimed::Keyless { .. } => None,
    }
}

/// Reads the reply to the command built by [`command_for`] for `row`.
pub fn outcome_of(row: &Claimed, reply: &Value) -> Result<Outcome> {
    let (command, is_del) = match row {
        Claimed::Change(c) => match c.action {
            Action::Set { .. } => ("VSET", false),
            _ => ("VDEL", false),
        },
        Claimed::Unversioned(_) => ("DEL", true),
        Claimed::Keyless { .. } => return Ok(Outcome::Skipped),
    };
    match reply {
        Value::ServerError(e) => match key_error(e.code()) {
            Some(outcome) => Ok(outcome),
            None => Err(RelayError::RedisReply {
                command: command.into(),
                detail: format!("{e:?}"),
            }),
        },
        Value::Int(_) if is_del => Ok(Outcome::Forgotten),
        Value::Int(1) => Ok(Outcome::Stored),
        Value::Int(0) => Ok(Outcome::Rejected),
        other => Err(RelayError::RedisReply {
            command: command.into(),
            detail: format!("expected 0 or 1, got {other:?}"),
        }),
    }
}

/// The outcome of a row's command sent on its own (a cluster connection returns
/// error replies as `Err`): [`outcome_of`] the reply, or the key-only error.
pub fn outcome_of_result(row: &Claimed, reply: redis::RedisResult<Value>) -> Result<Outcome> {
    match reply {
        Ok(reply) => outcome_of(row, &reply),
        Err(e) => match e.code().and_then(key_error) {
            Some(outcome) => Ok(outcome),
            None => Err(e.into()),
        },
    }
}

/// The error replies that concern one key only, as the row's outcome. `OOM` is not
/// one of them: under `noeviction` it refuses every write of the server, and a key
/// that cannot be written cannot be protected either (a `DEL` of a missing key
/// raises no floor, so a late older fill could land after memory returns); the
/// batch fails and is retried, nothing acknowledged.
pub fn key_error(code: &str) -> Option<Outcome> {
    match code {
        "WRONGTYPE" => Some(Outcome::Foreign),
        _ => None,
    }
}

/// The cache key a row's command targets (None: nothing is sent for it).
pub fn key_of(row: &Claimed) -> Option<&str> {
    match row {
        Claimed::Change(c) => Some(&c.cache_key),
        Claimed::Unversioned(u) => Some(&u.cache_key),
        Claimed::Keyless { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Change;

    fn set_row() -> Claimed {
        Change::from_row(
            1,
            Some("public.users:1".into()),
            Some("set".into()),
            Some(5),
            Some("{\"a\":1}".into()),
            None,
        )
    }

    #[test]
    fn set_rows_become_vset_with_key_version_payload() {
        let cmd = command_for(&set_row()).expect("a command");
        assert_eq!(
            cmd.get_packed_command(),
            b"*4\r\n$4\r\nVSET\r\n$14\r\npublic.users:1\r\n$1\r\n5\r\n$7\r\n{\"a\":1}\r\n".to_vec()
        );
    }

    #[test]
    fn replies_map_to_outcomes_and_errors() {
        let row = set_row();
        assert_eq!(outcome_of(&row, &Value::Int(1)).ok(), Some(Outcome::Stored));
        assert_eq!(
            outcome_of(&row, &Value::Int(0)).ok(),
            Some(Outcome::Rejected)
        );
        assert!(outcome_of(&row, &Value::Int(2)).is_err());
        assert!(outcome_of(&row, &Value::Nil).is_err());
        assert_eq!(key_error("WRONGTYPE"), Some(Outcome::Foreign));
        assert_eq!(
            key_error("OOM"),
            None,
            "OOM fails the batch: it is the whole server"
        );
        assert_eq!(key_error("ERR"), None);
        assert_eq!(
            key_error("NOPERM"),
            None,
            "ACL errors fail the batch: a config problem"
        );
    }
}
