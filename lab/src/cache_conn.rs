//! A Redis connection that reconnects on the next command after any error, the
//! way application clients behave across a cache outage.

use std::time::Duration;

use redis::{Client, Cmd, Connection, FromRedisValue, RedisResult};

pub struct CacheConn {
    url: String,
    con: Option<Connection>,
}

impl CacheConn {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            con: None,
        }
    }

    /// Runs one command. A connection found broken (closed while idle, e.g. by an
    /// outage that is over) is replaced once, as pooled clients do; any other
    /// failure drops the connection and is returned.
    pub fn run<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        let had_connection = self.con.is_some();
        match self.run_once(cmd) {
            Err(e) if had_connection && (e.is_io_error() || e.is_connection_dropped()) => {
                self.run_once(cmd)
            }
            other => other,
        }
    }

    fn run_once<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        if self.con.is_none() {
            let client = Client::open(self.url.as_str())?;
            // Generous: an outage shows as an immediate close (see the proxy), so
            // these only guard against a hang, and a stalled 2-core machine must not
            // turn into cache errors that change the lab's counts.
            let con = client.get_connection_with_timeout(Duration::from_secs(10))?;
            con.set_read_timeout(Some(Duration::from_secs(10)))?;
            self.con = Some(con);
        }
        let Some(con) = self.con.as_mut() else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no connection",
            )));
        };
        let out = cmd.query(con);
        if out.is_err() {
            self.con = None;
        }
        out
    }
}
