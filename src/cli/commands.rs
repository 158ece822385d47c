//! The commands: `request`, `values`, `status` and `health`.

use std::io::{self, Read};
use std::time::Instant;

use super::exchange::{self, Answer, Body, Plan, body_unreadable, status_text};
use super::exit::{self, Exit, Failure};
use super::flags::{Args, Data, Format};
use super::output::Output;
use super::params::{self, Target};
use super::spawn;

/// The request that the command line describes (`request` and `bench`):
/// the method (POST when there is a body), the URI, the mount point, the
/// headers and params given.
pub(crate) fn target(args: &Args, body_len: Option<u64>) -> Target<'_> {
    let default_method = if args.data.is_some() { "POST" } else { "GET" };
    Target {
        method: args.method.as_deref().unwrap_or(default_method),
        uri: args.uri.as_deref().unwrap_or("/"),
        script_name: args.script_name.as_deref(),
        headers: &args.headers,
        params: &args.params,
        body_len,
    }
}

/// `fcgi request`: sends the request, with `--spawn` to an application
/// it starts.
pub(crate) fn request(args: &Args) -> Result<Exit, Failure> {
    let (body, body_len) = body(args.data.as_ref())?;
    let target = target(args, body_len);
    let output = Output::new(args.include, false);
    let mut plan = Plan::new(params::build(&target)?, body, args, output);
    match &args.spawn {
        Some(app) => spawn::run(app, args, &mut plan),
        None => exchange::run(&args.addr, &mut plan).map(|_| Exit::Complete),
    }
}

/// The body `-d` gives, and its length (`None` without `-d`).
pub(super) fn body(data: Option<&Data>) -> Result<(Body, Option<u64>), Failure> {
    let bytes = match data {
        None => return Ok((Body::Bytes(Vec::new()), None)),
        Some(Data::File(path)) => {
            let meta = std::fs::metadata(path).map_err(|e| body_unreadable(path, &e))?;
            return Ok((Body::File(path.clone()), Some(meta.len())));
        }
        Some(Data::Text(text)) => text.clone().into_bytes(),
        Some(Data::Stdin) => {
            let mut all = Vec::new();
            io::stdin().read_to_end(&mut all).map_err(|e| {
                Failure::new(Exit::Input, format!("cannot read the body from stdin: {e}"))
            })?;
            all
        }
    };
    let len = bytes.len() as u64;
    Ok((Body::Bytes(bytes), Some(len)))
}

/// `fcgi values`: asks FCGI_GET_VALUES and prints the answer.
pub(crate) fn values(args: &Args) -> Result<Exit, Failure> {
    let default = ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"];
    let names: Vec<&str> = match args.names.is_empty() {
        true => default.to_vec(),
        false => args.names.iter().map(String::as_str).collect(),
    };
    let wire = exchange::new_wire(args.trace);
    let mut client = exchange::connect(&args.addr, args.timeout, &wire)?;
    client.set_deadline(Some(Instant::now() + args.timeout));
    let pairs = client
        .get_values(&names)
        .map_err(|e| exit::response_failed(&e, None, args.timeout))?;
    for (name, value) in pairs {
        println!("{name}={value}");
    }
    Ok(Exit::Complete)
}

/// `fcgi status`: prints the status page.
pub(crate) fn status(args: &Args) -> Result<Exit, Failure> {
    let format = match args.format {
        Format::Text => None,
        Format::Json => Some("json"),
        Format::OpenMetrics => Some("openmetrics"),
    };
    let query: Vec<&str> = format
        .into_iter()
        .chain(args.full.then_some("full"))
        .collect();
    let accept = (args.format == Format::OpenMetrics)
        .then_some("application/openmetrics-text; version=1.0.0; charset=utf-8");
    let path = args.path.as_deref().unwrap_or("/status");
    let answer = page(args, path, &query.join("&"), accept, false)?;
    expect_200(&answer, || format!("the status page {path}"))
}

/// `fcgi health`: exits 0 when the ping path answers 200 in time.
pub(crate) fn health(args: &Args) -> Result<Exit, Failure> {
    let path = args.path.as_deref().unwrap_or("/ping");
    let answer = page(args, path, "", None, true)?;
    expect_200(&answer, || format!("the ping path {path}"))?;
    let ms = answer.took.as_secs_f64() * 1000.0;
    println!("{path} answered 200 in {ms:.1} ms");
    Ok(Exit::Complete)
}

fn expect_200(answer: &Answer, what: impl FnOnce() -> String) -> Result<Exit, Failure> {
    if answer.head.status == 200 {
        return Ok(Exit::Complete);
    }
    let sentence = format!("{} answered {}", what(), status_text(&answer.head));
    Err(Failure::new(Exit::Status, sentence))
}

/// GETs one of the pages the server answers itself.
fn page(
    args: &Args,
    path: &str,
    query: &str,
    accept: Option<&str>,
    quiet: bool,
) -> Result<Answer, Failure> {
    let uri = match query {
        "" => path.to_owned(),
        q => format!("{path}?{q}"),
    };
    let headers: Vec<(String, String)> = accept
        .map(|a| ("Accept".to_owned(), a.to_owned()))
        .into_iter()
        .collect();
    let target = Target {
        method: "GET",
        uri: &uri,
        headers: &headers,
        ..Target::default()
    };
    let body = Body::Bytes(Vec::new());
    let mut plan = Plan::new(
        params::build(&target)?,
        body,
        args,
        Output::new(false, quiet),
    );
    exchange::run(&args.addr, &mut plan)
}
