//! Reading the module's `VFLOOR` reply: `["cold", 0|1, "floor", N, "buckets", N]`
//! (RESP2 flat array; a RESP3 map is accepted too).

use redis::Value;

use crate::error::{RelayError, Result};

/// The module's floor state on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FloorState {
    /// True until someone calls `VFLOOR version` after a start without saved state.
    pub cold: bool,
    /// The node-wide floor the module reports (informational).
    pub floor: Option<u64>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => text(other).and_then(|t| t.parse().ok()),
    }
}

/// Parses one node's `VFLOOR` reply.
pub fn parse(reply: &Value) -> Result<FloorState> {
    let bad = |detail: String| RelayError::RedisReply {
        command: "VFLOOR".into(),
        detail,
    };
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Array(items) if items.len() % 2 == 0 => {
            items.chunks(2).map(|p| (&p[0], &p[1])).collect()
        }
        Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
        Value::ServerError(e) => return Err(bad(format!("{e:?} (is the vset module loaded?)"))),
        other => return Err(bad(format!("unexpected reply {other:?}"))),
    };
    let mut cold = None;
    let mut floor = None;
    for (k, v) in pairs {
        match text(k).as_deref() {
            Some("cold") => cold = number(v).map(|n| n != 0),
            Some("floor") => floor = number(v),
            _ => {}
        }
    }
    let cold = cold.ok_or_else(|| bad(format!("no \"cold\" field in {reply:?}")))?;
    Ok(FloorState { cold, floor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_the_flat_array() {
        let reply = Value::Array(vec![
            bulk("cold"),
            Value::Int(1),
            bulk("floor"),
            Value::Int(0),
            bulk("buckets"),
            Value::Int(65536),
        ]);
        assert_eq!(
            parse(&reply).ok(),
            Some(FloorState {
                cold: true,
                floor: Some(0)
            })
        );
    }

    #[test]
    fn reads_big_floors_sent_as_strings() {
        let reply = Value::Array(vec![
            bulk("cold"),
            Value::Int(0),
            bulk("floor"),
            bulk("18446744073709551615"),
        ]);
        assert_eq!(parse(&reply).ok().and_then(|s| s.floor), Some(u64::MAX));
    }

    #[test]
    fn refuses_replies_without_cold_flag() {
        assert!(parse(&Value::Array(vec![bulk("floor"), Value::Int(3)])).is_err());
        assert!(parse(&Value::Okay).is_err());
    }
}
