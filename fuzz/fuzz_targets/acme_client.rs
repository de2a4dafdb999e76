//! The whole ACME client: a `Client` driven through directory, nonce, account, order,
//! authorizations, challenges (published and unpublished), finalize and certificate
//! download, with arbitrary server answers, transport failures and time jumps.
//!
//! Input: `flags (1) | answer | "\0\0NEXT\0\0" | answer | ...`, one answer per request in
//! order; an answer is `status selector (1) | "name: value" lines | "\n\n" | body`, and an
//! empty answer is a transport failure (as are requests beyond the last answer).
//! Flags: bits 0-1 challenge preference, bit 2 small limits, bit 3 two names, bit 4 the
//! driver fails to publish.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unipi_acme::fuzzing::{small_limits, split_fields};
use unipi_acme::{
    AccountKey, Action, CertificateKey, ChallengeKind, Client, Config, HttpResponse,
    KeyAlgorithm, Now,
};

const NEXT: &[u8] = b"\0\0NEXT\0\0";
const STATUS: [u16; 12] = [200, 201, 204, 400, 403, 404, 429, 500, 503, 301, 202, 599];

/// Keys are derived once (a scalar multiplication each); every run loads the PKCS#8.
fn keys() -> &'static (Vec<u8>, Vec<u8>) {
    static KEYS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let a = AccountKey::from_seed(b"unipi-acme pebble test account seed").expect("seed");
        let c = CertificateKey::from_seed(
            KeyAlgorithm::EcdsaP256,
            b"unipi-acme pebble test certificate seed",
        )
        .expect("seed");
        (a.pkcs8_der().to_vec(), c.pkcs8_der().to_vec())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut answers = Vec::new();
    let mut tail = rest;
    while let Some(i) = tail.windows(NEXT.len()).position(|w| w == NEXT) {
        answers.push(&tail[..i]);
        tail = &tail[i + NEXT.len()..];
    }
    answers.push(tail);
    let mut answers = answers.into_iter();

    let mut config = Config::new("https://127.0.0.1:39789/dir", "unipi-acme.test");
    if flags & 8 != 0 {
        config.names.push("www.unipi-acme.test".into());
    }
    config.contacts = vec!["admin@unipi-acme.test".into()];
    config.challenges = match flags & 3 {
        0 => vec![ChallengeKind::Http01],
        1 => vec![ChallengeKind::TlsAlpn01],
        2 => vec![ChallengeKind::Http01, ChallengeKind::TlsAlpn01],
        _ => vec![ChallengeKind::TlsAlpn01, ChallengeKind::Http01],
    };
    if flags & 4 != 0 {
        config.limits = small_limits();
    }
    let (account, cert) = keys();
    let mut client = Client::new(
        config,
        AccountKey::from_pkcs8(account).expect("key"),
        CertificateKey::from_pkcs8(KeyAlgorithm::EcdsaP256, cert).expect("key"),
    );
    let mut now = Now {
        monotonic: 1000,
        unix: 1_796_545_027,
    };
    let mut published = 0i32;
    for _ in 0..10_000 {
        match client.poll(now) {
            Action::Request(req) => {
                assert!(req.url.as_str().starts_with("https://"));
                match answers.next() {
                    Some(answer) if !answer.is_empty() => {
                        let status = STATUS[usize::from(answer[0]) % STATUS.len()];
                        let answer = &answer[1..];
                        let (head, body) = match answer.windows(2).position(|w| w == b"\n\n") {
                            Some(i) => (&answer[..i], &answer[i + 2..]),
                            None => (answer, &[][..]),
                        };
                        let fields = split_fields(head);
                        let headers: Vec<(&str, &[u8])> = fields
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_slice()))
                            .collect();
                        client.response(HttpResponse {
                            status,
                            headers: &headers,
                            body,
                        });
                    }
                    _ => client.transport_error("fuzz: no answer"),
                }
            }
            Action::Publish(_) => {
                if flags & 16 != 0 {
                    client.publish_failed("fuzz: cannot publish");
                } else {
                    published += 1;
                    client.published();
                }
            }
            Action::Unpublish(_) => {
                published -= 1;
                client.unpublished();
            }
            Action::WaitUntil(t) => {
                assert!(t > now.monotonic, "WaitUntil in the past");
                now.unix += t - now.monotonic;
                now.monotonic = t;
            }
            Action::Pending => panic!("Pending with nothing owed"),
            Action::Done(result) => {
                assert_eq!(published, 0, "challenge answer left published");
                if let Err(e) = result {
                    // Server input never makes the client look misused or end silently.
                    assert!(
                        !matches!(e, unipi_acme::Error::Usage(_) | unipi_acme::Error::Finished),
                        "{e:?}"
                    );
                    let text = e.to_string();
                    assert!(!text.chars().any(char::is_control), "{text}");
                }
                return;
            }
        }
    }
    panic!("no result after 10000 polls");
});
