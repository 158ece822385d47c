//! examples/echo (and the same on the adapters) behind a real Apache 2.4
//! with mod_proxy_fcgi (the application started on a unix socket), with the
//! deploy/ configs, at a prefix and at the root.

mod support;

use support::frontend::Frontend;
use support::{each_echo_app, have_tool};

each_echo_app! {
    proxy_fcgi_prefix_mount => prefix;
    proxy_fcgi_root_mount => root;
}

fn prefix(app: &str) {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_proxy_fcgi(app, "apache-proxy-fcgi-prefix.conf");
    fe.check_all("/yourapplication", "/yourapplication");
}

fn root(app: &str) {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_proxy_fcgi(app, "apache-proxy-fcgi-root.conf");
    fe.check_all("", "");
}
