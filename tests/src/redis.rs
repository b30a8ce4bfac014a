//! Placeholder: the Redis harness (RedisServer, replicas, cluster) lands with the module.
