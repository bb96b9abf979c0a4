//! TLS termination (07 §5): PEM certificate chain and key, optional client-certificate
//! verification with rustls' `WebPkiClientVerifier`, ALPN `h2` then `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentd_workflow::TlsConfig;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// Client certificate policy of a TLS listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificates are requested.
    None,
    /// A certificate is requested and verified if sent.
    Optional,
    /// The handshake fails without a certificate chaining to the CA.
    Required,
}

/// A loaded TLS configuration.
pub struct TlsMaterial {
    /// The rustls configuration for new connections.
    pub config: Arc<rustls::ServerConfig>,
    /// The client-auth mode it enforces.
    pub client_auth: ClientAuth,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read { what, path: path.to_path_buf(), source })
}

fn resolve(base_dir: &Path, file: Option<&String>, key: &str) -> Result<PathBuf> {
    let file = file.ok_or_else(|| Error::Tls(format!("`{key}` is required")))?;
    Ok(base_dir.join(file))
}

/// Loads `[server.tls]` (files relative to `base_dir`).
pub fn load(config: &TlsConfig, base_dir: &Path) -> Result<TlsMaterial> {
    let cert_path = resolve(base_dir, config.cert_file.as_ref(), "cert_file")?;
    let key_path = resolve(base_dir, config.key_file.as_ref(), "key_file")?;
    let cert_pem = read("[server.tls] cert_file", &cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Tls(format!("cert_file {}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(Error::Tls(format!("cert_file {} holds no certificate", cert_path.display())));
    }
    let key_pem = read("[server.tls] key_file", &key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| Error::Tls(format!("key_file {}: {e}", key_path.display())))?;
    let (client_auth, verifier) = client_verifier(config, base_dir)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(chain, key)
        .map_err(|e| Error::Tls(format!("certificate and key do not form a usable pair: {e}")))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial { config: Arc::new(server), client_auth })
}

type Verifier = Arc<dyn rustls::server::danger::ClientCertVerifier>;

fn client_verifier(config: &TlsConfig, base_dir: &Path) -> Result<(ClientAuth, Option<Verifier>)> {
    let Some(client) = &config.client_auth else { return Ok((ClientAuth::None, None)) };
    let mode = match client.mode.as_deref().unwrap_or("required") {
        "required" => ClientAuth::Required,
        "optional" => ClientAuth::Optional,
        "none" => return Ok((ClientAuth::None, None)),
        other => return Err(Error::Tls(format!("client_auth.mode `{other}` is not required, optional or none"))),
    };
    let ca_path = resolve(base_dir, client.ca_file.as_ref(), "client_auth.ca_file")?;
    let ca_pem = read("[server.tls.client_auth] ca_file", &ca_path)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| Error::Tls(format!("ca_file {}: {e}", ca_path.display())))?;
        roots.add(cert).map_err(|e| Error::Tls(format!("ca_file {}: {e}", ca_path.display())))?;
    }
    if roots.is_empty() {
        return Err(Error::Tls(format!("ca_file {} holds no CA certificate", ca_path.display())));
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    let builder = if mode == ClientAuth::Optional { builder.allow_unauthenticated() } else { builder };
    let verifier = builder.build().map_err(|e| Error::Tls(format!("client_auth: {e}")))?;
    Ok((mode, Some(verifier)))
}
