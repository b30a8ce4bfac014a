//! Reply shapes shared by the commands.

use redis_module::RedisValue;

/// A version as a reply: a RESP integer when it fits (≤ i64::MAX, since RESP integers
/// are signed), otherwise a bulk string of its decimal digits.
pub fn version(v: u64) -> RedisValue {
    match i64::try_from(v) {
        Ok(i) => RedisValue::Integer(i),
        Err(_) => RedisValue::BulkString(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_versions_are_strings() {
        assert_eq!(version(0), RedisValue::Integer(0));
        assert_eq!(version(i64::MAX as u64), RedisValue::Integer(i64::MAX));
        assert_eq!(
            version(i64::MAX as u64 + 1),
            RedisValue::BulkString("9223372036854775808".into())
        );
        assert_eq!(
            version(u64::MAX),
            RedisValue::BulkString("18446744073709551615".into())
        );
    }
}
