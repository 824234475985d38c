//! A minimal HTTP/1.1 client over raw tokio TCP.
//!
//! A general-purpose client (reqwest, hyper-util) folds "refused", "unreachable",
//! "connect timed out" and "connected but no answer" into a few error kinds;
//! the leak detector needs each of them told apart, so it speaks HTTP itself:
//! one request per connection (`Connection: close`), `Content-Length`, chunked
//! or read-to-EOF bodies, capped at [`MAX_BODY_BYTES`] (the provider's cap).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use eks_pod_identity_provider::protocol::MAX_BODY_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use url::{Host, Url};

/// Why a TCP connect failed, as the leak detector distinguishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// `ECONNREFUSED`: a REJECT rule (TCP reset / ICMP port unreachable) or nothing listening.
    Refused,
    /// `EHOSTUNREACH` / `ENETUNREACH` / `EACCES`: ICMP prohibited, a `prohibit` rule, no route.
    Unreachable(String),
    /// No answer to the SYN within the connect timeout: packets dropped.
    Timeout,
    /// Anything else (the OS error text).
    Other(String),
}

/// Classifies a connect error by its kind (and raw OS error where the kind is generic).
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use eks_pod_identity_doctor::check::http::{classify_connect_error, ConnectFailure};
/// assert_eq!(classify_connect_error(&Error::from(ErrorKind::ConnectionRefused)), ConnectFailure::Refused);
/// assert_eq!(classify_connect_error(&Error::from(ErrorKind::TimedOut)), ConnectFailure::Timeout);
/// ```
pub fn classify_connect_error(e: &io::Error) -> ConnectFailure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
        io::ErrorKind::TimedOut => ConnectFailure::Timeout,
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::PermissionDenied
        | io::ErrorKind::AddrNotAvailable => ConnectFailure::Unreachable(e.to_string()),
        _ => match e.raw_os_error() {
            // Linux: ENETUNREACH, EHOSTUNREACH, EACCES, EPERM, EADDRNOTAVAIL.
            Some(101 | 113 | 13 | 1 | 99) => ConnectFailure::Unreachable(e.to_string()),
            Some(111) => ConnectFailure::Refused,
            Some(110) => ConnectFailure::Timeout,
            _ => ConnectFailure::Other(e.to_string()),
        },
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The TCP connect failed.
    Connect(ConnectFailure),
    /// Connected, request sent, no (complete) response before the deadline.
    NoAnswer,
    /// Connected, but the peer closed the connection without an HTTP response.
    Closed,
    /// The response is not HTTP/1.x.
    Malformed(String),
    /// The host name did not resolve, or resolved to nothing usable.
    Resolve(String),
    /// Another I/O error after connecting.
    Io(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(ConnectFailure::Refused) => f.write_str("connection refused"),
            HttpError::Connect(ConnectFailure::Unreachable(e)) => write!(f, "unreachable: {e}"),
            HttpError::Connect(ConnectFailure::Timeout) => f.write_str("connect timed out"),
            HttpError::Connect(ConnectFailure::Other(e)) => write!(f, "connect failed: {e}"),
            HttpError::NoAnswer => f.write_str("connected, but no answer before the deadline"),
            HttpError::Closed => f.write_str("connection closed without a response"),
            HttpError::Malformed(e) => write!(f, "malformed response: {e}"),
            HttpError::Resolve(e) => write!(f, "cannot resolve host: {e}"),
            HttpError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// Body (lossy UTF-8, at most [`MAX_BODY_BYTES`] bytes).
    pub body: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where to send requests: the socket addresses and the `Host` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Addresses to try, in order (the first that connects is used).
    pub addrs: Vec<SocketAddr>,
    /// `Host` header value (`host[:port]`, IPv6 bracketed).
    pub authority: String,
}

impl Target {
    /// Resolves the host of an `http://` URL (names through the system resolver).
    ///
    /// # Errors
    ///
    /// [`HttpError::Resolve`] when the URL has no host or the name does not resolve.
    pub async fn from_url(url: &Url) -> Result<Target, HttpError> {
        let port = url.port_or_known_default().unwrap_or(80);
        let (addrs, host) = match url.host() {
            Some(Host::Ipv4(ip)) => (vec![SocketAddr::from((ip, port))], ip.to_string()),
            Some(Host::Ipv6(ip)) => (vec![SocketAddr::from((ip, port))], format!("[{ip}]")),
            Some(Host::Domain(d)) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((d, port))
                    .await
                    .map_err(|e| HttpError::Resolve(format!("{d}: {e}")))?
                    .collect();
                if addrs.is_empty() {
                    return Err(HttpError::Resolve(format!("{d}: no addresses")));
                }
                (addrs, d.to_owned())
            }
            None => return Err(HttpError::Resolve("URL has no host".into())),
        };
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        Ok(Target { addrs, authority })
    }
}

/// Connects to the first address of `target` that accepts within `connect_timeout` each.
///
/// # Errors
///
/// [`HttpError::Connect`] with the last address's failure (refused,
/// unreachable, timeout, ...) when none accepts.
pub async fn connect(target: &Target, connect_timeout: Duration) -> Result<TcpStream, HttpError> {
    let mut last = HttpError::Resolve("no addresses".into());
    for addr in &target.addrs {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = HttpError::Connect(classify_connect_error(&e)),
            Err(_) => last = HttpError::Connect(ConnectFailure::Timeout),
        }
    }
    Err(last)
}

/// Sends one request on a fresh connection and reads the response before `deadline`.
///
/// # Errors
///
/// [`HttpError::Connect`] when no address accepts, [`HttpError::NoAnswer`]
/// when the peer accepted but sent no complete response before `deadline`,
/// and the other [`HttpError`] variants for a broken or malformed response.
pub async fn request(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<Response, HttpError> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let mut stream = connect(target, connect_timeout.min(budget)).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pod-identity-doctor/{}\r\nAccept: */*\r\nConnection: close\r\n",
        target.authority,
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    if method == "PUT" || method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    match timeout_at(deadline, async {
        stream.write_all(req.as_bytes()).await?;
        read_response(&mut stream).await
    })
    .await
    {
        Err(_) => Err(HttpError::NoAnswer),
        Ok(Err(ReadError::Io(e))) => Err(HttpError::Io(e.to_string())),
        Ok(Err(ReadError::Closed)) => Err(HttpError::Closed),
        Ok(Err(ReadError::Malformed(m))) => Err(HttpError::Malformed(m)),
        Ok(Ok(r)) => Ok(r),
    }
}

enum ReadError {
    Io(io::Error),
    Closed,
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

async fn read_response(stream: &mut TcpStream) -> Result<Response, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 16 * 1024 {
            return Err(ReadError::Malformed(
                "response head larger than 16 KiB".into(),
            ));
        }
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Malformed("connection closed inside the response head".into())
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed(format!(
            "not an HTTP/1.x status line: {:?}",
            status_line.chars().take(40).collect::<String>()
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ReadError::Malformed(format!("bad status line: {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length: Option<usize> = get("content-length").and_then(|v| v.parse().ok());
    if status == 204 || status == 304 || (100..200).contains(&status) {
        body.clear();
    } else if chunked {
        body = read_chunked(stream, body).await?;
    } else if let Some(len) = length {
        let want = len.min(MAX_BODY_BYTES);
        while body.len() < want {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(want);
    } else {
        while body.len() < MAX_BODY_BYTES {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(MAX_BODY_BYTES);
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn read_chunked(stream: &mut TcpStream, mut raw: Vec<u8>) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    loop {
        // Make sure a size line is buffered.
        let line_end = loop {
            if let Some(i) = find(&raw, b"\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(out);
            }
            raw.extend_from_slice(&chunk[..n]);
        };
        let size_text = String::from_utf8_lossy(&raw[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ReadError::Malformed(format!("bad chunk size {size_text:?}")))?;
        raw.drain(..line_end + 2);
        if size == 0 || out.len() >= MAX_BODY_BYTES {
            out.truncate(MAX_BODY_BYTES);
            return Ok(out);
        }
        while raw.len() < size + 2 {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                out.extend_from_slice(&raw[..raw.len().min(size)]);
                return Ok(out);
            }
            raw.extend_from_slice(&chunk[..n]);
        }
        out.extend_from_slice(&raw[..size]);
        raw.drain(..size + 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn connect_errors_are_classified_by_kind_and_errno() {
        // A DROP rule cannot be produced on loopback; the emulated EKS node
        // (testkit netns, `ip rule ... blackhole`) exercises it on real packets.
        assert_eq!(
            classify_connect_error(&Error::from(ErrorKind::TimedOut)),
            ConnectFailure::Timeout
        );
        assert_eq!(
            classify_connect_error(&Error::from_raw_os_error(110)),
            ConnectFailure::Timeout
        );
        assert_eq!(
            classify_connect_error(&Error::from_raw_os_error(111)),
            ConnectFailure::Refused
        );
        for errno in [101, 113, 13] {
            assert!(
                matches!(
                    classify_connect_error(&Error::from_raw_os_error(errno)),
                    ConnectFailure::Unreachable(_)
                ),
                "{errno}"
            );
        }
        assert!(matches!(
            classify_connect_error(&Error::other("weird")),
            ConnectFailure::Other(_)
        ));
    }
}
