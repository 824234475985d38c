//! [`ClosedPort`]: a loopback port that refuses connections, held by the test.
//!
//! "Bind port 0, read the port, close the listener" leaves a window in which
//! another test (or process) can take the port, and a test that expected
//! "connection refused" then talks to someone else's server. A TCP socket that is
//! bound but never listens keeps the port reserved and still answers every
//! connection attempt with a RST, i.e. `ECONNREFUSED`.
//!
//! ```
//! use eks_pod_identity_testkit::port::ClosedPort;
//! let closed = ClosedPort::v4().unwrap();
//! assert!(closed.url().starts_with("http://127.0.0.1:"));
//! let err = std::net::TcpStream::connect(closed.addr()).unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// A reserved loopback port nothing listens on. The port stays reserved (and
/// refusing) until this is dropped.
#[derive(Debug)]
pub struct ClosedPort {
    _socket: Socket,
    addr: SocketAddr,
    url: String,
}

impl ClosedPort {
    /// A port on 127.0.0.1.
    pub fn v4() -> std::io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| std::io::Error::other("bound socket has no IP address"))?;
        Ok(ClosedPort {
            _socket: socket,
            addr,
            url: format!("http://{addr}"),
        })
    }

    /// The address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl std::ops::Deref for ClosedPort {
    type Target = str;

    /// The URL, so a `&ClosedPort` can be passed where an endpoint `&str` is expected.
    fn deref(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_stays_reserved_and_refusing() {
        let closed = ClosedPort::v4().unwrap();
        for _ in 0..3 {
            let e = std::net::TcpStream::connect(closed.addr()).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        // Nobody else can take it while it is held.
        let e = std::net::TcpListener::bind(closed.addr()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }
}
