//! TLS for `rtmps://` with rustls (TLS 1.2 and 1.3, ring provider).
//!
//! Verification uses the system's root certificates (rustls-native-certs), or
//! only the certificates of `--ca FILE` (PEM). A certificate in that file
//! that is exactly the server's certificate is accepted as pinned, whatever
//! its basic constraints say (what `openssl req -x509` makes is CA:TRUE,
//! which WebPKI refuses as an end-entity certificate); only its validity
//! dates are checked then, as with an SSH host key the name is not. A
//! rejected certificate is explained in words from the certificate itself:
//! who issued it, its dates, the names it is for. `--insecure` verifies nothing
//! (signatures of the handshake are still checked, so the connection is
//! encrypted, not authenticated). `SSLKEYLOGFILE` is honoured (NSS key log
//! format), so Wireshark can decrypt a capture of the session.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use rustls::client::WebPkiServerVerifier;
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
    /// The certificate was rejected (the words say why).
    #[error("{0}")]
    Certificate(String),
    /// The peer answered with bytes that are not TLS; the words say what
    /// they are when they show it.
    #[error("the server did not answer in TLS: {0}")]
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

/// The server's leaf certificate, kept by the verifier so that a rejection
/// can be explained.
type Seen = Arc<Mutex<Option<CertificateDer<'static>>>>;

/// Builds a server configuration (`serve --cert --key`) from a PEM
/// certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable certificate: {e}",
                cert.display(),
                key.display()
            )
        })
}

/// Builds the client configuration for `opts`.
pub fn client_config(opts: &TlsOptions) -> Result<ClientConfig, TlsError> {
    client_config_seen(opts, Seen::default())
}

fn client_config_seen(opts: &TlsOptions, seen: Seen) -> Result<ClientConfig, TlsError> {
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
        let mut pinned = Vec::new();
        if let Some(path) = &opts.ca {
            let err = |why: String| TlsError::CaFile {
                path: path.clone(),
                why,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
            for c in certs {
                let c = c.map_err(|e| err(e.to_string()))?;
                // A certificate that is no usable trust anchor can still be
                // pinned.
                let _ = roots.add(c.clone());
                pinned.push(c);
            }
            if pinned.is_empty() {
                return Err(err("no certificate in it".into()));
            }
        } else {
            // Unreadable individual system certificates are skipped.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| TlsError::Protocol(e.to_string()))?,
            )
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Explaining {
                webpki,
                pinned,
                seen,
                provider: provider(),
            }))
            .with_no_client_auth()
    };
    config.key_log = Arc::new(rustls::KeyLogFile::new());
    Ok(config)
}

/// Most bytes of the server's first answer kept to name what answered.
const FIRST_BYTES: usize = 32;

/// The TCP socket under TLS, keeping the first bytes the server sent until
/// the handshake is over: when they are not TLS they say what answered.
#[derive(Debug)]
pub struct TcpUnderTls {
    inner: TcpStream,
    first: Vec<u8>,
    recording: bool,
}

impl TcpUnderTls {
    /// The socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.inner
    }

    /// The socket, given back.
    pub fn into_inner(self) -> TcpStream {
        self.inner
    }
}

impl AsyncRead for TcpUnderTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.recording {
            let new = &buf.filled()[before..];
            let take = new.len().min(FIRST_BYTES - this.first.len());
            this.first.extend_from_slice(&new[..take]);
            this.recording = this.first.len() < FIRST_BYTES;
        }
        r
    }
}

impl AsyncWrite for TcpUnderTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, b)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// What bytes that are not TLS say about who answered a ClientHello.
fn not_tls(first: &[u8]) -> String {
    match first.first() {
        None => "the connection closed without an answer".into(),
        Some(3) => {
            "an RTMP server answered (S0 = 3): this is a plain RTMP port, use rtmp://".into()
        }
        Some(&v) => {
            let what = crate::proto::handshake::describe_bad_version(v, first);
            format!(
                "{what}; first bytes: {}",
                crate::text::sanitize_bytes(&first[..first.len().min(16)])
            )
        }
    }
}

/// Runs the TLS handshake over `tcp` for `host` within `timeout`.
pub async fn connect(
    tcp: TcpStream,
    host: &str,
    opts: &TlsOptions,
    timeout: Duration,
) -> Result<(TlsStream<TcpUnderTls>, TlsInfo), TlsError> {
    let tcp = TcpUnderTls {
        inner: tcp,
        first: Vec::with_capacity(FIRST_BYTES),
        recording: true,
    };
    let seen = Seen::default();
    let config = client_config_seen(opts, seen.clone())?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Protocol(format!("'{host}' is not a valid server name: {e}")))?;
    let connector = TlsConnector::from(Arc::new(config));
    // On failure the socket comes back, with the first bytes it received.
    let connecting = connector.connect(name, tcp).into_fallible();
    let stream = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => return Err(TlsError::Timeout(timeout)),
        Ok(Err((e, tcp))) => {
            let leaf = seen.lock().ok().and_then(|mut g| g.take());
            return Err(classify(e, leaf.as_ref(), host, opts, &tcp.first));
        }
        Ok(Ok(s)) => s,
    };
    let mut stream = stream;
    stream.get_mut().0.recording = false;
    let info = info(stream.get_ref().1);
    Ok((stream, info))
}

/// What the certificate says, for the words of a rejection.
struct CertFacts {
    subject: String,
    issuer: String,
    self_signed: bool,
    not_before: String,
    not_after: String,
    names: Vec<String>,
}

fn facts(der: &CertificateDer<'_>) -> Option<CertFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(format!("DNS:{d}")),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b)
                            .map(|a| std::net::IpAddr::from(a).to_string())
                            .ok(),
                        16 => <[u8; 16]>::try_from(*b)
                            .map(|a| std::net::IpAddr::from(a).to_string())
                            .ok(),
                        _ => None,
                    };
                    names.push(format!("IP:{}", ip.unwrap_or_else(|| "?".into())));
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                names.push(format!("CN:{cn}"));
            }
        }
    }
    let subject = cert.subject().to_string();
    let issuer = cert.issuer().to_string();
    Some(CertFacts {
        self_signed: subject == issuer,
        subject,
        issuer,
        not_before: cert.validity().not_before.to_string(),
        not_after: cert.validity().not_after.to_string(),
        names,
    })
}

fn classify(
    e: io::Error,
    leaf: Option<&CertificateDer<'_>>,
    host: &str,
    opts: &TlsOptions,
    first: &[u8],
) -> TlsError {
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        if e.kind() == io::ErrorKind::UnexpectedEof && !first.is_empty() {
            return TlsError::NotTls(not_tls(first));
        }
        return TlsError::Io(e);
    };
    let f = leaf.and_then(facts);
    let clean = |s: &str| crate::text::sanitize(s).into_owned();
    let subject = f.as_ref().map_or("?".into(), |f| clean(&f.subject));
    let issuer = f.as_ref().map_or("?".into(), |f| clean(&f.issuer));
    let dates = f.as_ref().map_or(String::new(), |f| {
        format!(
            "valid from {} to {}",
            clean(&f.not_before),
            clean(&f.not_after)
        )
    });
    let ca_hint = match &opts.ca {
        Some(p) => format!(
            "it is not in --ca {} and no CA there signed it; pass the CA that issued it, or the certificate itself, with --ca FILE",
            p.display()
        ),
        None => "pass the CA that issued it (or, self-signed, the certificate itself) with --ca FILE, or use --insecure".into(),
    };
    let untrusted = || {
        let who = if f.as_ref().is_some_and(|f| f.self_signed) {
            format!("it is self-signed (issuer {issuer})")
        } else {
            format!("issuer {issuer} is not a trusted CA")
        };
        format!("the server's certificate ({subject}) is not trusted: {who}; {ca_hint}")
    };
    use rustls::CertificateError as C;
    match inner {
        rustls::Error::InvalidCertificate(c) => TlsError::Certificate(match c {
            C::UnknownIssuer | C::BadSignature => untrusted(),
            // webpki's CaUsedAsEndEntity: a CA certificate (openssl req -x509
            // makes one) served as the server's own, and not pinned.
            C::Other(o) if format!("{o:?}").contains("CaUsedAsEndEntity") => untrusted(),
            C::Expired | C::ExpiredContext { .. } => {
                format!("the server's certificate ({subject}) has expired: {dates}")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!(
                    "the server's certificate ({subject}) is not valid yet: {dates} (check the clocks)"
                )
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                let names = f
                    .as_ref()
                    .map_or("?".into(), |f| clean(&f.names.join(", ")));
                format!(
                    "the server's certificate is for other names: {names}, not '{}' (connect by one of those names)",
                    clean(host)
                )
            }
            other => format!(
                "the server's certificate ({subject}, issuer {issuer}) was rejected: {}",
                clean(&format!("{other:?}"))
            ),
        }),
        rustls::Error::InvalidMessage(_) => TlsError::NotTls(not_tls(first)),
        other => TlsError::Protocol(clean(&other.to_string())),
    }
}

/// Verification with pinning and with the server's certificate kept for
/// the words of a rejection.
#[derive(Debug)]
struct Explaining {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    seen: Seen,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Explaining {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut g) = self.seen.lock() {
            *g = Some(end_entity.clone().into_owned());
        }
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            // Pinned: exactly this certificate is trusted; its dates still count.
            let (_, cert) = x509_parser::parse_x509_certificate(end_entity).map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
            })?;
            let at = x509_parser::time::ASN1Time::from_timestamp(now.as_secs() as i64)
                .map_err(|_| rustls::Error::General("bad clock".into()))?;
            let v = cert.validity();
            if at < v.not_before {
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidYet,
                ));
            }
            if at > v.not_after {
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired,
                ));
            }
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(w) => {
                w.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
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
