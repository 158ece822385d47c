//! The `needs_env` application: like many real ones, it cannot start
//! without its configuration. When `DATABASE_URL` is not set it says so
//! on stderr and exits with status 1 before it serves anything. With it,
//! every request gets the configuration as the application sees it:
//!
//! ```text
//! database: postgres://db/app
//! cwd: /
//! environment: DATABASE_URL PATH
//! ```
//!
//! (its working directory, and the names of its environment variables).
//! A web server that starts it without the variable reports only
//! "premature end of script headers"; `fcgi request --spawn` shows why
//! (see the walk-through in the guide, `fcgi_server::guide::operate`,
//! under "Finding a premature end of script headers").
//!
//! Usage: `needs_env [ADDRESS]`, as `hello` and `echo`.

use std::io::Write;

mod common;

fn main() {
    let Some(url) = std::env::var_os("DATABASE_URL") else {
        eprintln!("needs_env: DATABASE_URL is not set, so there is no database to use");
        std::process::exit(1);
    };
    let mut names: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    names.sort();
    let cwd = std::env::current_dir().unwrap_or_default();
    let text = format!(
        "database: {}\ncwd: {}\nenvironment: {}\n",
        url.to_string_lossy(),
        cwd.display(),
        names.join(" ")
    );
    common::serve("needs_env", move |_req, res| {
        res.header("Content-Type", "text/plain");
        res.write_all(text.as_bytes())
    });
}
