//! examples/echo spawned by a real h2o (`fastcgi.spawn`, the socket on
//! fd 0), with the deploy/ config, at the root.

mod support;

use support::frontend::Frontend;
use support::have_tool;

#[test]
fn spawned_at_the_root() {
    if !have_tool("h2o") {
        return;
    }
    let fe = Frontend::h2o("h2o.conf");
    fe.check_all("", "");
    fe.check_stop_leaves_no_app();
}
