//! examples/echo (and the same on the adapters) spawned by a real h2o
//! (`fastcgi.spawn`, the socket on fd 0), with the deploy/ config, at the
//! root.

mod support;

use support::frontend::Frontend;
use support::{each_echo_app, have_tool};

each_echo_app! {
    spawned_at_the_root => root;
}

fn root(app: &str) {
    if !have_tool("h2o") {
        return;
    }
    let fe = Frontend::h2o(app, "h2o.conf");
    fe.check_all("", "");
    fe.check_stop_leaves_no_app();
}
