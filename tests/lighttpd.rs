//! examples/echo spawned by a real lighttpd (bin-path: the socket on fd 0),
//! with the deploy/ configs, at a prefix and at the root.

mod support;

use support::frontend::Frontend;
use support::have_tool;

#[test]
fn prefix_mount() {
    if !have_tool("lighttpd") {
        return;
    }
    let fe = Frontend::lighttpd("lighttpd-prefix.conf");
    let p = "/yourapplication";
    fe.check_all(p, p);
    fe.check_respawn(p);
    fe.check_stop_leaves_no_app();
}

#[test]
fn root_mount_with_fix_root_scriptname() {
    if !have_tool("lighttpd") {
        return;
    }
    let fe = Frontend::lighttpd("lighttpd-root.conf");
    fe.check_all("", "");
    fe.check_respawn("");
    fe.check_stop_leaves_no_app();
}
