//! A raw, in-process HTTP/1.1 peer with fault injection, for the fault
//! matrix, load and security tests.
//!
//! Unlike wiremock it can misbehave at the byte level: hang before or inside
//! the headers, stall mid-body, stream a chunked body forever, close without
//! answering, or stop listening (connection refused) and come back as a
//! listener whose accept queue is full (SYNs dropped: a real connect timeout
//! on loopback). Every request and every accepted connection is recorded, so
//! tests can prove that nothing reached a peer that must not be contacted.
//!
//! Include with `#[path = "common/peer.rs"] mod peer;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the peer does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response (`Connection: close`).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request and never answer (slow headers).
    Hang,
    /// Send the status line and one header, then stall (slow headers, part 2).
    PartialHeaders,
    /// Send headers announcing a body, part of it, then stall (slow body).
    SlowBody,
    /// `200` with a chunked body that never ends (until the client hangs up).
    StreamForever,
    /// Close the connection without answering.
    Close,
    /// Send headers announcing a 400-byte body, part of it, then close
    /// (a truncated body).
    TruncatedBody,
}

impl Reply {
    pub fn status(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Reply::Respond {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        Self::status(200, "application/json", body)
    }

    /// The agent's error style: text/plain with a trailing newline.
    pub fn text(status: u16, msg: &str) -> Self {
        Self::status(status, "text/plain; charset=utf-8", format!("{msg}\n"))
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

struct Shared {
    handler: Mutex<Handler>,
    requests: Mutex<Vec<Req>>,
    connections: AtomicUsize,
    raw: Mutex<Vec<u8>>,
    streamed: AtomicU64,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// The peer. Dropping it aborts every connection it holds.
pub struct Peer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
    /// A listener that never accepts (connect-timeout mode) and the
    /// connection that fills its queue.
    blackhole: Mutex<Option<(TcpListener, Vec<std::net::TcpStream>)>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(h) = self.accept.lock().unwrap().take() {
            h.abort();
        }
        for t in self.shared.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl Peer {
    /// Starts on 127.0.0.1 (or `[::1]` with `v6`) on a free port.
    pub async fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", handler).await
    }

    pub async fn start_on(
        bind: &str,
        handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            handler: Mutex::new(Arc::new(handler)),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            raw: Mutex::new(Vec::new()),
            streamed: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let peer = Self {
            addr,
            shared,
            accept: Mutex::new(None),
            blackhole: Mutex::new(None),
        };
        peer.serve(listener);
        peer
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let s = shared.clone();
                let conn = tokio::spawn(handle(stream, s));
                shared.tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set(&self, handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) {
        *self.shared.handler.lock().unwrap() = Arc::new(handler);
    }

    pub fn requests(&self) -> Vec<Req> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Accepted TCP connections (a request need not follow).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every byte received, across connections (to prove a secret never
    /// arrived in clear text).
    pub fn raw_bytes(&self) -> Vec<u8> {
        self.shared.raw.lock().unwrap().clone()
    }

    /// Body bytes written by `StreamForever` replies.
    pub fn streamed(&self) -> u64 {
        self.shared.streamed.load(Ordering::SeqCst)
    }

    /// Stops listening: new connections are refused (RST).
    pub async fn refuse(&self) {
        let accept = self.accept.lock().unwrap().take();
        if let Some(h) = accept {
            h.abort();
            let _ = h.await;
        }
        self.blackhole.lock().unwrap().take();
    }

    /// Listens again on the same port, but never accepts, with the accept
    /// queue already full: Linux drops further SYNs, so connects hang until
    /// the client's connect timeout (a black hole on loopback).
    pub async fn blackhole(&self) {
        self.refuse().await;
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4().unwrap()
        } else {
            TcpSocket::new_v6().unwrap()
        };
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(0).unwrap();
        // Fill the accept queue (backlog 0 holds one connection).
        let mut fillers = Vec::new();
        for _ in 0..2 {
            if let Ok(s) = std::net::TcpStream::connect_timeout(
                &self.addr,
                std::time::Duration::from_millis(100),
            ) {
                fillers.push(s);
            }
        }
        assert!(!fillers.is_empty(), "could not fill the accept queue");
        *self.blackhole.lock().unwrap() = Some((listener, fillers));
    }

    /// Listens and serves again on the same port.
    pub async fn resume(&self) {
        self.refuse().await;
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4().unwrap()
        } else {
            TcpSocket::new_v6().unwrap()
        };
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        self.serve(socket.listen(128).unwrap());
    }
}

async fn read_request(stream: &mut TcpStream, shared: &Shared) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            shared.raw.lock().unwrap().extend_from_slice(&buf);
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if !buf[0].is_ascii_alphabetic() {
            // Not HTTP (e.g. a TLS ClientHello): record it and hang up.
            shared.raw.lock().unwrap().extend_from_slice(&buf);
            return None;
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 256 * 1024 {
            shared.raw.lock().unwrap().extend_from_slice(&buf);
            return None;
        }
    };
    shared.raw.lock().unwrap().extend_from_slice(&buf);
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Req {
        method,
        path,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn handle(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some(req) = read_request(&mut stream, &shared).await else {
        return;
    };
    let handler = shared.handler.lock().unwrap().clone();
    let reply = handler(&req);
    shared.requests.lock().unwrap().push(req);
    match reply {
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            let mut has_len = false;
            for (k, v) in &headers {
                has_len |= k.eq_ignore_ascii_case("content-length");
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            if !has_len {
                out.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            out.push_str("Connection: close\r\n\r\n");
            let _ = stream.write_all(out.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => std::future::pending::<()>().await,
        Reply::PartialHeaders => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                .await;
            std::future::pending::<()>().await
        }
        Reply::SlowBody => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\nConnection: close\r\n\r\n{\"AccessKeyId\":",
                )
                .await;
            std::future::pending::<()>().await
        }
        Reply::StreamForever => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
            // Bounded only as a safety net for a broken client: 256 MiB.
            while shared.streamed.load(Ordering::SeqCst) < 256 << 20 {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                shared.streamed.fetch_add(0x1000, Ordering::SeqCst);
            }
        }
        Reply::Close => {}
        Reply::TruncatedBody => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\nConnection: close\r\n\r\n{\"AccessKeyId\":",
                )
                .await;
        }
    }
}
