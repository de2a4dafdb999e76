//! Reading certificates: the PEM chain the server issues (`application/pem-certificate-chain`,
//! RFC 8555 §9.1) and the leaf's validity, issuer and names, so that the driver can decide
//! when to renew. Also usable on a chain loaded from a memory region at boot.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use der::Decode;
use der::oid::ObjectIdentifier;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::{DirectoryString, GeneralName};
use x509_cert::name::Name;

use crate::error::{Error, sanitize};

fn bad(reason: &str) -> Error {
    Error::BadCertificate {
        reason: sanitize(reason.as_bytes()),
    }
}

/// Splits a PEM certificate chain into DER certificates (leaf first), at most `max_certs`.
/// Text outside the `CERTIFICATE` sections is ignored (RFC 7468 §5.2); other section types
/// are skipped.
pub fn parse_chain_pem(pem: &[u8], max_certs: usize) -> Result<Vec<Vec<u8>>, Error> {
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|_| bad("malformed PEM"))?;
        if chain.len() == max_certs {
            return Err(bad("more certificates in the chain than the limit"));
        }
        chain.push(cert.as_ref().to_vec());
    }
    if chain.is_empty() {
        return Err(bad("no certificate in the PEM chain"));
    }
    Ok(chain)
}

/// A distinguished name as `CN=…, O=…, C=…` text in certificate order, sanitised.
/// Written here because x509-cert's RFC 4514 `Display` looks attribute names up in
/// const-oid's OID database (~150 KB of tables); these few names cover CA certificates,
/// anything else is printed as a dotted OID.
pub(crate) fn name_text(name: &Name) -> String {
    const SHORT: [(ObjectIdentifier, &str); 7] = [
        (ObjectIdentifier::new_unwrap("2.5.4.3"), "CN"),
        (ObjectIdentifier::new_unwrap("2.5.4.6"), "C"),
        (ObjectIdentifier::new_unwrap("2.5.4.7"), "L"),
        (ObjectIdentifier::new_unwrap("2.5.4.8"), "ST"),
        (ObjectIdentifier::new_unwrap("2.5.4.10"), "O"),
        (ObjectIdentifier::new_unwrap("2.5.4.11"), "OU"),
        (ObjectIdentifier::new_unwrap("2.5.4.5"), "serialNumber"),
    ];
    let mut out = String::new();
    for atv in name.iter() {
        if !out.is_empty() {
            out.push_str(", ");
        }
        match SHORT.iter().find(|(oid, _)| *oid == atv.oid) {
            Some((_, short)) => out.push_str(short),
            None => {
                let _ = write!(out, "{}", atv.oid);
            }
        }
        out.push('=');
        match DirectoryString::try_from(&atv.value) {
            Ok(s) => out.push_str(&s.value()),
            Err(_) => out.push('?'),
        }
    }
    sanitize(out.as_bytes())
}

/// What a driver needs to know about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// The issuer's distinguished name (`CN=…, O=…` in certificate order, sanitised).
    pub issuer: String,
    /// The subject's distinguished name (same form; often empty or a CN).
    pub subject: String,
    /// The serial number in lower-case hex.
    pub serial: String,
    /// The dNSName entries of the subjectAltName extension (sanitised, lowercased).
    pub names: Vec<String>,
    /// The subject public key (the BIT STRING content; for EC keys the SEC1 point).
    pub public_key: Vec<u8>,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, Error> {
        let cert = Certificate::from_der(der).map_err(|_| bad("not a DER X.509 certificate"))?;
        let tbs = cert.tbs_certificate();
        let validity = tbs.validity();
        let mut serial = String::new();
        for b in tbs.serial_number().as_bytes() {
            let _ = write!(serial, "{b:02x}");
        }
        let names = match tbs.get_extension::<SubjectAltName>() {
            Ok(Some((_, san))) => san
                .0
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DnsName(n) => Some(sanitize(n.as_bytes()).to_ascii_lowercase()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(_) => return Err(bad("malformed subjectAltName extension")),
        };
        let info = CertInfo {
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
            issuer: name_text(tbs.issuer()),
            subject: name_text(tbs.subject()),
            serial,
            names,
            public_key: tbs
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes()
                .to_vec(),
        };
        if info.not_after <= info.not_before {
            return Err(bad("validity ends before it starts"));
        }
        Ok(info)
    }

    /// When to renew, in Unix seconds: after two thirds of the lifetime (Let's Encrypt's
    /// recommendation; 60 days into a 90-day certificate, 4 into a 6-day one).
    pub fn renew_at(&self) -> u64 {
        let lifetime = self.not_after.saturating_sub(self.not_before);
        self.not_before
            .saturating_add(lifetime / 3 * 2 + lifetime % 3 * 2 / 3)
    }

    /// True when the certificate should be renewed at `now_unix`.
    pub fn needs_renewal(&self, now_unix: u64) -> bool {
        now_unix >= self.renew_at()
    }

    /// True when `name` (lowercase) is among the certificate's DNS names.
    pub fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// Checks a freshly issued chain: the leaf parses, carries `public_key`, covers every name
/// in `names`, is valid at `now_unix`, and each certificate names the next one as issuer.
pub(crate) fn check_issued(
    chain: &[Vec<u8>],
    public_key: &[u8],
    names: &[crate::DnsName],
    now_unix: u64,
) -> Result<CertInfo, Error> {
    let leaf = chain.first().ok_or_else(|| bad("empty chain"))?;
    let info = CertInfo::parse(leaf)?;
    if info.public_key != public_key {
        return Err(bad("the leaf certificate is not for our key"));
    }
    if let Some(missing) = names.iter().find(|n| !info.covers(n.as_str())) {
        let mut reason = String::from("the leaf certificate does not cover ");
        reason.push_str(missing.as_str());
        return Err(Error::BadCertificate { reason });
    }
    if info.not_after <= now_unix {
        return Err(bad("the leaf certificate has already expired"));
    }
    for pair in chain.windows(2) {
        if let [child, parent] = pair {
            let child = Certificate::from_der(child)
                .map_err(|_| bad("an intermediate is not a DER X.509 certificate"))?;
            let parent = Certificate::from_der(parent)
                .map_err(|_| bad("an intermediate is not a DER X.509 certificate"))?;
            if child.tbs_certificate().issuer() != parent.tbs_certificate().subject() {
                return Err(bad("the chain is out of order (issuer and subject differ)"));
            }
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{CertificateKey, KeyAlgorithm};
    use crate::x509::tls_alpn_certificate;

    fn sample() -> (CertificateKey, Vec<u8>) {
        let k = CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, b"cert test seed, long enough")
            .unwrap();
        let der = tls_alpn_certificate(
            &k,
            &crate::DnsName::new("a.example").unwrap(),
            "t.k",
            1_700_000_000,
        )
        .unwrap();
        (k, der)
    }

    fn pem(ders: &[&[u8]]) -> Vec<u8> {
        let mut out = String::from("explanatory text\n");
        for d in ders {
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            let b64 = base64ct::Base64::encode_string(d);
            for line in b64.as_bytes().chunks(64) {
                out.push_str(core::str::from_utf8(line).unwrap());
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out.into_bytes()
    }
    use base64ct::Encoding;

    #[test]
    fn chain_and_leaf() {
        let (k, der) = sample();
        let chain = parse_chain_pem(&pem(&[&der, &der]), 8).unwrap();
        assert_eq!(chain, [der.clone(), der.clone()]);
        let info = CertInfo::parse(&der).unwrap();
        assert_eq!(info.names, ["a.example"]);
        assert_eq!(info.issuer, "CN=a.example");
        assert_eq!(info.public_key, k.public_key());
        assert_eq!(info.not_before, 1_700_000_000 - 86400);
        assert_eq!(info.not_after, 1_700_000_000 + 7 * 86400);
        assert_eq!(info.serial.len(), 32);
        assert!(info.covers("a.example"));
        let names = [crate::DnsName::new("a.example").unwrap()];
        check_issued(&chain, k.public_key(), &names, 1_700_000_000).unwrap();
    }

    #[test]
    fn name_text_of_a_ca_name() {
        use der::asn1::{PrintableStringRef, SetOfVec, Utf8StringRef};
        use der::{Any, Decode, Encode};
        use x509_cert::attr::AttributeTypeAndValue;
        let atv = |oid: &str, v: Any| {
            let mut set = SetOfVec::new();
            set.insert(AttributeTypeAndValue {
                oid: ObjectIdentifier::new(oid).unwrap(),
                value: v,
            })
            .unwrap();
            set
        };
        let p = |s| Any::encode_from(&PrintableStringRef::new(s).unwrap()).unwrap();
        let u = |s| Any::encode_from(&Utf8StringRef::new(s).unwrap()).unwrap();
        let rdns = alloc::vec![
            atv("2.5.4.6", p("US")),
            atv("2.5.4.10", u("Let's Encrypt")),
            atv("2.5.4.3", p("R10")),
            atv("1.2.3.4", u("x\u{7}y")),
            atv("2.5.4.11", Any::encode_from(&5u8).unwrap()),
        ];
        let name = Name::from_der(&rdns.to_der().unwrap()).unwrap();
        assert_eq!(
            name_text(&name),
            "C=US, O=Let's Encrypt, CN=R10, 1.2.3.4=x?y, OU=?"
        );
    }

    #[test]
    fn renewal_at_two_thirds() {
        let mut info = CertInfo::parse(&sample().1).unwrap();
        info.not_before = 1000;
        info.not_after = 1000 + 90 * 86400;
        assert_eq!(info.renew_at(), 1000 + 60 * 86400);
        assert!(!info.needs_renewal(1000 + 60 * 86400 - 1));
        assert!(info.needs_renewal(1000 + 60 * 86400));
        info.not_after = u64::MAX;
        info.not_before = 0;
        assert!(info.renew_at() > u64::MAX / 3 * 2 - 1);
    }

    #[test]
    fn rejections() {
        let (k, der) = sample();
        fn bad_reason<T: core::fmt::Debug>(r: Result<T, Error>) -> String {
            match r {
                Err(Error::BadCertificate { reason }) => reason,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            bad_reason(parse_chain_pem(b"no pem here", 8)),
            "no certificate in the PEM chain"
        );
        assert_eq!(
            bad_reason(parse_chain_pem(&pem(&[&der, &der, &der]), 2)),
            "more certificates in the chain than the limit"
        );
        assert_eq!(
            bad_reason(parse_chain_pem(
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                8
            )),
            "malformed PEM"
        );
        assert_eq!(
            bad_reason(CertInfo::parse(b"\x30\x00")),
            "not a DER X.509 certificate"
        );
        let chain = [der.clone()];
        let names = [crate::DnsName::new("b.example").unwrap()];
        assert_eq!(
            bad_reason(check_issued(&chain, k.public_key(), &names, 1_700_000_000)),
            "the leaf certificate does not cover b.example"
        );
        let names = [crate::DnsName::new("a.example").unwrap()];
        assert_eq!(
            bad_reason(check_issued(&chain, &[4; 65], &names, 1_700_000_000)),
            "the leaf certificate is not for our key"
        );
        assert_eq!(
            bad_reason(check_issued(&chain, k.public_key(), &names, 1_800_000_000)),
            "the leaf certificate has already expired"
        );
        let other =
            CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, b"another cert seed, long").unwrap();
        let other_cert = tls_alpn_certificate(
            &other,
            &crate::DnsName::new("z.example").unwrap(),
            "t.k",
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(
            bad_reason(check_issued(
                &[der, other_cert],
                k.public_key(),
                &names,
                1_700_000_000
            )),
            "the chain is out of order (issuer and subject differ)"
        );
    }
}
