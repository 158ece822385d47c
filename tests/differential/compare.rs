//! Answer against answer: every difference that carries meaning, named
//! by what differs.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::time::Duration;

use super::wire::{Answer, Framing};

/// Headers that describe the connection or the moment, not the answer.
const SET_ASIDE: &[&str] = &["date", "server", "connection", "keep-alive"];

/// One way two answers differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// `status`, `reason`, `framing`, `body`, `events`, `timing`, or
    /// `header NAME`.
    pub aspect: String,
    pub native: String,
    pub fcgi: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:\n      native: {}\n      fastcgi: {}",
            self.aspect, self.native, self.fcgi
        )
    }
}

/// Whether a body that is an event stream arrived piece by piece: its
/// first byte at least this long before its last (the application sends
/// four events 150 ms apart).
const SPREAD: Duration = Duration::from_millis(250);

/// How a body arrived: `incremental` (over `SPREAD` from first to last
/// byte) or `at once`.
pub fn timing(a: &Answer) -> &'static str {
    match (a.arrivals.first(), a.arrivals.last()) {
        (Some(first), Some(last)) if *last - *first >= SPREAD => "incremental",
        _ => "at once",
    }
}

/// The events of a `text/event-stream` body, one string each.
fn events(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_event_stream(a: &Answer) -> bool {
    a.headers
        .iter()
        .any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream"))
}

/// The length of gzip bytes, which depends on timing (see [`decoded`]).
const GZIP_LENGTH: &str = "(the length of the gzip bytes)";

/// Each header's values in order, set-aside ones left out.
fn header_map(a: &Answer) -> BTreeMap<&str, Vec<&str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, v) in &a.headers {
        if SET_ASIDE.contains(&n.as_str()) {
            continue;
        }
        let v = if n == "content-length" && is_gzip(a) {
            GZIP_LENGTH
        } else {
            v
        };
        map.entry(n).or_default().push(v);
    }
    map
}

fn is_gzip(a: &Answer) -> bool {
    a.headers
        .iter()
        .any(|(n, v)| n == "content-encoding" && v == "gzip")
}

fn framing_text(a: &Answer) -> String {
    match a.framing {
        Framing::Length(_) if is_gzip(a) => format!("content-length {GZIP_LENGTH}"),
        Framing::Length(n) => format!("content-length {n}"),
        Framing::Chunked => "chunked".into(),
        Framing::Close => "close-delimited".into(),
        Framing::NoBody => "no body".into(),
    }
}

/// Where two bodies part, shown briefly.
fn body_text(body: &[u8], at: usize) -> String {
    let from = at.saturating_sub(20);
    let to = (at + 40).min(body.len());
    format!(
        "{} bytes, at {at}: {:?}",
        body.len(),
        String::from_utf8_lossy(&body[from.min(to)..to])
    )
}

/// The body, gunzipped when it is gzip-encoded: the encoder flushes
/// whenever its source has nothing ready, so the encoded bytes depend on
/// timing (they differ between two native answers too); what they decode
/// to does not. A body that does not decode stays as it is.
fn decoded(a: &Answer) -> Vec<u8> {
    if !is_gzip(a) || a.body.is_empty() {
        return a.body.clone();
    }
    let mut out = Vec::new();
    match flate2::read::GzDecoder::new(&a.body[..]).read_to_end(&mut out) {
        Ok(_) => out,
        Err(_) => a.body.clone(),
    }
}

/// Every difference between the native answer and the FastCGI one.
pub fn differences(native: &Answer, fcgi: &Answer) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut note = |aspect: &str, n: String, f: String| {
        if n != f {
            out.push(Difference {
                aspect: aspect.to_owned(),
                native: n,
                fcgi: f,
            });
        }
    };
    note("status", native.status.to_string(), fcgi.status.to_string());
    note("reason", native.reason.clone(), fcgi.reason.clone());
    let (hn, hf) = (header_map(native), header_map(fcgi));
    let names: std::collections::BTreeSet<&str> = hn.keys().chain(hf.keys()).copied().collect();
    for name in names {
        let show = |m: &BTreeMap<&str, Vec<&str>>| match m.get(name) {
            None => "(absent)".to_owned(),
            Some(v) => format!("{v:?}"),
        };
        note(&format!("header {name}"), show(&hn), show(&hf));
    }
    note("framing", framing_text(native), framing_text(fcgi));
    let (bn, bf) = (decoded(native), decoded(fcgi));
    if bn != bf {
        let at = bn
            .iter()
            .zip(&bf)
            .position(|(a, b)| a != b)
            .unwrap_or(bn.len().min(bf.len()));
        note("body", body_text(&bn, at), body_text(&bf, at));
    }
    if is_event_stream(native) || is_event_stream(fcgi) {
        let show = |a: &Answer| format!("{:?}", events(&a.body));
        note("events", show(native), show(fcgi));
        note("timing", timing(native).into(), timing(fcgi).into());
    }
    out
}
