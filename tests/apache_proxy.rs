//! examples/echo behind a real Apache 2.4 with mod_proxy_fcgi (the
//! application started on a unix socket), with the deploy/ configs, at a
//! prefix and at the root.

mod support;

use support::frontend::Frontend;
use support::have_tool;

#[test]
fn proxy_fcgi_prefix_mount() {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_proxy_fcgi("apache-proxy-fcgi-prefix.conf");
    fe.check_all("/yourapplication", "/yourapplication");
}

#[test]
fn proxy_fcgi_root_mount() {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_proxy_fcgi("apache-proxy-fcgi-root.conf");
    fe.check_all("", "");
}
