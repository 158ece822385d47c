//! Real web servers in front of an example application (`examples/echo`,
//! or the same on an adapter: `http_echo`, `axum_echo`), each on a
//! loopback port and in a temp dir of its own, every process stopped by
//! its pid.
//!
//! The site configuration comes from `deploy/`, the files users copy; only
//! their ports and paths are replaced here.

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TempDir, eventually, example, tool_path};

/// A child process, stopped (SIGTERM, then SIGKILL) and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn stop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        signal(self.0.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A deploy/ file's text.
pub fn deploy(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces `from` in `text`, insisting that it is there.
pub fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found in the config");
    text.replace(from, to)
}

/// Pids of running processes whose executable is `exe`.
pub fn pids_of(exe: &Path) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let link = std::fs::read_link(format!("/proc/{pid}/exe"));
            link.is_ok_and(|p| p == exe)
        })
        .filter(|pid| !status(*pid, "State:").is_some_and(|s| s.starts_with('Z')))
        .collect()
}

/// A line's value from `/proc/PID/status`.
pub fn status(pid: u32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_owned())
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status(pid, "VmHWM:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// The content of the static file that the authorizer configs guard.
pub const SECRET: &str = "static secret\n";

/// Where Debian's apache2 keeps its modules.
const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

/// A web server under test, with the application it fronts.
pub struct Frontend {
    pub port: u16,
    pub dir: TempDir,
    /// The application binary, a copy of the example private to this test.
    pub app: PathBuf,
    pub error_log: PathBuf,
    pub server: Proc,
    /// The application, when the test starts it (nginx); spawning front
    /// ends start it themselves.
    pub app_proc: Option<Proc>,
}

impl Frontend {
    /// A temp dir with a private copy of the example `app` in it.
    fn workdir(tag: &str, app_name: &str) -> (TempDir, PathBuf) {
        let dir = TempDir::new(tag);
        let app = dir.path("app.fcgi");
        // Copied by `cp`, not by this process: a file this process holds
        // open for writing is inherited by any child another test thread
        // forks meanwhile, and exec'ing the copy then fails with ETXTBSY.
        let copied = Command::new("cp")
            .arg(example(app_name))
            .arg(&app)
            .status()
            .unwrap();
        assert!(copied.success(), "cp {} failed", app.display());
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, app)
    }

    pub fn error_log_text(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }

    /// Pids of the application's processes.
    pub fn app_pids(&self) -> Vec<u32> {
        pids_of(&self.app)
    }

    /// nginx with `site` (a deploy/ file's text, its socket and port
    /// already pointed here by the caller via [`Frontend::nginx_site`]).
    pub fn nginx(app_name: &str, site_file: &str, edit: impl Fn(String) -> String) -> Frontend {
        Frontend::nginx_with_env(app_name, site_file, edit, &[])
    }

    /// [`Frontend::nginx`], the application started with `env` added.
    pub fn nginx_with_env(
        app_name: &str,
        site_file: &str,
        edit: impl Fn(String) -> String,
        env: &[(&str, &str)],
    ) -> Frontend {
        let (dir, app) = Frontend::workdir("nginx", app_name);
        let port = free_port();
        let sock = dir.path("app.sock");
        let site = replace(
            &deploy(site_file),
            "listen 8080;",
            &format!("listen 127.0.0.1:{port};"),
        );
        let site = replace(
            &site,
            "unix:/run/yourapplication/fcgi.sock",
            &format!("unix:{}", sock.display()),
        );
        let site = edit(site);
        std::fs::copy("/etc/nginx/fastcgi_params", dir.path("fastcgi_params")).unwrap();
        let d = dir.0.display();
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n\
             fastcgi_temp_path {d}/fastcgi;\n proxy_temp_path {d}/proxy;\n\
             uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{site}\n}}\n"
        );
        std::fs::write(dir.path("nginx.conf"), conf).unwrap();
        let app_proc = Frontend::start_app(&dir, &app, &sock, env);
        let (prefix, conf) = (dir.0.clone(), dir.path("nginx.conf"));
        let args = [
            OsStr::new("-p"),
            prefix.as_os_str(),
            OsStr::new("-c"),
            conf.as_os_str(),
        ];
        let cmd = Frontend::command("nginx", &args);
        Frontend::launch((dir, app), port, cmd, Some(app_proc), &sock)
    }

    /// The application listening on `sock`, started by the test as an
    /// init system or an operator would start it.
    fn start_app(dir: &TempDir, app: &Path, sock: &Path, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(app);
        cmd.arg(sock)
            .env("FCGI_WORKERS", "8")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(dir.path("app.log")).unwrap());
        Proc(cmd.spawn().unwrap())
    }

    /// What the application wrote to its standard error (when the test
    /// started it).
    pub fn app_log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path("app.log")).unwrap_or_default()
    }

    /// lighttpd spawning the application (bin-path, socket on fd 0).
    pub fn lighttpd(app_name: &str, site_file: &str) -> Frontend {
        let workdir = Frontend::workdir("lighttpd", app_name);
        Frontend::lighttpd_site(workdir, deploy(site_file))
    }

    /// [`Frontend::lighttpd`] with `extra` added to the site's config.
    pub fn lighttpd_with(app_name: &str, site_file: &str, extra: &str) -> Frontend {
        let workdir = Frontend::workdir("lighttpd", app_name);
        Frontend::lighttpd_site(workdir, deploy(site_file) + extra)
    }

    /// lighttpd with deploy/lighttpd-authorizer.conf, the example `name`
    /// as the application (the authorizer and the responder), and under
    /// its docroot `yourapplication/hello.txt` (a static file) and an
    /// empty `yourapplication/app` (so that lighttpd finds the responder).
    pub fn lighttpd_authorizer(name: &str) -> Frontend {
        let (dir, app) = Frontend::workdir("lighttpd-auth", name);
        let docroot = dir.path("authroot");
        std::fs::create_dir_all(docroot.join("yourapplication")).unwrap();
        std::fs::write(docroot.join("yourapplication/hello.txt"), SECRET).unwrap();
        std::fs::write(docroot.join("yourapplication/app"), "").unwrap();
        let site = replace(
            &deploy("lighttpd-authorizer.conf"),
            "/run/lighttpd/yourapplication-auth.sock",
            dir.path("auth.sock").to_str().unwrap(),
        );
        let site = replace(
            &site,
            "/srv/yourapplication/htdocs",
            docroot.to_str().unwrap(),
        );
        Frontend::lighttpd_site((dir, app), site)
    }

    /// lighttpd with `site` (a deploy/ file's text) spawning `app`.
    fn lighttpd_site((dir, app): (TempDir, PathBuf), site: String) -> Frontend {
        let port = free_port();
        let site = replace(
            &site,
            "/run/lighttpd/yourapplication.sock",
            dir.path("app.sock").to_str().unwrap(),
        );
        let site = replace(
            &site,
            "/srv/yourapplication/app.fcgi",
            app.to_str().unwrap(),
        );
        std::fs::create_dir_all(dir.path("htdocs")).unwrap();
        std::fs::create_dir_all(dir.path("uploads")).unwrap();
        let d = dir.0.display();
        let conf = format!(
            "server.document-root = \"{d}/htdocs\"\nserver.bind = \"127.0.0.1\"\n\
             server.port = {port}\nserver.errorlog = \"{d}/error.log\"\n\
             server.upload-dirs = ( \"{d}/uploads\" )\nserver.max-request-size = 600000\n\
             {site}\n"
        );
        std::fs::write(dir.path("lighttpd.conf"), conf).unwrap();
        let conf = dir.path("lighttpd.conf");
        let args = [OsStr::new("-D"), OsStr::new("-f"), conf.as_os_str()];
        let cmd = Frontend::command("lighttpd", &args);
        Frontend::launch((dir, app), port, cmd, None, Path::new(""))
    }

    /// Apache 2.4 with mod_fcgid spawning the application.
    pub fn apache_fcgid(app_name: &str) -> Frontend {
        Frontend::apache_fcgid_site("apache-fcgid.conf", app_name, "", "")
    }

    /// [`Frontend::apache_fcgid`] with `extra` (which loads any further
    /// module it needs) added to the config.
    pub fn apache_fcgid_with(app_name: &str, extra: &str) -> Frontend {
        Frontend::apache_fcgid_site("apache-fcgid.conf", app_name, "", extra)
    }

    /// Apache 2.4 with mod_fcgid and deploy/apache-fcgid-authorizer.conf,
    /// the example `name` as the application (the access checker and the
    /// responder), and `yourapplication/hello.txt` (a static file) under
    /// the document root. The application's directory (the config makes
    /// everything in it a FastCGI program) is `srv/`, apart from the
    /// document root, as on a real host.
    pub fn apache_fcgid_authorizer(name: &str) -> Frontend {
        let conf = "apache-fcgid-authorizer.conf";
        let fe = Frontend::apache_fcgid_site(conf, name, "srv", "");
        let static_dir = fe.dir.path("htdocs/yourapplication");
        std::fs::create_dir_all(&static_dir).unwrap();
        std::fs::write(static_dir.join("hello.txt"), SECRET).unwrap();
        fe
    }

    /// Apache 2.4 with mod_fcgid, deploy/`site_file`, spawning the
    /// example `name` from the subdirectory `sub` of the temp dir (`""`:
    /// the temp dir itself), `extra` added to the config.
    fn apache_fcgid_site(site_file: &str, name: &str, sub: &str, extra: &str) -> Frontend {
        let (dir, app) = Frontend::workdir("apache", name);
        let app_dir = dir.0.join(sub);
        std::fs::create_dir_all(&app_dir).unwrap();
        let moved = app_dir.join("app.fcgi");
        std::fs::rename(&app, &moved).unwrap();
        let app = moved;
        let port = free_port();
        let site = replace(
            &deploy(site_file),
            "/srv/yourapplication/app.fcgi",
            app.to_str().unwrap(),
        );
        let site = replace(
            &site,
            "<Directory /srv/yourapplication>",
            &format!("<Directory {}>", app_dir.display()),
        );
        std::fs::create_dir_all(dir.path("fcgid")).unwrap();
        // The server's user (www-data) runs the application and needs this.
        std::fs::set_permissions(dir.path("fcgid"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let d = dir.0.display();
        let site = format!(
            "LoadModule alias_module {APACHE_MODULES}/mod_alias.so\n\
             LoadModule fcgid_module {APACHE_MODULES}/mod_fcgid.so\n\
             FcgidIPCDir {d}/fcgid\nFcgidProcessTableFile {d}/fcgid/shm\n{site}\n{extra}"
        );
        let args = Frontend::apache_conf(&dir, port, &site);
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let cmd = Frontend::command("apache2", &args);
        Frontend::launch((dir, app), port, cmd, None, Path::new(""))
    }

    /// Apache 2.4 with mod_fcgid and `AllowOverride`, as on shared hosting:
    /// the document root's directory `subdir` (`""`: the root itself)
    /// holds the application as `app.fcgi` and deploy/.htaccess.
    pub fn apache_htaccess(app_name: &str, subdir: &str) -> Frontend {
        let (dir, copy) = Frontend::workdir("apache-htaccess", app_name);
        let site_dir = dir.path("htdocs").join(subdir.trim_start_matches('/'));
        std::fs::create_dir_all(&site_dir).unwrap();
        let app = site_dir.join("app.fcgi");
        std::fs::rename(&copy, &app).unwrap();
        std::fs::write(site_dir.join(".htaccess"), deploy(".htaccess")).unwrap();
        for d in [dir.path("htdocs"), site_dir.clone()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::create_dir_all(dir.path("fcgid")).unwrap();
        std::fs::set_permissions(dir.path("fcgid"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let port = free_port();
        let (m, d) = (APACHE_MODULES, dir.0.display());
        let site = format!(
            "LoadModule mime_module {m}/mod_mime.so\n\
             LoadModule rewrite_module {m}/mod_rewrite.so\n\
             LoadModule fcgid_module {m}/mod_fcgid.so\n\
             TypesConfig /etc/mime.types\n\
             FcgidIPCDir {d}/fcgid\nFcgidProcessTableFile {d}/fcgid/shm\n\
             <Directory {d}/htdocs>\n    AllowOverride FileInfo Options\n    \
             Require all granted\n</Directory>\n"
        );
        let args = Frontend::apache_conf(&dir, port, &site);
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let cmd = Frontend::command("apache2", &args);
        Frontend::launch((dir, app), port, cmd, None, Path::new(""))
    }

    /// Apache 2.4 with mod_proxy_fcgi in front of the application, which
    /// listens on a unix socket whose group is Apache's user's.
    pub fn apache_proxy_fcgi(app_name: &str, site_file: &str) -> Frontend {
        let (dir, app) = Frontend::workdir("apache-proxy", app_name);
        let port = free_port();
        let sock = dir.path("app.sock");
        let site = replace(
            &deploy(site_file),
            "/run/yourapplication/fcgi.sock",
            sock.to_str().unwrap(),
        );
        let app_proc = Frontend::start_app(&dir, &app, &sock, &[]);
        assert!(
            eventually(Duration::from_secs(10), || sock.exists()),
            "the application did not create {}",
            sock.display()
        );
        // As the deploy file says: www-data in the socket's group (mode 0660).
        let chgrp = Command::new("chgrp").arg("www-data").arg(&sock).status();
        assert!(chgrp.is_ok_and(|s| s.success()), "chgrp www-data failed");
        let site = format!(
            "LoadModule proxy_module {APACHE_MODULES}/mod_proxy.so\n\
             LoadModule proxy_fcgi_module {APACHE_MODULES}/mod_proxy_fcgi.so\n{site}"
        );
        let args = Frontend::apache_conf(&dir, port, &site);
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let cmd = Frontend::command("apache2", &args);
        Frontend::launch((dir, app), port, cmd, Some(app_proc), &sock)
    }

    /// Caddy in front of the application, which listens on a unix socket.
    /// Caddy's log (its standard error) is the error log.
    pub fn caddy(app_name: &str, site_file: &str) -> Frontend {
        let (dir, app) = Frontend::workdir("caddy", app_name);
        let port = free_port();
        let sock = dir.path("app.sock");
        let site = replace(
            &deploy(site_file),
            ":8080 {",
            &format!(":{port} {{\n\tbind 127.0.0.1"),
        );
        let site = replace(
            &site,
            "/run/yourapplication/fcgi.sock",
            sock.to_str().unwrap(),
        );
        // No admin endpoint: tests run side by side, and it has one port.
        let conf = format!("{{\n\tadmin off\n}}\n\n{site}");
        std::fs::write(dir.path("Caddyfile"), conf).unwrap();
        let app_proc = Frontend::start_app(&dir, &app, &sock, &[]);
        let conf = dir.path("Caddyfile");
        let args = [
            OsStr::new("run"),
            OsStr::new("--adapter"),
            OsStr::new("caddyfile"),
            OsStr::new("--config"),
            conf.as_os_str(),
        ];
        let mut cmd = Frontend::command("caddy", &args);
        let log = std::fs::File::create(dir.path("error.log")).unwrap();
        cmd.env("HOME", &dir.0)
            .env("XDG_DATA_HOME", &dir.0)
            .env("XDG_CONFIG_HOME", &dir.0)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        Frontend::launch((dir, app), port, cmd, Some(app_proc), &sock)
    }

    /// h2o spawning the application (`fastcgi.spawn`, socket on fd 0).
    pub fn h2o(app_name: &str, site_file: &str) -> Frontend {
        let (dir, app) = Frontend::workdir("h2o", app_name);
        let port = free_port();
        let site = replace(
            &deploy(site_file),
            "listen: 8080",
            &format!("listen:\n  host: 127.0.0.1\n  port: {port}"),
        );
        let site = replace(
            &site,
            "/srv/yourapplication/app.fcgi",
            app.to_str().unwrap(),
        );
        let log = dir.path("error.log");
        // h2o writes its log after it has become www-data, which runs the
        // application too.
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let conf = format!("error-log: {}\n{site}", log.display());
        std::fs::write(dir.path("h2o.conf"), conf).unwrap();
        let conf = dir.path("h2o.conf");
        let cmd = Frontend::command("h2o", &[OsStr::new("-c"), conf.as_os_str()]);
        Frontend::launch((dir, app), port, cmd, None, Path::new(""))
    }

    /// Writes an Apache config around `site` (which loads its own
    /// modules); returns the arguments that start Apache with it.
    fn apache_conf(dir: &TempDir, port: u16, site: &str) -> Vec<std::ffi::OsString> {
        for sub in ["htdocs", "run"] {
            std::fs::create_dir_all(dir.path(sub)).unwrap();
        }
        // Apache's user (www-data) must reach the application and its socket.
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (m, d) = (APACHE_MODULES, dir.0.display());
        let conf = format!(
            "ServerRoot \"{d}\"\nServerName localhost\nListen 127.0.0.1:{port}\n\
             PidFile {d}/run/httpd.pid\nDefaultRuntimeDir {d}/run\n\
             ErrorLog {d}/error.log\nLogLevel info\n\
             LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
             LoadModule authz_core_module {m}/mod_authz_core.so\n\
             User www-data\nGroup www-data\nDocumentRoot {d}/htdocs\n\
             {site}\n"
        );
        let path = dir.path("httpd.conf");
        std::fs::write(&path, conf).unwrap();
        vec!["-f".into(), path.into_os_string(), "-DFOREGROUND".into()]
    }

    /// The command that starts the installed `tool` with `args`.
    fn command(tool: &str, args: &[&OsStr]) -> Command {
        let mut cmd = Command::new(tool_path(tool).unwrap());
        cmd.args(args);
        cmd
    }

    /// Starts the front end with `cmd` (its config written) and waits until
    /// its port answers and, when given, the application's socket exists.
    fn launch(
        (dir, app): (TempDir, PathBuf),
        port: u16,
        mut cmd: Command,
        app_proc: Option<Proc>,
        sock: &Path,
    ) -> Frontend {
        let server = Proc(cmd.stdin(Stdio::null()).spawn().unwrap());
        let error_log = dir.path("error.log");
        let fe = Frontend {
            port,
            dir,
            app,
            error_log,
            server,
            app_proc,
        };
        fe.wait_ready(sock);
        fe
    }

    fn wait_ready(&self, sock: &Path) {
        let ok = eventually(Duration::from_secs(15), || {
            (sock.as_os_str().is_empty() || sock.exists())
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(
            ok,
            "front end did not start; its log:\n{}",
            self.error_log_text()
        );
    }
}

use super::echo;
use super::http::{self, Pattern};

/// A line `NAME=VALUE` of the echo application's params listing.
fn param_line<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    listing
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

impl Frontend {
    /// GET below the mount: the params the application sees.
    pub fn check_params(&self, prefix: &str, script_name: &str) {
        let res = http::get(self.port, &format!("{prefix}/some/path?x=1&y=2"));
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.header("Content-Type"), Some("text/plain"));
        let text = res.text();
        assert_eq!(param_line(&text, "REQUEST_METHOD"), Some("GET"), "{text}");
        assert_eq!(param_line(&text, "QUERY_STRING"), Some("x=1&y=2"), "{text}");
        assert_eq!(
            param_line(&text, "SCRIPT_NAME"),
            Some(script_name),
            "{text}"
        );
        assert_eq!(param_line(&text, "PATH_INFO"), Some("/some/path"), "{text}");
    }

    /// The checks every front end and mount gets: params, a POST echoed,
    /// status and header, stderr in the error log, a panic then a success.
    pub fn check_basics(&self, prefix: &str, script_name: &str, post_size: usize) {
        self.check_params(prefix, script_name);
        self.check_post_echo(prefix, post_size);
        self.check_status_and_header(prefix);
        self.check_stderr(prefix);
        self.check_panic(prefix);
    }

    /// Everything the issue asks of every front end and mount: the basics,
    /// a 50 MiB download, a 256 MiB upload with flat memory, concurrency.
    pub fn check_all(&self, prefix: &str, script_name: &str) {
        self.check_basics(prefix, script_name, 4 << 20);
        self.check_download(prefix, 50 << 20);
        self.check_upload(prefix, 256 << 20);
        self.check_concurrency(prefix);
    }

    pub fn check_post_echo(&self, prefix: &str, size: usize) {
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let res = http::post(self.port, &format!("{prefix}/echo"), &body);
        assert_eq!(res.status, 200);
        assert_eq!(res.body.len(), size);
        assert!(res.body == body, "the POST came back altered");
    }

    pub fn check_status_and_header(&self, prefix: &str) {
        let res = http::get(
            self.port,
            &format!("{prefix}/?status=418&header=X-Echo:yes"),
        );
        assert_eq!(res.status, 418);
        assert_eq!(res.header("X-Echo"), Some("yes"));
        let res = http::get(self.port, &format!("{prefix}/?status=404"));
        assert_eq!(res.status, 404);
    }

    /// Text the application writes to FCGI_STDERR reaches the error log.
    pub fn check_stderr(&self, prefix: &str) {
        let token = format!("stderr-token-{}", self.port);
        let res = http::get(self.port, &format!("{prefix}/?stderr={token}"));
        assert_eq!(res.status, 200);
        let found = eventually(Duration::from_secs(5), || {
            self.error_log_text().contains(&token)
        });
        assert!(
            found,
            "{token} not in the error log:\n{}",
            self.error_log_text()
        );
    }

    pub fn check_panic(&self, prefix: &str) {
        let res = http::get(self.port, &format!("{prefix}/?panic=1"));
        assert_eq!(res.status, 500);
        let res = http::get(self.port, &format!("{prefix}/?status=200"));
        assert_eq!(res.status, 200);
    }

    pub fn check_download(&self, prefix: &str, size: usize) {
        let res = http::get(self.port, &format!("{prefix}/?size={size}"));
        assert_eq!(res.status, 200);
        assert_eq!(res.body.len(), size);
        assert!(
            res.body
                .iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8)
        );
    }

    /// A large upload checked end to end by its digest, while the
    /// application's peak resident memory stays flat.
    pub fn check_upload(&self, prefix: &str, size: u64) {
        let pids = match &self.app_proc {
            Some(p) => vec![p.pid()],
            None => self.app_pids(),
        };
        assert!(!pids.is_empty(), "no application process found");
        let before: Vec<u64> = pids.iter().map(|&p| peak_rss_kib(p)).collect();
        let mut reader = Pattern::new(size);
        let path = format!("{prefix}/?digest=1");
        let res = http::request(self.port, "POST", &path, Some((size, &mut reader))).unwrap();
        assert_eq!(res.status, 200, "{}", res.text());
        let want = echo::digest(&mut Pattern::new(size)).unwrap().line();
        assert_eq!(res.text(), want);
        for (pid, before) in pids.iter().zip(before) {
            if std::fs::metadata(format!("/proc/{pid}")).is_err() {
                continue;
            }
            let after = peak_rss_kib(*pid);
            assert!(
                after < before + 32 * 1024,
                "peak RSS grew from {before} KiB to {after} KiB over a {size}-byte upload"
            );
        }
    }

    /// 50 requests that each sleep 200 ms, all at once, finish in well
    /// under the 10 s they would take one after another.
    pub fn check_concurrency(&self, prefix: &str) {
        let start = Instant::now();
        let threads: Vec<_> = (0..50)
            .map(|_| {
                let (port, path) = (self.port, format!("{prefix}/?sleep_ms=200"));
                std::thread::spawn(move || http::get(port, &path).status)
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 200);
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "50 concurrent requests took {took:?}"
        );
    }

    /// For spawning front ends: an application killed with SIGKILL is
    /// started again and serves.
    pub fn check_respawn(&self, prefix: &str) {
        let pids = self.app_pids();
        assert!(!pids.is_empty(), "no application process found");
        for pid in &pids {
            signal(*pid, "KILL");
        }
        let ok = eventually(Duration::from_secs(20), || {
            http::request(self.port, "GET", &format!("{prefix}/?status=200"), None)
                .is_ok_and(|r| r.status == 200)
        });
        assert!(
            ok,
            "not served again after SIGKILL:\n{}",
            self.error_log_text()
        );
        let now = self.app_pids();
        assert!(
            !now.is_empty() && now.iter().all(|p| !pids.contains(p)),
            "{pids:?} -> {now:?}"
        );
    }

    /// Stops the front end; no application process may be left behind.
    pub fn check_stop_leaves_no_app(mut self) {
        assert!(!self.app_pids().is_empty());
        self.server.stop();
        let gone = eventually(Duration::from_secs(10), || self.app_pids().is_empty());
        assert!(gone, "application processes left: {:?}", self.app_pids());
    }
}
