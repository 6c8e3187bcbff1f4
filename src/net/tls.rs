//! TLS for `rtmps://` with rustls (TLS 1.2 and 1.3, ring provider).
//!
//! Verification uses the system's root certificates (rustls-native-certs), or
//! only the certificates of `--ca FILE` (PEM). `--insecure` verifies nothing
//! (signatures of the handshake are still checked, so the connection is
//! encrypted, not authenticated). `SSLKEYLOGFILE` is honoured (NSS key log
//! format), so Wireshark can decrypt a capture of the session.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How to verify the server.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Trust only the certificates in this PEM file.
    pub ca: Option<PathBuf>,
    /// Do not verify the certificate at all.
    pub insecure: bool,
}

/// What the TLS handshake established.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The cipher suite, IANA name.
    pub cipher: String,
    /// ALPN protocol, if any.
    pub alpn: Option<String>,
    /// Leaf certificate subject (RFC 4514 form).
    pub subject: Option<String>,
    /// Leaf certificate issuer.
    pub issuer: Option<String>,
    /// Leaf certificate notAfter, as text.
    pub not_after: Option<String>,
    /// Days until notAfter (negative: expired).
    pub days_left: Option<i64>,
    /// Certificates in the chain the server sent.
    pub chain_len: usize,
}

/// Why TLS failed, classified for the diagnosis.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `--ca` could not be read.
    #[error("cannot read CA file {path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The certificate was rejected.
    #[error("the server's certificate is not trusted: {0}")]
    Certificate(String),
    /// The peer answered with bytes that are not TLS.
    #[error("the server did not answer in TLS ({0}): is this a plain rtmp:// port?")]
    NotTls(String),
    /// The peer sent a TLS alert or the protocol failed otherwise.
    #[error("TLS handshake failed: {0}")]
    Protocol(String),
    /// No answer within the timeout.
    #[error(
        "no TLS answer within {0:?}: a plain RTMP server waits silently for 1537 bytes, so this is likely a plain rtmp:// port"
    )]
    Timeout(Duration),
    /// Socket error.
    #[error("{0}")]
    Io(io::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration for `opts`.
pub fn client_config(opts: &TlsOptions) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Protocol(e.to_string()))?;
    let mut config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        if let Some(path) = &opts.ca {
            let err = |why: String| TlsError::CaFile {
                path: path.clone(),
                why,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
            for c in certs {
                let c = c.map_err(|e| err(e.to_string()))?;
                roots.add(c).map_err(|e| err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(err("no certificate in it".into()));
            }
        } else {
            // Unreadable individual system certificates are skipped.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.key_log = Arc::new(rustls::KeyLogFile::new());
    Ok(config)
}

/// Runs the TLS handshake over `tcp` for `host` within `timeout`.
pub async fn connect(
    tcp: TcpStream,
    host: &str,
    opts: &TlsOptions,
    timeout: Duration,
) -> Result<(TlsStream<TcpStream>, TlsInfo), TlsError> {
    let config = client_config(opts)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Protocol(format!("'{host}' is not a valid server name: {e}")))?;
    let connector = TlsConnector::from(Arc::new(config));
    let stream = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => return Err(TlsError::Timeout(timeout)),
        Ok(Err(e)) => return Err(classify(e)),
        Ok(Ok(s)) => s,
    };
    let info = info(stream.get_ref().1);
    Ok((stream, info))
}

fn classify(e: io::Error) -> TlsError {
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return TlsError::Io(e);
    };
    match inner {
        rustls::Error::InvalidCertificate(c) => TlsError::Certificate(match c {
            rustls::CertificateError::UnknownIssuer => {
                "unknown issuer (self-signed or a private CA: pass it with --ca FILE, or --insecure)"
                    .to_owned()
            }
            other => format!("{other:?}"),
        }),
        rustls::Error::InvalidMessage(m) => TlsError::NotTls(format!("{m:?}")),
        other => TlsError::Protocol(other.to_string()),
    }
}

fn info(conn: &rustls::ClientConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(v) => format!("{v:?}"),
        None => String::new(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut info = TlsInfo {
        version,
        cipher,
        alpn,
        ..TlsInfo::default()
    };
    if let Some(chain) = conn.peer_certificates() {
        info.chain_len = chain.len();
        if let Some(leaf) = chain.first()
            && let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf)
        {
            info.subject = Some(cert.subject().to_string());
            info.issuer = Some(cert.issuer().to_string());
            let na = cert.validity().not_after;
            info.not_after = Some(na.to_string());
            let left = cert.validity().time_to_expiration();
            info.days_left = Some(match left {
                Some(d) => d.whole_days(),
                None => -1,
            });
        }
    }
    info
}

/// `--insecure`: accepts any certificate, still checks handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
