//! examples/echo (and the same on the adapters) behind a real Caddy (the
//! application started on a unix socket), with the deploy/ configs, at a
//! prefix and at the root.

mod support;

use support::frontend::Frontend;
use support::{each_echo_app, have_tool};

/// Everything the other front ends are checked for, except text on
/// FCGI_STDERR reaching the log: Caddy 2.6 discards it.
fn check(fe: &Frontend, prefix: &str) {
    fe.check_params(prefix, prefix);
    fe.check_post_echo(prefix, 4 << 20);
    fe.check_status_and_header(prefix);
    fe.check_panic(prefix);
    fe.check_download(prefix, 50 << 20);
    fe.check_upload(prefix, 256 << 20);
    fe.check_concurrency(prefix);
}

each_echo_app! {
    prefix_mount => prefix;
    root_mount => root;
}

fn prefix(app: &str) {
    if !have_tool("caddy") {
        return;
    }
    let fe = Frontend::caddy(app, "caddy-prefix.Caddyfile");
    check(&fe, "/yourapplication");
}

fn root(app: &str) {
    if !have_tool("caddy") {
        return;
    }
    check(&Frontend::caddy(app, "caddy-root.Caddyfile"), "");
}
