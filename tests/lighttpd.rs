//! examples/echo (and the same on the adapters) spawned by a real lighttpd
//! (bin-path: the socket on fd 0), with the deploy/ configs, at a prefix
//! and at the root.

mod support;

use support::frontend::Frontend;
use support::{each_echo_app, have_tool};

each_echo_app! {
    prefix_mount => prefix;
    root_mount_with_fix_root_scriptname => root;
}

fn prefix(app: &str) {
    if !have_tool("lighttpd") {
        return;
    }
    let fe = Frontend::lighttpd(app, "lighttpd-prefix.conf");
    let p = "/yourapplication";
    fe.check_all(p, p);
    fe.check_respawn(p);
    fe.check_stop_leaves_no_app();
}

fn root(app: &str) {
    if !have_tool("lighttpd") {
        return;
    }
    let fe = Frontend::lighttpd(app, "lighttpd-root.conf");
    fe.check_all("", "");
    fe.check_respawn("");
    fe.check_stop_leaves_no_app();
}
