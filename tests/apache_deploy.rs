//! deploy/apache-fcgid.conf as shipped (loaded as tests/apache.rs loads
//! it), with examples/axum_site on the tower adapter: server-sent events
//! reach the client one by one, before the stream ends, and an
//! `Authorization` header reaches the application, as the README says.
#![cfg(feature = "tower")]

mod support;

#[path = "differential/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::time::Duration;

use support::frontend::Frontend;
use support::have_tool;
use wire::{Answer, Ask};

fn get(fe: &Frontend, target: &str, headers: Vec<(&'static str, String)>) -> Answer {
    let ask = Ask {
        method: "GET",
        target: target.to_owned(),
        headers,
        body: Vec::new(),
    };
    wire::http(fe.port, "/yourapplication", &ask).unwrap()
}

#[test]
fn events_stream_and_a_bearer_token_arrives() {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_fcgid("axum_site");
    // Four events, 150 ms apart: the first arrives well before the last.
    let sse = get(&fe, "/sse", Vec::new());
    assert_eq!(sse.status, 200, "{}", fe.error_log_text());
    let text = String::from_utf8_lossy(&sse.body).into_owned();
    assert_eq!(text.matches("event: tick").count(), 4, "{text}");
    let (first, last) = (sse.arrivals[0], *sse.arrivals.last().unwrap());
    assert!(
        last - first >= Duration::from_millis(300),
        "the events arrived together: first at {first:?}, last at {last:?}"
    );
    // The bearer token reaches the application.
    let token = vec![("Authorization", "Bearer abc.def-123".to_owned())];
    let echo = get(&fe, "/echo", token);
    let text = String::from_utf8_lossy(&echo.body).into_owned();
    assert!(
        text.contains("authorization: Bearer abc.def-123\n"),
        "{text}"
    );
}
