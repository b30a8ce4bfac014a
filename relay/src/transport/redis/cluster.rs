//! A Redis Cluster. The client discovers the topology from the seed URLs and routes
//! each `VSET`/`VDEL` to its key's slot primary (following MOVED/ASK). Cold state is
//! per node, so the per-batch check asks every primary, and `VFLOOR version` goes
//! only to the nodes found cold (a warm node keeps its own, finer floors).

use std::time::Duration;

use futures_util::future::join_all;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::Value;

use super::standalone::redact;
use super::{commands, floor, Applied, CacheTarget, Outcome};
use crate::change::Claimed;
use crate::error::{RelayError, Result};

pub struct ClusterTarget {
    client: ClusterClient,
    conn: Option<ClusterConnection>,
    /// `host:port` of the primaries seen cold by the last check.
    cold_nodes: Vec<(String, u16)>,
    described: String,
}

impl ClusterTarget {
    pub fn new(urls: &[String], timeout: Duration) -> Result<Self> {
        if urls.is_empty() {
            return Err(RelayError::Config(
                "--redis-cluster needs at least one URL".into(),
            ));
        }
        let described = urls.iter().map(|u| redact(u)).collect::<Vec<_>>().join(",");
        let client = ClusterClient::builder(urls.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()
            .map_err(|e| RelayError::Config(format!("--redis-cluster {described}: {e}")))?;
        Ok(Self {
            client,
            conn: None,
            cold_nodes: Vec::new(),
            described,
        })
    }

    async fn conn(&mut self) -> Result<ClusterConnection> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let conn = self.client.get_async_connection().await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }
}

/// Splits a node address as the cluster client reports it (`host:port`).
fn split_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((
        host.trim_matches(['[', ']']).to_string(),
        port.parse().ok()?,
    ))
}

impl CacheTarget for ClusterTarget {
    async fn apply(&mut self, batch: &[Claimed]) -> Result<Applied> {
        if self.check_cold().await? {
            return Ok(Applied::Cold);
        }
        let conn = self.conn().await?;
        // One request per row, all in flight at once: the cluster connection
        // multiplexes them per node, which is what a pipeline would do, without
        // the single-slot restriction of cluster pipelines.
        let replies = join_all(batch.iter().map(|row| {
            let mut conn = conn.clone();
            async move {
                match commands::command_for(row) {
                    None => Ok(Outcome::Skipped),
                    // WRONGTYPE concerns this key only; anything else (a node
                    // down, MOVED loops, OOM) fails the batch.
                    Some(cmd) => commands::outcome_of_result(row, cmd.query_async(&mut conn).await),
                }
            }
        }))
        .await;
        replies
            .into_iter()
            .collect::<Result<Vec<_>>>()
            .map(Applied::Outcomes)
    }

    async fn replace_foreign(&mut self, row: &Claimed) -> Result<Outcome> {
        let Some(key) = commands::key_of(row) else {
            return Ok(Outcome::Skipped);
        };
        let mut conn = self.conn().await?;
        let _: Value = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;
        match commands::command_for(row) {
            None => Ok(Outcome::Forgotten),
            Some(cmd) => commands::outcome_of_result(row, cmd.query_async(&mut conn).await),
        }
    }

    async fn check_cold(&mut self) -> Result<bool> {
        let mut conn = self.conn().await?;
        let reply = conn
            .route_command(
                redis::cmd("VFLOOR"),
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
            )
            .await?;
        let per_node = match reply {
            Value::Map(pairs) => pairs,
            other => {
                return Err(RelayError::RedisReply {
                    command: "VFLOOR (all primaries)".into(),
                    detail: format!("unexpected reply {other:?}"),
                })
            }
        };
        self.cold_nodes.clear();
        for (addr, reply) in per_node {
            let addr = match &addr {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            };
            if floor::parse(&reply)?.cold {
                let node = split_addr(&addr).ok_or_else(|| RelayError::RedisReply {
                    command: "VFLOOR".into(),
                    detail: format!("unreadable node address {addr:?}"),
                })?;
                self.cold_nodes.push(node);
            }
        }
        Ok(!self.cold_nodes.is_empty())
    }

    async fn set_floor(&mut self, version: u64) -> Result<()> {
        let mut conn = self.conn().await?;
        for (host, port) in std::mem::take(&mut self.cold_nodes) {
            let mut cmd = redis::cmd("VFLOOR");
            cmd.arg(version);
            let reply = conn
                .route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port,
                    }),
                )
                .await?;
            if !matches!(reply, Value::Okay) {
                return Err(RelayError::RedisReply {
                    command: format!("VFLOOR {version} on {host}:{port}"),
                    detail: format!("{reply:?}"),
                });
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.conn = None;
        self.cold_nodes.clear();
    }

    fn describe(&self) -> String {
        format!("cluster {}", self.described)
    }
}

#[cfg(test)]
mod tests {
    use super::split_addr;

    #[test]
    fn node_addresses_split_into_host_and_port() {
        assert_eq!(
            split_addr("127.0.0.1:7000"),
            Some(("127.0.0.1".into(), 7000))
        );
        assert_eq!(split_addr("[::1]:7001"), Some(("::1".into(), 7001)));
        assert_eq!(split_addr("nonsense"), None);
    }
}
