//! `Nginx`: a real nginx master + workers on a free 127.0.0.1 port, with the locations the tests
//! need, stopped on drop. It owns a temp dir holding its config, docroot, logs and pid file, and
//! counts the server's own view of the traffic (`stub_status`) net of its own probes.
//!
//! It refuses to touch the system's nginx (config, logs, port 80): everything lives in the temp dir.

use std::cell::Cell;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::raw_http;

const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of `/big`.
pub const BIG_BYTES: usize = 1 << 20;
/// Body of `/` (index.html).
pub const INDEX_BODY: &str = "hello from nginx\n";
/// `/gzip.txt` is this line `GZIP_REPEAT` times, gzipped when the client offers gzip.
pub const GZIP_BODY: &str = "compress me, nginx\n";
pub const GZIP_REPEAT: usize = 500;

/// How to run nginx. `Default` is what the tests use.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    pub worker_processes: usize,
    /// Requests nginx serves on one connection before closing it (nginx's default is 1000).
    pub keepalive_requests: u64,
    pub access_log: bool,
    /// Launch under `taskset -c CPU` (benches pin the server away from the client).
    pub pin_cpu: Option<usize>,
    /// Seconds nginx keeps an idle connection: `keepalive_timeout` between requests and
    /// `client_header_timeout` before the first one.
    pub idle_timeout_s: u64,
    /// A cleartext HTTP/2 listener (prior knowledge, `listen … http2`) on its own port
    /// (`h2c_url`); the plain one keeps serving HTTP/1.1 and the `stub_status` probes.
    pub h2c: bool,
    /// Listen here instead of a free port on 127.0.0.1 (several servers on one port, one
    /// loopback address each).
    pub bind: Option<SocketAddr>,
}

impl Default for NginxConfig {
    fn default() -> Self {
        Self {
            worker_processes: 1,
            keepalive_requests: 1000,
            access_log: false,
            pin_cpu: None,
            idle_timeout_s: 65,
            h2c: false,
            bind: None,
        }
    }
}

/// A TLS listener on its own port beside the plain one (which keeps serving the harness's
/// `stub_status` probes), with the same locations.
#[derive(Debug, Clone)]
pub struct NginxTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundle for client certificates: set, nginx requires one (`ssl_verify_client on`).
    pub client_ca: Option<PathBuf>,
    /// `ssl_protocols`. nginx 1.22 leaves TLS 1.3 out of its default, so it is named here.
    pub protocols: String,
    /// `ssl_reject_handshake on`: every handshake ends in an `unrecognized_name` alert.
    pub reject_handshake: bool,
    /// `listen … ssl http2`: ALPN offers `h2` beside `http/1.1`.
    pub http2: bool,
}

impl NginxTls {
    /// TLS 1.2 and 1.3 with this certificate and key, no client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            protocols: "TLSv1.2 TLSv1.3".into(),
            reject_handshake: false,
            http2: false,
        }
    }
}

/// nginx's `stub_status` counters, net of the requests and connections this harness made itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubStatus {
    pub active: u64,
    pub accepts: u64,
    pub handled: u64,
    pub requests: u64,
}

/// A running nginx; dropping it stops the master and its workers.
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    h2c_addr: Option<SocketAddr>,
    dir: tempfile::TempDir,
    /// Connections and requests of our own `stub_status` probes, subtracted from what nginx reports.
    own_accepts: Cell<u64>,
    own_requests: Cell<u64>,
}

impl Nginx {
    /// nginx with the default configuration.
    pub fn start() -> Result<Self> {
        Self::start_with(NginxConfig::default())
    }

    pub fn start_with(config: NginxConfig) -> Result<Self> {
        Self::start_inner(&config, None)
    }

    /// nginx with a TLS listener too (`tls_addr`); the plain one stays on `addr`.
    pub fn start_tls(config: NginxConfig, tls: NginxTls) -> Result<Self> {
        Self::start_inner(&config, Some(&tls))
    }

    fn start_inner(config: &NginxConfig, tls: Option<&NginxTls>) -> Result<Self> {
        let nginx = find_nginx()?;
        // The port is picked by the OS and released before nginx binds it: retry if taken meanwhile.
        let mut last_err = None;
        for _ in 0..3 {
            match Self::start_once(&nginx, config, tls) {
                Ok(server) => return Ok(server),
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("nginx did not start")))
    }

    fn start_once(nginx: &Path, config: &NginxConfig, tls: Option<&NginxTls>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("testbed-nginx-")
            .tempdir()?;
        let addr = config
            .bind
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, crate::free_port())));
        let tls = tls.map(|t| {
            (
                t,
                SocketAddr::from((Ipv4Addr::LOCALHOST, crate::free_port())),
            )
        });
        let h2c = config
            .h2c
            .then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, crate::free_port())));
        write_tree(dir.path(), config, addr, tls, h2c)?;
        let stderr = fs::File::create(dir.path().join("stderr.log"))?;
        let mut cmd = match config.pin_cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(nginx);
                cmd
            }
            None => Command::new(nginx),
        };
        // `-e` keeps even the errors logged before the config is read out of /var/log/nginx.
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", nginx.display()))?;
        let mut server = Nginx {
            child,
            addr,
            tls_addr: tls.map(|(_, a)| a),
            h2c_addr: h2c,
            dir,
            own_accepts: Cell::new(0),
            own_requests: Cell::new(0),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until a worker answers `stub_status` (a connect alone only proves the master bound).
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("nginx exited during startup ({status}): {}", self.logs());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                // That probe connection counts as an accept once a worker takes it.
                self.own_accepts.set(self.own_accepts.get() + 1);
                if self.stub_status().is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx not ready on {} after {START_TIMEOUT:?}: {}",
                    self.addr,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS listener's address. Panics if nginx was not started with `start_tls`.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
            .expect("nginx was started without TLS: use Nginx::start_tls")
    }

    /// `https://127.0.0.1:PORT{path}` on the TLS listener; `path` starts with `/`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.tls_addr())
    }

    /// `http://127.0.0.1:PORT{path}` on the HTTP/2 (h2c) listener. Panics without `h2c`.
    pub fn h2c_url(&self, path: &str) -> String {
        let addr = self
            .h2c_addr
            .expect("nginx was started without h2c: set NginxConfig::h2c");
        format!("http://{addr}{path}")
    }

    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's counters, net of this harness's own probes (including this one).
    pub fn stub_status(&self) -> Result<StubStatus> {
        self.own_accepts.set(self.own_accepts.get() + 1);
        self.own_requests.set(self.own_requests.get() + 1);
        let response = raw_http::request(self.addr, "GET", "/stub_status", &[], b"")?;
        if response.status != 200 {
            bail!(
                "stub_status answered {}: {}",
                response.status,
                response.body_text()
            );
        }
        let raw = parse_stub_status(&response.body_text())?;
        Ok(StubStatus {
            active: raw.active.saturating_sub(1),
            accepts: raw.accepts.saturating_sub(self.own_accepts.get()),
            handled: raw.handled.saturating_sub(self.own_accepts.get()),
            requests: raw.requests.saturating_sub(self.own_requests.get()),
        })
    }

    /// Requests nginx has received from others than this harness.
    pub fn requests(&self) -> Result<u64> {
        Ok(self.stub_status()?.requests)
    }

    /// Connections nginx has accepted from others than this harness.
    pub fn accepts(&self) -> Result<u64> {
        Ok(self.stub_status()?.accepts)
    }

    /// stderr and error.log, for failure messages.
    pub fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "stderr: {:?}; error.log: {:?}",
            read("stderr.log"),
            read("error.log")
        )
    }

    fn signal(pid: u32, signal: &str) {
        // A failed kill means the process is already gone: nothing to do.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let master = self.child.id();
        let workers = children(master);
        // TERM is nginx's fast shutdown: it does not wait for clients' keep-alive connections.
        Self::signal(master, "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Workers of a SIGKILLed master keep serving: kill them by pid too.
        for worker in workers {
            Self::signal(worker, "KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_nginx() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        return Ok(PathBuf::from(path));
    }
    let candidates = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .iter()
    .map(PathBuf::from)
    .chain(candidates)
    .find(|p| p.is_file())
    .context(
        "nginx not found (looked in /usr/sbin and PATH): run `scripts/test.sh`, which installs it",
    )
}

/// Pids of `pid`'s children (nginx's workers), from /proc.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn parse_stub_status(text: &str) -> Result<StubStatus> {
    // Active connections: 1
    // server accepts handled requests
    //  10 10 12
    // Reading: 0 Writing: 1 Waiting: 0
    let mut lines = text.lines();
    let active = lines
        .next()
        .and_then(|l| l.strip_prefix("Active connections:"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("stub_status: no active connections line in {text:?}"))?;
    let counters: Vec<u64> = lines
        .nth(1)
        .map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [accepts, handled, requests] = counters[..] else {
        bail!("stub_status: no accepts/handled/requests line in {text:?}");
    };
    Ok(StubStatus {
        active,
        accepts,
        handled,
        requests,
    })
}

/// Writes nginx.conf and the docroot. Directories are world-readable because nginx's workers
/// drop to `nobody` when the tests run as root.
fn write_tree(
    dir: &Path,
    config: &NginxConfig,
    addr: SocketAddr,
    tls: Option<(&NginxTls, SocketAddr)>,
    h2c: Option<SocketAddr>,
) -> Result<()> {
    let html = dir.join("html");
    fs::create_dir_all(&html)?;
    fs::create_dir_all(dir.join("tmp"))?;
    for d in [dir, html.as_path(), dir.join("tmp").as_path()] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
    }
    fs::write(html.join("index.html"), INDEX_BODY)?;
    fs::write(html.join("cacheable.txt"), "cache me\n")?;
    fs::write(html.join("close"), "closing\n")?;
    fs::write(html.join("gzip.txt"), GZIP_BODY.repeat(GZIP_REPEAT))?;
    let big: Vec<u8> = (0..BIG_BYTES).map(|i| b'a' + (i % 26) as u8).collect();
    fs::write(html.join("big"), big)?;
    // SSI output has no length known in advance, so nginx sends it chunked to HTTP/1.1 clients.
    fs::write(
        html.join("chunked"),
        "chunked response, part one\n<!--# echo var=\"no_such_var\" default=\"from ssi\" -->\npart two\n",
    )?;
    fs::write(
        dir.join("nginx.conf"),
        render_conf(dir, config, addr, tls, h2c),
    )?;
    Ok(())
}

fn render_conf(
    dir: &Path,
    config: &NginxConfig,
    addr: SocketAddr,
    tls: Option<(&NginxTls, SocketAddr)>,
    h2c: Option<SocketAddr>,
) -> String {
    let d = dir.display();
    let h2c = h2c.map_or_else(String::new, |a| {
        format!("\n        listen {a} http2 backlog=4096;")
    });
    let tls = tls.map_or_else(String::new, |(tls, tls_addr)| render_tls(tls, tls_addr));
    let access_log = if config.access_log {
        format!("access_log {d}/access.log;")
    } else {
        "access_log off;".into()
    };
    format!(
        r#"# Written by testbed::Nginx; everything lives under {d}.
worker_processes {workers};
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 16384;

events {{
    worker_connections 16000;
}}

http {{
    types {{
        text/html html;
        text/plain txt;
    }}
    default_type application/octet-stream;
    {access_log}
    sendfile on;
    keepalive_requests {keepalive_requests};
    keepalive_timeout {idle}s;
    client_header_timeout {idle}s;
    # A far-future If-Modified-Since gets 304 (nginx's default `exact` wants the exact mtime).
    if_modified_since before;
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;

    server {{
        listen {addr} backlog=4096;{h2c}
        root {d}/html;{tls}

        location / {{
            index index.html;
        }}
        location = /big {{ }}
        location = /cacheable.txt {{ }}
        location = /empty {{
            return 204;
        }}
        location = /err {{
            return 500;
        }}
        location = /chunked {{
            ssi on;
            ssi_types *;
        }}
        location = /close {{
            keepalive_timeout 0;
        }}
        location = /gzip.txt {{
            gzip on;
            gzip_types text/plain;
            gzip_min_length 1;
        }}
        # Cookies and a redirect, for the client's jar and redirect following.
        location = /set-cookie {{
            add_header Set-Cookie "ngx=c1; Path=/" always;
            return 200 "set\n";
        }}
        location = /cookie {{
            default_type text/plain;
            return 200 "cookie=[$http_cookie]\n";
        }}
        location = /moved {{
            absolute_redirect off;
            return 302 /cookie;
        }}
        location = /stub_status {{
            stub_status;
        }}
    }}
}}
"#,
        workers = config.worker_processes,
        keepalive_requests = config.keepalive_requests,
        idle = config.idle_timeout_s,
    )
}

/// The TLS part of the server block: a second listener and its certificate. The session cache
/// lets TLS 1.2 clients resume by id; tickets (TLS 1.2 and 1.3) are on by default.
fn render_tls(tls: &NginxTls, tls_addr: SocketAddr) -> String {
    let mut extra = tls.client_ca.as_ref().map_or_else(String::new, |ca| {
        format!(
            "\n        ssl_client_certificate {};\n        ssl_verify_client on;",
            ca.display()
        )
    });
    if tls.reject_handshake {
        extra.push_str("\n        ssl_reject_handshake on;");
    }
    format!(
        r#"

        listen {tls_addr} ssl{http2} backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        ssl_session_cache shared:testbed_tls:1m;{extra}"#,
        cert = tls.cert.display(),
        key = tls.key.display(),
        protocols = tls.protocols,
        http2 = if tls.http2 { " http2" } else { "" },
    )
}
