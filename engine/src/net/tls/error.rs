//! `TlsError`: why a TLS connection failed, in classes with stable snake_case names that the
//! connection code maps to its counters. It does not decide what to do about a failure.

use std::io;

use rustls::AlertDescription;

/// A failed TLS handshake or record exchange.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The server's certificate was rejected: unknown CA, expired, wrong name, or none sent.
    #[error("TLS certificate rejected: {0}")]
    Certificate(rustls::Error),
    /// The peer sent a fatal alert (e.g. `certificate_required` from a server wanting mTLS).
    #[error("TLS peer sent alert {0:?}")]
    Alert(AlertDescription),
    /// Any other handshake failure: no common version or cipher, a protocol violation.
    #[error("TLS handshake failed: {0}")]
    Handshake(rustls::Error),
    /// The peer closed the connection before the handshake finished.
    #[error("TLS peer closed the connection during the handshake")]
    HandshakeEof,
    /// A record after the handshake could not be processed (bad MAC, unexpected message).
    #[error("TLS record error: {0}")]
    Protocol(rustls::Error),
    /// The socket failed; classify it as any socket error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl TlsError {
    /// Stable name of the class: `tls_certificate`, `tls_alert`, `tls_handshake`,
    /// `tls_protocol`, or `io` (map that one like any socket error: `io::ErrorKind` is kept).
    pub fn kind_name(&self) -> &'static str {
        match self {
            TlsError::Certificate(_) => "tls_certificate",
            TlsError::Alert(_) => "tls_alert",
            TlsError::Handshake(_) | TlsError::HandshakeEof => "tls_handshake",
            TlsError::Protocol(_) => "tls_protocol",
            TlsError::Io(_) => "io",
        }
    }

    /// Classifies a rustls error; `handshaking` tells a handshake failure from a record error.
    pub(crate) fn from_rustls(e: rustls::Error, handshaking: bool) -> Self {
        match e {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                TlsError::Certificate(e)
            }
            rustls::Error::AlertReceived(alert) => TlsError::Alert(alert),
            e if handshaking => TlsError::Handshake(e),
            e => TlsError::Protocol(e),
        }
    }

    /// As an `io::Error` for the stream traits: socket errors as they were, TLS ones wrapped
    /// (`InvalidData`) so that [`tls_error`] finds them again.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            TlsError::Io(e) => e,
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// The TLS failure inside an error returned by a stream's `read`/`write`, if it is one.
/// A server rejecting a client certificate under TLS 1.3 shows up here, on the first read:
/// the client's side of the handshake completed before the server judged the certificate.
pub fn tls_error(err: &io::Error) -> Option<&TlsError> {
    err.get_ref()?.downcast_ref::<TlsError>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError;

    #[test]
    fn classes_have_stable_names_and_survive_io_wrapping() {
        let cert = TlsError::from_rustls(
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            true,
        );
        assert_eq!(cert.kind_name(), "tls_certificate");
        let alert = TlsError::from_rustls(
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
            false,
        );
        assert_eq!(alert.kind_name(), "tls_alert");
        let hs = TlsError::from_rustls(rustls::Error::DecryptError, true);
        assert_eq!(hs.kind_name(), "tls_handshake");
        let record = TlsError::from_rustls(rustls::Error::DecryptError, false);
        assert_eq!(record.kind_name(), "tls_protocol");

        let io = alert.into_io();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert_eq!(tls_error(&io).map(TlsError::kind_name), Some("tls_alert"));
        let plain = TlsError::Io(io::ErrorKind::ConnectionReset.into()).into_io();
        assert_eq!(plain.kind(), io::ErrorKind::ConnectionReset);
        assert!(tls_error(&plain).is_none());
    }
}
