//! Certificates from the CA: the PEM chain (`application/pem-certificate-chain`) split into
//! DER certificates, and the X.509 leaf parser (validity, issuer, serial, SAN names) over
//! each of them and over the raw input as DER.
//!
//! Input: a PEM chain or a DER certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unipi_acme::fuzzing::certificates;

fuzz_target!(|data: &[u8]| {
    certificates(data, 4);
});
