//! One connection and the requests on it: connect, send, receive, and
//! turn what happened into an answer or a [`Failure`].

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::exit::{self, Exit, Failure, Progress};
use super::flags::Args;
use super::output::Output;
use super::params::Param;
use super::trace::{REQUEST_ID, Wire};
use crate::client::{Client, ResponseHead};
use crate::protocol::{EndRequest, ProtocolStatus};

/// The body of each request.
#[derive(Debug)]
pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// A file, opened again for each request.
    File(PathBuf),
}

impl Body {
    fn open(&self) -> Result<Box<dyn Read + '_>, Failure> {
        match self {
            Body::Bytes(b) => Ok(Box::new(&b[..])),
            Body::File(path) => File::open(path)
                .map(|f| Box::new(f) as Box<dyn Read>)
                .map_err(|e| body_unreadable(path, &e)),
        }
    }
}

pub(crate) fn body_unreadable(path: &std::path::Path, e: &io::Error) -> Failure {
    Failure::new(
        Exit::Input,
        format!("cannot read the body file {}: {e}", path.display()),
    )
}

/// The requests to send on one connection, and what to print.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) params: Vec<Param>,
    pub(crate) body: Body,
    pub(crate) count: u32,
    pub(crate) timeout: Duration,
    pub(crate) trace: bool,
    pub(crate) output: Output,
    pub(crate) timing: bool,
    /// Fail (exit 1) on a status of 400 or more.
    pub(crate) fail: bool,
}

impl Plan {
    /// The plan that `args` asks for, with these params, body and output.
    pub(crate) fn new(params: Vec<Param>, body: Body, args: &Args, output: Output) -> Plan {
        Plan {
            params,
            body,
            count: args.count,
            timeout: args.timeout,
            trace: args.trace,
            output,
            timing: args.timing,
            fail: args.fail,
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) head: ResponseHead,
    /// From the start of the request to END_REQUEST.
    pub(crate) took: Duration,
}

/// The observer's state, shared with the client's observer callback.
pub(crate) type Shared = Arc<Mutex<Wire>>;

pub(crate) fn lock(wire: &Shared) -> MutexGuard<'_, Wire> {
    wire.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn new_wire(trace: bool) -> Shared {
    Arc::new(Mutex::new(Wire::new(trace)))
}

/// Connects to `addr` and puts the observer on the connection.
pub(crate) fn connect(addr: &str, timeout: Duration, wire: &Shared) -> Result<Client, Failure> {
    let client =
        Client::connect_timeout(addr, timeout).map_err(|e| exit::connect_failed(addr, &e))?;
    Ok(observed(client, addr, wire))
}

/// Connects to `addr` and sends the plan's requests; returns the last answer.
pub(crate) fn run(addr: &str, plan: &mut Plan) -> Result<Answer, Failure> {
    let wire = new_wire(plan.trace);
    let mut client = connect(addr, plan.timeout, &wire)?;
    serve(&mut client, plan, &wire)
}

/// Puts the observer on a connection just made to `addr`.
pub(crate) fn observed(mut client: Client, addr: &str, wire: &Shared) -> Client {
    lock(wire).connected(addr);
    let w = Arc::clone(wire);
    client.observe(move |event| lock(&w).see(event));
    client.request_id(REQUEST_ID);
    client
}

/// Sends the plan's requests, one after the other, on `client`; returns
/// the last answer.
pub(crate) fn serve(
    client: &mut Client,
    plan: &mut Plan,
    wire: &Shared,
) -> Result<Answer, Failure> {
    client.keep_conn(plan.count > 1);
    let mut failed_status = None;
    let mut last = None;
    for n in 1..=plan.count {
        if n > 1 {
            lock(wire).next_request();
        }
        let answer = one(client, plan, wire, n)?;
        if plan.fail && answer.head.status >= 400 {
            failed_status.get_or_insert_with(|| answer.head.clone());
        }
        last = Some(answer);
    }
    match failed_status {
        Some(head) => Err(Failure::new(
            Exit::Status,
            format!("the application answered {} (--fail)", status_text(&head)),
        )),
        None => Ok(last.expect("at least one request")),
    }
}

/// `503 Service Unavailable`, or `503` when the application gave no reason.
pub(crate) fn status_text(head: &ResponseHead) -> String {
    format!("{} {}", head.status, head.reason)
        .trim_end()
        .to_owned()
}

fn one(client: &mut Client, plan: &mut Plan, wire: &Shared, n: u32) -> Result<Answer, Failure> {
    let start = Instant::now();
    client.set_deadline(Some(start + plan.timeout));
    let params = plan
        .params
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_slice()));
    // An application that closes before reading the whole request may
    // still have answered: read what it sent, as a web server does.
    if let Err(e) = client.send(params, plan.body.open()?) {
        if !exit::is_closed(&e) {
            return Err(exit::response_failed(
                &e,
                Some(Progress::default()),
                plan.timeout,
            ));
        }
    }
    let out = &mut plan.output;
    out.next_response();
    let got = client.receive_into(out);
    out.finish();
    if plan.timing {
        eprintln!("{}", lock(wire).timing(n));
    }
    let stdout = lock(wire).stdout;
    judge(got, out, stdout, plan.timeout).map(|head| Answer {
        head,
        took: start.elapsed(),
    })
}

/// The head of a complete response, or what went wrong.
fn judge(
    got: io::Result<EndRequest>,
    out: &mut Output,
    stdout: u64,
    timeout: Duration,
) -> Result<ResponseHead, Failure> {
    let progress = Progress {
        stdout,
        head: out.head.is_some(),
        body: out.body,
    };
    match got {
        Err(_) if out.failed.is_some() => Err(Failure::new(
            Exit::Output,
            format!(
                "cannot write the response to stdout: {}",
                out.failed.take().expect("checked")
            ),
        )),
        Err(e) => Err(exit::response_failed(&e, Some(progress), timeout)),
        Ok(end) if end.protocol_status != u8::from(ProtocolStatus::RequestComplete) => {
            Err(exit::refused(&end))
        }
        Ok(_) => Ok(out.head.take().unwrap_or_default()),
    }
}
