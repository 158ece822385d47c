//! examples/echo behind a real nginx: the deploy/ configs, at a prefix and
//! at the root, with fastcgi_keep_conn on and off.

mod support;

use support::frontend::Frontend;
use support::have_tool;

fn keep_conn_off(site: String) -> String {
    site.replace("fastcgi_keep_conn on;", "fastcgi_keep_conn off;")
        .replace("keepalive 8;", "")
}

#[test]
fn prefix_mount_with_keep_conn() {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx("nginx-prefix.conf", |s| s);
    fe.check_all("/yourapplication", "/yourapplication");
}

#[test]
fn prefix_mount_without_keep_conn() {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx("nginx-prefix.conf", keep_conn_off);
    fe.check_all("/yourapplication", "/yourapplication");
}

#[test]
fn root_mount_with_keep_conn() {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx("nginx-root.conf", |s| s);
    fe.check_all("", "");
}

#[test]
fn root_mount_without_keep_conn() {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx("nginx-root.conf", keep_conn_off);
    fe.check_all("", "");
}
