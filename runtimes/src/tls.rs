//! TLS settings: certificates and keys loaded once, with errors that say what is wrong.
//!
//! rustls with the aws-lc-rs provider (rustls' default and recommended one: it has the
//! post-quantum key exchange X25519MLKEM768, which ring's provider lacks and for which rustls
//! 0.23.48 deprecated it), TLS 1.2 and 1.3 only (rustls implements nothing older), ALPN `h2`
//! then `http/1.1`: a client offering both gets HTTP/2.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The protocols offered through ALPN, preferred first: HTTP/2, then HTTP/1.1.
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where a server finds its certificate chain and private key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file holds no PEM item of the expected kind, or a malformed one.
    BadPem {
        /// The file.
        path: PathBuf,
        /// What was expected: "certificate" or "private key".
        expected: &'static str,
        /// What the PEM parser said.
        detail: String,
    },
    /// The key is not the private key of the certificate, or rustls refused the pair.
    KeyMismatch(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::BadPem {
                path,
                expected,
                detail,
            } => {
                write!(
                    f,
                    "{} holds no valid PEM {expected}: {detail}",
                    path.display()
                )
            }
            TlsError::KeyMismatch(detail) => {
                write!(
                    f,
                    "the private key does not match the certificate: {detail}"
                )
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<TlsError> for std::io::Error {
    fn from(error: TlsError) -> Self {
        let kind = match &error {
            TlsError::Read { source, .. } => source.kind(),
            _ => std::io::ErrorKind::InvalidData,
        };
        std::io::Error::new(kind, error)
    }
}

impl TlsFiles {
    /// Loads the files into a rustls server configuration offering ALPN `h2` and `http/1.1`,
    /// in that order of preference (RFC 7301 §3.2: the server picks; RFC 9113 §3.2).
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let chain = read_certificates(&self.cert)?;
        let key = read_key(&self.key)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| TlsError::KeyMismatch(e.to_string()))?;
        let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing_key);
        certified
            .keys_match()
            .map_err(|e| TlsError::KeyMismatch(e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::KeyMismatch(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::KeyMismatch(e.to_string()))?;
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let bad = |detail: String| TlsError::BadPem {
        path: path.to_owned(),
        expected: "certificate",
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::BadPem {
        path: path.to_owned(),
        expected: "private key",
        detail: e.to_string(),
    })
}
