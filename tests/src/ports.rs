//! Free loopback ports for test servers.
//!
//! Asking the kernel for port 0 and closing the socket leaves a small window in
//! which another process may take the port; tests run many servers in parallel, so
//! ports handed out by this process are also remembered and never handed out twice.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback TCP port that is free now and that this process has not handed out
/// before. Redis Cluster also needs `port + 10000` (the cluster bus), so only ports
/// whose bus port is also valid and free are returned.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding 127.0.0.1:0 must work on a test machine");
        if port > 55535 || TcpListener::bind(("127.0.0.1", port + 10000)).is_err() {
            continue;
        }
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        let set = guard.get_or_insert_with(HashSet::new);
        if set.insert(port) {
            return port;
        }
    }
}
