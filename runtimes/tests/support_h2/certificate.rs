//! A self-signed certificate for `localhost` (rcgen) as PEM files, for the TLS cases of the
//! HTTP/2 and WebSocket runtime suites (`support_h2` and `support_ws` include this file).

use weft_runtime::TlsFiles;

use super::clients;

/// A self-signed certificate for `localhost`, as PEM files in a fresh temporary folder.
pub(crate) struct TestCertificate {
    /// Removed, with the files, when the certificate is dropped.
    _dir: clients::TempPath,
    pub(crate) files: TlsFiles,
}

impl TestCertificate {
    pub(crate) fn new() -> TestCertificate {
        let dir = clients::TempPath::new("tls");
        std::fs::create_dir_all(&dir.0).expect("a temporary folder");
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a self-signed certificate");
        let files = TlsFiles {
            cert: dir.0.join("cert.pem"),
            key: dir.0.join("key.pem"),
        };
        std::fs::write(&files.cert, certified.cert.pem()).expect("write cert.pem");
        std::fs::write(&files.key, certified.signing_key.serialize_pem()).expect("write key.pem");
        TestCertificate { _dir: dir, files }
    }

    /// The certificate file, for a client's CA option (`curl --cacert`, `--cafile`).
    pub(crate) fn cert_path(&self) -> &str {
        self.files.cert.to_str().expect("a UTF-8 path")
    }
}
