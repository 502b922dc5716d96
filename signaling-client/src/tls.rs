//! TLS configuration for `wss://` connections: the web PKI roots plus any extra trusted CA
//! certificates (for a self-hosted server with its own certificate).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::ClientError;

/// Builds a rustls client config trusting the web PKI roots and the PEM certificates in
/// `extra_roots` (a file path), using the ring provider explicitly.
pub(crate) fn client_config(
    extra_roots: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_roots {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ClientError::Tls(format!("cannot read {}: {e}", path.display())))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| ClientError::Tls(format!("bad PEM in {}: {e}", path.display())))?;
            roots.add(cert).map_err(|e| {
                ClientError::Tls(format!("bad certificate in {}: {e}", path.display()))
            })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
