//! The two X.509 documents this client signs: the certificate request (PKCS#10, RFC 2986)
//! sent to finalize an order, and the self-signed TLS-ALPN-01 validation certificate
//! (RFC 8737 §3). Both are encoded with the RustCrypto `der`/`x509-cert` types and signed
//! with *ring*. The client calls both itself; they are public for drivers that want a CSR
//! of their own and for tests.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use der::asn1::{
    BitString, GeneralizedTime, Ia5String, OctetString, SetOfVec, UtcTime, Utf8StringRef,
};
use der::oid::ObjectIdentifier;
use der::{Any, DateTime, Decode, Encode, Sequence};
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::error::Error;
use crate::key::{CertificateKey, KeyAlgorithm};
use crate::name::DnsName;

/// id-ecPublicKey (RFC 5480).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / prime256v1 (RFC 5480).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// ecdsa-with-SHA256 (RFC 5758).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// secp384r1 (RFC 5480).
#[cfg(feature = "p384")]
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA384 (RFC 5758).
#[cfg(feature = "p384")]
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// subjectAltName (RFC 5280).
const ID_CE_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// id-at-commonName (RFC 4519).
pub(crate) const ID_AT_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// id-pe-acmeIdentifier (RFC 8737 §6.1).
pub const ID_PE_ACME_IDENTIFIER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

/// How long before "now" the validation certificate becomes valid (clock skew).
const ALPN_CERT_BACKDATE: u64 = 24 * 3600;
/// How long the validation certificate stays valid after "now".
const ALPN_CERT_LIFETIME: u64 = 7 * 24 * 3600;

fn encoding(what: &'static str) -> impl Fn(der::Error) -> Error {
    move |_| Error::Key { reason: what }
}

/// The SubjectPublicKeyInfo of an EC key.
pub(crate) fn spki(key: &CertificateKey) -> Result<SubjectPublicKeyInfo, Error> {
    let curve = match key.algorithm() {
        KeyAlgorithm::EcdsaP256 => &SECP256R1,
        #[cfg(feature = "p384")]
        KeyAlgorithm::EcdsaP384 => &SECP384R1,
    };
    Ok(SubjectPublicKeyInfo {
        algorithm: AlgorithmIdentifier {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(Any::from(curve)),
        },
        subject_public_key: BitString::from_bytes(key.public_key())
            .map_err(encoding("public key does not fit a BIT STRING"))?,
    })
}

/// The signature algorithm of `key`: ECDSA with the hash that matches the curve.
fn signature_algorithm(key: &CertificateKey) -> AlgorithmIdentifier {
    AlgorithmIdentifier {
        oid: match key.algorithm() {
            KeyAlgorithm::EcdsaP256 => ECDSA_WITH_SHA256,
            #[cfg(feature = "p384")]
            KeyAlgorithm::EcdsaP384 => ECDSA_WITH_SHA384,
        },
        parameters: None,
    }
}

/// `CN=<name>`: ACME servers take the names from the SAN extension; the common name is
/// there for tools that show only the subject.
///
/// Encoded with `der` and decoded into a [`Name`]: x509-cert builds names only from RFC 4514
/// strings (looking attribute names up in const-oid's OID database, ~150 KB of tables in
/// the binary) or behind its `hazmat` feature.
fn common_name(name: &DnsName) -> Result<Name, Error> {
    let fail = encoding("name does not fit a CN");
    let value = Utf8StringRef::new(name.as_str()).map_err(&fail)?;
    let mut rdn = SetOfVec::new();
    rdn.insert(AttributeTypeAndValue {
        oid: ID_AT_COMMON_NAME,
        value: Any::encode_from(&value).map_err(&fail)?,
    })
    .map_err(&fail)?;
    // RDNSequence ::= SEQUENCE OF RelativeDistinguishedName (a SET OF attributes)
    let der = vec![rdn].to_der().map_err(&fail)?;
    Name::from_der(&der).map_err(fail)
}

fn san_extension(names: &[DnsName], critical: bool) -> Result<Extension, Error> {
    let general_names = names
        .iter()
        .map(|n| Ia5String::new(n.as_str()).map(GeneralName::DnsName))
        .collect::<Result<Vec<_>, _>>()
        .map_err(encoding("name is not IA5"))?;
    let value = SubjectAltName(general_names)
        .to_der()
        .map_err(encoding("could not encode the SAN extension"))?;
    Ok(Extension {
        extn_id: ID_CE_SUBJECT_ALT_NAME,
        critical,
        extn_value: OctetString::new(value).map_err(encoding("SAN too large"))?,
    })
}

fn bit_string(bytes: &[u8]) -> Result<BitString, Error> {
    BitString::from_bytes(bytes).map_err(encoding("signature does not fit a BIT STRING"))
}

/// The DER certificate request for `names` (first one also as CN), signed by `key`:
/// subject `CN=names[0]`, the key's SubjectPublicKeyInfo, and an extensionRequest attribute
/// with a subjectAltName of every name as dNSName.
pub fn csr(key: &CertificateKey, names: &[DnsName]) -> Result<Vec<u8>, Error> {
    let first = names.first().ok_or(Error::NoNames)?;
    let ext_req = Attribute::try_from(ExtensionReq(vec![san_extension(names, false)?]))
        .map_err(encoding("could not encode the extension request"))?;
    let mut attributes = SetOfVec::new();
    attributes
        .insert(ext_req)
        .map_err(encoding("could not encode the attributes"))?;
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: common_name(first)?,
        public_key: spki(key)?,
        attributes,
    };
    let tbs = info
        .to_der()
        .map_err(encoding("could not encode the certificate request"))?;
    let signature = key.sign(&tbs)?;
    CertReq {
        info,
        algorithm: signature_algorithm(key),
        signature: bit_string(&signature)?,
    }
    .to_der()
    .map_err(encoding("could not encode the certificate request"))
}

/// RFC 5280 TBSCertificate for a v3 certificate with extensions. x509-cert 0.3 builds
/// certificates only through its `builder` feature (signers behind the `signature` traits,
/// plus SHA-1 for key identifiers); mirroring the structure here lets *ring* sign directly.
#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifier,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfo,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

#[derive(Sequence)]
struct Certificate {
    tbs_certificate: TbsCertificate,
    signature_algorithm: AlgorithmIdentifier,
    signature: BitString,
}

/// An X.509 time for `unix` seconds: UTCTime through 2049, GeneralizedTime after
/// (RFC 5280 §4.1.2.5).
fn x509_time(unix: u64) -> Result<Time, Error> {
    let dt = DateTime::from_unix_duration(Duration::from_secs(unix))
        .map_err(encoding("time out of range"))?;
    if dt.year() < 2050 {
        UtcTime::from_date_time(dt)
            .map(Time::UtcTime)
            .map_err(encoding("time out of range"))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// The TLS-ALPN-01 validation certificate for `name` (RFC 8737 §3): self-signed by `key`,
/// valid from a day before `now_unix` for a week, with a subjectAltName holding exactly
/// `name` and the critical id-pe-acmeIdentifier extension holding SHA-256 of the key
/// authorization. Returns the DER certificate.
pub fn tls_alpn_certificate(
    key: &CertificateKey,
    name: &DnsName,
    key_authorization: &str,
    now_unix: u64,
) -> Result<Vec<u8>, Error> {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    // Authorization ::= OCTET STRING (SIZE (32)), itself wrapped in extnValue.
    let acme_id = OctetString::new(digest.as_ref())
        .and_then(|inner| inner.to_der())
        .and_then(OctetString::new)
        .map_err(encoding("could not encode the acmeIdentifier extension"))?;
    // A positive 16-byte serial that differs per challenge.
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&digest.as_ref()[..16]);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let subject = common_name(name)?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(encoding("bad serial"))?,
        signature: signature_algorithm(key),
        issuer: subject.clone(),
        validity: Validity::new(
            x509_time(now_unix.saturating_sub(ALPN_CERT_BACKDATE))?,
            x509_time(now_unix.saturating_add(ALPN_CERT_LIFETIME))?,
        ),
        subject,
        subject_public_key_info: spki(key)?,
        extensions: vec![
            san_extension(core::slice::from_ref(name), false)?,
            Extension {
                extn_id: ID_PE_ACME_IDENTIFIER,
                critical: true,
                extn_value: acme_id,
            },
        ],
    };
    let tbs_der = tbs
        .to_der()
        .map_err(encoding("could not encode the validation certificate"))?;
    let signature = key.sign(&tbs_der)?;
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: signature_algorithm(key),
        signature: bit_string(&signature)?,
    }
    .to_der()
    .map_err(encoding("could not encode the validation certificate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::oid::AssociatedOid;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    fn key() -> CertificateKey {
        CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, b"x509 test seed, long enough").unwrap()
    }

    fn names(list: &[&str]) -> Vec<DnsName> {
        list.iter().map(|n| DnsName::new(n).unwrap()).collect()
    }

    #[test]
    fn csr_decodes_and_verifies() {
        let k = key();
        let der = csr(&k, &names(&["example.org", "www.example.org"])).unwrap();
        let req = CertReq::from_der(&der).unwrap();
        assert_eq!(crate::cert::name_text(&req.info.subject), "CN=example.org");
        assert_eq!(
            req.info.public_key.subject_public_key.raw_bytes(),
            k.public_key()
        );
        let tbs = req.info.to_der().unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, k.public_key())
            .verify(&tbs, req.signature.raw_bytes())
            .unwrap();
        let attr = req.info.attributes.iter().next().unwrap();
        assert_eq!(attr.oid, ExtensionReq::OID);
        let exts: Vec<Extension> = attr.values.iter().next().unwrap().decode_as().unwrap();
        let san = SubjectAltName::from_der(exts[0].extn_value.as_bytes()).unwrap();
        let dns: Vec<_> = san
            .0
            .iter()
            .map(|g| match g {
                GeneralName::DnsName(s) => alloc::string::String::from(s.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(dns, ["example.org", "www.example.org"]);
        assert!(matches!(csr(&k, &[]), Err(Error::NoNames)));
    }

    #[test]
    fn validation_certificate_has_the_acme_extension() {
        let k = key();
        let name = DnsName::new("example.org").unwrap();
        let der = tls_alpn_certificate(&k, &name, "tok.thumb", 1_700_000_000).unwrap();
        let cert = x509_cert::Certificate::from_der(&der).unwrap();
        let tbs = cert.tbs_certificate();
        assert_eq!(tbs.version(), Version::V3);
        assert_eq!(crate::cert::name_text(tbs.subject()), "CN=example.org");
        assert_eq!(tbs.issuer(), tbs.subject());
        assert_eq!(
            tbs.validity().not_before.to_unix_duration().as_secs(),
            1_700_000_000 - ALPN_CERT_BACKDATE
        );
        let exts = tbs.extensions().unwrap();
        let acme = exts
            .iter()
            .find(|e| e.extn_id == ID_PE_ACME_IDENTIFIER)
            .unwrap();
        assert!(acme.critical);
        let inner = OctetString::from_der(acme.extn_value.as_bytes()).unwrap();
        let expect = ring::digest::digest(&ring::digest::SHA256, b"tok.thumb");
        assert_eq!(inner.as_bytes(), expect.as_ref());
        let (_, san) = tbs.get_extension::<SubjectAltName>().unwrap().unwrap();
        assert_eq!(san.0.len(), 1);
        // Self-signed: the signature verifies with the certificate's own key.
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, k.public_key())
            .verify(&tbs.to_der().unwrap(), cert.signature().raw_bytes())
            .unwrap();
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        assert!(matches!(x509_time(0).unwrap(), Time::UtcTime(_)));
        assert!(matches!(
            x509_time(2_524_608_000).unwrap(), // 2050-01-01
            Time::GeneralTime(_)
        ));
    }
}
