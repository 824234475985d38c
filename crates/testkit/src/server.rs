//! Minimal HTTP/1 server plumbing shared by the fakes: our own accept loop on a
//! tokio `TcpListener` so handlers can reach the accepted socket (hop limit) and
//! can hang or drop a connection on purpose.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Response type of the fakes. The body may fail part-way (see [`cut_off`]),
/// which makes hyper abort the connection mid-body.
pub(crate) type Resp = Response<BoxBody<Bytes, std::io::Error>>;

fn full(body: impl Into<Bytes>) -> BoxBody<Bytes, std::io::Error> {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// What a handler decided.
pub(crate) enum Outcome {
    /// Send this response.
    Respond(Resp),
    /// Close the connection without answering.
    Drop,
}

/// Per-connection facts a handler may use.
pub(crate) struct ConnInfo {
    /// The remote address.
    #[allow(dead_code)]
    pub peer: SocketAddr,
    /// A duplicate handle of the accepted socket (same kernel socket), for
    /// socket options such as the IP TTL.
    pub socket: std::net::TcpStream,
}

pub(crate) type Handler =
    Arc<dyn Fn(Request<Incoming>, Arc<ConnInfo>) -> BoxFut + Send + Sync + 'static>;
pub(crate) type BoxFut = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

#[derive(Debug)]
struct DropConnection;
impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}
impl std::error::Error for DropConnection {}

/// A fake's request counters and log (its stats snapshot type), as kept by
/// [`arrive`] and [`answered`].
pub(crate) trait RequestStats {
    /// One entry of the request log.
    type Record;
    /// Counts an arriving request (total and in flight) and logs `record`.
    fn arrived(&mut self, record: Self::Record);
    /// Counts a request out of `in_flight` (answered, hung up or dropped).
    fn left(&mut self);
    /// Counts an answer with `status` and sets it on the log entry of request
    /// `id`; returns that entry.
    fn answered(&mut self, id: u64, status: u16) -> Option<&mut Self::Record>;
}

/// Implements [`RequestStats`] for a stats type with `total`, `in_flight`,
/// `by_status` and `log` fields whose records have `id` and `status` fields.
macro_rules! impl_request_stats {
    ($stats:ty, $record:ty) => {
        impl $crate::server::RequestStats for $stats {
            type Record = $record;

            fn arrived(&mut self, record: $record) {
                self.total += 1;
                self.in_flight += 1;
                self.log.push(record);
            }

            fn left(&mut self) {
                self.in_flight -= 1;
            }

            fn answered(&mut self, id: u64, status: u16) -> Option<&mut $record> {
                *self.by_status.entry(status).or_default() += 1;
                let rec = self.log.iter_mut().rev().find(|r| r.id == id)?;
                rec.status = Some(status);
                Some(rec)
            }
        }
    };
}
pub(crate) use impl_request_stats;

fn lock_stats<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts a request out of `in_flight` when dropped (see [`arrive`]).
pub(crate) struct InFlight<'a, S: RequestStats>(&'a Mutex<S>);

impl<S: RequestStats> Drop for InFlight<'_, S> {
    fn drop(&mut self) {
        lock_stats(self.0).left();
    }
}

/// Numbers an arriving request (1-based, from `seq`), counts and logs it
/// (`record` builds the log entry from its id), then bumps `total_tx`. Returns
/// the id and a guard that counts the request out of `in_flight` when dropped.
pub(crate) fn arrive<'a, S: RequestStats>(
    seq: &AtomicU64,
    stats: &'a Mutex<S>,
    total_tx: &watch::Sender<u64>,
    record: impl FnOnce(u64) -> S::Record,
) -> (u64, InFlight<'a, S>) {
    let id = seq.fetch_add(1, Ordering::Relaxed) + 1;
    lock_stats(stats).arrived(record(id));
    total_tx.send_modify(|t| *t += 1);
    (id, InFlight(stats))
}

/// Records the status of request `id` if `outcome` answers it; returns its log
/// entry (for what else the fake records).
pub(crate) fn answered<'a, S: RequestStats>(
    stats: &'a mut S,
    id: u64,
    outcome: &Outcome,
) -> Option<&'a mut S::Record> {
    match outcome {
        Outcome::Respond(r) => stats.answered(id, r.status().as_u16()),
        Outcome::Drop => None,
    }
}

/// Running accept loops; aborting them (on drop) aborts every connection task.
pub(crate) struct Server {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds every address (all or nothing) and returns the listeners with their
/// actual local addresses.
pub(crate) async fn bind_all(
    addrs: &[SocketAddr],
) -> std::io::Result<(Vec<TcpListener>, Vec<SocketAddr>)> {
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for a in addrs {
        let l = TcpListener::bind(a)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {a}: {e}")))?;
        bound.push(l.local_addr()?);
        listeners.push(l);
    }
    Ok((listeners, bound))
}

/// Starts one accept loop per listener.
pub(crate) fn serve(listeners: Vec<TcpListener>, handler: Handler) -> Server {
    let tasks = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, handler.clone())))
        .collect();
    Server { tasks }
}

async fn accept_loop(listener: TcpListener, handler: Handler) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let handler = handler.clone();
                conns.spawn(async move {
                    if let Err(e) = serve_conn(stream, peer, handler).await {
                        tracing::debug!(error = %e, %peer, "fake server connection ended");
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(stream: TcpStream, peer: SocketAddr, handler: Handler) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let std_stream = stream.into_std()?;
    let dup = std_stream.try_clone()?;
    let stream = TcpStream::from_std(std_stream)?;
    let info = Arc::new(ConnInfo { peer, socket: dup });
    let svc = hyper::service::service_fn(move |req| {
        let fut = handler(req, info.clone());
        async move {
            match fut.await {
                Outcome::Respond(r) => Ok::<_, DropConnection>(r),
                Outcome::Drop => Err(DropConnection),
            }
        }
    });
    hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc)
        .await
        .map_err(std::io::Error::other)
}

/// A response with a `text/plain` body (the agent's error style: Go's `http.Error`).
pub(crate) fn text(status: u16, body: impl Into<String>) -> Resp {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// A response with a raw body and content type.
pub(crate) fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// A response that announces `body` in full (`Content-Length`), sends its first
/// `sent` bytes, then fails: hyper closes the connection, and the client sees a
/// body shorter than promised (a peer that crashed mid-answer).
pub(crate) fn cut_off(status: u16, content_type: &str, body: Bytes, sent: usize) -> Resp {
    let promised = body.len() as u64;
    let partial = body.slice(..sent.min(body.len()));
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            CutOff {
                partial: Some(partial),
                promised,
                pause: Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50))),
            }
            .boxed(),
        )
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// The body of [`cut_off`]: one data frame, a pause (so that hyper flushes
/// what it has to the socket), then an error.
struct CutOff {
    partial: Option<Bytes>,
    promised: u64,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Body for CutOff {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(data) = self.partial.take() {
            return std::task::Poll::Ready(Some(Ok(Frame::data(data))));
        }
        std::task::ready!(self.pause.as_mut().poll(cx));
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "body cut off on purpose",
        ))))
    }

    fn size_hint(&self) -> SizeHint {
        // An exact hint makes hyper send `Content-Length: promised`.
        SizeHint::with_exact(self.promised)
    }
}

/// A future that never completes (a hung answer).
pub(crate) async fn hang() -> Outcome {
    std::future::pending::<Infallible>().await;
    unreachable!()
}

/// Formats an HTTP URI authority for an address (`[::1]:80` for IPv6).
pub(crate) fn authority(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// A request id like EKS Auth's (UUID-shaped).
pub(crate) fn request_id() -> String {
    let h = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
            .collect()
    };
    format!("{}-{}-{}-{}-{}", h(8), h(4), h(4), h(4), h(12))
}
