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
    let p = "/yourapplication";
    fe.check_basics(p, p, 4 << 20);
    fe.check_download(p, 50 << 20);
    fe.check_upload(p, 256 << 20);
    fe.check_concurrency(p);
}

#[test]
fn prefix_mount_without_keep_conn() {
    if !have_tool("nginx") {
        return;
    }
    let fe = Frontend::nginx("nginx-prefix.conf", keep_conn_off);
    let p = "/yourapplication";
    fe.check_basics(p, p, 1 << 20);
    fe.check_download(p, 50 << 20);
    fe.check_concurrency(p);
}

#[test]
fn root_mount_with_and_without_keep_conn() {
    if !have_tool("nginx") {
        return;
    }
    for edit in [(|s| s) as fn(String) -> String, keep_conn_off] {
        let fe = Frontend::nginx("nginx-root.conf", edit);
        fe.check_basics("", "", 1 << 20);
        fe.check_concurrency("");
    }
}
