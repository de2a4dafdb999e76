//! Writes the seed corpora of the `acme_*` fuzz targets (`fuzz/seeds/acme_*`) from the
//! recorded pebble exchanges in `tests/fixtures`, plus problem documents and a few
//! variants of the recordings (badNonce, rate limit, processing with Retry-After, failed
//! challenge). Run by hand after re-recording:
//!
//!     cargo test -p unipi-acme --test fuzz_seeds -- --ignored

use std::path::{Path, PathBuf};

use serde_json::Value;

struct Exchange {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    url: String,
}

fn fixture(name: &str) -> (u64, Vec<Exchange>) {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let ex = v["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Exchange {
            status: e["status"].as_u64().unwrap() as u16,
            headers: e["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
                .collect(),
            body: e["body"].as_str().unwrap().as_bytes().to_vec(),
            url: e["url"].as_str().unwrap().into(),
        })
        .collect();
    (v["unix"].as_u64().unwrap(), ex)
}

fn seeds_dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn head(e: &Exchange) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in &e.headers {
        out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
    }
    out
}

/// `acme_client` encoding of one answer.
const STATUS: [u16; 12] = [200, 201, 204, 400, 403, 404, 429, 500, 503, 301, 202, 599];

fn answer(e: &Exchange) -> Vec<u8> {
    let sel = STATUS.iter().position(|s| *s == e.status).unwrap() as u8;
    let mut out = vec![sel];
    out.extend(head(e));
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(&e.body);
    out
}

fn conversation(flags: u8, ex: &[Exchange]) -> Vec<u8> {
    let mut out = vec![flags];
    for (i, e) in ex.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\0\0NEXT\0\0");
        }
        out.extend(answer(e));
    }
    out
}

fn problem(status: u16, kind: &str, extra: &[(&str, &str)]) -> Exchange {
    let mut headers = vec![
        (
            "Content-Type".to_string(),
            "application/problem+json".to_string(),
        ),
        (
            "Replay-Nonce".to_string(),
            "fuzzSeedNonce0123456789".to_string(),
        ),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Exchange {
        status,
        headers,
        body: format!(
            r#"{{"type":"urn:ietf:params:acme:error:{kind}","detail":"seed {kind}","status":{status},"subproblems":[{{"type":"urn:ietf:params:acme:error:caa","identifier":{{"type":"dns","value":"unipi-acme.test"}}}}]}}"#
        )
        .into_bytes(),
        url: String::new(),
    }
}

#[test]
#[ignore = "writes fuzz/seeds/acme_*; run by hand after re-recording the fixtures"]
fn write_fuzz_seeds() {
    let (unix, http) = fixture("pebble-http01.json");
    let (_, alpn) = fixture("pebble-tls-alpn01.json");

    // acme_objects: selector | body, for the parser each body belongs to.
    let d = seeds_dir("acme_objects");
    let mut n = 0;
    let mut put = |sel: u8, body: &[u8]| {
        let mut s = vec![sel];
        s.extend_from_slice(body);
        std::fs::write(d.join(format!("seed-{n:03}")), s).unwrap();
        n += 1;
    };
    for e in http.iter().chain(&alpn) {
        let sel = if e.url.ends_with("/dir") {
            0
        } else if e.url.contains("sign-me-up") {
            1
        } else if e.url.contains("order") {
            2
        } else if e.url.contains("/authZ/") {
            3
        } else if e.url.contains("/chalZ/") {
            4
        } else {
            continue;
        };
        put(sel, &e.body);
        put(sel | 0x80, &e.body);
    }
    for kind in ["badNonce", "rateLimited", "compound", "incorrectResponse"] {
        put(5, &problem(400, kind, &[]).body);
    }

    // acme_headers: now (LE) | fields.
    let d = seeds_dir("acme_headers");
    for (i, e) in http.iter().chain(&alpn).enumerate() {
        let mut s = (unix as u32).to_le_bytes().to_vec();
        s.extend(head(e));
        s.extend_from_slice(b"Retry-After: Sun, 06 Dec 2026 08:17:37 GMT\nLocation: /my-order/x\n");
        std::fs::write(d.join(format!("seed-{i:03}")), s).unwrap();
    }

    // acme_certificate: the chains and their DER certificates.
    let d = seeds_dir("acme_certificate");
    for (i, e) in [http.last().unwrap(), alpn.last().unwrap()]
        .iter()
        .enumerate()
    {
        std::fs::write(d.join(format!("chain-{i}")), &e.body).unwrap();
        let chain = unipi_acme::parse_chain_pem(&e.body, 8).unwrap();
        for (j, der) in chain.iter().enumerate() {
            std::fs::write(d.join(format!("der-{i}-{j}")), der).unwrap();
        }
    }

    // acme_client: whole conversations and variants.
    let d = seeds_dir("acme_client");
    std::fs::write(d.join("http01"), conversation(8, &http)).unwrap();
    std::fs::write(d.join("http01-small"), conversation(8 | 4, &http)).unwrap();
    std::fs::write(d.join("tls-alpn01"), conversation(1, &alpn)).unwrap();
    let order = http
        .iter()
        .position(|e| e.url.contains("order-plz"))
        .unwrap();
    let mut variants: Vec<(&str, Vec<Exchange>)> = Vec::new();
    let clone = |e: &Exchange| Exchange {
        status: e.status,
        headers: e.headers.clone(),
        body: e.body.clone(),
        url: e.url.clone(),
    };
    let with = |at: usize, extra: Exchange| {
        let mut v: Vec<Exchange> = http.iter().map(clone).collect();
        v.insert(at, extra);
        v
    };
    variants.push(("bad-nonce", with(order, problem(400, "badNonce", &[]))));
    variants.push((
        "rate-limited",
        with(
            order,
            problem(429, "rateLimited", &[("Retry-After", "3600")]),
        ),
    ));
    let fin = http
        .iter()
        .position(|e| e.url.contains("finalize"))
        .unwrap();
    let mut v: Vec<Exchange> = http.iter().map(clone).collect();
    v[fin].headers.push(("Retry-After".into(), "3".into()));
    variants.push(("processing-retry-after", v));
    let poll = http.iter().position(|e| e.url.contains("/authZ/")).unwrap() + 2;
    let mut v: Vec<Exchange> = http.iter().map(clone).collect();
    v[poll].body = String::from_utf8(v[poll].body.clone())
        .unwrap()
        .replace("\"valid\"", "\"invalid\"")
        .into_bytes();
    variants.push(("challenge-invalid", v));
    for (name, v) in variants {
        std::fs::write(d.join(name), conversation(8, &v)).unwrap();
    }
}
