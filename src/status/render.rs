//! The figures as plain text, JSON and OpenMetrics, from one table of
//! metric families, so that the three formats say the same thing under
//! the same sample names.

use std::fmt::Write as _;

use super::StatusFormat;
use crate::observe::metrics::{Histogram, Metrics, WorkerState, WorkerStatus};

/// What kind of metric a family is, in OpenMetrics' terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
    StateSet,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
            Kind::StateSet => "stateset",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Value {
    Int(u64),
    Float(f64),
    /// Not known (OpenMetrics `NaN`, JSON `null`).
    Unknown,
}

#[derive(Debug)]
struct Sample {
    /// Appended to the family's name: `_total`, `_bucket`, ...
    suffix: &'static str,
    labels: Vec<(&'static str, String)>,
    value: Value,
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    samples: Vec<Sample>,
}

fn sample(suffix: &'static str, value: Value) -> Sample {
    Sample {
        suffix,
        labels: Vec::new(),
        value,
    }
}

/// A family of one sample.
fn single(name: &'static str, kind: Kind, help: &'static str, value: Value) -> Family {
    let suffix = if kind == Kind::Counter { "_total" } else { "" };
    Family {
        name,
        kind,
        help,
        samples: vec![sample(suffix, value)],
    }
}

/// A counter with one label, a sample per value of it.
fn labelled(
    (name, help): (&'static str, &'static str),
    label: &'static str,
    values: &[(&str, u64)],
) -> Family {
    let samples = values
        .iter()
        .map(|&(v, n)| Sample {
            suffix: "_total",
            labels: vec![(label, v.to_owned())],
            value: Value::Int(n),
        })
        .collect();
    Family {
        name,
        kind: Kind::Counter,
        help,
        samples,
    }
}

/// The histogram's samples: cumulative buckets, sum, count.
fn histogram(name: &'static str, help: &'static str, h: &Histogram) -> Family {
    let mut samples = Vec::with_capacity(h.counts.len() + 2);
    let mut cumulative = 0;
    for (i, n) in h.counts.iter().enumerate() {
        cumulative += n;
        let le = h
            .bounds
            .get(i)
            .map_or("+Inf".to_owned(), |b| format!("{b:?}"));
        samples.push(Sample {
            suffix: "_bucket",
            labels: vec![("le", le)],
            value: Value::Int(cumulative),
        });
    }
    samples.push(sample("_sum", Value::Float(h.sum_seconds)));
    samples.push(sample("_count", Value::Int(h.count)));
    Family {
        name,
        kind: Kind::Histogram,
        help,
        samples,
    }
}

/// How to read one figure.
type Read = fn(&Metrics) -> Value;

/// The families of one unlabelled sample: name, kind, help, figure.
const SINGLE: [(&str, Kind, &str, Read); 14] = [
    (
        "fcgi_start_time_seconds",
        Kind::Gauge,
        "When the server started, in seconds since the Unix epoch.",
        |m| Value::Float(m.start_time_seconds),
    ),
    (
        "fcgi_generation",
        Kind::Gauge,
        "How many hand-overs to a new process led to this one.",
        |m| Value::Int(m.generation),
    ),
    (
        "fcgi_workers_max",
        Kind::Gauge,
        "The most workers the pool may start.",
        |m| Value::Int(m.workers_max),
    ),
    (
        "fcgi_workers_started",
        Kind::Gauge,
        "Workers started so far.",
        |m| Value::Int(m.workers_started),
    ),
    (
        "fcgi_workers_busy",
        Kind::Gauge,
        "Workers serving a connection now.",
        |m| Value::Int(m.workers_busy),
    ),
    (
        "fcgi_connections_accepted",
        Kind::Counter,
        "Connections accepted.",
        |m| Value::Int(m.connections_accepted),
    ),
    (
        "fcgi_connections_open",
        Kind::Gauge,
        "Connections open now, served or kept open.",
        |m| Value::Int(m.connections_open),
    ),
    (
        "fcgi_requests",
        Kind::Counter,
        "Requests handed to the handler.",
        |m| Value::Int(m.requests),
    ),
    (
        "fcgi_handler_panics",
        Kind::Counter,
        "Handlers that panicked.",
        |m| Value::Int(m.handler_panics),
    ),
    (
        "fcgi_handler_errors",
        Kind::Counter,
        "Handlers that returned an error.",
        |m| Value::Int(m.handler_errors),
    ),
    (
        "fcgi_requests_aborted",
        Kind::Counter,
        "Requests the web server aborted.",
        |m| Value::Int(m.requests_aborted),
    ),
    (
        "fcgi_protocol_errors",
        Kind::Counter,
        "Connections closed for breaking the protocol.",
        |m| Value::Int(m.protocol_errors),
    ),
    (
        "fcgi_limit_rejections",
        Kind::Counter,
        "Requests refused for going over a limit.",
        |m| Value::Int(m.limit_rejections),
    ),
    (
        "fcgi_slow_requests",
        Kind::Counter,
        "Requests that ran past the slow-request threshold.",
        |m| Value::Int(m.slow_requests),
    ),
];

/// The server-wide families, in the order every format gives them.
fn families(m: &Metrics) -> Vec<Family> {
    let mut all: Vec<Family> = SINGLE
        .iter()
        .map(|&(name, kind, help, read)| single(name, kind, help, read(m)))
        .collect();
    let (r, t) = (m.responses, m.timeouts);
    let classes = [
        ("1xx", r[0]),
        ("2xx", r[1]),
        ("3xx", r[2]),
        ("4xx", r[3]),
        ("5xx", r[4]),
    ];
    all.push(labelled(
        ("fcgi_responses", "Responses by status class."),
        "class",
        &classes,
    ));
    let kinds = [
        ("read", t.read),
        ("write", t.write),
        ("idle", t.idle),
        ("request", t.request),
    ];
    all.push(labelled(
        ("fcgi_timeouts", "Connections closed at a timeout, by kind."),
        "kind",
        &kinds,
    ));
    let help = "Request durations, from params complete to response handed over.";
    all.push(histogram(
        "fcgi_request_duration_seconds",
        help,
        &m.request_duration,
    ));
    let listen = m.listen_queue.map_or(Value::Unknown, Value::Int);
    let help = "Connections waiting in the kernel's accept queue.";
    all.push(single("fcgi_listen_queue", Kind::Gauge, help, listen));
    all
}

/// The per-worker families (OpenMetrics; the other formats list workers).
fn worker_families(workers: &[WorkerStatus]) -> Vec<Family> {
    let family = |name, kind, help, samples| Family {
        name,
        kind,
        help,
        samples,
    };
    vec![
        family(
            "fcgi_worker_state",
            Kind::StateSet,
            "What each worker is doing.",
            states(workers),
        ),
        family(
            "fcgi_worker_requests",
            Kind::Counter,
            "Requests each worker has been handed.",
            served(workers),
        ),
        family(
            "fcgi_worker_request_elapsed_seconds",
            Kind::Gauge,
            "How long each worker's current request has run.",
            elapsed(workers),
        ),
    ]
}

fn worker_label(w: &WorkerStatus) -> (&'static str, String) {
    ("worker", w.worker.to_string())
}

/// A stateset: one sample per worker and state, 1 for the state it is in.
fn states(workers: &[WorkerStatus]) -> Vec<Sample> {
    use WorkerState::*;
    let states = [Idle, Reading, Handler, Writing];
    let each = |w: &WorkerStatus, s: WorkerState| Sample {
        suffix: "",
        labels: vec![worker_label(w), ("fcgi_worker_state", s.name().to_owned())],
        value: Value::Int(u64::from(w.state == s)),
    };
    workers
        .iter()
        .flat_map(|w| states.map(|s| each(w, s)))
        .collect()
}

fn served(workers: &[WorkerStatus]) -> Vec<Sample> {
    let each = |w: &WorkerStatus| Sample {
        suffix: "_total",
        labels: vec![worker_label(w)],
        value: Value::Int(w.requests),
    };
    workers.iter().map(each).collect()
}

/// The requests in flight, with their method and URI as labels.
fn elapsed(workers: &[WorkerStatus]) -> Vec<Sample> {
    let each = |w: &WorkerStatus| {
        let c = w.current.as_ref()?;
        let labels = vec![
            worker_label(w),
            ("method", c.method.clone()),
            ("uri", c.uri.clone()),
        ];
        Some(Sample {
            suffix: "",
            labels,
            value: Value::Float(c.elapsed.as_secs_f64()),
        })
    };
    workers.iter().filter_map(each).collect()
}

impl Metrics {
    /// The figures as the status page gives them in `format`; `full` adds
    /// one entry per worker (its state, requests served, and the current
    /// request's method, URI and elapsed time).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use fcgi_server::StatusFormat;
    /// # let server = fcgi_server::Server::new(|_req, _res| Ok(()));
    /// let metrics = server.metrics_handle();
    /// // ... later, in a program's own /metrics endpoint:
    /// let text = metrics.snapshot().render(StatusFormat::OpenMetrics, false);
    /// assert!(text.ends_with("# EOF\n"));
    /// ```
    pub fn render(&self, format: StatusFormat, full: bool) -> String {
        match format {
            StatusFormat::Text => text(self, full),
            StatusFormat::Json => json(self, full),
            StatusFormat::OpenMetrics => openmetrics(self, full),
        }
    }
}

/// A number as the formats write it.
fn number(out: &mut String, v: Value, unknown: &str) {
    let _ = match v {
        Value::Int(n) => write!(out, "{n}"),
        Value::Float(f) if f.is_finite() => write!(out, "{f:?}"),
        Value::Float(_) | Value::Unknown => write!(out, "{unknown}"),
    };
}

/// `{a="x",b="y"}`, label values escaped as OpenMetrics asks (the text
/// format writes them the same way).
fn labels(out: &mut String, labels: &[(&str, String)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(out, "{}{k}=\"{v}\"", if i > 0 { "," } else { "" });
    }
    out.push('}');
}

fn openmetrics(m: &Metrics, full: bool) -> String {
    let mut out = String::with_capacity(4096);
    let mut all = families(m);
    if full {
        all.extend(worker_families(&m.workers));
    }
    for f in &all {
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        for s in &f.samples {
            out.push_str(f.name);
            out.push_str(s.suffix);
            labels(&mut out, &s.labels);
            out.push(' ');
            number(&mut out, s.value, "NaN");
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

fn text(m: &Metrics, full: bool) -> String {
    let mut out = String::with_capacity(4096);
    for f in families(m) {
        for s in &f.samples {
            let mut name = format!("{}{}", f.name, s.suffix);
            labels(&mut name, &s.labels);
            let _ = write!(out, "{name:<52} ");
            number(&mut out, s.value, "NaN");
            out.push('\n');
        }
    }
    if full {
        worker_table(&mut out, &m.workers);
    }
    out
}

/// The workers as a table, for the text format.
fn worker_table(out: &mut String, workers: &[WorkerStatus]) {
    let _ = writeln!(
        out,
        "\n{:<7} {:<8} {:>9} {:>10} {:<7} uri",
        "worker", "state", "requests", "elapsed_s", "method"
    );
    for w in workers {
        let (method, uri, elapsed) = match &w.current {
            Some(c) => (
                c.method.as_str(),
                c.uri.as_str(),
                format!("{:.3}", c.elapsed.as_secs_f64()),
            ),
            None => ("-", "-", "-".to_owned()),
        };
        let uri = uri.escape_debug();
        let _ = writeln!(
            out,
            "{:<7} {:<8} {:>9} {elapsed:>10} {method:<7} {uri}",
            w.worker,
            w.state.name(),
            w.requests
        );
    }
}

/// `s` as a JSON string.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json(m: &Metrics, full: bool) -> String {
    let mut out = String::with_capacity(2048);
    out.push('{');
    for (i, f) in families(m).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_family(&mut out, f);
    }
    if full {
        out.push_str(",\"workers\":[");
        for (i, w) in m.workers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_worker(&mut out, w);
        }
        out.push(']');
    }
    out.push_str("}\n");
    out
}

/// A family as JSON members: `"sample": value`, or for a labelled one
/// `"sample": {"label value": value, ...}`; a histogram as
/// `"name": {"buckets": {le: cumulative count}, "sum": s, "count": n}`.
fn json_family(out: &mut String, f: &Family) {
    let first = &f.samples[0];
    if f.kind == Kind::Histogram {
        let _ = write!(out, "\"{}\":{{\"buckets\":{{", f.name);
        json_labelled(out, f.samples.iter().filter(|s| s.suffix == "_bucket"));
        for s in f.samples.iter().filter(|s| s.suffix != "_bucket") {
            let _ = write!(out, ",\"{}\":", &s.suffix[1..]);
            number(out, s.value, "null");
        }
        out.push('}');
    } else if first.labels.is_empty() {
        let _ = write!(out, "\"{}{}\":", f.name, first.suffix);
        number(out, first.value, "null");
    } else {
        let _ = write!(out, "\"{}{}\":{{", f.name, first.suffix);
        json_labelled(out, f.samples.iter());
    }
}

/// `"label value": value, ...}` for samples with one label.
fn json_labelled<'s>(out: &mut String, samples: impl Iterator<Item = &'s Sample>) {
    for (i, s) in samples.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, &s.labels[0].1);
        out.push(':');
        number(out, s.value, "null");
    }
    out.push('}');
}

fn json_worker(out: &mut String, w: &WorkerStatus) {
    let _ = write!(
        out,
        "{{\"worker\":{},\"state\":\"{}\",\"requests\":{}",
        w.worker,
        w.state.name(),
        w.requests
    );
    match &w.current {
        Some(c) => {
            out.push_str(",\"method\":");
            json_str(out, &c.method);
            out.push_str(",\"uri\":");
            json_str(out, &c.uri);
            let _ = write!(out, ",\"elapsed_seconds\":{:?}}}", c.elapsed.as_secs_f64());
        }
        None => out.push_str(",\"method\":null,\"uri\":null,\"elapsed_seconds\":null}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::metrics::CurrentRequest;
    use std::time::Duration;

    fn figures() -> Metrics {
        let mut m = crate::observe::metrics::Registry::new().snapshot(None);
        m.requests = 7;
        m.responses = [0, 5, 0, 1, 1];
        m.request_duration.counts[0] = 3;
        m.request_duration.counts[16] = 4;
        m.request_duration.count = 7;
        m.workers.push(WorkerStatus {
            worker: 0,
            state: WorkerState::Handler,
            requests: 7,
            current: Some(CurrentRequest {
                method: "GET".into(),
                uri: "/a\"b\\c".into(),
                elapsed: Duration::from_millis(1500),
            }),
        });
        m
    }

    #[test]
    fn openmetrics_names_and_shape() {
        let text = figures().render(StatusFormat::OpenMetrics, true);
        for line in [
            "# TYPE fcgi_requests counter",
            "fcgi_requests_total 7",
            "fcgi_responses_total{class=\"4xx\"} 1",
            "fcgi_request_duration_seconds_bucket{le=\"0.0005\"} 3",
            "fcgi_request_duration_seconds_bucket{le=\"60.0\"} 3",
            "fcgi_request_duration_seconds_bucket{le=\"+Inf\"} 7",
            "fcgi_request_duration_seconds_count 7",
            "fcgi_listen_queue NaN",
            "fcgi_worker_state{worker=\"0\",fcgi_worker_state=\"handler\"} 1",
            "fcgi_worker_request_elapsed_seconds{worker=\"0\",method=\"GET\",uri=\"/a\\\"b\\\\c\"} 1.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("\n# EOF\n"));
    }

    #[test]
    fn json_keys_are_sample_names() {
        let text = figures().render(StatusFormat::Json, true);
        for part in [
            "\"fcgi_requests_total\":7",
            "\"fcgi_responses_total\":{\"1xx\":0,\"2xx\":5,\"3xx\":0,\"4xx\":1,\"5xx\":1}",
            "\"fcgi_request_duration_seconds\":{\"buckets\":{\"0.0005\":3,",
            "\"+Inf\":7},\"sum\":0.0,\"count\":7}",
            "\"fcgi_listen_queue\":null",
            "\"uri\":\"/a\\\"b\\\\c\",\"elapsed_seconds\":1.5}",
        ] {
            assert!(text.contains(part), "{part} missing:\n{text}");
        }
    }

    #[test]
    fn text_lines_and_worker_table() {
        let text = figures().render(StatusFormat::Text, true);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::trim))
        };
        assert_eq!(value("fcgi_requests_total"), Some("7"));
        assert_eq!(value("fcgi_responses_total{class=\"2xx\"}"), Some("5"));
        assert!(text.contains("handler"), "{text}");
        assert!(text.contains("1.500"), "{text}");
    }
}
