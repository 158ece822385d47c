//! The command line, defined in one place: the commands, every flag with
//! its help text, and the parser that turns arguments into [`Args`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::exit::{EXIT_CODES, Failure};

/// The commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmd {
    Request,
    Values,
    Status,
    Health,
    Bench,
}

impl Cmd {
    const ALL: [Cmd; 5] = [
        Cmd::Request,
        Cmd::Values,
        Cmd::Status,
        Cmd::Health,
        Cmd::Bench,
    ];

    fn name(self) -> &'static str {
        match self {
            Cmd::Request => "request",
            Cmd::Values => "values",
            Cmd::Status => "status",
            Cmd::Health => "health",
            Cmd::Bench => "bench",
        }
    }

    fn from_name(name: &str) -> Option<Cmd> {
        Cmd::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The synopsis lines.
    fn usage(self) -> &'static str {
        match self {
            Cmd::Request => {
                "fcgi request [FLAGS] ADDR [URI]\n  fcgi request [FLAGS] --spawn APP [URI]"
            }
            Cmd::Values => "fcgi values [FLAGS] ADDR [NAME]...",
            Cmd::Status => "fcgi status [FLAGS] ADDR",
            Cmd::Health => "fcgi health [FLAGS] ADDR",
            Cmd::Bench => "fcgi bench [FLAGS] ADDR [URI]",
        }
    }

    /// What the command does, in a few lines.
    fn about(self) -> &'static str {
        match self {
            Cmd::Request => {
                "Sends a request as a web server would, with the params nginx's fastcgi_params \
                 sends (never this shell's environment), and prints the response body byte for \
                 byte on stdout; the application's FCGI_STDERR goes to stderr, each line marked \
                 'app (FCGI_STDERR):'. URI is a path with an optional query (default /), or an \
                 http:// or https:// URL, whose host and port become HTTP_HOST, SERVER_NAME and \
                 SERVER_PORT. Without --script-name the application is mounted at the root: \
                 SCRIPT_NAME is empty and PATH_INFO is the path.\n\n\
                 With --spawn, APP is started as lighttpd's bin-path and Apache mod_fcgid start \
                 it: a fresh unix listening socket on its fd 0, working directory / (or --cwd), \
                 an environment of PATH and the --env variables only. After the response it is \
                 stopped with SIGTERM, and its exit status and its own output are shown."
            }
            Cmd::Values => {
                "Asks FCGI_GET_VALUES (by default FCGI_MAX_CONNS, FCGI_MAX_REQS and \
                 FCGI_MPXS_CONNS) and prints the answer as NAME=VALUE lines."
            }
            Cmd::Status => {
                "Fetches the server's status page (its .status_path) and prints it: plain \
                 text, JSON or OpenMetrics, with one entry per worker with --full. Exits 1 \
                 unless it answers 200."
            }
            Cmd::Health => {
                "Exits 0 when the server's ping path (its .ping_path) answers 200 within \
                 --timeout, and 1 when it answers anything else: a health check for Docker's \
                 HEALTHCHECK or a systemd unit, without a shell."
            }
            Cmd::Bench => {
                "Puts load on the application as a web server's event loop does: one thread \
                 drives every connection, each connection's next request is sent the moment \
                 its answer is complete, with the params nginx's fastcgi_params sends (as \
                 'fcgi request' makes them) and records padded as nginx pads them. Runs for \
                 --duration, or until --requests have been answered; shows a progress line \
                 on stderr each second, then prints the throughput, the latency percentiles \
                 and histogram, and the errors: a connection that closed or could not be \
                 made, a protocol error, a timeout (--timeout, per request), or a status \
                 other than 2xx. Every answer is checked; a failed one is counted, never \
                 left out, and its connection is made again. Exits 1 when any request \
                 failed."
            }
        }
    }
}

/// A request body as `-d` gives it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Data {
    Text(String),
    File(PathBuf),
    Stdin,
}

/// The status page's format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    #[default]
    Text,
    Json,
    OpenMetrics,
}

/// Everything the command line says.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) cmd: Cmd,
    /// The application's address; empty with `--spawn`.
    pub(crate) addr: String,
    pub(crate) uri: Option<String>,
    /// The names `values` asks for.
    pub(crate) names: Vec<String>,
    pub(crate) method: Option<String>,
    pub(crate) data: Option<Data>,
    pub(crate) headers: Vec<(String, String)>,
    /// `-p NAME=VALUE`; a `None` value removes the param.
    pub(crate) params: Vec<(String, Option<String>)>,
    pub(crate) script_name: Option<String>,
    pub(crate) count: u32,
    pub(crate) timeout: Duration,
    pub(crate) include: bool,
    pub(crate) timing: bool,
    pub(crate) trace: bool,
    pub(crate) fail: bool,
    pub(crate) spawn: Option<PathBuf>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) path: Option<String>,
    pub(crate) format: Format,
    pub(crate) full: bool,
    /// `bench`: connections at once.
    pub(crate) connections: usize,
    /// `bench`: how long; `None`: 10 s, unless `requests` is given.
    pub(crate) duration: Option<Duration>,
    /// `bench`: requests to send in all.
    pub(crate) requests: Option<u64>,
    /// `bench`: a new connection per request (no FCGI_KEEP_CONN).
    pub(crate) new_conn: bool,
}

impl Args {
    fn new(cmd: Cmd) -> Args {
        Args {
            cmd,
            addr: String::new(),
            uri: None,
            names: Vec::new(),
            method: None,
            data: None,
            headers: Vec::new(),
            params: Vec::new(),
            script_name: None,
            count: 1,
            timeout: Duration::from_secs(10),
            include: false,
            timing: false,
            trace: false,
            fail: false,
            spawn: None,
            cwd: None,
            env: Vec::new(),
            path: None,
            format: Format::Text,
            full: false,
            connections: 16,
            duration: None,
            requests: None,
            new_conn: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Help: on one command, or on all.
    Help(Option<Cmd>),
    Version,
    Run(Box<Args>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Id {
    Method,
    Data,
    Header,
    Param,
    ScriptName,
    Count,
    Timeout,
    Include,
    Timing,
    Trace,
    Fail,
    Spawn,
    Cwd,
    Env,
    Path,
    Json,
    OpenMetrics,
    Full,
    Connections,
    Duration,
    Requests,
    NewConn,
    Help,
}

struct Flag {
    id: Id,
    short: Option<char>,
    long: &'static str,
    /// The value's name in the help text; `None` for a switch.
    value: Option<&'static str>,
    help: &'static str,
    on: &'static [Cmd],
}

const REQUEST: &[Cmd] = &[Cmd::Request];
const SENDING: &[Cmd] = &[Cmd::Request, Cmd::Bench];
const BENCH: &[Cmd] = &[Cmd::Bench];
const PAGES: &[Cmd] = &[Cmd::Status, Cmd::Health];
const STATUS: &[Cmd] = &[Cmd::Status];
const ALL: &[Cmd] = &Cmd::ALL;

/// Every flag, in the order the help text lists them.
#[rustfmt::skip]
const FLAGS: [Flag; 24] = [
    Flag { id: Id::Method, short: Some('X'), long: "method", value: Some("METHOD"), on: SENDING,
        help: "the request method (default GET, or POST with -d)" },
    Flag { id: Id::Data, short: Some('d'), long: "data", value: Some("TEXT|@FILE|@-"), on: SENDING,
        help: "the request body: TEXT, the bytes of FILE, or of stdin; sets CONTENT_LENGTH, and \
         CONTENT_TYPE to application/x-www-form-urlencoded unless -H gives one" },
    Flag { id: Id::Header, short: Some('H'), long: "header", value: Some("'NAME: VALUE'"), on: SENDING,
        help: "a request header, sent as HTTP_NAME (Content-Type and Content-Length also as \
         CONTENT_TYPE and CONTENT_LENGTH); replaces a default header of that name, and \
         'NAME:' with no value removes it; repeatable" },
    Flag { id: Id::Param, short: Some('p'), long: "param", value: Some("NAME=VALUE"), on: SENDING,
        help: "sets any param, replacing a default; NAME alone removes it; repeatable" },
    Flag { id: Id::ScriptName, short: None, long: "script-name", value: Some("PREFIX"), on: SENDING,
        help: "the mount point: SCRIPT_NAME is PREFIX and PATH_INFO the rest of the path, as \
         nginx's fastcgi_split_path_info makes them" },
    Flag { id: Id::Count, short: Some('n'), long: "count", value: Some("N"), on: REQUEST,
        help: "sends the request N times on one kept-open connection (FCGI_KEEP_CONN)" },
    Flag { id: Id::Timeout, short: None, long: "timeout", value: Some("SECS"), on: ALL,
        help: "gives up when an answer is not complete within SECS seconds (default 10)" },
    Flag { id: Id::Include, short: Some('i'), long: "include", value: None, on: REQUEST,
        help: "prints the status line and the headers before the body" },
    Flag { id: Id::Timing, short: None, long: "timing", value: None, on: REQUEST,
        help: "prints on stderr when the connection was made, the request sent, the first record \
         received and END_REQUEST received" },
    Flag { id: Id::Trace, short: None, long: "trace", value: None, on: ALL,
        help: "prints every record both ways on stderr: time, type, request id, lengths, \
         name-value pairs decoded, and what is wrong with it" },
    Flag { id: Id::Fail, short: None, long: "fail", value: None, on: REQUEST,
        help: "exits 1 when the status is 400 or more" },
    Flag { id: Id::Spawn, short: None, long: "spawn", value: Some("APP"), on: REQUEST,
        help: "starts APP with a listening socket on its fd 0 and asks it, instead of ADDR" },
    Flag { id: Id::Cwd, short: None, long: "cwd", value: Some("DIR"), on: REQUEST,
        help: "with --spawn: APP's working directory (default /)" },
    Flag { id: Id::Env, short: None, long: "env", value: Some("NAME=VALUE"), on: REQUEST,
        help: "with --spawn: adds a variable to APP's environment (PATH alone otherwise); \
         repeatable" },
    Flag { id: Id::Path, short: None, long: "path", value: Some("PATH"), on: PAGES,
        help: "the status page's or ping path's path (default /status, /ping)" },
    Flag { id: Id::Json, short: None, long: "json", value: None, on: STATUS,
        help: "the status as JSON (?json)" },
    Flag { id: Id::OpenMetrics, short: None, long: "openmetrics", value: None, on: STATUS,
        help: "the status as OpenMetrics text (?openmetrics, Accept: application/openmetrics-text)" },
    Flag { id: Id::Full, short: None, long: "full", value: None, on: STATUS,
        help: "one entry per worker besides the totals (&full)" },
    Flag { id: Id::Connections, short: Some('c'), long: "connections", value: Some("N"), on: BENCH,
        help: "connections at once (default 16)" },
    Flag { id: Id::Duration, short: None, long: "duration", value: Some("SECS"), on: BENCH,
        help: "runs this long (default 10 s, unless --requests is given); answers still on \
         the way at the end are not counted" },
    Flag { id: Id::Requests, short: None, long: "requests", value: Some("N"), on: BENCH,
        help: "sends N requests in all, and ends once each is answered or has failed" },
    Flag { id: Id::NewConn, short: None, long: "new-conn", value: None, on: BENCH,
        help: "a new connection for every request, without FCGI_KEEP_CONN (nginx's default); \
         without it, connections are kept open, as with nginx's fastcgi_keep_conn on" },
    Flag { id: Id::Json, short: None, long: "json", value: None, on: BENCH,
        help: "prints the summary as one JSON object" },
    Flag { id: Id::Help, short: Some('h'), long: "help", value: None, on: ALL,
        help: "prints this help" },
];

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<Parsed, Failure> {
    let Some(first) = args.first() else {
        return Ok(Parsed::Help(None));
    };
    match first.as_str() {
        "-h" | "--help" => return Ok(Parsed::Help(None)),
        "-V" | "--version" => return Ok(Parsed::Version),
        "help" => return help_on(args.get(1)),
        _ => {}
    }
    let cmd = Cmd::from_name(first)
        .ok_or_else(|| Failure::usage(format!("there is no command '{first}'")))?;
    let mut parsed = Args::new(cmd);
    let mut positional = Vec::new();
    if !parse_flags(&args[1..], &mut parsed, &mut positional)? {
        return Ok(Parsed::Help(Some(cmd)));
    }
    assign_positional(&mut parsed, positional)?;
    check(&parsed)?;
    Ok(Parsed::Run(Box::new(parsed)))
}

fn help_on(name: Option<&String>) -> Result<Parsed, Failure> {
    match name {
        None => Ok(Parsed::Help(None)),
        Some(n) => Cmd::from_name(n)
            .map(|c| Parsed::Help(Some(c)))
            .ok_or_else(|| Failure::usage(format!("there is no command '{n}'"))),
    }
}

/// Applies every flag in `args`, collecting the positional arguments.
/// Returns `false` when help was asked for.
fn parse_flags(
    args: &[String],
    parsed: &mut Args,
    positional: &mut Vec<String>,
) -> Result<bool, Failure> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            positional.extend(rest.by_ref().cloned());
        } else if arg.len() > 1 && arg.starts_with('-') {
            let (flag, value) = take_flag(arg, parsed.cmd, &mut rest)?;
            if flag.id == Id::Help {
                return Ok(false);
            }
            apply(parsed, flag, value.as_deref())?;
        } else {
            positional.push(arg.clone());
        }
    }
    Ok(true)
}

/// Finds the flag that `arg` names, and takes its value (from `arg`
/// itself, or the next argument).
fn take_flag<'a>(
    arg: &str,
    cmd: Cmd,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<(&'static Flag, Option<String>), Failure> {
    let (found, inline) = match arg.strip_prefix("--") {
        Some(long) => {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            (
                FLAGS.iter().find(|f| f.long == name && f.on.contains(&cmd)),
                inline,
            )
        }
        None => {
            let c = arg[1..].chars().next().unwrap_or('-');
            let tail = &arg[1 + c.len_utf8()..];
            let inline = (!tail.is_empty()).then(|| tail.to_owned());
            (
                FLAGS
                    .iter()
                    .find(|f| f.short == Some(c) && f.on.contains(&cmd)),
                inline,
            )
        }
    };
    let flag =
        found.ok_or_else(|| Failure::usage(format!("'{}' has no flag {arg}", cmd.name())))?;
    let value =
        match (flag.value, inline) {
            (None, Some(_)) => return Err(Failure::usage(format!("{arg} takes no value"))),
            (None, None) => None,
            (Some(_), Some(v)) => Some(v),
            (Some(name), None) => Some(rest.next().cloned().ok_or_else(|| {
                Failure::usage(format!("--{} needs a value ({name})", flag.long))
            })?),
        };
    Ok((flag, value))
}

fn apply(args: &mut Args, flag: &Flag, value: Option<&str>) -> Result<(), Failure> {
    let v = value.unwrap_or_default();
    match flag.id {
        Id::Method => args.method = Some(v.to_owned()),
        Id::Data => args.data = Some(data(v)),
        Id::Header => args.headers.push(header(v)?),
        Id::Param => args.params.push(param(v)?),
        Id::ScriptName => args.script_name = Some(v.to_owned()),
        Id::Count => args.count = count(v)?,
        Id::Timeout => args.timeout = seconds(v)?,
        Id::Include => args.include = true,
        Id::Timing => args.timing = true,
        Id::Trace => args.trace = true,
        Id::Fail => args.fail = true,
        Id::Spawn => args.spawn = Some(v.into()),
        Id::Cwd => args.cwd = Some(v.into()),
        Id::Env => args.env.push(env(v)?),
        Id::Path => args.path = Some(v.to_owned()),
        Id::Json => args.format = Format::Json,
        Id::OpenMetrics => args.format = Format::OpenMetrics,
        Id::Full => args.full = true,
        Id::Connections => args.connections = number(v, "-c", 1, 100_000)? as usize,
        Id::Duration => args.duration = Some(positive_seconds(v, "--duration")?),
        Id::Requests => args.requests = Some(number(v, "--requests", 1, u64::MAX)?),
        Id::NewConn => args.new_conn = true,
        Id::Help => {}
    }
    Ok(())
}

fn data(v: &str) -> Data {
    match v.strip_prefix('@') {
        Some("-") => Data::Stdin,
        Some(path) => Data::File(path.into()),
        None => Data::Text(v.to_owned()),
    }
}

fn header(v: &str) -> Result<(String, String), Failure> {
    let (name, value) = v
        .split_once(':')
        .filter(|(n, _)| !n.trim().is_empty())
        .ok_or_else(|| Failure::usage(format!("-H '{v}' is not 'NAME: VALUE'")))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

fn param(v: &str) -> Result<(String, Option<String>), Failure> {
    let (name, value) = match v.split_once('=') {
        Some((n, val)) => (n, Some(val.to_owned())),
        None => (v, None),
    };
    if name.is_empty() {
        return Err(Failure::usage(format!("-p '{v}' names no param")));
    }
    Ok((name.to_owned(), value))
}

fn env(v: &str) -> Result<(String, String), Failure> {
    v.split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, val)| (n.to_owned(), val.to_owned()))
        .ok_or_else(|| Failure::usage(format!("--env '{v}' is not NAME=VALUE")))
}

fn count(v: &str) -> Result<u32, Failure> {
    v.parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| Failure::usage(format!("-n {v}: give a whole number of 1 or more")))
}

fn seconds(v: &str) -> Result<Duration, Failure> {
    positive_seconds(v, "--timeout")
}

fn positive_seconds(v: &str, flag: &str) -> Result<Duration, Failure> {
    v.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| Failure::usage(format!("{flag} {v}: give a number of seconds above 0")))
}

fn number(v: &str, flag: &str, min: u64, max: u64) -> Result<u64, Failure> {
    v.parse()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            Failure::usage(format!(
                "{flag} {v}: give a whole number from {min} to {max}"
            ))
        })
}

/// Puts the positional arguments where the command expects them.
fn assign_positional(args: &mut Args, positional: Vec<String>) -> Result<(), Failure> {
    let mut it = positional.into_iter();
    if args.spawn.is_none() {
        args.addr = it
            .next()
            .ok_or_else(|| Failure::usage(format!("'{}' needs an ADDR", args.cmd.name())))?;
    }
    match args.cmd {
        Cmd::Request | Cmd::Bench => args.uri = it.next(),
        Cmd::Values => args.names.extend(it.by_ref()),
        Cmd::Status | Cmd::Health => {}
    }
    match it.next() {
        Some(extra) => Err(Failure::usage(format!("unexpected argument '{extra}'"))),
        None => Ok(()),
    }
}

/// Refuses combinations that mean nothing.
fn check(args: &Args) -> Result<(), Failure> {
    if args.spawn.is_none() && (args.cwd.is_some() || !args.env.is_empty()) {
        return Err(Failure::usage("--cwd and --env go with --spawn"));
    }
    if args.duration.is_some() && args.requests.is_some() {
        return Err(Failure::usage("give --duration or --requests, not both"));
    }
    Ok(())
}

/// The help text: on one command, or the overview.
pub(crate) fn help(cmd: Option<Cmd>) -> String {
    match cmd {
        Some(c) => command_help(c),
        None => overview(),
    }
}

fn overview() -> String {
    let mut s = String::from(
        "fcgi: talks FastCGI to an application as a web server would, to show what it does\n\n\
         Usage:\n",
    );
    for c in Cmd::ALL {
        let _ = writeln!(s, "  {}", c.usage());
    }
    s.push_str(
        "  fcgi help [COMMAND]\n\n\
         ADDR is a unix socket path (/run/app.sock, unix:app.sock) or HOST:PORT.\n\
         'fcgi help COMMAND' lists a command's flags.\n",
    );
    s + &exit_codes()
}

fn command_help(cmd: Cmd) -> String {
    let mut s = format!(
        "Usage:\n  {}\n\n{}\n\nFlags:\n",
        cmd.usage(),
        wrap(cmd.about(), 0)
    );
    for f in FLAGS.iter().filter(|f| f.on.contains(&cmd)) {
        let _ = writeln!(s, "{}", flag_line(f));
    }
    s + &exit_codes()
}

fn flag_line(f: &Flag) -> String {
    let short = f.short.map_or("    ".to_owned(), |c| format!("-{c}, "));
    let value = f.value.map_or(String::new(), |v| format!(" {v}"));
    let mut line = format!("  {short}--{}{value}", f.long);
    line = format!("{line:<30}");
    if line.len() > 30 {
        line = format!("{line}\n{:30}", "");
    }
    line + &wrap(f.help, 30)
}

fn exit_codes() -> String {
    let mut s = String::from("\nExit status:\n");
    for (exit, meaning) in EXIT_CODES {
        let _ = writeln!(s, "  {:<4}{meaning}", exit.code());
    }
    s
}

/// Wraps `text` at 80 columns, later lines indented by `indent`.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        let mut col = indent;
        for word in para.split_whitespace() {
            if col > indent && col + 1 + word.len() > 80 {
                let _ = write!(out, "\n{:indent$}", "");
                col = indent;
            } else if col > indent {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += word.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<Args, Failure> {
        let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
        match parse(&args)? {
            Parsed::Run(a) => Ok(*a),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn flags_take_values_in_every_form() {
        let a = run("request -XPUT --data=@- -H X-A:1 -p A=b -p C -n 3 --timeout 0.5 s.sock /x")
            .unwrap();
        assert_eq!(a.method.as_deref(), Some("PUT"));
        assert_eq!(a.data, Some(Data::Stdin));
        assert_eq!(a.headers, [("X-A".to_owned(), "1".to_owned())]);
        assert_eq!(
            a.params,
            [
                ("A".to_owned(), Some("b".to_owned())),
                ("C".to_owned(), None)
            ]
        );
        assert_eq!((a.count, a.timeout), (3, Duration::from_millis(500)));
        assert_eq!((a.addr.as_str(), a.uri.as_deref()), ("s.sock", Some("/x")));
        let a = run("request --spawn ./app --env K=V /y").unwrap();
        assert_eq!((a.addr.as_str(), a.uri.as_deref()), ("", Some("/y")));
        assert_eq!(a.env, [("K".to_owned(), "V".to_owned())]);
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        let cases = [
            ("request", "needs an ADDR"),
            ("request a b c", "unexpected argument 'c'"),
            ("request -n 0 a", "-n 0"),
            ("request --timeout x a", "--timeout x"),
            ("request -H novalue a", "not 'NAME: VALUE'"),
            ("request --json a", "'request' has no flag --json"),
            ("status --fail a", "'status' has no flag --fail"),
            ("request a --timeout", "needs a value"),
            ("request --env K=V a", "go with --spawn"),
            ("request --trace=1 a", "takes no value"),
            ("nothing", "no command 'nothing'"),
        ];
        for (line, part) in cases {
            let e = run(line).unwrap_err();
            assert!(e.sentence.contains(part), "{line}: {}", e.sentence);
        }
    }

    #[test]
    fn every_flag_is_in_its_commands_help() {
        for f in &FLAGS {
            for c in Cmd::ALL {
                let listed = command_help(c).contains(&flag_line(f));
                assert_eq!(listed, f.on.contains(&c), "--{} in {}", f.long, c.name());
            }
        }
        assert!(overview().contains("74  the response cannot be written"));
    }
}
