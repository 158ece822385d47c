//! The server's own messages: every server event is one line on the
//! process's standard error, where a spawning web server (lighttpd,
//! mod_fcgid) or the init system records it, in one format:
//!
//! ```text
//! fcgi-server: time=2025-05-01T12:00:00.123Z level=warn event=refused_peer pid=4242 peer=10.0.0.9 msg="refused a connection from 10.0.0.9: not in FCGI_WEB_SERVER_ADDRS"
//! ```
//!
//! `time` (UTC), `level` (`info`, `warn`, `error`), `event` (a fixed name
//! per kind of event), `pid`, the event's own `key=value` fields, and
//! `msg`, a sentence for the reader. A value with a space, a quote, an
//! `=`, a backslash or a control character is written as a quoted string
//! with backslash escapes; so is an empty one. Each line leaves in one
//! `write(2)`, so that lines of several processes sharing a log do not
//! mix.

use std::fmt::{self, Display, Write as _};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// How much an event matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// The server's life: started, stopping.
    Info,
    /// Something a peer or a request did wrong; the server goes on.
    Warn,
    /// Something went wrong in the server or the handler.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A field of an event: its key and its value.
pub(crate) type Field<'a> = (&'a str, &'a dyn Display);

/// Writes one event line to standard error.
pub(crate) fn event(level: Level, name: &str, fields: &[Field<'_>], msg: &str) {
    let line = format_event(SystemTime::now(), level, name, fields, msg);
    let _ = io::stderr().write_all(line.as_bytes());
}

/// An event with no fields but its message, at level `info`.
pub(crate) fn info(name: &str, msg: &str) {
    event(Level::Info, name, &[], msg);
}

/// An event with no fields but its message, at level `warn`.
pub(crate) fn warn(name: &str, msg: &str) {
    event(Level::Warn, name, &[], msg);
}

/// An event with no fields but its message, at level `error`.
pub(crate) fn error(name: &str, msg: &str) {
    event(Level::Error, name, &[], msg);
}

/// The text of one event line, newline included.
fn format_event(
    at: SystemTime,
    level: Level,
    name: &str,
    fields: &[Field<'_>],
    msg: &str,
) -> String {
    let mut line = String::with_capacity(160);
    let _ = write!(
        line,
        "fcgi-server: time={} level={} event={name} pid={}",
        Utc(at),
        level.name(),
        std::process::id()
    );
    for (key, value) in fields {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        push_value(&mut line, &value.to_string());
    }
    line.push_str(" msg=");
    push_value(&mut line, msg);
    line.push('\n');
    line
}

/// Appends `v` as it is when it needs no quoting, else quoted and escaped.
pub(crate) fn push_value(out: &mut String, v: &str) {
    if needs_quotes(v) {
        let _ = write!(out, "{v:?}");
    } else {
        out.push_str(v);
    }
}

fn needs_quotes(v: &str) -> bool {
    v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'))
}

/// A time as RFC 3339 in UTC with milliseconds: `2025-05-01T12:00:00.123Z`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Utc(pub(crate) SystemTime);

impl Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (y, m, d) = civil_date((secs / 86_400) as i64);
        let day = secs % 86_400;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            day / 3600,
            day / 60 % 60,
            day % 60,
            since.subsec_millis()
        )
    }
}

/// The calendar date (year, month, day) of `days` days after 1970-01-01,
/// in the proleptic Gregorian calendar.
///
/// Counts from 1 March of year 0, so that the leap day ends a year: a
/// 400-year era has 146,097 days; within it, years of 365 days with a
/// leap day every fourth year except every hundredth but the fourth
/// hundredth; months from March have lengths that 153-day five-month
/// runs (31 30 31 30 31) reproduce.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_cases() {
        let day = |y: i64, m: u32, d: u32| (y, m, d);
        let cases = [
            (0, day(1970, 1, 1)),
            (59, day(1970, 3, 1)),
            (10_956, day(1999, 12, 31)),
            (11_016, day(2000, 2, 29)),
            (11_017, day(2000, 3, 1)),
            (19_782, day(2024, 2, 29)),
            (20_088, day(2024, 12, 31)),
            (-1, day(1969, 12, 31)),
            (47_541, day(2100, 3, 1)),
        ];
        for (days, want) in cases {
            assert_eq!(civil_date(days), want, "{days}");
        }
    }

    #[test]
    fn utc_has_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123 + 3_723_000);
        assert_eq!(Utc(t).to_string(), "2024-05-01T13:02:03.123Z");
    }

    #[test]
    fn event_line_format() {
        let t = UNIX_EPOCH + Duration::from_secs(86_400);
        let worker = 3;
        let fields: [Field<'_>; 3] = [
            ("worker", &worker),
            ("uri", &"/a b?x=\"1\""),
            ("empty", &""),
        ];
        let line = format_event(t, Level::Warn, "slow_request", &fields, "still running");
        let pid = std::process::id();
        assert_eq!(
            line,
            format!(
                "fcgi-server: time=1970-01-02T00:00:00.000Z level=warn event=slow_request \
                 pid={pid} worker=3 uri=\"/a b?x=\\\"1\\\"\" empty=\"\" msg=\"still running\"\n"
            )
        );
    }
}
