//! The pages the server answers itself: the status page (its figures as
//! plain text, JSON or OpenMetrics, with one entry per worker on request)
//! and the ping path.

mod render;

use std::io::{self, Read, Write};

use crate::handler::request::Request;
use crate::handler::response::Response;
use crate::observe::metrics::{Metrics, Page};

/// A format of the status page; see [`Metrics::render`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusFormat {
    /// One `name value` line per sample, then a table of the workers.
    Text,
    /// One JSON object, keyed by sample name.
    Json,
    /// The OpenMetrics 1.0 text format, for Prometheus and its kin.
    OpenMetrics,
}

impl StatusFormat {
    /// The `Content-Type` of a page in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            StatusFormat::Text => "text/plain; charset=utf-8",
            StatusFormat::Json => "application/json",
            StatusFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }
}

/// The format and fullness a status request asks for: `?json`,
/// `?openmetrics` or `?text` in the query (or `Accept:
/// application/openmetrics-text`), and `full` for the workers' entries.
fn choice(query: &str, accept: Option<&str>) -> (StatusFormat, bool) {
    let mut format = None;
    let mut full = false;
    for key in query
        .split('&')
        .map(|kv| kv.split('=').next().unwrap_or(""))
    {
        match key {
            "json" => format = Some(StatusFormat::Json),
            "openmetrics" => format = Some(StatusFormat::OpenMetrics),
            "text" => format = Some(StatusFormat::Text),
            "full" => full = true,
            _ => {}
        }
    }
    let wants_om = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    let fallback = if wants_om {
        StatusFormat::OpenMetrics
    } else {
        StatusFormat::Text
    };
    (format.unwrap_or(fallback), full)
}

/// The most of a status request's body that is read (and dropped).
const BODY_MAX: u64 = 64 * 1024;

/// Answers a status or ping request, with the figures `figures` gives.
pub(crate) fn answer(
    page: Page,
    req: &mut Request<'_>,
    res: &mut Response<'_>,
    figures: impl FnOnce() -> Metrics,
) -> io::Result<()> {
    // Read to the end (a GET's is empty), so that the connection closes
    // without waiting for the rest.
    io::copy(&mut req.take(BODY_MAX), &mut io::sink())?;
    res.header("Cache-Control", "no-store");
    match page {
        Page::Ping => {
            res.header("Content-Type", "text/plain");
            res.write_all(b"pong\n")
        }
        Page::Status => {
            let (format, full) = choice(req.query_string(), req.header("Accept"));
            res.header("Content-Type", format.content_type());
            res.write_all(figures().render(format, full).as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_cases() {
        use StatusFormat::*;
        let om = Some("application/openmetrics-text; version=1.0.0,text/plain;q=0.5");
        let cases = [
            ("", None, (Text, false)),
            ("json", None, (Json, false)),
            ("json&full", None, (Json, true)),
            ("full&openmetrics", None, (OpenMetrics, true)),
            ("full=1", None, (Text, true)),
            ("", om, (OpenMetrics, false)),
            ("json", om, (Json, false)),
            ("text&full", om, (Text, true)),
            ("jsonx", Some("text/html"), (Text, false)),
        ];
        for (query, accept, want) in cases {
            assert_eq!(choice(query, accept), want, "{query} {accept:?}");
        }
    }
}
