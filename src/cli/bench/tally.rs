//! What `fcgi bench` counts, and how it prints it: throughput, a latency
//! histogram, and every error by kind.

use std::fmt::Write as _;
use std::time::Duration;

/// Sub-buckets per power of two: latencies are kept to about 3%.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Latencies in nanoseconds, log-linear buckets (as HdrHistogram keeps
/// them): recording one is an add, never an allocation.
pub(super) struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Histogram {
    pub(super) fn new() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }

    fn bucket(ns: u64) -> usize {
        if ns < SUB as u64 {
            return ns as usize;
        }
        let k = 63 - ns.leading_zeros();
        let sub = (ns >> (k - SUB_BITS)) as usize & (SUB - 1);
        (k - SUB_BITS + 1) as usize * SUB + sub
    }

    /// The middle of bucket `i`, in nanoseconds.
    fn value(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let k = (i / SUB) as u32 + SUB_BITS - 1;
        let low = (1u64 << k) | ((i % SUB) as u64) << (k - SUB_BITS);
        low + (1u64 << (k - SUB_BITS)) / 2
    }

    pub(super) fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Histogram::bucket(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// The latency below which `p` (0 to 1) of them fall.
    pub(super) fn percentile(&self, p: f64) -> Duration {
        let rank = ((self.total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Histogram::value(i).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }

    pub(super) fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// Counts per power-of-two range of microseconds that holds any.
    fn ranges(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, &c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let us = (Histogram::value(i) / 1000).max(1);
            let floor = 1u64 << (63 - us.leading_zeros());
            match out.last_mut() {
                Some((f, n)) if *f == floor => *n += c,
                _ => out.push((floor, c)),
            }
        }
        out
    }
}

/// Errors, by kind; each failed request is one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Errors {
    /// A connection could not be made.
    pub(super) connect: u64,
    /// The connection closed or was reset before END_REQUEST.
    pub(super) closed: u64,
    /// The answer broke the protocol.
    pub(super) protocol: u64,
    /// No answer within `--timeout`.
    pub(super) timeout: u64,
    /// Complete answers whose status was not 2xx.
    pub(super) status: u64,
}

impl Errors {
    pub(super) fn total(&self) -> u64 {
        self.connect + self.closed + self.protocol + self.timeout + self.status
    }
}

/// Everything counted over a run.
pub(super) struct Tally {
    pub(super) latency: Histogram,
    /// Answers of a 2xx status.
    pub(super) ok: u64,
    pub(super) errors: Errors,
    /// Statuses other than 2xx, with their counts.
    pub(super) statuses: Vec<(u16, u64)>,
    pub(super) body_bytes: u64,
    /// The smallest and largest body of a 2xx answer.
    pub(super) body_range: (u64, u64),
}

impl Tally {
    pub(super) fn new() -> Tally {
        Tally {
            latency: Histogram::new(),
            ok: 0,
            errors: Errors::default(),
            statuses: Vec::new(),
            body_bytes: 0,
            body_range: (u64::MAX, 0),
        }
    }

    /// Counts a complete answer.
    pub(super) fn answer(&mut self, status: u16, body: u64, took: Duration) {
        self.latency.record(took);
        if (200..300).contains(&status) {
            self.ok += 1;
            self.body_bytes += body;
            self.body_range = (self.body_range.0.min(body), self.body_range.1.max(body));
            return;
        }
        self.errors.status += 1;
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.statuses.push((status, 1)),
        }
    }

    /// Requests ended, well or not (connections that could not be made
    /// are not requests).
    pub(super) fn ended(&self) -> u64 {
        self.ok + self.errors.total() - self.errors.connect
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The summary, for people.
pub(super) fn text(t: &Tally, secs: f64) -> String {
    let mut s = String::new();
    let rate = t.ok as f64 / secs;
    let _ = writeln!(
        s,
        "requests   {} answered 2xx in {secs:.2} s: {rate:.0} per second",
        t.ok
    );
    if t.ok > 0 {
        let (lo, hi) = t.body_range;
        let each = if lo == hi {
            format!("{lo} bytes each")
        } else {
            format!("{lo} to {hi} bytes")
        };
        let _ = writeln!(
            s,
            "body       {each}, {:.1} MB/s",
            t.body_bytes as f64 / secs / 1e6
        );
    }
    let l = &t.latency;
    let _ = writeln!(
        s,
        "latency    p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
        us(l.percentile(0.5)),
        us(l.percentile(0.9)),
        us(l.percentile(0.99)),
        us(l.percentile(0.999)),
        us(l.max())
    );
    let all = l.total.max(1) as f64;
    for (floor, n) in l.ranges() {
        let bar = "#".repeat(((n as f64 / all) * 40.0).ceil() as usize);
        let range = format!("{floor}-{} us", floor * 2);
        let _ = writeln!(s, "  {range:>16} {n:>10} {bar}");
    }
    s + &errors_line(t)
}

fn errors_line(t: &Tally) -> String {
    let e = &t.errors;
    let mut s = format!(
        "errors     {}: {} connect, {} closed, {} protocol, {} timeout, {} not 2xx",
        e.total(),
        e.connect,
        e.closed,
        e.protocol,
        e.timeout,
        e.status
    );
    for (status, n) in &t.statuses {
        let _ = write!(s, " ({status}: {n})");
    }
    s.push('\n');
    s
}

/// The summary as one JSON object.
pub(super) fn json(t: &Tally, secs: f64, connections: usize, keep: bool) -> String {
    let l = &t.latency;
    let p = |q| us(l.percentile(q));
    let e = &t.errors;
    let statuses: Vec<String> = t
        .statuses
        .iter()
        .map(|(s, n)| format!("\"{s}\":{n}"))
        .collect();
    let (lo, hi) = if t.ok > 0 { t.body_range } else { (0, 0) };
    format!(
        "{{\"connections\":{connections},\"keep_conn\":{keep},\"seconds\":{secs:.3},\
         \"requests\":{},\"per_second\":{:.1},\"body_bytes\":{},\"body_min\":{lo},\
         \"body_max\":{hi},\"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\
         \"p999\":{:.1},\"max\":{:.1}}},\"errors\":{{\"total\":{},\"connect\":{},\
         \"closed\":{},\"protocol\":{},\"timeout\":{},\"status\":{}}},\"statuses\":{{{}}}}}\n",
        t.ok,
        t.ok as f64 / secs,
        t.body_bytes,
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        us(l.max()),
        e.total(),
        e.connect,
        e.closed,
        e.protocol,
        e.timeout,
        e.status,
        statuses.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_latencies_to_a_few_percent() {
        for ns in [0u64, 1, 15, 16, 17, 1000, 77_777, 5_000_000, u64::MAX / 3] {
            let got = Histogram::value(Histogram::bucket(ns));
            let err = (got as f64 - ns as f64).abs() / (ns.max(1) as f64);
            assert!(err <= 0.035, "{ns}: {got}");
        }
        assert!(Histogram::bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles_come_from_the_counts() {
        let mut h = Histogram::new();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let within = |d: Duration, us: f64| (d.as_secs_f64() * 1e6 - us).abs() / us < 0.04;
        assert!(within(h.percentile(0.5), 50.0), "{:?}", h.percentile(0.5));
        assert!(within(h.percentile(0.99), 99.0), "{:?}", h.percentile(0.99));
        assert_eq!(h.max(), Duration::from_micros(100));
        let total: u64 = h.ranges().iter().map(|r| r.1).sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn statuses_other_than_2xx_are_errors() {
        let mut t = Tally::new();
        t.answer(200, 14, Duration::from_micros(10));
        t.answer(503, 0, Duration::from_micros(10));
        t.answer(503, 0, Duration::from_micros(10));
        assert_eq!((t.ok, t.errors.status, t.ended()), (1, 2, 3));
        assert_eq!(t.statuses, [(503, 2)]);
        assert!(errors_line(&t).contains("2 not 2xx (503: 2)"));
        assert!(json(&t, 1.0, 1, true).contains("\"statuses\":{\"503\":2}"));
    }
}
