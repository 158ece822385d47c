//! The `fcgi` command-line tool: talks FastCGI to an application as a web
//! server would, to show what it does. `src/bin/fcgi.rs` calls [`run`](crate::cli::run);
//! nothing here is part of the library's API.
//!
//! - `flags`: the commands and flags, their help text, the parser;
//! - `commands`: `request`, `values`, `status`, `health`;
//! - `bench`: `bench`, a load generator driven as a web server's event
//!   loop drives an application;
//! - `spawn`: `request --spawn`, the application started as lighttpd does;
//! - `params`: the params a request carries (nginx's `fastcgi_params`);
//! - `exchange`: a connection and its requests, over [`crate::client`];
//! - `output`, `trace`: what is printed of a response and of the wire;
//! - `exit`: the exit codes and the sentence for each failure.

mod bench;
mod commands;
mod exchange;
mod exit;
mod flags;
mod output;
mod params;
mod spawn;
mod trace;

use std::ffi::OsString;

use exit::{Exit, Failure};
use flags::{Cmd, Parsed};

/// Runs `fcgi` with `args` (the program name first, as
/// [`std::env::args_os`] gives them) and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Result<Vec<String>, OsString> = args
        .into_iter()
        .skip(1)
        .map(OsString::into_string)
        .collect();
    let outcome = match args {
        Ok(args) => dispatch(&args),
        Err(bad) => Err(Failure::usage(format!("the argument {bad:?} is not UTF-8"))),
    };
    match outcome {
        Ok(exit) => exit.code(),
        Err(f) => {
            exit::say(&f);
            f.exit.code()
        }
    }
}

fn dispatch(args: &[String]) -> Result<Exit, Failure> {
    let args = match flags::parse(args)? {
        Parsed::Help(cmd) => {
            print!("{}", flags::help(cmd));
            return Ok(Exit::Complete);
        }
        Parsed::Version => {
            println!("fcgi {}", env!("CARGO_PKG_VERSION"));
            return Ok(Exit::Complete);
        }
        Parsed::Run(args) => args,
    };
    match args.cmd {
        Cmd::Request => commands::request(&args),
        Cmd::Values => commands::values(&args),
        Cmd::Status => commands::status(&args),
        Cmd::Health => commands::health(&args),
        Cmd::Bench => bench::bench(&args),
    }
}
