//! The documents this crate writes, read back by OpenSSL: the CSR (`openssl req -verify`,
//! its SANs in `-text`), the TLS-ALPN-01 validation certificate (`openssl x509 -text`:
//! critical acmeIdentifier with the right digest, the one SAN; self-signature verified),
//! and the derived PKCS#8 keys (`openssl pkey -check`).

mod common;

use common::*;
use unipi_acme::{AccountKey, CertificateKey, DnsName, KeyAlgorithm};

fn key() -> CertificateKey {
    CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, b"openssl test certificate seed").unwrap()
}

fn names(list: &[&str]) -> Vec<DnsName> {
    list.iter().map(|n| DnsName::new(n).unwrap()).collect()
}

#[test]
fn csr_verifies_and_lists_the_names() {
    let dir = TempDir::new("csr");
    let der = unipi_acme::x509::csr(
        &key(),
        &names(&[
            "unipi-acme.test",
            "www.unipi-acme.test",
            "xn--bcher-kva.test",
        ]),
    )
    .unwrap();
    let path = dir.path().join("csr.pem");
    std::fs::write(&path, der_to_pem("CERTIFICATE REQUEST", &der)).unwrap();
    let path = path.to_str().unwrap();

    let (ok, out) = openssl(&["req", "-verify", "-noout", "-in", path], None);
    assert!(ok, "{out}");
    assert!(out.contains("verify OK"), "{out}");

    let (ok, text) = openssl(&["req", "-noout", "-text", "-in", path], None);
    assert!(ok, "{text}");
    assert!(text.contains("Subject: CN = unipi-acme.test"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert!(
        text.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{text}"
    );
    assert!(text.contains("Requested Extensions:"), "{text}");
    assert!(
        text.contains("DNS:unipi-acme.test, DNS:www.unipi-acme.test, DNS:xn--bcher-kva.test"),
        "{text}"
    );

    // A flipped byte in the signed part breaks the signature.
    let mut bad = der.clone();
    let at = bad
        .windows(b"www.unipi".len())
        .position(|w| w == b"www.unipi")
        .unwrap();
    bad[at] = b'v';
    let bad_path = dir.path().join("bad.pem");
    std::fs::write(&bad_path, der_to_pem("CERTIFICATE REQUEST", &bad)).unwrap();
    let (ok, out) = openssl(
        &[
            "req",
            "-verify",
            "-noout",
            "-in",
            bad_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok || !out.contains("verify OK"), "{out}");
}

#[test]
fn tls_alpn01_certificate_has_the_critical_acme_extension() {
    let dir = TempDir::new("alpn");
    let k = key();
    let name = DnsName::new("alpn.unipi-acme.test").unwrap();
    let key_authorization =
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
    let der =
        unipi_acme::x509::tls_alpn_certificate(&k, &name, key_authorization, unix_now()).unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, der_to_pem("CERTIFICATE", &der)).unwrap();
    let cert = cert.to_str().unwrap();

    let (ok, text) = openssl(
        &[
            "x509", "-noout", "-text", "-certopt", "ext_dump", "-in", cert,
        ],
        None,
    );
    assert!(ok, "{text}");
    assert!(text.contains("Version: 3 (0x2)"), "{text}");
    assert!(
        text.contains("Subject: CN = alpn.unipi-acme.test"),
        "{text}"
    );
    assert!(text.contains("Issuer: CN = alpn.unipi-acme.test"), "{text}");
    assert!(text.contains("DNS:alpn.unipi-acme.test"), "{text}");
    // Exactly one SAN entry.
    assert_eq!(text.matches("DNS:").count(), 1, "{text}");
    assert!(text.contains("1.3.6.1.5.5.7.1.31: critical"), "{text}");
    // The extension value is OCTET STRING (0x04, length 0x20) with SHA-256(keyAuthz).
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    let (ok, dump) = openssl(
        &[
            "asn1parse",
            "-in",
            cert,
            "-strparse",
            &acme_ext_offset(cert),
        ],
        None,
    );
    assert!(ok, "{dump}");
    assert!(
        dump.contains(&format!(
            "[HEX DUMP]:{}",
            digest
                .as_ref()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        )),
        "{dump}"
    );

    // The self-signature verifies with the certificate's own key. OpenSSL does not know
    // the acmeIdentifier extension and, as it is critical, refuses the certificate unless
    // told to ignore that: the refusal is checked too.
    let (ok, out) = openssl(
        &[
            "verify",
            "-check_ss_sig",
            "-partial_chain",
            "-CAfile",
            cert,
            cert,
        ],
        None,
    );
    assert!(!ok && out.contains("unhandled critical extension"), "{out}");
    let (ok, out) = openssl(
        &[
            "verify",
            "-check_ss_sig",
            "-partial_chain",
            "-ignore_critical",
            "-CAfile",
            cert,
            cert,
        ],
        None,
    );
    assert!(ok && out.contains(": OK"), "{out}");
}

/// The offset of the acmeIdentifier extension's OCTET STRING value in the DER, found with
/// `openssl asn1parse` (the line after its OID).
fn acme_ext_offset(cert: &str) -> String {
    let (ok, parsed) = openssl(&["asn1parse", "-in", cert], None);
    assert!(ok, "{parsed}");
    let lines: Vec<&str> = parsed.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(":1.3.6.1.5.5.7.1.31"))
        .unwrap_or_else(|| panic!("no acmeIdentifier OID in\n{parsed}"));
    // OID, BOOLEAN (critical), OCTET STRING (extnValue).
    assert!(
        lines[at + 1].contains("BOOLEAN") && lines[at + 1].contains("255"),
        "{parsed}"
    );
    assert!(lines[at + 2].contains("OCTET STRING"), "{parsed}");
    lines[at + 2].split(':').next().unwrap().trim().to_string()
}

#[test]
fn derived_keys_are_valid_pkcs8_for_openssl() {
    let dir = TempDir::new("keys");
    let account = AccountKey::from_seed(b"openssl test account seed").unwrap();
    let cert_key = key();
    for (name, der, public) in [
        ("account", account.pkcs8_der(), account.public_key()),
        ("cert", cert_key.pkcs8_der(), cert_key.public_key()),
    ] {
        let path = dir.path().join(format!("{name}.der"));
        std::fs::write(&path, der).unwrap();
        let path = path.to_str().unwrap();
        let (ok, out) = openssl(
            &["pkey", "-inform", "DER", "-in", path, "-check", "-noout"],
            None,
        );
        assert!(ok && out.contains("Key is valid"), "{out}");
        let (ok, text) = openssl(
            &["pkey", "-inform", "DER", "-in", path, "-noout", "-text"],
            None,
        );
        assert!(ok, "{text}");
        assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
        // openssl prints the public point as colon-separated hex over several lines.
        let flat: String = text
            .split("pub:")
            .nth(1)
            .unwrap()
            .split("ASN1 OID")
            .next()
            .unwrap()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        let expect: String = public.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(flat, expect);
    }
}

#[cfg(feature = "p384")]
#[test]
fn p384_csr_and_validation_certificate() {
    let dir = TempDir::new("p384");
    let k = CertificateKey::from_seed(KeyAlgorithm::EcdsaP384, b"openssl test p384 seed").unwrap();
    let der = unipi_acme::x509::csr(&k, &names(&["p384.unipi-acme.test"])).unwrap();
    let path = dir.path().join("csr.pem");
    std::fs::write(&path, der_to_pem("CERTIFICATE REQUEST", &der)).unwrap();
    let path = path.to_str().unwrap();
    let (ok, out) = openssl(&["req", "-verify", "-noout", "-text", "-in", path], None);
    assert!(ok && out.contains("verify OK"), "{out}");
    assert!(out.contains("ASN1 OID: secp384r1"), "{out}");
    assert!(out.contains("ecdsa-with-SHA384"), "{out}");
    assert!(out.contains("DNS:p384.unipi-acme.test"), "{out}");

    let name = DnsName::new("p384.unipi-acme.test").unwrap();
    let der = unipi_acme::x509::tls_alpn_certificate(&k, &name, "t.k", unix_now()).unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, der_to_pem("CERTIFICATE", &der)).unwrap();
    let cert = cert.to_str().unwrap();
    let (ok, out) = openssl(
        &[
            "verify",
            "-check_ss_sig",
            "-partial_chain",
            "-ignore_critical",
            "-CAfile",
            cert,
            cert,
        ],
        None,
    );
    assert!(ok && out.contains(": OK"), "{out}");
}
