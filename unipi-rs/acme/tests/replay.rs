//! Replays of real pebble exchanges (`tests/fixtures/*.json`, recorded by
//! `tests/pebble.rs`), as they are and with one response changed, dropped or added: every
//! malformed-response class ends in its specific error, never a panic, and never with a
//! challenge answer left published.

use serde_json::Value;
use unipi_acme::{
    AccountKey, Action, CertificateKey, Client, Config, Error, Issued, KeyAlgorithm, Now, Phase,
    ProblemType,
};

#[derive(Clone, Debug)]
struct Exchange {
    method: String,
    url: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What the scripted server does for the next request.
#[derive(Clone, Debug)]
enum Reply {
    /// Answer (the request's method and URL must match when `check` is set).
    Answer { ex: Exchange, check: bool },
    /// Fail the transport.
    Transport,
}

struct Fixture {
    config: Config,
    account_seed: Vec<u8>,
    cert_seed: Vec<u8>,
    unix: u64,
    exchanges: Vec<Exchange>,
}

fn load(name: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let names: Vec<String> = v["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let mut config = Config::new(v["directory"].as_str().unwrap(), &names[0]);
    config.names = names;
    config.contacts = vec![v["contacts"][0].as_str().unwrap().to_string()];
    config.challenges =
        vec![unipi_acme::ChallengeKind::from_type(v["challenge"].as_str().unwrap()).unwrap()];
    let exchanges = v["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Exchange {
            method: e["method"].as_str().unwrap().into(),
            url: e["url"].as_str().unwrap().into(),
            status: e["status"].as_u64().unwrap() as u16,
            headers: e["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
                .collect(),
            body: e["body"].as_str().unwrap().as_bytes().to_vec(),
        })
        .collect();
    Fixture {
        config,
        account_seed: v["account_seed"].as_str().unwrap().as_bytes().to_vec(),
        cert_seed: v["cert_seed"].as_str().unwrap().as_bytes().to_vec(),
        unix: v["unix"].as_u64().unwrap(),
        exchanges,
    }
}

fn http01() -> Fixture {
    load("pebble-http01.json")
}

fn script(ex: &[Exchange]) -> Vec<Reply> {
    ex.iter()
        .map(|e| Reply::Answer {
            ex: e.clone(),
            check: true,
        })
        .collect()
}

#[derive(Debug, Default)]
struct Trace {
    requests: Vec<String>,
    events: Vec<String>,
    /// Replies left unused.
    unused: usize,
}

const START: u64 = 1000;

fn client(fx: &Fixture, config: Config) -> Client {
    Client::new(
        config,
        AccountKey::from_seed(&fx.account_seed).unwrap(),
        CertificateKey::from_seed(KeyAlgorithm::EcdsaP256, &fx.cert_seed).unwrap(),
    )
}

/// Drives a client against `replies`. Time moves only when the client waits.
fn run(fx: &Fixture, config: Config, replies: Vec<Reply>) -> (Result<Issued, Error>, Trace) {
    let mut c = client(fx, config);
    let mut replies = replies.into_iter();
    let mut trace = Trace::default();
    let mut mono = START;
    let mut published = 0i32;
    for _ in 0..10_000 {
        let now = Now {
            monotonic: mono,
            unix: fx.unix + (mono - START),
        };
        match c.poll(now) {
            Action::Request(req) => {
                trace
                    .requests
                    .push(format!("{} {}", req.method.as_str(), req.url));
                match replies.next() {
                    Some(Reply::Answer { ex, check }) => {
                        if check {
                            assert_eq!(
                                (req.method.as_str(), req.url.as_str()),
                                (ex.method.as_str(), ex.url.as_str()),
                                "request out of script; so far {trace:?}"
                            );
                        }
                        let headers: Vec<(&str, &[u8])> = ex
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_bytes()))
                            .collect();
                        c.response(unipi_acme::HttpResponse {
                            status: ex.status,
                            headers: &headers,
                            body: &ex.body,
                        });
                    }
                    Some(Reply::Transport) => c.transport_error("connection refused"),
                    None => panic!("unexpected request {req:?}; so far {trace:?}"),
                }
            }
            Action::Publish(ch) => {
                published += 1;
                trace.events.push(format!("publish {}", ch.kind()));
                c.published();
            }
            Action::Unpublish(ch) => {
                published -= 1;
                trace.events.push(format!("unpublish {}", ch.kind()));
                c.unpublished();
            }
            Action::WaitUntil(t) => {
                assert!(t > mono, "WaitUntil({t}) not in the future of {mono}");
                trace.events.push(format!("wait {}", t - mono));
                mono = t;
            }
            Action::Pending => panic!("pending without an owed answer"),
            Action::Done(result) => {
                assert_eq!(published, 0, "challenge left published: {trace:?}");
                trace.unused = replies.len();
                // Done comes once; afterwards the client only says it is finished.
                assert!(matches!(c.poll(now), Action::Done(Err(Error::Finished))));
                return (result, trace);
            }
        }
    }
    panic!("no result after 10000 polls: {trace:?}");
}

fn position(ex: &[Exchange], method: &str, url_part: &str, nth: usize) -> usize {
    ex.iter()
        .enumerate()
        .filter(|(_, e)| e.method == method && e.url.contains(url_part))
        .nth(nth)
        .unwrap_or_else(|| panic!("no {nth}th {method} {url_part}"))
        .0
}

fn set_header(e: &mut Exchange, name: &str, value: Option<&str>) {
    e.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        e.headers.push((name.into(), v.into()));
    }
}

fn set_json(e: &mut Exchange, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&e.body).unwrap();
    edit(&mut v);
    e.body = serde_json::to_vec(&v).unwrap();
}

fn problem(e: &Exchange, status: u16, kind: &str, detail: &str) -> Exchange {
    let mut p = e.clone();
    p.status = status;
    p.headers
        .retain(|(k, _)| k.eq_ignore_ascii_case("replay-nonce") || k.eq_ignore_ascii_case("link"));
    p.headers
        .push(("Content-Type".into(), "application/problem+json".into()));
    p.body = serde_json::to_vec(&serde_json::json!({
        "type": format!("urn:ietf:params:acme:error:{kind}"),
        "detail": detail,
        "status": status,
    }))
    .unwrap();
    p
}

// ---------------------------------------------------------------- the plain recordings

#[test]
fn http01_recording_replays_to_a_certificate() {
    let fx = http01();
    let (result, trace) = run(&fx, fx.config.clone(), script(&fx.exchanges));
    let issued = result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert_eq!(trace.unused, 0);
    assert_eq!(trace.requests.len(), fx.exchanges.len());
    assert_eq!(
        trace
            .events
            .iter()
            .filter(|e| *e == "publish http-01")
            .count(),
        2
    );
    assert_eq!(issued.chain.len(), 2);
    for n in &fx.config.names {
        assert!(issued.info.covers(n));
    }
    assert_eq!(
        issued.alternate_chains.len(),
        1,
        "pebble ran with one alternate root"
    );
    assert!(issued.order_url.contains("/my-order/"));
    assert_eq!(issued.stats.requests as usize, fx.exchanges.len());
    assert_eq!(issued.stats.bad_nonce_retries, 0);
    // Polls: two authorizations and the order after finalize.
    assert_eq!(issued.stats.polls, 3);
    assert!(issued.renew_at() > issued.info.not_before);
}

#[test]
fn tls_alpn01_recording_replays_to_a_certificate() {
    let fx = load("pebble-tls-alpn01.json");
    let (result, trace) = run(&fx, fx.config.clone(), script(&fx.exchanges));
    let issued = result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert_eq!(trace.events[0], "publish tls-alpn-01");
    assert_eq!(issued.info.names, ["alpn.unipi-acme.test"]);
}

#[test]
fn ready_order_goes_straight_to_finalize() {
    // Boulder and pebble may hand out an order whose authorizations are all valid.
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    let order = position(&ex, "POST", "/order-plz", 0);
    set_json(&mut ex[order], |v| v["status"] = "ready".into());
    let fin = position(&ex, "POST", "/finalize-order/", 0);
    ex.drain(order + 1..fin);
    let (result, trace) = run(&fx, fx.config.clone(), script(&ex));
    result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert!(trace.events.iter().all(|e| !e.starts_with("publish")));
}

#[test]
fn valid_authorization_is_not_answered_again() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    // First authorization already valid: its challenge POST and poll disappear.
    let authz = position(&ex, "POST", "/authZ/", 0);
    set_json(&mut ex[authz], |v| v["status"] = "valid".into());
    ex.drain(authz + 1..authz + 3);
    let (result, trace) = run(&fx, fx.config.clone(), script(&ex));
    result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert_eq!(
        trace
            .events
            .iter()
            .filter(|e| e.starts_with("publish"))
            .count(),
        1
    );
}

// ---------------------------------------------------------------- nonces

#[test]
fn bad_nonce_is_retried_with_the_new_nonce() {
    let fx = http01();
    let mut s = script(&fx.exchanges);
    let order = position(&fx.exchanges, "POST", "/order-plz", 0);
    let bad = problem(
        &fx.exchanges[order],
        400,
        "badNonce",
        "JWS has an invalid anti-replay nonce",
    );
    s.insert(
        order,
        Reply::Answer {
            ex: bad,
            check: true,
        },
    );
    let (result, trace) = run(&fx, fx.config.clone(), s);
    let issued = result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert_eq!(issued.stats.bad_nonce_retries, 1);
    assert_eq!(trace.requests[order], trace.requests[order + 1]);
}

#[test]
fn bad_nonce_without_a_nonce_fetches_one() {
    let fx = http01();
    let mut s = script(&fx.exchanges);
    let order = position(&fx.exchanges, "POST", "/order-plz", 0);
    let mut bad = problem(&fx.exchanges[order], 400, "badNonce", "stale");
    set_header(&mut bad, "Replay-Nonce", None);
    let nonce = fx.exchanges[position(&fx.exchanges, "HEAD", "/nonce-plz", 0)].clone();
    s.insert(
        order,
        Reply::Answer {
            ex: nonce,
            check: true,
        },
    );
    s.insert(
        order,
        Reply::Answer {
            ex: bad,
            check: true,
        },
    );
    let (result, trace) = run(&fx, fx.config.clone(), s);
    result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert!(trace.requests[order + 1].starts_with("HEAD "));
}

#[test]
fn bad_nonce_storm_is_bounded() {
    let fx = http01();
    let mut s = script(&fx.exchanges);
    let order = position(&fx.exchanges, "POST", "/order-plz", 0);
    let bad = problem(&fx.exchanges[order], 400, "badNonce", "again");
    for _ in 0..6 {
        s.insert(
            order,
            Reply::Answer {
                ex: bad.clone(),
                check: true,
            },
        );
    }
    let (result, _) = run(&fx, fx.config.clone(), s);
    assert_eq!(
        result.unwrap_err(),
        Error::BadNonce {
            phase: Phase::Order,
            limit: 5
        }
    );
}

#[test]
fn missing_nonce_is_malformed() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    let n = position(&ex, "HEAD", "/nonce-plz", 0);
    set_header(&mut ex[n], "Replay-Nonce", Some("not a nonce!"));
    let (result, _) = run(&fx, fx.config.clone(), script(&ex));
    match result {
        Err(Error::Malformed {
            phase: Phase::Nonce,
            reason,
        }) => assert!(reason.contains("Replay-Nonce"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- problems and limits

#[test]
fn rate_limit_carries_retry_after() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    let order = position(&ex, "POST", "/order-plz", 0);
    let mut limited = problem(
        &ex[order],
        429,
        "rateLimited",
        "too many certificates already issued for \"unipi-acme.test\"",
    );
    set_header(&mut limited, "Retry-After", Some("3600"));
    ex[order] = limited;
    let (result, _) = run(&fx, fx.config.clone(), script(&ex));
    let e = result.unwrap_err();
    match &e {
        Error::RateLimited {
            phase: Phase::Order,
            problem: Some(p),
            retry_at: Some(t),
        } => {
            assert_eq!(*t, START + 3600);
            assert_eq!(p.kind, ProblemType::RateLimited);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("do not retry before"), "{e}");
    let mut backoff = unipi_acme::Backoff::default();
    assert_eq!(backoff.next_attempt(&e, START), START + 3600);
}

#[test]
fn problems_become_typed_errors() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    let acct = position(&ex, "POST", "/sign-me-up", 0);
    ex[acct] = problem(
        &ex[acct],
        400,
        "invalidContact",
        "contact email has forbidden domain",
    );
    let (result, _) = run(&fx, fx.config.clone(), script(&ex));
    match result.unwrap_err() {
        Error::Problem {
            phase: Phase::Account,
            problem,
            retry_at: None,
        } => {
            assert_eq!(problem.kind, ProblemType::InvalidContact);
            assert_eq!(problem.detail, "contact email has forbidden domain");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_and_error_bodies() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    ex[0].body = vec![b' '; 70 * 1024];
    let (result, _) = run(&fx, fx.config.clone(), script(&ex));
    assert_eq!(
        result.unwrap_err(),
        Error::TooLarge {
            phase: Phase::Directory,
            limit: 64 * 1024
        }
    );

    // A proxy's HTML error page on a request that must not be repeated.
    let mut ex = fx.exchanges.clone();
    let fin = position(&ex, "POST", "/finalize-order/", 0);
    ex[fin].status = 502;
    ex[fin].body = b"<html>Bad Gateway</html>".to_vec();
    set_header(&mut ex[fin], "Content-Type", Some("text/html"));
    let (result, _) = run(&fx, fx.config.clone(), script(&ex[..=fin]));
    assert_eq!(
        result.unwrap_err(),
        Error::HttpStatus {
            phase: Phase::Finalize,
            status: 502,
            retry_at: None
        }
    );
}

#[test]
fn transient_failures_of_repeatable_requests_are_retried() {
    let fx = http01();
    let mut s = script(&fx.exchanges);
    // The order poll after finalize: one 503 with Retry-After, one transport failure
    // (after which the nonce may be spent: a fresh one is fetched).
    let poll = position(&fx.exchanges, "POST", "/my-order/", 1);
    let mut unavailable = fx.exchanges[poll].clone();
    unavailable.status = 503;
    unavailable.body.clear();
    set_header(&mut unavailable, "Retry-After", Some("4"));
    let nonce = fx.exchanges[position(&fx.exchanges, "HEAD", "/nonce-plz", 0)].clone();
    s.insert(
        poll,
        Reply::Answer {
            ex: nonce,
            check: true,
        },
    );
    s.insert(poll, Reply::Transport);
    s.insert(
        poll,
        Reply::Answer {
            ex: unavailable,
            check: true,
        },
    );
    let (result, trace) = run(&fx, fx.config.clone(), s);
    let issued = result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert_eq!(issued.stats.transient_retries, 2);
    assert!(
        trace.events.ends_with(&["wait 4".into(), "wait 2".into()]),
        "{trace:?}"
    );
    assert!(trace.requests[poll + 2].starts_with("HEAD "), "{trace:?}");

    // The directory unreachable: bounded retries, then a transport error.
    let s = vec![Reply::Transport; 4];
    let (result, trace) = run(&fx, fx.config.clone(), s);
    assert!(matches!(
        result.unwrap_err(),
        Error::Transport {
            phase: Phase::Directory,
            ..
        }
    ));
    assert_eq!(trace.requests.len(), 4);
    assert_eq!(trace.events, ["wait 1", "wait 2", "wait 4"]);
}

#[test]
fn processing_order_waits_for_retry_after() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    let fin = position(&ex, "POST", "/finalize-order/", 0);
    set_header(&mut ex[fin], "Retry-After", Some("7"));
    let (result, trace) = run(&fx, fx.config.clone(), script(&ex));
    result.unwrap_or_else(|e| panic!("{e}: {trace:?}"));
    assert!(trace.events.contains(&"wait 7".to_string()), "{trace:?}");
    // An absurd Retry-After is clamped to the longest poll interval.
    let mut ex = fx.exchanges.clone();
    set_header(&mut ex[fin], "Retry-After", Some("99999999"));
    let (result, trace) = run(&fx, fx.config.clone(), script(&ex));
    result.unwrap();
    assert!(trace.events.contains(&"wait 30".to_string()), "{trace:?}");
}

// ---------------------------------------------------------------- challenges

#[test]
fn failed_challenge_is_unpublished_and_reported() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    let poll = position(&ex, "POST", "/authZ/", 1);
    set_json(&mut ex[poll], |v| {
        v["status"] = "invalid".into();
        v["challenges"][0]["status"] = "invalid".into();
        v["challenges"][0]["error"] = serde_json::json!({
            "type": "urn:ietf:params:acme:error:incorrectResponse",
            "detail": "The key authorization file from the server did not match this challenge",
            "status": 403
        });
    });
    let (result, trace) = run(&fx, fx.config.clone(), script(&ex[..=poll]));
    match result.unwrap_err() {
        Error::ChallengeFailed {
            name,
            kind: unipi_acme::ChallengeKind::Http01,
            problem: Some(p),
        } => {
            assert_eq!(name, fx.config.names[0]);
            assert_eq!(p.kind, ProblemType::IncorrectResponse);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(trace.events.last().unwrap(), "unpublish http-01");
}

#[test]
fn challenge_post_answered_invalid() {
    let fx = http01();
    let mut ex = fx.exchanges.clone();
    let ch = position(&ex, "POST", "/chalZ/", 0);
    set_json(&mut ex[ch], |v| {
        v["status"] = "invalid".into();
        v["error"] = serde_json::json!({"type": "urn:ietf:params:acme:error:connection", "detail": "refused"});
    });
    let (result, trace) = run(&fx, fx.config.clone(), script(&ex[..=ch]));
    let e = result.unwrap_err();
    assert!(
        matches!(&e, Error::ChallengeFailed { problem: Some(p), .. } if p.kind == ProblemType::Connection),
        "{e:?}"
    );
    assert!(e.to_string().contains("port 80"), "{e}");
    assert_eq!(trace.events, ["publish http-01", "unpublish http-01"]);
}

#[test]
fn authorization_states_and_polling_limits() {
    let fx = http01();
    // Deactivated while polling.
    let mut ex = fx.exchanges.clone();
    let poll = position(&ex, "POST", "/authZ/", 1);
    set_json(&mut ex[poll], |v| v["status"] = "deactivated".into());
    let (result, trace) = run(&fx, fx.config.clone(), script(&ex[..=poll]));
    assert_eq!(
        result.unwrap_err(),
        Error::AuthorizationFailed {
            name: fx.config.names[0].clone(),
            status: "deactivated"
        }
    );
    assert_eq!(trace.events.last().unwrap(), "unpublish http-01");

    // Pending for ever: bounded polls with growing intervals.
    let mut ex = fx.exchanges[..=poll].to_vec();
    set_json(&mut ex[poll], |v| v["status"] = "pending".into());
    let stuck = ex[poll].clone();
    for _ in 0..3 {
        ex.push(stuck.clone());
    }
    let mut config = fx.config.clone();
    config.limits.max_polls = 4;
    let (result, trace) = run(&fx, config, script(&ex));
    assert_eq!(
        result.unwrap_err(),
        Error::PollLimit {
            phase: Phase::Authorization,
            limit: 4
        }
    );
    assert_eq!(
        trace.events,
        [
            "publish http-01",
            "wait 1",
            "wait 2",
            "wait 4",
            "wait 8",
            "unpublish http-01"
        ]
    );

    // Only challenge types this client does not answer.
    let mut ex = fx.exchanges.clone();
    let authz = position(&ex, "POST", "/authZ/", 0);
    set_json(&mut ex[authz], |v| {
        v["challenges"] = serde_json::json!([
            {"type": "dns-01", "url": "https://127.0.0.1/c", "token": "abc", "status": "pending"}
        ]);
    });
    let (result, _) = run(&fx, fx.config.clone(), script(&ex[..=authz]));
    assert_eq!(
        result.unwrap_err(),
        Error::NoUsableChallenge {
            name: fx.config.names[0].clone(),
            offered: "dns-01".into()
        }
    );
}

// ---------------------------------------------------------------- account and order

#[test]
fn account_and_order_answers() {
    let fx = http01();
    let acct = position(&fx.exchanges, "POST", "/sign-me-up", 0);
    let order = position(&fx.exchanges, "POST", "/order-plz", 0);

    let mut ex = fx.exchanges.clone();
    set_json(&mut ex[acct], |v| v["status"] = "deactivated".into());
    let (result, _) = run(&fx, fx.config.clone(), script(&ex));
    assert_eq!(
        result.unwrap_err(),
        Error::AccountNotValid {
            status: "deactivated"
        }
    );

    let mut ex = fx.exchanges.clone();
    set_header(&mut ex[acct], "Location", None);
    let (result, _) = run(&fx, fx.config.clone(), script(&ex));
    assert!(
        matches!(result.unwrap_err(), Error::Malformed { phase: Phase::Account, reason } if reason.contains("Location"))
    );

    let mut ex = fx.exchanges.clone();
    set_json(&mut ex[order], |v| v["status"] = "invalid".into());
    set_json(
        &mut ex[order],
        |v| v["error"] = serde_json::json!({"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "no"}),
    );
    let (result, _) = run(&fx, fx.config.clone(), script(&ex));
    assert!(
        matches!(result.unwrap_err(), Error::OrderFailed { problem: Some(p) } if p.kind == ProblemType::RejectedIdentifier)
    );

    for (edit, why) in [
        (
            Box::new(|v: &mut Value| v["status"] = "bogus".into()) as Box<dyn Fn(&mut Value)>,
            "unknown status",
        ),
        (
            Box::new(|v: &mut Value| v["authorizations"][0] = "http://127.0.0.1/x".into()),
            "https",
        ),
        (
            Box::new(|v: &mut Value| v["finalize"] = 5.into()),
            "invalid type",
        ),
        (
            Box::new(|v: &mut Value| {
                let a = v["authorizations"][0].clone();
                v["authorizations"]
                    .as_array_mut()
                    .unwrap()
                    .extend([a.clone(), a]);
            }),
            "more authorizations than names",
        ),
    ] {
        let mut ex = fx.exchanges.clone();
        set_json(&mut ex[order], edit);
        let (result, _) = run(&fx, fx.config.clone(), script(&ex[..=order]));
        match result.unwrap_err() {
            Error::Malformed {
                phase: Phase::Order,
                reason,
            } => assert!(reason.contains(why), "{reason} / {why}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn directory_answers() {
    let fx = http01();
    for (edit, why) in [
        (
            Box::new(|e: &mut Exchange| e.body.truncate(e.body.len() / 2))
                as Box<dyn Fn(&mut Exchange)>,
            "directory: EOF",
        ),
        (
            Box::new(|e: &mut Exchange| set_header(e, "Content-Type", Some("text/html"))),
            "expected application/json",
        ),
        (
            Box::new(|e: &mut Exchange| {
                set_json(e, |v| v["meta"]["externalAccountRequired"] = true.into())
            }),
            "external account binding",
        ),
        (
            Box::new(|e: &mut Exchange| set_json(e, |v| v["newNonce"] = "https://user@x/".into())),
            "newNonce",
        ),
    ] {
        let mut ex = fx.exchanges.clone();
        edit(&mut ex[0]);
        let (result, _) = run(&fx, fx.config.clone(), script(&ex[..1]));
        match result.unwrap_err() {
            Error::Malformed {
                phase: Phase::Directory,
                reason,
            } => assert!(reason.contains(why), "{reason} / {why}"),
            other => panic!("{other:?}"),
        }
    }
}

// ---------------------------------------------------------------- the certificate

#[test]
fn certificate_answers() {
    let fx = http01();
    let last = fx.exchanges.len() - 1;
    let bad_cert = |edit: &dyn Fn(&mut Exchange)| {
        let mut ex = fx.exchanges.clone();
        edit(&mut ex[last]);
        run(&fx, fx.config.clone(), script(&ex)).0.unwrap_err()
    };

    let e = bad_cert(&|e| set_header(e, "Content-Type", Some("application/json")));
    assert!(
        matches!(&e, Error::Malformed { phase: Phase::Certificate, reason } if reason.contains("pem-certificate-chain")),
        "{e:?}"
    );

    let e = bad_cert(&|e| e.body = b"garbage".to_vec());
    assert_eq!(
        e,
        Error::BadCertificate {
            reason: "no certificate in the PEM chain".into()
        }
    );

    // The TLS-ALPN-01 recording's certificate: same key (same seed), other names.
    let other = load("pebble-tls-alpn01.json");
    let other_pem = other.exchanges.last().unwrap().body.clone();
    let e = bad_cert(&|e| e.body = other_pem.clone());
    assert!(
        matches!(&e, Error::BadCertificate { reason } if reason.contains("does not cover")),
        "{e:?}"
    );

    // A certificate for the right names but another key.
    let key = rcgen::KeyPair::generate().unwrap();
    let foreign = rcgen::CertificateParams::new(fx.config.names.clone())
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let e = bad_cert(&|e| e.body = foreign.clone().into_bytes());
    assert_eq!(
        e,
        Error::BadCertificate {
            reason: "the leaf certificate is not for our key".into()
        }
    );

    // Leaf and intermediate swapped.
    let body = fx.exchanges[last].body.clone();
    let text = String::from_utf8(body).unwrap();
    let mut parts: Vec<&str> = text
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    parts.swap(0, 1);
    let swapped = parts.concat();
    let e = bad_cert(&|e| e.body = swapped.clone().into_bytes());
    assert!(matches!(e, Error::BadCertificate { .. }), "{e:?}");
}

// ---------------------------------------------------------------- robustness sweep

/// Deterministic pseudo-random bytes.
fn noise(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Every response of both recordings, mangled in several ways: the issuance ends (with an
/// error or, for harmless changes, a certificate), never panics, never leaves an answer
/// published and never asks for more than the finite script plus its retries (both
/// checked in `run`).
#[test]
fn every_response_mangled() {
    for fx in [http01(), load("pebble-tls-alpn01.json")] {
        for i in 0..fx.exchanges.len() {
            for variant in 0..8u64 {
                let mut ex = fx.exchanges.clone();
                let e = &mut ex[i];
                let mut rnd = noise(i as u64 * 31 + variant);
                match variant {
                    0 => e.body.truncate(e.body.len() / 2),
                    1 => e.body.clear(),
                    2 => e.status = 500,
                    3 => {
                        e.status = 404;
                        e.body = b"{\"type\": 7}".to_vec();
                    }
                    4 => e.headers.clear(),
                    5 | 6 => {
                        for _ in 0..1 + rnd() % 8 {
                            if !e.body.is_empty() {
                                let at = (rnd() % e.body.len() as u64) as usize;
                                e.body[at] = rnd() as u8;
                            }
                        }
                    }
                    _ => e.body.extend_from_slice(b"\0trailing"),
                }
                // Generous script: the rest of the recording, repeated (retries).
                let mut s = script(&ex);
                s.extend(script(&fx.exchanges[i..]).into_iter().map(|r| match r {
                    Reply::Answer { ex, .. } => Reply::Answer { ex, check: false },
                    t => t,
                }));
                let (result, _) = run_lenient(&fx, s);
                if let Err(e) = &result {
                    // Server input never makes the client look misused or end silently.
                    assert!(
                        !matches!(e, Error::Usage(_) | Error::Finished),
                        "exchange {i} variant {variant}: {e:?}"
                    );
                    // Every error message is printable and bounded.
                    let text = e.to_string();
                    assert!(!text.chars().any(char::is_control), "{text}");
                    assert!(text.len() < 2000, "{text}");
                }
            }
        }
    }
}

/// Like `run`, but a request beyond the script or out of order ends the run as a transport
/// failure instead of failing the test.
fn run_lenient(fx: &Fixture, replies: Vec<Reply>) -> (Result<Issued, Error>, Trace) {
    let replies: Vec<Reply> = replies
        .into_iter()
        .map(|r| match r {
            Reply::Answer { ex, .. } => Reply::Answer { ex, check: false },
            t => t,
        })
        .chain(std::iter::repeat_n(Reply::Transport, 8))
        .collect();
    run(fx, fx.config.clone(), replies)
}

#[test]
fn driver_misuse_is_an_error_not_a_panic() {
    let fx = http01();
    let mut c = client(&fx, fx.config.clone());
    // An answer nobody asked for.
    c.response(unipi_acme::HttpResponse {
        status: 200,
        headers: &[],
        body: b"{}",
    });
    match c.poll(Now::default()) {
        Action::Done(Err(Error::Usage(_))) => {}
        other => panic!("{other:?}"),
    }
    let mut c = client(&fx, fx.config.clone());
    assert!(matches!(c.poll(Now::default()), Action::Request(_)));
    assert!(matches!(c.poll(Now::default()), Action::Pending));
    c.published();
    assert!(matches!(
        c.poll(Now::default()),
        Action::Done(Err(Error::Usage(_)))
    ));

    // Unusable configurations end at the first poll.
    let mut config = fx.config.clone();
    config.names.push("*.unipi-acme.test".into());
    let mut c = client(&fx, config);
    assert!(matches!(
        c.poll(Now::default()),
        Action::Done(Err(Error::InvalidName { .. }))
    ));
    let mut config = fx.config.clone();
    config.directory = "http://127.0.0.1/dir".into();
    let mut c = client(&fx, config);
    assert!(matches!(
        c.poll(Now::default()),
        Action::Done(Err(Error::InvalidUrl { .. }))
    ));
    let mut config = fx.config.clone();
    config.contacts = vec!["nobody".into()];
    let mut c = client(&fx, config);
    assert!(matches!(
        c.poll(Now::default()),
        Action::Done(Err(Error::InvalidContact { .. }))
    ));
}
