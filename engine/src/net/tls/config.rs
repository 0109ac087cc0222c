//! `TlsOptions` (what the scenario asks for) → one `rustls::ClientConfig` per shard.
//!
//! Every failure here is a configuration error a user can fix (missing file, bad PEM, a key
//! that is not the certificate's), reported before a run starts. Nothing here touches a socket.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Sessions (TLS 1.2 ids, TLS 1.3 tickets) kept per config, i.e. per shard. rustls' default;
/// one target host needs few, and the store is bounded either way.
const RESUMPTION_SESSIONS: usize = 256;

/// The ALPN protocols offered in the ClientHello.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Alpn {
    /// No ALPN extension (a `wss://` upgrade may choose this).
    None,
    /// `http/1.1`: what `https://` (and a `wss://` upgrade, which starts as HTTP/1.1) offers.
    #[default]
    Http11,
    /// `h2` only: `https://` with `http = "2"`; a server that does not pick it is refused.
    H2,
}

/// How to set up TLS for a target, as plain data (the plan holds it; shards build configs).
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// PEM bundle of trusted CAs. `None`: the system's store (`rustls-native-certs`), or the
    /// Mozilla roots compiled in (`webpki-roots`) when the system store has none.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (end entity first) for mTLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate (unknown CA, wrong name, expired). The handshake's
    /// signature is still verified against the presented certificate's key, so the crypto
    /// work per handshake is the real one; only who the server is goes unchecked.
    pub insecure_skip_verify: bool,
    /// Resume sessions (TLS 1.3 tickets, TLS 1.2 ids/tickets) from an in-memory store shared
    /// by the connections of one config. `false` forces a full handshake every time.
    pub resumption: bool,
    /// Server name for SNI and certificate checks instead of the URL's host.
    pub server_name: Option<String>,
    pub alpn: Alpn,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            client_cert: None,
            client_key: None,
            insecure_skip_verify: false,
            resumption: true,
            server_name: None,
            alpn: Alpn::Http11,
        }
    }
}

/// Why a TLS configuration cannot be built; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read {what} `{path}`: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{what} `{path}` is not valid PEM ({detail}): expect `-----BEGIN {label}-----` blocks"
    )]
    Pem {
        what: &'static str,
        path: PathBuf,
        label: &'static str,
        detail: String,
    },
    #[error("{what} `{path}` holds no `-----BEGIN {label}-----` block")]
    Empty {
        what: &'static str,
        path: PathBuf,
        label: &'static str,
    },
    #[error("a certificate in ca_file `{path}` cannot be a trust anchor: {source}")]
    BadCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("client_cert and client_key go together: set both or neither")]
    ClientAuthIncomplete,
    #[error(
        "client_key `{key}` does not match client_cert `{cert}`: use the key the certificate was \
         issued for"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("client_cert `{cert}` / client_key `{key}` rejected: {source}")]
    ClientAuth {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("`{name}` is not a valid TLS server name: give a DNS name or an IP address")]
    ServerName { name: String },
    #[error("TLS setup failed: {0}")]
    Setup(rustls::Error),
}

/// Builds a client config. Call it once per shard: the resumption store lives in the config,
/// so each shard resumes its own sessions without sharing state across threads.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
    // Chosen explicitly: ring builds with just a C compiler (aws-lc-rs wants cmake and a long
    // build), and an explicit provider cannot be changed by another crate's feature flags.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Setup)?;
    let builder = if opts.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(root_store(opts.ca_file.as_deref())?)
    };
    let mut config = match (&opts.client_cert, &opts.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert, "client_cert")?;
            let key_der = load_key(key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|source| match source {
                    rustls::Error::InconsistentKeys(_) => TlsConfigError::KeyMismatch {
                        cert: cert.clone(),
                        key: key.clone(),
                    },
                    source => TlsConfigError::ClientAuth {
                        cert: cert.clone(),
                        key: key.clone(),
                        source,
                    },
                })?
        }
        _ => return Err(TlsConfigError::ClientAuthIncomplete),
    };
    config.alpn_protocols = match opts.alpn {
        Alpn::None => Vec::new(),
        Alpn::Http11 => vec![b"http/1.1".to_vec()],
        Alpn::H2 => vec![b"h2".to_vec()],
    };
    config.resumption = if opts.resumption {
        Resumption::in_memory_sessions(RESUMPTION_SESSIONS)
    } else {
        Resumption::disabled()
    };
    Ok(Arc::new(config))
}

/// The name to send as SNI and check the certificate against: the override, else `host` (a
/// URL's host; brackets around an IPv6 literal are dropped). IP addresses send no SNI.
pub fn server_name(opts: &TlsOptions, host: &str) -> Result<ServerName<'static>, TlsConfigError> {
    let name = opts.server_name.as_deref().unwrap_or(host);
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsConfigError::ServerName {
        name: name.to_owned(),
    })
}

fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in load_certs(path, "ca_file")? {
                roots.add(cert).map_err(|source| TlsConfigError::BadCa {
                    path: path.to_owned(),
                    source,
                })?;
            }
        }
        None => {
            // Unreadable entries in the system store are skipped, as browsers do.
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
        }
    }
    Ok(roots)
}

fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    const LABEL: &str = "CERTIFICATE";
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(e, what, path, LABEL))?;
    if certs.is_empty() {
        return Err(TlsConfigError::Empty {
            what,
            path: path.to_owned(),
            label: LABEL,
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(e, "client_key", path, "PRIVATE KEY"))
}

fn pem_error(
    e: pem::Error,
    what: &'static str,
    path: &Path,
    label: &'static str,
) -> TlsConfigError {
    let path = path.to_owned();
    match e {
        pem::Error::Io(source) => TlsConfigError::Read { what, path, source },
        pem::Error::NoItemsFound => TlsConfigError::Empty { what, path, label },
        other => TlsConfigError::Pem {
            what,
            path,
            label,
            detail: format!("{other:?}"),
        },
    }
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake signature must still
/// verify with the presented certificate's key (the peer proves it holds that key).
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for AcceptAnyServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptAnyServerCert")
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_prefers_the_override_and_accepts_ips() {
        let opts = TlsOptions::default();
        assert!(matches!(
            server_name(&opts, "127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name(&opts, "[::1]"),
            Ok(ServerName::IpAddress(_))
        ));
        let named = TlsOptions {
            server_name: Some("example.test".into()),
            ..TlsOptions::default()
        };
        assert_eq!(
            server_name(&named, "127.0.0.1").ok(),
            ServerName::try_from("example.test").ok()
        );
        assert!(matches!(
            server_name(&opts, "bad name"),
            Err(TlsConfigError::ServerName { .. })
        ));
    }

    #[test]
    fn default_config_builds_from_system_or_bundled_roots() {
        let config = client_config(&TlsOptions::default()).expect("default config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn half_of_a_client_identity_is_rejected() {
        let opts = TlsOptions {
            client_cert: Some("cert.pem".into()),
            ..TlsOptions::default()
        };
        assert!(matches!(
            client_config(&opts),
            Err(TlsConfigError::ClientAuthIncomplete)
        ));
    }

    #[test]
    fn unreadable_and_empty_ca_files_say_which_file() {
        let missing = TlsOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let err = client_config(&missing).expect_err("missing file");
        assert!(matches!(err, TlsConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let dir = std::env::temp_dir().join(format!("loadd-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let opts = TlsOptions {
            ca_file: Some(empty.clone()),
            ..TlsOptions::default()
        };
        let err = client_config(&opts).expect_err("no certificate");
        assert!(matches!(err, TlsConfigError::Empty { .. }), "{err}");
        let broken = dir.join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let opts = TlsOptions {
            ca_file: Some(broken),
            ..TlsOptions::default()
        };
        let err = client_config(&opts).expect_err("bad base64");
        assert!(matches!(err, TlsConfigError::Pem { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
