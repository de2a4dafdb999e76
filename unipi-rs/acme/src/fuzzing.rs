//! Entry points for coverage-guided fuzzing (the `fuzz/` crate at the repository root).
//!
//! Not part of the API: compiled only with the `fuzzing` feature, hidden from the docs, and
//! free to change with the fuzz targets. Each function runs internal parsers over arbitrary
//! bytes exactly as the client does, plus cheap consistency checks (a panic here is a
//! finding, like any other panic).

use alloc::string::String;
use alloc::vec::Vec;

use crate::cert::{self, CertInfo};
use crate::headers::{self, Headers};
use crate::limits::Limits;
use crate::objects;
use crate::problem;
use crate::url::Url;

/// The JSON parsers of ACME resources.
#[derive(Clone, Copy, Debug)]
pub enum ObjectParser {
    /// `objects::directory`
    Directory,
    /// `objects::account`
    Account,
    /// `objects::order`
    Order,
    /// `objects::authorization`
    Authorization,
    /// `objects::challenge`
    Challenge,
    /// `problem::parse`
    Problem,
}

impl ObjectParser {
    /// Every parser, for selection by an input byte.
    pub const ALL: [ObjectParser; 6] = [
        ObjectParser::Directory,
        ObjectParser::Account,
        ObjectParser::Order,
        ObjectParser::Authorization,
        ObjectParser::Challenge,
        ObjectParser::Problem,
    ];
}

/// Limits small enough that a fuzzer reaches them.
pub fn small_limits() -> Limits {
    Limits {
        max_json_bytes: 8 << 10,
        max_chain_bytes: 16 << 10,
        max_chain_certs: 4,
        max_names: 4,
        max_challenges: 4,
        max_url_len: 200,
        max_nonce_len: 64,
        max_token_len: 64,
        max_bad_nonce_retries: 2,
        max_transient_retries: 2,
        max_polls: 4,
        poll_interval: 1,
        max_poll_interval: 8,
    }
}

fn check_url(u: &Url, limits: &Limits) {
    // Normalised output parses to itself.
    let again = Url::parse(u.as_str(), limits.max_url_len.max(u.as_str().len()));
    assert_eq!(again.as_ref(), Ok(u), "URL does not re-parse to itself");
    assert!(u.path_and_query().starts_with('/'));
    assert!(!u.host().is_empty());
}

fn check_text(s: &str) {
    assert!(!s.chars().any(char::is_control), "control character kept");
    assert!(
        s.chars().count() <= crate::error::MAX_TEXT + 1,
        "text not bounded"
    );
}

/// Runs one object parser on `body` with `limits`.
pub fn object(parser: ObjectParser, body: &[u8], limits: &Limits) {
    match parser {
        ObjectParser::Directory => {
            if let Ok(d) = objects::directory(body, limits) {
                for u in [&d.new_nonce, &d.new_account, &d.new_order] {
                    check_url(u, limits);
                }
                if let Some(t) = &d.terms_of_service {
                    check_text(t);
                }
            }
        }
        ObjectParser::Account => {
            let _ = objects::account(body);
        }
        ObjectParser::Order => {
            if let Ok(o) = objects::order(body, limits) {
                assert!(o.authorizations.len() <= limits.max_names);
                o.authorizations.iter().for_each(|u| check_url(u, limits));
                check_url(&o.finalize, limits);
                if o.status == objects::Status::Valid {
                    assert!(o.certificate.is_some());
                }
            }
        }
        ObjectParser::Authorization => {
            if let Ok(a) = objects::authorization(body, limits) {
                assert!(a.challenges.len() + a.other_types.len() <= limits.max_challenges);
                check_text(&a.name);
                for c in &a.challenges {
                    assert!(crate::challenge::valid_token(
                        &c.token,
                        limits.max_token_len
                    ));
                    check_url(&c.url, limits);
                }
            }
        }
        ObjectParser::Challenge => {
            if let Ok(c) = objects::challenge(body, limits) {
                assert!(crate::challenge::valid_token(
                    &c.token,
                    limits.max_token_len
                ));
                if let Some(p) = &c.error {
                    check_text(&p.detail);
                }
            }
        }
        ObjectParser::Problem => {
            if let Some(p) = problem::parse(body) {
                check_text(&p.detail);
                assert!(p.subproblems.len() <= problem::MAX_SUBPROBLEMS);
                for s in &p.subproblems {
                    check_text(&s.detail);
                }
                let _ = alloc::format!("{p}");
            }
        }
    }
}

/// Runs every header parser over `fields`, plus URL and name validation over each value.
pub fn header_fields(fields: &Headers<'_>, now_unix: u64, limits: &Limits) {
    let Ok(base) = Url::parse("https://acme.example:14000/dir", 2048) else {
        return;
    };
    if let Some(n) = headers::replay_nonce(fields, limits.max_nonce_len) {
        assert!(!n.is_empty() && n.len() <= limits.max_nonce_len);
        assert!(crate::challenge::valid_token(&n, limits.max_nonce_len));
    }
    if let Some(u) = headers::location(fields, &base, limits.max_url_len) {
        check_url(&u, limits);
    }
    let _ = headers::retry_after(fields, now_unix);
    for rel in ["alternate", "up", "index"] {
        let links = headers::links(fields, rel, &base, limits.max_url_len, 8);
        assert!(links.len() <= 8);
        links.iter().for_each(|u| check_url(u, limits));
    }
    if let Some(ct) = headers::content_type(fields) {
        assert!(!ct.contains(';'));
    }
    for (_, value) in fields {
        if let Ok(text) = core::str::from_utf8(value) {
            if let Some(t) = headers::http_date(text) {
                // Dates der can represent: 1970 to 9999.
                assert!(t < 253_402_300_800);
            }
            if let Ok(u) = Url::parse(text, limits.max_url_len) {
                check_url(&u, limits);
            }
            if let Ok(u) = base.join(text, limits.max_url_len) {
                check_url(&u, limits);
            }
            if let Ok(n) = crate::DnsName::new(text) {
                assert!(n.as_str().len() <= crate::name::MAX_NAME_LEN);
                assert_eq!(crate::DnsName::new(n.as_str()).as_ref(), Ok(&n));
            }
            if let Ok(c) = crate::contact_url(text) {
                assert!(c.starts_with("mailto:"));
            }
        }
    }
}

/// Parses a PEM chain and every certificate in it, and `der` directly as a certificate.
pub fn certificates(pem: &[u8], max_certs: usize) {
    if let Ok(chain) = cert::parse_chain_pem(pem, max_certs) {
        assert!(!chain.is_empty() && chain.len() <= max_certs);
        for der in &chain {
            certificate(der);
        }
        let _ = cert::check_issued(&chain, &[4; 65], &[], 0);
    }
    certificate(pem);
}

fn certificate(der: &[u8]) {
    if let Ok(info) = CertInfo::parse(der) {
        assert!(info.not_before < info.not_after);
        let r = info.renew_at();
        assert!(info.not_before <= r && r <= info.not_after);
        check_text(&info.issuer);
        check_text(&info.subject);
        info.names.iter().for_each(|n| check_text(n));
    }
}

/// Splits fuzzer input into header fields: lines `name: value`, at most 16.
pub fn split_fields(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    data.split(|b| *b == b'\n')
        .take(16)
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            let name = core::str::from_utf8(line.get(..colon)?).ok()?;
            Some((String::from(name), line.get(colon + 1..)?.to_vec()))
        })
        .collect()
}
