//! examples/echo (and the same on the adapters) behind a real nginx: the
//! deploy/ configs, at a prefix and at the root, with fastcgi_keep_conn on
//! and off.

mod support;

use support::frontend::Frontend;
use support::{each_echo_app, have_tool};

fn keep_conn_off(site: String) -> String {
    site.replace("fastcgi_keep_conn on;", "fastcgi_keep_conn off;")
        .replace("keepalive 8;", "")
}

each_echo_app! {
    prefix_mount_with_keep_conn => prefix_with_keep_conn;
    prefix_mount_without_keep_conn => prefix_without_keep_conn;
    root_mount_with_keep_conn => root_with_keep_conn;
    root_mount_without_keep_conn => root_without_keep_conn;
}

fn prefix_with_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-prefix.conf", |s| s);
    fe.check_all("/yourapplication", "/yourapplication");
}

fn prefix_without_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-prefix.conf", keep_conn_off);
    fe.check_all("/yourapplication", "/yourapplication");
}

fn root_with_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-root.conf", |s| s);
    fe.check_all("", "");
}

fn root_without_keep_conn(app: &str) {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx(app, "nginx-root.conf", keep_conn_off);
    fe.check_all("", "");
}
