//! The `moto_server` process: where it is installed, spawning it on a port of
//! its own choosing, waiting until it answers like moto, and killing it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use super::error::StackError;

/// The running `moto_server`: killed by its own PID, and its log removed, when
/// dropped.
pub(super) struct MotoProcess {
    child: tokio::process::Child,
    log: PathBuf,
}

impl MotoProcess {
    /// The process id (`None` once reaped).
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for MotoProcess {
    fn drop(&mut self) {
        // Our own child, by its PID (tokio's start_kill); kill_on_drop is the backstop.
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A started, answering moto (not seeded yet).
pub(super) struct Running {
    pub(super) process: MotoProcess,
    pub(super) endpoint: String,
    pub(super) addr: SocketAddr,
    pub(super) http: reqwest::Client,
}

/// Locates `moto_server`: `$MOTO_SERVER`, else `<dir>/.venv/bin/moto_server` for the
/// first `dir` walking up from `CARGO_MANIFEST_DIR` (build- and run-time) and from
/// the current directory.
pub fn find_moto_server() -> Result<PathBuf, StackError> {
    if let Some(p) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(StackError::NotFound { tried: vec![p] })
        };
    }
    let mut starts: Vec<PathBuf> = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Some(d) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(d.into());
    }
    if let Ok(d) = std::env::current_dir() {
        starts.push(d);
    }
    let mut tried = Vec::new();
    for start in starts {
        for dir in start.ancestors() {
            let cand = dir.join(".venv/bin/moto_server");
            if cand.is_file() {
                return Ok(cand);
            }
            if dir.join(".git").exists() || dir.join("Cargo.lock").exists() {
                if !tried.contains(&cand) {
                    tried.push(cand);
                }
                break;
            }
        }
    }
    if tried.is_empty() {
        tried.push(PathBuf::from(".venv/bin/moto_server"));
    }
    Err(StackError::NotFound { tried })
}

/// The port in werkzeug's startup line ` * Running on http://127.0.0.1:PORT`
/// (printed once its socket listens; with port 0 it names the port it got).
fn listening_port(log: &str) -> Option<u16> {
    log.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("* Running on http://")?;
        let port = rest.split_whitespace().next()?.rsplit_once(':')?.1;
        port.parse().ok()
    })
}

/// Whether `GET /moto-api/data.json` answered like moto: 200 and a JSON object
/// (its backends' state). Any other server on the port does not pass.
async fn is_moto(http: &reqwest::Client, endpoint: &str) -> bool {
    let Ok(r) = http
        .get(format!("{endpoint}/moto-api/data.json"))
        .timeout(Duration::from_millis(2000))
        .send()
        .await
    else {
        return false;
    };
    if r.status() != reqwest::StatusCode::OK {
        return false;
    }
    r.bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.is_object())
}

static LOG_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub(super) async fn spawn(
    path: &Path,
    host: IpAddr,
    port: u16,
    timeout: Duration,
) -> Result<Running, StackError> {
    let log = std::env::temp_dir().join(format!(
        "eks-pod-identity-moto-{}-{}.log",
        std::process::id(),
        LOG_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let log_file = std::fs::File::create(&log).map_err(|source| StackError::Spawn {
        path: log.clone(),
        source,
    })?;
    let log_err = log_file.try_clone().map_err(|source| StackError::Spawn {
        path: log.clone(),
        source,
    })?;
    let child = tokio::process::Command::new(path)
        .arg("-H")
        .arg(host.to_string())
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StackError::Spawn {
            path: path.to_owned(),
            source,
        })?;
    let mut child = child;
    let deadline = Instant::now() + timeout;
    // moto binds the port itself (0: the kernel picks) and logs it once listening.
    let port = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log_tail = tail(&log);
            let _ = std::fs::remove_file(&log);
            return Err(if log_tail.contains("in use") {
                StackError::Port {
                    host,
                    port,
                    log: log_tail,
                }
            } else {
                StackError::Exited {
                    status: status.to_string(),
                    log: log_tail,
                }
            });
        }
        if let Some(p) = listening_port(&std::fs::read_to_string(&log).unwrap_or_default()) {
            break p;
        }
        if Instant::now() >= deadline {
            let _ = child.start_kill();
            let log_tail = tail(&log);
            let _ = std::fs::remove_file(&log);
            return Err(StackError::NotReady {
                endpoint: format!("{host}:{port} (no startup line yet)"),
                timeout,
                log: log_tail,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let connect_ip = if host.is_unspecified() {
        match host {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        host
    };
    let addr = SocketAddr::new(connect_ip, port);
    let endpoint = match addr {
        SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| StackError::Seed {
            step: "http client".into(),
            detail: e.to_string(),
        })?;
    let mut running = Running {
        process: MotoProcess { child, log },
        endpoint,
        addr,
        http,
    };
    loop {
        if let Ok(Some(status)) = running.process.child.try_wait() {
            return Err(StackError::Exited {
                status: status.to_string(),
                log: tail(&running.process.log),
            });
        }
        if is_moto(&running.http, &running.endpoint).await {
            return Ok(running);
        }
        if Instant::now() >= deadline {
            return Err(StackError::NotReady {
                endpoint: format!("{}/moto-api/data.json", running.endpoint),
                timeout,
                log: tail(&running.process.log),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port_moto_listens_on() {
        let log = "WARNING: This is a development server.\n * Running on http://127.0.0.1:43781\nPress CTRL+C to quit\n";
        assert_eq!(listening_port(log), Some(43781));
        let all = " * Running on all addresses (0.0.0.0)\n * Running on http://127.0.0.1:5123\n * Running on http://10.0.0.5:5123\n";
        assert_eq!(listening_port(all), Some(5123));
        assert_eq!(listening_port("Starting...\n"), None);
    }
}
