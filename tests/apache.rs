//! examples/echo (and the same on the adapters) spawned by a real Apache
//! 2.4 with mod_fcgid, with the deploy/ config.

mod support;

use support::frontend::Frontend;
use support::{each_echo_app, have_tool};

each_echo_app! {
    mod_fcgid_prefix_mount => prefix;
}

fn prefix(app: &str) {
    if !have_tool("apache2") {
        return;
    }
    let fe = Frontend::apache_fcgid(app);
    let p = "/yourapplication";
    fe.check_params(p, p);
    // Before the load below makes mod_fcgid start dozens of processes.
    fe.check_respawn(p);
    fe.check_all(p, p);
    fe.check_stop_leaves_no_app();
}

/// examples/axum deployed with deploy/.htaccess under Apache with
/// mod_fcgid and `AllowOverride`, as on shared hosting: at the site root
/// and in a subdirectory, the application routes on the same paths.
#[cfg(feature = "tower")]
mod htaccess {
    use super::support::frontend::Frontend;
    use super::support::{have_tool, http};

    #[test]
    fn axum_at_the_site_root() {
        check("");
    }

    #[test]
    fn axum_in_a_subdirectory() {
        check("/sub");
    }

    fn check(dir: &str) {
        if !have_tool("apache2") {
            return;
        }
        let fe = Frontend::apache_htaccess("axum", dir);
        let mount = format!("{dir}/app.fcgi");
        // Every path goes to the application, which sees it below its mount.
        let res = http::get(fe.port, &format!("{dir}/where"));
        assert_eq!(res.status, 200, "{}\n{}", res.text(), fe.error_log_text());
        assert_eq!(res.text(), format!("path /where mount {mount}\n"));
        let res = http::get(fe.port, &format!("{dir}/hello/you?greeting=Hi"));
        assert_eq!(res.text(), "Hi, you!\n");
        assert_eq!(http::get(fe.port, &format!("{dir}/")).status, 200);
        assert_eq!(
            http::get(fe.port, &format!("{dir}/nothing/here")).status,
            404
        );
        // Links made from the mount point reach the application too.
        let res = http::get(fe.port, &format!("{mount}/where"));
        assert_eq!(res.text(), format!("path /where mount {mount}\n"));
        // A form posted through the rewrite.
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        let body = b"text=shared+hosting";
        let res = http::request_with(
            fe.port,
            "POST",
            &format!("{dir}/notes"),
            &form,
            Some((body.len() as u64, &mut &body[..])),
        )
        .unwrap();
        assert_eq!(res.status, 303, "{}", res.text());
        assert_eq!(res.header("Location"), Some(&*format!("{mount}/")));
        let page = http::get(fe.port, &format!("{dir}/")).text();
        assert!(page.contains("<li>shared hosting</li>"), "{page}");
        // An existing file is served as it is, not by the application.
        let css = fe.app.parent().unwrap().join("style.css");
        std::fs::write(&css, "body { color: teal }\n").unwrap();
        let res = http::get(fe.port, &format!("{dir}/style.css"));
        assert_eq!(res.text(), "body { color: teal }\n");
        fe.check_stop_leaves_no_app();
    }
}
