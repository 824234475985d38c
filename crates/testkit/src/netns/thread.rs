//! A runtime thread per namespace: an OS thread that moves itself into the
//! namespace with `setns(2)` and drives a current-thread tokio runtime, so the
//! sockets and processes it creates belong to that namespace.

use std::future::Future;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use super::error::NetnsError;
use super::namespaces::NETNS_DIR;

/// A thread inside a network namespace, driving a current-thread tokio runtime.
pub(super) struct NsThread {
    name: String,
    pub(super) handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsThread {
    pub(super) fn start(name: &str) -> Result<Self, NetnsError> {
        let path = Path::new(NETNS_DIR).join(name);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_name = format!("netns-{name}");
        let ns_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let setup = (|| -> std::io::Result<tokio::runtime::Runtime> {
                    let f = std::fs::File::open(&path)?;
                    // setns(2) affects only this thread; tokio's blocking-pool
                    // threads are spawned from it and inherit the namespace.
                    rustix::thread::move_into_link_name_space(
                        f.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )?;
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                })();
                let rt = match setup {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                if ready_tx.send(Ok((rt.handle().clone(), stop_tx))).is_err() {
                    return;
                }
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|source| NetnsError::Enter {
                name: ns_name.clone(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok((handle, stop))) => Ok(Self {
                name: ns_name,
                handle,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(NetnsError::Enter {
                    name: ns_name,
                    source,
                })
            }
            Err(_) => {
                let _ = thread.join();
                Err(NetnsError::Enter {
                    name: ns_name,
                    source: std::io::Error::other("namespace thread died during setup"),
                })
            }
        }
    }

    /// Runs `fut` on this thread's runtime and waits for it (blocking).
    pub(super) fn block<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let task = self.handle.spawn(fut);
        self.handle.spawn(async move {
            let _ = tx.send(task.await);
        });
        match rx.recv() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("task in netns {} was cancelled: {e}", self.name),
            Err(_) => panic!("the runtime of netns {} has stopped", self.name),
        }
    }

    pub(super) fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        self.stop();
    }
}
