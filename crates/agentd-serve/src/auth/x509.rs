//! The identity of a verified client certificate (07 §4.3 `mtls`): SHA-256 fingerprint of the
//! leaf DER, its subject common name and DNS subject alternative names.
//!
//! rustls has already verified the chain; this module only reads two fields out of the leaf,
//! with a small DER walker that gives up (yielding no name) on anything unexpected.

use sha2::{Digest, Sha256};

/// What the principal reports about a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// `sha256:<64 lower-case hex>` of the leaf DER.
    pub fingerprint: String,
    /// Subject CN, when present.
    pub common_name: Option<String>,
    /// DNS SANs, lower-cased.
    pub dns_names: Vec<String>,
}

impl PeerCertificate {
    /// Reads the identity of a leaf certificate.
    pub fn from_der(der: &[u8]) -> PeerCertificate {
        let fields = tbs_fields(der).unwrap_or_default();
        PeerCertificate {
            fingerprint: format!("sha256:{}", hex::encode(Sha256::digest(der))),
            common_name: fields.0,
            dns_names: fields.1,
        }
    }
}

/// OID 2.5.4.3 (commonName), content bytes.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// OID 2.5.29.17 (subjectAltName), content bytes.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// One TLV: tag, content, rest of the input.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (content, rest) = rest.split_at_checked(length)?;
    Some((tag, content, rest))
}

/// Iterates the TLVs of a constructed value's content.
fn children(mut content: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, value, rest) = tlv(content)?;
        content = rest;
        Some((tag, value))
    })
}

/// (subject CN, DNS SANs) of a certificate.
fn tbs_fields(der: &[u8]) -> Option<(Option<String>, Vec<String>)> {
    let (_, certificate, _) = tlv(der)?;
    let (_, tbs, _) = tlv(certificate)?;
    let mut items: Vec<(u8, &[u8])> = children(tbs).collect();
    if items.first().is_some_and(|(tag, _)| *tag == 0xa0) {
        items.remove(0);
    }
    // serial, signature, issuer, validity, subject, subjectPublicKeyInfo, then optional fields.
    let subject = items.get(4)?.1;
    let common_name = subject_common_name(subject);
    let extensions = items.iter().skip(6).find(|(tag, _)| *tag == 0xa3).map(|(_, content)| *content);
    let dns_names = extensions.map(dns_names).unwrap_or_default();
    Some((common_name, dns_names))
}

fn subject_common_name(subject: &[u8]) -> Option<String> {
    for (_, set) in children(subject) {
        for (_, attribute) in children(set) {
            let mut parts = children(attribute);
            let (_, oid) = parts.next()?;
            let (_, value) = parts.next()?;
            if oid == OID_COMMON_NAME {
                return std::str::from_utf8(value).ok().map(str::to_string);
            }
        }
    }
    None
}

fn dns_names(explicit: &[u8]) -> Vec<String> {
    let Some((_, sequence, _)) = tlv(explicit) else { return Vec::new() };
    for (_, extension) in children(sequence) {
        let parts: Vec<(u8, &[u8])> = children(extension).collect();
        if parts.first().map(|(_, oid)| *oid) != Some(OID_SUBJECT_ALT_NAME) {
            continue;
        }
        let Some((_, octets)) = parts.iter().find(|(tag, _)| *tag == 0x04) else { continue };
        let Some((_, names, _)) = tlv(octets) else { continue };
        return children(names)
            .filter(|(tag, _)| *tag == 0x82)
            .filter_map(|(_, name)| std::str::from_utf8(name).ok().map(str::to_ascii_lowercase))
            .collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_yields_only_a_fingerprint() {
        let peer = PeerCertificate::from_der(&[0x30, 0x82, 0xff]);
        assert!(peer.fingerprint.starts_with("sha256:"));
        assert_eq!(peer.fingerprint.len(), 7 + 64);
        assert_eq!(peer.common_name, None);
        assert!(peer.dns_names.is_empty());
    }
}
