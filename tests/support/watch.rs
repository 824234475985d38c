//! The output of `s3_reader --watch`: one JSON line per request on stderr, then
//! a `{"summary": …}` line (see `examples/s3_reader.rs`).

use serde_json::Value;

/// One request of the load loop.
#[derive(Debug, Clone)]
pub struct Request {
    /// 1-based sequence number.
    pub seq: u64,
    /// Whether the S3 call succeeded.
    pub ok: bool,
    /// Expiration of the credentials cached after the call (RFC 3339, as the
    /// provider formats it): identifies the credentials in use.
    pub expiration: Option<String>,
    /// The error, for a failed call.
    pub error: Option<String>,
}

/// The final summary line.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The raw line, for messages.
    pub raw: Value,
    /// Requests made.
    pub requests: u64,
    /// Requests that failed.
    pub failures: u64,
    /// Calls that had to wait for a credential fetch (provider's `status().waits`).
    pub callers_waited: u64,
}

/// A whole `--watch` run.
#[derive(Debug, Clone)]
pub struct WatchRun {
    /// Every request line, in order.
    pub requests: Vec<Request>,
    /// The summary.
    pub summary: Summary,
}

impl WatchRun {
    /// Parses `s3_reader --watch` stderr; other lines (logs) are skipped.
    pub fn parse(stderr: &str) -> Result<Self, String> {
        let mut requests = Vec::new();
        let mut summary = None;
        for v in stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            if let Some(s) = v.get("summary") {
                let n = |k: &str| {
                    s[k].as_u64()
                        .ok_or_else(|| format!("summary field {k} missing: {s}"))
                };
                summary = Some(Summary {
                    requests: n("requests")?,
                    failures: n("failures")?,
                    callers_waited: n("callers_waited")?,
                    raw: s.clone(),
                });
            } else if let Some(seq) = v["seq"].as_u64() {
                requests.push(Request {
                    seq,
                    ok: v["ok"]
                        .as_bool()
                        .ok_or_else(|| format!("request line without ok: {v}"))?,
                    expiration: v["expiration"].as_str().map(str::to_owned),
                    error: v["error"].as_str().map(str::to_owned),
                });
            }
        }
        let summary = summary.ok_or("no summary line")?;
        if summary.requests != requests.len() as u64 {
            return Err(format!(
                "summary counts {} requests, {} request lines",
                summary.requests,
                requests.len()
            ));
        }
        Ok(Self { requests, summary })
    }

    /// The credentials used, in order of first use (identified by expiration).
    pub fn credentials_used(&self) -> Vec<String> {
        let mut used: Vec<String> = Vec::new();
        for exp in self.requests.iter().filter_map(|r| r.expiration.as_ref()) {
            if used.last() != Some(exp) && !used.contains(exp) {
                used.push(exp.clone());
            }
        }
        used
    }

    /// The failed requests.
    pub fn failed(&self) -> Vec<&Request> {
        self.requests.iter().filter(|r| !r.ok).collect()
    }
}
