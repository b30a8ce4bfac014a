//! The Redis side of a check: read `VGET key WITHVERSION` for a batch of keys
//! (pipelined), enumerate the module's keys (SCAN ... TYPE on every primary) and
//! draw random keys. Works on one server (`--redis`) or a Redis Cluster
//! (`--redis-cluster`): reads go through a cluster connection that routes by key,
//! while SCAN and RANDOMKEY, which are per node, go to each primary directly.

use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};

use crate::error::{Result, VerifyError};

/// The module's data type name as `TYPE key` reports it (redis-module/src: the
/// 9-character name registered with `RedisModule_CreateDataType`).
pub const DEFAULT_MODULE_TYPE: &str = "vsetvalue";

/// What Redis holds for one key, as `VGET key WITHVERSION` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// No vset value (absent, or a tombstone): a reader misses, which is safe.
    Absent { version: u64 },
    /// A value and the version it was stored at.
    Value { value: String, version: u64 },
    /// The key holds something that is not a vset value (e.g. a plain SET): a
    /// reader using VGET gets an error or, worse, an unversioned value.
    Foreign { detail: String },
}

impl Cached {
    pub fn version(&self) -> u64 {
        match self {
            Cached::Absent { version } | Cached::Value { version, .. } => *version,
            Cached::Foreign { .. } => 0,
        }
    }
}

/// Where to connect.
#[derive(Debug, Clone)]
pub enum CacheTarget {
    Single(String),
    Cluster(Vec<String>),
}

enum Link {
    Single(Connection),
    Cluster {
        routed: Box<redis::cluster::ClusterConnection>,
        /// One direct connection per primary, for per-node commands (SCAN, RANDOMKEY).
        primaries: Vec<Connection>,
    },
}

/// A connection to the cache, standalone or cluster.
pub struct Cache {
    link: Link,
    module_type: String,
}

impl Cache {
    pub fn connect(target: &CacheTarget, module_type: &str) -> Result<Self> {
        let link = match target {
            CacheTarget::Single(url) => Link::Single(Client::open(url.as_str())?.get_connection()?),
            CacheTarget::Cluster(urls) => {
                let routed =
                    Box::new(redis::cluster::ClusterClient::new(urls.clone())?.get_connection()?);
                let primaries = connect_primaries(urls)?;
                Link::Cluster { routed, primaries }
            }
        };
        Ok(Self {
            link,
            module_type: module_type.to_string(),
        })
    }

    /// `VGET key WITHVERSION` for every key, in order, pipelined.
    pub fn read_many(&mut self, keys: &[String]) -> Result<Vec<Cached>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match &mut self.link {
            Link::Single(con) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for k in keys {
                    pipe.cmd("VGET").arg(k).arg("WITHVERSION");
                }
                let replies: Vec<Value> = pipe.query(con)?;
                keys.iter()
                    .zip(replies)
                    .map(|(k, v)| parse_vget(k, v))
                    .collect()
            }
            Link::Cluster { routed, .. } => {
                let mut pipe = redis::cluster::cluster_pipe();
                for k in keys {
                    pipe.cmd("VGET").arg(k).arg("WITHVERSION");
                }
                match pipe.query::<Vec<Value>>(routed) {
                    Ok(replies) => keys
                        .iter()
                        .zip(replies)
                        .map(|(k, v)| parse_vget(k, v))
                        .collect(),
                    // A cluster pipeline stops at the first error reply (e.g. WRONGTYPE
                    // on a foreign key): fall back to one command per key.
                    Err(_) => keys
                        .iter()
                        .map(|k| {
                            let reply = redis::cmd("VGET")
                                .arg(k)
                                .arg("WITHVERSION")
                                .query::<Value>(routed);
                            match reply {
                                Ok(v) => parse_vget(k, v),
                                Err(e) if e.code() == Some("WRONGTYPE") => Ok(Cached::Foreign {
                                    detail: e.to_string(),
                                }),
                                Err(e) => Err(e.into()),
                            }
                        })
                        .collect(),
                }
            }
        }
    }

    /// Calls `batch` with every key of the module's type matching `pattern`, a
    /// SCAN page at a time (memory stays at one page), on every primary.
    pub fn scan_module_keys(
        &mut self,
        pattern: &str,
        mut batch: impl FnMut(&mut Self, Vec<String>) -> Result<()>,
    ) -> Result<()> {
        let node_count = match &self.link {
            Link::Single(_) => 1,
            Link::Cluster { primaries, .. } => primaries.len(),
        };
        for node in 0..node_count {
            let mut cursor: u64 = 0;
            let module_type = self.module_type.clone();
            loop {
                let con = self.node(node);
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .arg("TYPE")
                    .arg(module_type.as_str())
                    .query(con)?;
                if !keys.is_empty() {
                    batch(self, keys)?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    /// Up to `n` random keys of the module's type (RANDOMKEY, spread over primaries).
    /// Non-module keys are skipped; gives up after `4 n` draws so a cache full of
    /// other data cannot keep it looping.
    pub fn random_module_keys(&mut self, n: usize) -> Result<Vec<String>> {
        let node_count = match &self.link {
            Link::Single(_) => 1,
            Link::Cluster { primaries, .. } => primaries.len(),
        };
        let mut out = Vec::with_capacity(n);
        for draw in 0..n.saturating_mul(4) {
            if out.len() >= n {
                break;
            }
            let module_type = self.module_type.clone();
            let con = self.node(draw % node_count.max(1));
            let key: Option<String> = redis::cmd("RANDOMKEY").query(con)?;
            let Some(key) = key else { continue };
            let kind: String = redis::cmd("TYPE").arg(&key).query(con)?;
            if kind == module_type {
                out.push(key);
            }
        }
        Ok(out)
    }

    fn node(&mut self, index: usize) -> &mut Connection {
        match &mut self.link {
            Link::Single(con) => con,
            Link::Cluster { primaries, .. } => {
                let n = primaries.len().max(1);
                &mut primaries[index % n]
            }
        }
    }
}

/// Decodes `[value-or-nil, version]`.
fn parse_vget(key: &str, reply: Value) -> Result<Cached> {
    let bad = |detail: String| VerifyError::Reply {
        what: format!("VGET {key} WITHVERSION"),
        detail,
    };
    match reply {
        Value::Array(items) if items.len() == 2 => {
            let mut it = items.into_iter();
            let (value, version) = match (it.next(), it.next()) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad("short array".into())),
            };
            let version = match version {
                Value::Int(i) => u64::try_from(i).map_err(|_| bad(format!("version {i}")))?,
                Value::BulkString(b) => String::from_utf8_lossy(&b)
                    .parse::<u64>()
                    .map_err(|e| bad(format!("version: {e}")))?,
                Value::SimpleString(s) => {
                    s.parse::<u64>().map_err(|e| bad(format!("version: {e}")))?
                }
                other => return Err(bad(format!("version {other:?}"))),
            };
            match value {
                Value::Nil => Ok(Cached::Absent { version }),
                Value::BulkString(b) => Ok(Cached::Value {
                    value: String::from_utf8_lossy(&b).into_owned(),
                    version,
                }),
                Value::SimpleString(s) => Ok(Cached::Value { value: s, version }),
                other => Err(bad(format!("value {other:?}"))),
            }
        }
        // A missing key may be answered with a bare nil by some module versions.
        Value::Nil => Ok(Cached::Absent { version: 0 }),
        Value::ServerError(e) if e.code() == "WRONGTYPE" => Ok(Cached::Foreign {
            detail: format!("{e:?}"),
        }),
        Value::ServerError(e) => Err(bad(format!("{e:?}"))),
        other => Err(bad(format!("{other:?}"))),
    }
}

/// Direct connections to every primary of the cluster (from `CLUSTER NODES` on
/// the first reachable seed), keeping the seed URL's credentials and TLS setting.
fn connect_primaries(seeds: &[String]) -> Result<Vec<Connection>> {
    let mut last_err = None;
    for seed in seeds {
        let info: ConnectionInfo = match seed.as_str().into_connection_info() {
            Ok(i) => i,
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        let nodes: String = match Client::open(info.clone())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("CLUSTER").arg("NODES").query(&mut c))
        {
            Ok(n) => n,
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        let mut out = Vec::new();
        for (host, port) in primaries_from_cluster_nodes(&nodes) {
            let addr = match info.addr() {
                ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => ConnectionAddr::Tcp(host, port),
            };
            out.push(Client::open(info.clone().set_addr(addr))?.get_connection()?);
        }
        if out.is_empty() {
            return Err(VerifyError::Usage(format!(
                "{seed}: CLUSTER NODES lists no primary"
            )));
        }
        return Ok(out);
    }
    Err(match last_err {
        Some(e) => e.into(),
        None => VerifyError::Usage("--redis-cluster needs at least one URL".into()),
    })
}

/// `(host, port)` of every healthy primary in a `CLUSTER NODES` reply. Lines look
/// like `<id> <ip:port@cport[,hostname]> <flags> <master> ...`.
pub fn primaries_from_cluster_nodes(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let _id = f.next()?;
            let addr = f.next()?;
            let flags = f.next()?;
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_primaries_and_skips_replicas_and_failed_nodes() {
        let nodes = "\
a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:7001@17001,host-b master - 0 0 2 connected 5461-10922
c 127.0.0.1:7003@17003 slave a 0 0 1 connected
d 127.0.0.1:7002@17002 master,fail - 0 0 3 connected 10923-16383
";
        assert_eq!(
            primaries_from_cluster_nodes(nodes),
            vec![
                ("127.0.0.1".to_string(), 7000),
                ("127.0.0.1".to_string(), 7001)
            ]
        );
    }

    #[test]
    fn vget_reply_shapes() {
        let v = parse_vget(
            "k",
            Value::Array(vec![Value::BulkString(b"{}".to_vec()), Value::Int(7)]),
        )
        .unwrap();
        assert_eq!(
            v,
            Cached::Value {
                value: "{}".into(),
                version: 7
            }
        );
        let v = parse_vget("k", Value::Array(vec![Value::Nil, Value::Int(9)])).unwrap();
        assert_eq!(v, Cached::Absent { version: 9 });
        assert!(parse_vget("k", Value::Int(3)).is_err());
    }
}
