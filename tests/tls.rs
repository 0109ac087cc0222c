//! TLS client connections (`engine::net::tls`) against a real nginx with certificates made at test
//! time: keep-alive exchanges over TLS 1.2 and 1.3 on both monoio drivers, session resumption,
//! certificate and mTLS failures classified, `insecure_skip_verify`, and the memory an idle TLS
//! connection holds (dhat counts this binary's heap; nginx is another process).
//!
//! Every test holds `serial()`: the memory figure must not include another test's allocations.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::net::tls::{
    self, Alpn, ClientConfig, ServerName, Stream, TlsError, TlsOptions, TlsStream,
};
use engine::proto::http1::{ResponseDecoder, Step};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use testbed::{serial, Nginx, NginxConfig, NginxTls, Pki, NGINX_BIG_BYTES, NGINX_INDEX_BODY};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Bound on any one test's network part.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Driver {
    Uring,
    Legacy,
}

/// Runs `make()` to completion on a fresh monoio runtime of the given driver, bounded in time.
fn run<F: Future>(driver: Driver, make: impl FnOnce() -> F) -> F::Output {
    let bounded = async move {
        monoio::time::timeout(TEST_TIMEOUT, make())
            .await
            .expect("test body timed out")
    };
    match driver {
        // The uring driver, falling back to epoll where io_uring is unavailable (as shards do).
        Driver::Uring => monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .expect("build fusion runtime")
            .block_on(bounded),
        Driver::Legacy => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("build legacy runtime")
            .block_on(bounded),
    }
}

fn tls_nginx(pki: &Pki, protocols: &str, client_ca: bool) -> Nginx {
    let tls = NginxTls {
        protocols: protocols.into(),
        client_ca: client_ca.then(|| pki.ca.clone()),
        ..NginxTls::new(&pki.server_cert, &pki.server_key)
    };
    Nginx::start_tls(NginxConfig::default(), tls).expect("start nginx with TLS")
}

fn trusting(pki: &Pki) -> TlsOptions {
    TlsOptions {
        ca_file: Some(pki.ca.clone()),
        ..TlsOptions::default()
    }
}

fn client_config(opts: &TlsOptions) -> Arc<ClientConfig> {
    tls::client_config(opts).expect("client config")
}

fn localhost() -> ServerName<'static> {
    tls::server_name(&TlsOptions::default(), "127.0.0.1").expect("IP server name")
}

async fn open(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> Result<TlsStream, TlsError> {
    let tcp = TcpStream::connect_addr(addr).await?;
    tls::connect(tcp, config, name).await
}

fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

/// Writes a GET and reads its response the way the connection code does: owned buffers,
/// `write_all(Vec)` and `read(buf.slice_mut(len..cap))`.
async fn get<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    path: &str,
    buf: &mut Vec<u8>,
) -> io::Result<(u16, Vec<u8>)> {
    let (res, _) = stream.write_all(request(path)).await;
    res?;
    read_response(stream, buf).await
}

/// One response with the engine's decoder: `(status, body)`; bytes after it stay in `buf`.
async fn read_response<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> io::Result<(u16, Vec<u8>)> {
    let mut decoder = ResponseDecoder::new();
    let mut body = Vec::new();
    loop {
        if !buf.is_empty() {
            match decoder.decode(buf) {
                Ok(Step::Complete { consumed, body: b }) => {
                    body.extend_from_slice(&buf[b]);
                    buf.drain(..consumed);
                    let status = decoder.head().map_or(0, |h| h.status);
                    return Ok((status, body));
                }
                Ok(Step::Partial { consumed, body: b }) => {
                    body.extend_from_slice(&buf[b]);
                    buf.drain(..consumed);
                    if consumed > 0 && !buf.is_empty() {
                        continue;
                    }
                }
                Err(kind) => return Err(io::Error::other(format!("decode: {kind:?}"))),
            }
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().max(1024));
        }
        let owned = std::mem::take(buf);
        let (len, cap) = (owned.len(), owned.capacity());
        let (res, slice) = stream.read(owned.slice_mut(len..cap)).await;
        *buf = slice.into_inner();
        if res? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

fn protocol_name(stream: &TlsStream) -> String {
    format!("{:?}", stream.protocol_version())
}

/// The alert inside a TLS error, else a panic saying what came instead.
fn expect_alert(err: &TlsError) -> String {
    match err {
        TlsError::Alert(alert) => format!("{alert:?}"),
        other => panic!("expected a TLS alert, got {} ({other})", other.kind_name()),
    }
}

/// Keep-alive over one TLS connection: small and 1 MiB responses, reads into a small buffer
/// (plaintext that does not fit is kept for the next read), and a 20 KiB pipelined write
/// (several records), on both drivers and both TLS versions.
#[test]
fn keep_alive_exchanges_over_one_tls_connection() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    for (protocols, expected) in [("TLSv1.2", "TLSv1_2"), ("TLSv1.3", "TLSv1_3")] {
        let nginx = tls_nginx(&pki, protocols, false);
        for driver in [Driver::Uring, Driver::Legacy] {
            let before = nginx.requests().expect("stub_status");
            let sent = run(driver, || async {
                let config = client_config(&trusting(&pki));
                let mut stream = open(nginx.tls_addr(), &config, &localhost())
                    .await
                    .expect("handshake");
                assert_eq!(protocol_name(&stream), format!("Some({expected})"));
                assert_eq!(stream.alpn_protocol(), Some(&b"http/1.1"[..]));
                let mut buf = Vec::with_capacity(16 * 1024);
                for _ in 0..5 {
                    let (status, body) = get(&mut stream, "/", &mut buf).await.expect("GET /");
                    assert_eq!(
                        (status, body.as_slice()),
                        (200, NGINX_INDEX_BODY.as_bytes())
                    );
                }
                let (status, body) = get(&mut stream, "/big", &mut buf).await.expect("GET /big");
                assert_eq!((status, body.len()), (200, NGINX_BIG_BYTES));
                assert!(body
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == b'a' + (i % 26) as u8));
                // A 100-byte read buffer: every record overflows it.
                let mut small = Vec::with_capacity(100);
                let (status, body) = get(&mut stream, "/", &mut small).await.expect("small");
                assert_eq!(
                    (status, body.as_slice()),
                    (200, NGINX_INDEX_BODY.as_bytes())
                );
                // 500 pipelined requests in one write_all: ~20 KiB, more than one record.
                let pipelined: Vec<u8> = (0..500).flat_map(|_| request("/")).collect();
                assert!(pipelined.len() > 16 * 1024);
                let (res, _) = stream.write_all(pipelined).await;
                res.expect("pipelined write");
                for i in 0..500 {
                    let (status, body) = read_response(&mut stream, &mut buf)
                        .await
                        .unwrap_or_else(|e| panic!("pipelined response {i}: {e}"));
                    assert_eq!(
                        (status, body.as_slice()),
                        (200, NGINX_INDEX_BODY.as_bytes())
                    );
                }
                stream.shutdown().await.expect("close_notify and shutdown");
                5 + 1 + 1 + 500
            });
            // Count what nginx saw, not what the client believes it sent.
            let seen = nginx.requests().expect("stub_status") - before;
            assert_eq!(seen, sent, "{protocols} on {driver:?}");
        }
    }
}

/// A second connection with the same config resumes the first one's session; with resumption
/// off every handshake is full. TLS 1.3 tickets arrive after the handshake, so the first
/// connection makes a request before the second one connects.
#[test]
fn sessions_resume_per_config_unless_disabled() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    for protocols in ["TLSv1.2", "TLSv1.3"] {
        let nginx = tls_nginx(&pki, protocols, false);
        run(Driver::Uring, || async {
            for resumption in [true, false] {
                let config = client_config(&TlsOptions {
                    resumption,
                    ..trusting(&pki)
                });
                let mut buf = Vec::with_capacity(4096);
                let mut seen = Vec::new();
                for _ in 0..3 {
                    let mut stream = open(nginx.tls_addr(), &config, &localhost())
                        .await
                        .expect("handshake");
                    let (status, _) = get(&mut stream, "/", &mut buf).await.expect("GET /");
                    assert_eq!(status, 200);
                    seen.push(stream.resumed());
                }
                let expected = vec![false, resumption, resumption];
                assert_eq!(seen, expected, "{protocols}, resumption = {resumption}");
                // A new config (another shard) has its own, empty store.
                let other = client_config(&TlsOptions {
                    resumption,
                    ..trusting(&pki)
                });
                let stream = open(nginx.tls_addr(), &other, &localhost())
                    .await
                    .expect("handshake");
                assert!(!stream.resumed(), "{protocols}: a fresh config resumed");
            }
        });
    }
}

/// A server flight larger than a record (a long chain: the CA certificate repeated 100 times,
/// ~40 KiB of DER): the Certificate message is reassembled across three records, the buffer
/// grows past its initial size for the handshake and shrinks back after it.
#[test]
fn a_certificate_chain_larger_than_a_record_is_accepted() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    let dir = tempfile::tempdir().expect("temp dir");
    let chain = dir.path().join("chain.pem");
    let leaf = std::fs::read_to_string(&pki.server_cert).expect("server cert");
    let ca = std::fs::read_to_string(&pki.ca).expect("CA cert");
    std::fs::write(&chain, leaf + &ca.repeat(100)).expect("write chain");
    assert!(std::fs::metadata(&chain).expect("chain").len() > 50_000);
    let tls = NginxTls::new(&chain, &pki.server_key);
    let nginx = Nginx::start_tls(NginxConfig::default(), tls).expect("start nginx");
    run(Driver::Uring, || async {
        let mut stream = open(
            nginx.tls_addr(),
            &client_config(&trusting(&pki)),
            &localhost(),
        )
        .await
        .expect("handshake with a long chain");
        let mut buf = Vec::with_capacity(4096);
        let (status, _) = get(&mut stream, "/", &mut buf).await.expect("GET /");
        assert_eq!(status, 200);
    });
}

/// An unknown CA and a name the certificate does not cover are certificate failures.
#[test]
fn untrusted_or_misnamed_certificates_are_tls_certificate_errors() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    let stranger = Pki::generate().expect("another pki");
    let nginx = tls_nginx(&pki, "TLSv1.2 TLSv1.3", false);
    run(Driver::Uring, || async {
        let wrong_ca = client_config(&trusting(&stranger));
        let err = open(nginx.tls_addr(), &wrong_ca, &localhost())
            .await
            .expect_err("an unknown CA fails the handshake");
        assert_eq!(err.kind_name(), "tls_certificate", "{err}");
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");

        let misnamed = TlsOptions {
            server_name: Some("other.example".into()),
            ..trusting(&pki)
        };
        let name = tls::server_name(&misnamed, "127.0.0.1").expect("server name");
        let err = open(nginx.tls_addr(), &client_config(&misnamed), &name)
            .await
            .expect_err("a name the certificate lacks fails the handshake");
        assert_eq!(err.kind_name(), "tls_certificate", "{err}");

        // The same names work with the right CA and a name the certificate covers.
        let named = TlsOptions {
            server_name: Some("localhost".into()),
            ..trusting(&pki)
        };
        let name = tls::server_name(&named, "127.0.0.1").expect("server name");
        open(nginx.tls_addr(), &client_config(&named), &name)
            .await
            .expect("localhost is in the certificate");
    });
}

/// `insecure_skip_verify` connects to a server whose CA nobody trusts, and requests work.
#[test]
fn insecure_skip_verify_accepts_an_untrusted_certificate() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    let nginx = tls_nginx(&pki, "TLSv1.2 TLSv1.3", false);
    run(Driver::Uring, || async {
        let insecure = client_config(&TlsOptions {
            insecure_skip_verify: true,
            // Also no ALPN, as a `wss://` target may choose.
            alpn: Alpn::None,
            ..TlsOptions::default()
        });
        let name = tls::server_name(&TlsOptions::default(), "wrong.example").expect("name");
        let mut stream = open(nginx.tls_addr(), &insecure, &name)
            .await
            .expect("handshake with an unverified certificate");
        assert_eq!(stream.alpn_protocol(), None);
        let mut buf = Vec::with_capacity(4096);
        let (status, _) = get(&mut stream, "/", &mut buf).await.expect("GET /");
        assert_eq!(status, 200);
    });
}

/// nginx with `ssl_verify_client on`. nginx judges client certificates after the handshake
/// and answers HTTP 400 rather than a TLS alert (its OpenSSL verify callback accepts every
/// chain so that it can explain in HTTP): without a certificate, or with one from an unknown
/// CA, the handshake succeeds and the request gets 400 — `status_4xx` for the engine, not a
/// TLS error. With the right certificate: 200. (`tls_rejects_a_missing_client_certificate...`
/// covers a server that refuses in TLS.)
#[test]
fn nginx_mtls_answers_400_without_a_valid_client_certificate() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    let stranger = Pki::generate().expect("another pki");
    let identity = |pki_of_client: &Pki| TlsOptions {
        client_cert: Some(pki_of_client.client_cert.clone()),
        client_key: Some(pki_of_client.client_key.clone()),
        ..trusting(&pki)
    };
    for protocols in ["TLSv1.2", "TLSv1.3"] {
        let nginx = tls_nginx(&pki, protocols, true);
        run(Driver::Uring, || async {
            let mut buf = Vec::with_capacity(4096);
            for (client, status, says) in [
                (trusting(&pki), 400, "No required SSL certificate was sent"),
                (identity(&stranger), 400, "The SSL certificate error"),
                (identity(&pki), 200, NGINX_INDEX_BODY),
            ] {
                let mut stream = open(nginx.tls_addr(), &client_config(&client), &localhost())
                    .await
                    .expect("nginx completes the handshake");
                let (got, body) = get(&mut stream, "/", &mut buf).await.expect("GET /");
                let body = String::from_utf8_lossy(&body);
                assert_eq!(got, status, "{protocols}: {body}");
                assert!(body.contains(says), "{protocols}: {body}");
            }
        });
    }
}

/// nginx's `ssl_reject_handshake`: the server ends every handshake with an
/// `unrecognized_name` alert, which `connect` reports as `tls_alert`.
#[test]
fn rejected_handshake_is_a_tls_alert() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    for protocols in ["TLSv1.2", "TLSv1.3"] {
        let tls = NginxTls {
            protocols: protocols.into(),
            reject_handshake: true,
            ..NginxTls::new(&pki.server_cert, &pki.server_key)
        };
        let nginx = Nginx::start_tls(NginxConfig::default(), tls).expect("start nginx");
        run(Driver::Uring, || async {
            let err = open(
                nginx.tls_addr(),
                &client_config(&trusting(&pki)),
                &localhost(),
            )
            .await
            .expect_err("nginx rejects the handshake");
            assert_eq!(err.kind_name(), "tls_alert", "{protocols}: {err}");
            assert_eq!(expect_alert(&err), "UnrecognisedName", "{protocols}");
        });
    }
}

/// A server that requires a client certificate and refuses in TLS (rustls' own server, in a
/// thread: nginx answers in HTTP instead). Without a client certificate:
/// - TLS 1.2: the server judges the certificate before its Finished, so `connect` fails with
///   `tls_alert`;
/// - TLS 1.3: the client's side of the handshake is done once it has sent Finished, so
///   `connect` succeeds and the `certificate_required` alert arrives on the first read, as a
///   `tls_alert` inside the `io::Error` (found with `tls::tls_error`).
#[test]
fn tls_rejects_a_missing_client_certificate_at_handshake_or_first_read() {
    use tls::rustls::version::{TLS12, TLS13};
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    for (version, name) in [(&TLS12, "TLS 1.2"), (&TLS13, "TLS 1.3")] {
        let (addr, server) = rustls_mtls_server(&pki, version);
        let alert = run(Driver::Uring, || async {
            let config = client_config(&trusting(&pki));
            match open(addr, &config, &localhost()).await {
                Err(err) => {
                    assert_eq!(name, "TLS 1.2", "{err}");
                    expect_alert(&err)
                }
                Ok(mut stream) => {
                    assert_eq!(name, "TLS 1.3");
                    let mut buf = Vec::with_capacity(4096);
                    let err = get(&mut stream, "/", &mut buf)
                        .await
                        .expect_err("the server refuses the connection");
                    let tls_err = tls::tls_error(&err)
                        .unwrap_or_else(|| panic!("not a TLS error on the first read: {err}"));
                    assert_eq!(tls_err.kind_name(), "tls_alert");
                    expect_alert(tls_err)
                }
            }
        });
        let server_saw = server.join().expect("server thread");
        assert_eq!(alert, "CertificateRequired", "{name}; server: {server_saw}");
    }
}

/// Serves one connection with rustls, requiring a client certificate from `pki`'s CA; returns
/// what the server's handshake ended with.
fn rustls_mtls_server(
    pki: &Pki,
    version: &'static tls::rustls::SupportedProtocolVersion,
) -> (SocketAddr, std::thread::JoinHandle<String>) {
    use std::io::Read;
    use tls::rustls::pki_types::pem::PemObject;
    use tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tls::rustls::server::WebPkiClientVerifier;
    use tls::rustls::{RootCertStore, ServerConfig, ServerConnection};

    let provider = Arc::new(tls::rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
        .expect("server cert")
        .collect::<Result<_, _>>()
        .expect("server cert PEM");
    let key = PrivateKeyDer::from_pem_file(&pki.server_key).expect("server key");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&pki.ca).expect("CA"))
        .expect("CA as root");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("protocol version")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut conn = ServerConnection::new(Arc::new(config)).expect("server connection");
        // complete_io sends the alert describing a failure before returning it.
        let outcome = loop {
            match conn.complete_io(&mut sock) {
                Ok(_) if conn.is_handshaking() => continue,
                Ok(_) => break "handshake completed".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        // Read until the client closes, so the request it may send meets no reset that could
        // overtake the alert.
        let mut sink = [0u8; 4096];
        while matches!(sock.read(&mut sink), Ok(n) if n > 0) {}
        outcome
    });
    (addr, server)
}

/// The watchdog cancels a read by dropping its future: the stream is then poisoned (later
/// calls fail and the caller closes it) instead of reading a corrupted record stream.
#[test]
fn a_dropped_read_poisons_the_stream_without_panicking() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    let nginx = tls_nginx(&pki, "TLSv1.2 TLSv1.3", false);
    for driver in [Driver::Uring, Driver::Legacy] {
        run(driver, || async {
            let config = client_config(&trusting(&pki));
            let mut stream = Stream::from(
                open(nginx.tls_addr(), &config, &localhost())
                    .await
                    .expect("handshake"),
            );
            let mut buf = Vec::with_capacity(4096);
            get(&mut stream, "/", &mut buf).await.expect("GET /");
            // Nothing was asked for, so nothing comes: the read is still pending when dropped.
            let idle = monoio::time::timeout(
                Duration::from_millis(20),
                stream.read(Vec::with_capacity(4096)),
            )
            .await;
            assert!(idle.is_err(), "{driver:?}: the idle read completed");
            let err = get(&mut stream, "/", &mut buf)
                .await
                .expect_err("a poisoned stream refuses further use");
            assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{driver:?}: {err}");
        });
    }
}

/// A client key that is not the certificate's is a configuration error naming both files.
#[test]
fn mismatched_client_key_is_a_config_error() {
    let _load = serial();
    let pki = Pki::generate().expect("pki");
    let other = Pki::generate().expect("another pki");
    let opts = TlsOptions {
        client_cert: Some(pki.client_cert.clone()),
        client_key: Some(other.client_key.clone()),
        ..trusting(&pki)
    };
    let err = tls::client_config(&opts).expect_err("mismatched key");
    let message = err.to_string();
    assert!(message.contains("does not match"), "{message}");
    assert!(
        message.contains("client.key") && message.contains("client.pem"),
        "{message}"
    );
}

/// Heap held per idle TLS connection after a handshake and one request, measured over many
/// connections with dhat: the delta of live heap bytes divided by the count. Resumed and full
/// handshakes keep different state (a full one keeps the server's certificate chain).
#[test]
fn idle_tls_connection_heap_is_small() {
    const CONNECTIONS: usize = 1000;
    /// The target for an idle connection's user-space memory (docs: DESIGN.md, TLS).
    const BUDGET_BYTES: usize = 24 * 1024;
    let _load = serial();
    // 1000 client sockets need more than the common soft limit of 1024 descriptors.
    rlimit::increase_nofile_limit(4 * CONNECTIONS as u64).expect("raise RLIMIT_NOFILE");
    let pki = Pki::generate().expect("pki");
    let nginx = tls_nginx(&pki, "TLSv1.2 TLSv1.3", false);
    let _profiler = dhat::Profiler::builder().testing().build();
    for resumption in [false, true] {
        let (per_conn, allocs_per_request, setup) = run(Driver::Uring, || async {
            let config = client_config(&TlsOptions {
                resumption,
                ..trusting(&pki)
            });
            let mut buf = Vec::with_capacity(16 * 1024);
            // Warm-up: lazy runtime state, the session store's first entries.
            for _ in 0..3 {
                let mut s = Stream::from(
                    open(nginx.tls_addr(), &config, &localhost())
                        .await
                        .expect("warm-up"),
                );
                get(&mut s, "/", &mut buf).await.expect("warm-up GET");
            }
            let mut streams: Vec<Stream> = Vec::with_capacity(CONNECTIONS);
            let started = std::time::Instant::now();
            let before = dhat::HeapStats::get().curr_bytes;
            for _ in 0..CONNECTIONS {
                let stream = open(nginx.tls_addr(), &config, &localhost())
                    .await
                    .expect("handshake");
                let mut stream = Stream::from(stream);
                let (status, _) = get(&mut stream, "/", &mut buf).await.expect("GET /");
                assert_eq!(status, 200);
                streams.push(stream);
            }
            let held = dhat::HeapStats::get().curr_bytes.saturating_sub(before);
            let setup = started.elapsed() / CONNECTIONS as u32;
            assert_eq!(
                streams.iter().filter(|s| s.resumed()).count(),
                if resumption { CONNECTIONS } else { 0 }
            );
            // Steady state on one warm connection, with the request buffer reused and the body
            // not collected, as the connection code does: what is left is the TLS layer's.
            let stream = streams.first_mut().expect("a connection");
            let mut req = request("/");
            let mut decoder = ResponseDecoder::new();
            let blocks = dhat::HeapStats::get().total_blocks;
            for _ in 0..200 {
                let (res, sent) = stream.write_all(req).await;
                req = sent;
                res.expect("write");
                decoder.reset(false);
                loop {
                    if let Ok(Step::Complete { consumed, .. }) = decoder.decode(&buf) {
                        buf.drain(..consumed);
                        break;
                    }
                    let owned = std::mem::take(&mut buf);
                    let (len, cap) = (owned.len(), owned.capacity());
                    let (res, slice) = stream.read(owned.slice_mut(len..cap)).await;
                    buf = slice.into_inner();
                    assert!(res.expect("read") > 0, "closed mid-response");
                }
            }
            let per_request = (dhat::HeapStats::get().total_blocks - blocks) as f64 / 200.0;
            (held / CONNECTIONS, per_request, setup)
        });
        println!(
            "idle TLS connection (resumption {resumption}): {per_conn} heap bytes each \
             (plus the socket's kernel memory); size_of::<TlsStream>() = {}; \
             {allocs_per_request:.2} allocations per request; connect + handshake + 1 request: {setup:?} each \
             (dhat on)",
            std::mem::size_of::<TlsStream>()
        );
        assert!(
            per_conn <= BUDGET_BYTES,
            "resumption {resumption}: {per_conn} bytes per idle TLS connection"
        );
        // rustls 0.23 allocates one buffer per record it seals and per record it opens; this
        // layer adds none.
        assert!(
            allocs_per_request <= 2.0,
            "{allocs_per_request} allocations per request"
        );
    }
}
