//! A TCP proxy that can hold a relay's writes in flight: while it is paused, bytes
//! from the client are read and kept, not forwarded; on resume they reach Redis
//! in order, late. This is the network between a relay and Redis stalling (a
//! congested link, a frozen NIC queue, a VM pause on the relay's host) and then
//! delivering what the relay sent long ago, after other relays moved on.
//!
//! It gives the chaos cells a late write on demand: pause while a relay holds a
//! claimed batch, let other writes happen and be applied (and keys be forgotten),
//! resume, and the batch lands behind newer versions. The replies flow back
//! normally, so the relay sees a slow server, not an error.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[derive(Clone)]
pub struct StallProxy {
    port: u16,
    paused: Arc<AtomicBool>,
    /// Bytes read from clients while paused and not yet forwarded.
    held: Arc<AtomicU64>,
}

impl StallProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let proxy = StallProxy {
            port,
            paused: Arc::new(AtomicBool::new(false)),
            held: Arc::new(AtomicU64::new(0)),
        };
        let p = proxy.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                // Redis may be restarting: a refused upstream closes the client,
                // which then reconnects, as it would to a real server.
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                let up = p.clone();
                thread::spawn(move || up.forward_holding(client, s2));
                thread::spawn(move || copy_until_closed(server, c2));
            }
        });
        Ok(proxy)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// From now on, client bytes are held until [`Self::resume`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Forwards everything held, then passes bytes through again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Bytes held right now (0 when nothing was sent while paused).
    pub fn held_bytes(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// Client → server: read, and while paused keep what was read until resumed.
    /// A client that closes meanwhile still has its bytes delivered, as TCP would.
    fn forward_holding(&self, mut from: TcpStream, mut to: TcpStream) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if self.paused.load(Ordering::SeqCst) {
                self.held.fetch_add(n as u64, Ordering::SeqCst);
                while self.paused.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(2));
                }
                self.held.fetch_sub(n as u64, Ordering::SeqCst);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    }
}

/// Copies bytes from one socket to the other until either side closes, then
/// closes both (the lab's outage proxy forwards with it too).
pub fn copy_until_closed(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
