//! examples/echo spawned by a real Apache 2.4 with mod_fcgid, with the
//! deploy/ config.

mod support;

use support::frontend::Frontend;
use support::have_tool;

#[test]
fn mod_fcgid_prefix_mount() {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_fcgid();
    let p = "/yourapplication";
    fe.check_params(p, p);
    // Before the load below makes mod_fcgid start dozens of processes.
    fe.check_respawn(p);
    fe.check_all(p, p);
    fe.check_stop_leaves_no_app();
}
