//! Proof that a run was made on a quiet machine, measured inside the run.
//!
//! Nanosecond figures from a shared 2-vCPU VM mean nothing unless the run
//! shows what the machine was doing meanwhile. Every bench calls
//! [`Quiet::begin`] before measuring and [`Quiet::end`] after, which prints:
//!
//! * the *floor*: an `ArcSwap::load_full` (load + `Arc` clone + drop) in a
//!   single-threaded loop, in this process, before and after the run. On an
//!   idle modern core it costs about 10 ns; a run whose floor exceeds
//!   [`floor_limit_ns`] (3 × that by default, `BENCH_FLOOR_LIMIT_NS` to change
//!   it) was slowed by something outside the bench and is flagged;
//! * CPU steal (hypervisor), from `/proc/stat`, over the run;
//! * cgroup CPU throttling (`nr_throttled`, throttled time) from `cpu.stat`
//!   (cgroup v2 or v1), over the run;
//! * CPU used by *other* processes over the run: all CPUs' busy time from
//!   `/proc/stat` minus this process's own (`/proc/self/stat`).
//!
//! The verdict is one line, `QUIET <bench> verdict=quiet` or
//! `verdict=NOT-QUIET(reasons)`, so a recorded run cannot hide a noisy machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

/// Steal above this share of all CPU time flags the run.
const STEAL_LIMIT_PCT: f64 = 1.0;
/// Other processes using more than this many cores on average flag the run
/// (a shell, an editor, the kernel's own threads stay well below).
const OTHERS_LIMIT_CORES: f64 = 0.10;
/// `USER_HZ`: the unit of `/proc/stat` and `/proc/self/stat` (100 on Linux).
const USER_HZ: f64 = 100.0;

/// The floor above which a run is flagged, in ns per `load_full`.
pub fn floor_limit_ns() -> f64 {
    std::env::var("BENCH_FLOOR_LIMIT_NS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30.0)
}

/// Median ns of one `ArcSwap::load_full` (+ drop) over 7 single-threaded
/// batches of 1 M, in this process.
pub fn floor_ns() -> f64 {
    let swap = ArcSwap::from_pointee(String::from("floor"));
    let mut samples = Vec::with_capacity(7);
    for _ in 0..7 {
        let n = 1_000_000u32;
        let start = Instant::now();
        for _ in 0..n {
            black_box(swap.load_full());
        }
        samples.push(start.elapsed().as_nanos() as f64 / f64::from(n));
    }
    super::median(&samples)
}

#[derive(Debug, Clone, Copy, Default)]
struct ProcStat {
    /// Jiffies, all CPUs.
    total: u64,
    idle: u64,
    steal: u64,
}

fn proc_stat() -> Option<ProcStat> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice;
    // guest time is already counted in user.
    let total = v.iter().take(8).sum();
    Some(ProcStat {
        total,
        idle: v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0),
        steal: v.get(7).copied().unwrap_or(0),
    })
}

/// This process's user + system jiffies (all threads), plus those of its
/// children already waited for (benches that run scenarios in child processes).
fn self_jiffies() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime, stime, cutime, cstime = fields 14–17.
    let mut sum = 0;
    for i in 11..=14 {
        sum += f.get(i)?.parse::<u64>().ok()?;
    }
    Some(sum)
}

#[derive(Debug, Clone, Copy, Default)]
struct Throttle {
    nr_throttled: u64,
    throttled_us: u64,
}

/// The first readable `cpu.stat` with throttling counters: cgroup v2 (this
/// process's own group, then the root), then v1.
fn throttle() -> Option<(Throttle, String)> {
    let mut candidates = Vec::new();
    if let Ok(cg) = std::fs::read_to_string("/proc/self/cgroup") {
        for line in cg.lines() {
            if let Some(path) = line.strip_prefix("0::") {
                candidates.push(format!(
                    "/sys/fs/cgroup{}/cpu.stat",
                    path.trim_end_matches('/')
                ));
            }
        }
    }
    candidates.push("/sys/fs/cgroup/cpu.stat".into());
    candidates.push("/sys/fs/cgroup/cpu/cpu.stat".into());
    candidates.push("/sys/fs/cgroup/cpu,cpuacct/cpu.stat".into());
    for path in candidates {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut t = Throttle::default();
        let mut found = false;
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse::<u64>().ok()))
            else {
                continue;
            };
            match k {
                "nr_throttled" => {
                    t.nr_throttled = v;
                    found = true;
                }
                "throttled_usec" => t.throttled_us = v,
                "throttled_time" => t.throttled_us = v / 1000, // v1: ns
                _ => {}
            }
        }
        if found {
            return Some((t, path));
        }
    }
    None
}

struct Snapshot {
    at: Instant,
    stat: Option<ProcStat>,
    own: Option<u64>,
    throttle: Option<(Throttle, String)>,
}

fn snapshot() -> Snapshot {
    Snapshot {
        at: Instant::now(),
        stat: proc_stat(),
        own: self_jiffies(),
        throttle: throttle(),
    }
}

/// What the machine did between two snapshots.
struct Activity {
    steal_pct: Option<f64>,
    others_cores: Option<f64>,
    throttled: Option<(u64, u64, String)>,
    secs: f64,
}

fn activity(a: &Snapshot, b: &Snapshot) -> Activity {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let (steal_pct, others_cores) = match (a.stat, b.stat) {
        (Some(x), Some(y)) => {
            let total = y.total.saturating_sub(x.total) as f64;
            let steal = y.steal.saturating_sub(x.steal) as f64;
            let busy = total - y.idle.saturating_sub(x.idle) as f64 - steal;
            let own = match (a.own, b.own) {
                (Some(p), Some(q)) => q.saturating_sub(p) as f64,
                _ => 0.0,
            };
            let others = ((busy - own).max(0.0) / USER_HZ) / secs.max(1e-9);
            (
                Some(if total > 0.0 {
                    100.0 * steal / total
                } else {
                    0.0
                }),
                Some(others),
            )
        }
        _ => (None, None),
    };
    let throttled = match (&a.throttle, &b.throttle) {
        (Some((x, path)), Some((y, _))) => Some((
            y.nr_throttled.saturating_sub(x.nr_throttled),
            y.throttled_us.saturating_sub(x.throttled_us),
            path.clone(),
        )),
        _ => None,
    };
    Activity {
        steal_pct,
        others_cores,
        throttled,
        secs,
    }
}

/// A bench run's quietness record. [`Quiet::end`] prints the verdict.
pub struct Quiet {
    bench: String,
    floor_before: f64,
    idle_before: Activity,
    start: Snapshot,
}

impl Quiet {
    /// Samples the machine for `1 s` (is anything else running?), measures
    /// the floor, and starts counting.
    pub fn begin(bench: &str) -> Quiet {
        let a = snapshot();
        std::thread::sleep(Duration::from_secs(1));
        let b = snapshot();
        let idle_before = activity(&a, &b);
        let floor_before = floor_ns();
        eprintln!(
            "{bench}: floor {floor_before:.1} ns/load_full before the run (limit {:.0} ns)",
            floor_limit_ns()
        );
        Quiet {
            bench: bench.to_owned(),
            floor_before,
            idle_before,
            start: snapshot(),
        }
    }

    /// Measures the floor again and prints the `QUIET` line.
    pub fn end(self) {
        let end = snapshot();
        let run = activity(&self.start, &end);
        let floor_after = floor_ns();
        let limit = floor_limit_ns();
        let mut reasons = Vec::new();
        let floor = self.floor_before.max(floor_after);
        if floor > limit {
            reasons.push(format!("floor {floor:.1} ns > {limit:.0} ns"));
        }
        for (when, a) in [("before", &self.idle_before), ("during", &run)] {
            if let Some(s) = a.steal_pct {
                if s > STEAL_LIMIT_PCT {
                    reasons.push(format!("steal {s:.2} % {when}"));
                }
            }
            if let Some((n, _, _)) = &a.throttled {
                if *n > 0 {
                    reasons.push(format!("cgroup throttled {n}× {when}"));
                }
            }
            if let Some(o) = a.others_cores {
                if o > OTHERS_LIMIT_CORES {
                    reasons.push(format!("other processes used {o:.2} cores {when}"));
                }
            }
        }
        let opt = |x: Option<f64>, d: usize| x.map_or("n/a".to_owned(), |v| format!("{v:.d$}"));
        let (thr_n, thr_us, thr_src) = run.throttled.clone().map_or(
            ("n/a".to_owned(), "n/a".to_owned(), "none".to_owned()),
            |(n, us, p)| (n.to_string(), us.to_string(), p),
        );
        let verdict = if reasons.is_empty() {
            "quiet".to_owned()
        } else {
            format!("NOT-QUIET({})", reasons.join("; "))
        };
        println!(
            "QUIET {} floor_ns_before={:.1} floor_ns_after={:.1} floor_limit_ns={limit:.0} \
             steal_pct={} others_cores_before={} others_cores={} throttled_periods={thr_n} \
             throttled_us={thr_us} cpu_stat={thr_src} run_s={:.1} verdict={verdict}",
            self.bench,
            self.floor_before,
            floor_after,
            opt(run.steal_pct, 3),
            opt(self.idle_before.others_cores, 2),
            opt(run.others_cores, 2),
            run.secs,
        );
    }
}
