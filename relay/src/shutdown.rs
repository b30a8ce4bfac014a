//! SIGTERM / SIGINT handling. The first signal asks every claim loop to stop after
//! the batch in hand (applied and committed, or rolled back); the process then
//! exits 0. Waits (idle, backoff) end immediately on the signal.

use tokio::sync::watch;

/// A cloneable view of "has shutdown been requested?".
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending half, kept by `main`.
pub struct Trigger {
    tx: watch::Sender<bool>,
}

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }

    /// Fires on the first SIGTERM or SIGINT.
    pub fn on_signals(self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down after the batch in hand");
            self.fire();
        });
        Ok(())
    }
}

impl Shutdown {
    pub fn requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been requested.
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped: treat it as a request too.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn firing_wakes_every_waiter() {
        let (trigger, shutdown) = channel();
        let mut a = shutdown.clone();
        let waiter = tokio::spawn(async move { a.wait().await });
        assert!(!shutdown.requested());
        trigger.fire();
        waiter.await.expect("waiter ends");
        assert!(shutdown.requested());
    }
}
