//! The ACME resources as JSON (RFC 8555 §7.1): directory, account, order, authorization,
//! challenge. Bodies are size-checked by the caller before they get here; parsing goes
//! through serde_json into permissive `Raw*` structs (unknown fields ignored), then every
//! URL, status and token is validated into the typed form the client uses.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::challenge::{ChallengeKind, valid_token};
use crate::error::sanitize;
use crate::limits::Limits;
use crate::problem::{Problem, RawProblem};
use crate::url::Url;

/// Why a JSON body was not usable (sanitised text for [`Error::Malformed`](crate::Error)).
pub type Invalid = String;

fn invalid(what: &str) -> Invalid {
    sanitize(what.as_bytes())
}

fn json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Invalid> {
    serde_json::from_slice(body).map_err(|e| {
        let mut s = String::from(what);
        s.push_str(": ");
        // serde_json's messages name the field and position, never the input itself
        // beyond short snippets; sanitised anyway.
        s.push_str(&alloc::format!("{e}"));
        invalid(&s)
    })
}

fn url(text: &str, field: &str, limits: &Limits) -> Result<Url, Invalid> {
    Url::parse(text, limits.max_url_len).map_err(|e| {
        let mut s = String::from(field);
        s.push_str(": ");
        s.push_str(&alloc::format!("{e}"));
        invalid(&s)
    })
}

/// The status of an ACME object (RFC 8555 §7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `pending`
    Pending,
    /// `ready` (orders)
    Ready,
    /// `processing` (orders, challenges)
    Processing,
    /// `valid`
    Valid,
    /// `invalid`
    Invalid,
    /// `deactivated` (accounts, authorizations)
    Deactivated,
    /// `expired` (authorizations)
    Expired,
    /// `revoked` (accounts, authorizations)
    Revoked,
}

impl Status {
    fn parse(s: &str) -> Result<Status, Invalid> {
        Ok(match s {
            "pending" => Status::Pending,
            "ready" => Status::Ready,
            "processing" => Status::Processing,
            "valid" => Status::Valid,
            "invalid" => Status::Invalid,
            "deactivated" => Status::Deactivated,
            "expired" => Status::Expired,
            "revoked" => Status::Revoked,
            other => {
                let mut m = String::from("unknown status '");
                m.push_str(other);
                m.push('\'');
                return Err(invalid(&m));
            }
        })
    }

    /// The status as ACME writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Processing => "processing",
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Deactivated => "deactivated",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }
}

// ---------------------------------------------------------------- directory

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDirectory {
    new_nonce: String,
    new_account: String,
    new_order: String,
    #[serde(default)]
    meta: Option<RawMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    #[serde(default)]
    terms_of_service: Option<String>,
    #[serde(default)]
    external_account_required: Option<bool>,
}

/// The directory (RFC 8555 §7.1.1): the URLs this client uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    /// `newNonce`
    pub new_nonce: Url,
    /// `newAccount`
    pub new_account: Url,
    /// `newOrder`
    pub new_order: Url,
    /// `meta.termsOfService` (sanitised), for the log.
    pub terms_of_service: Option<String>,
    /// `meta.externalAccountRequired`: the CA wants external account binding, which this
    /// client does not do.
    pub external_account_required: bool,
}

/// Parses a directory object.
pub fn directory(body: &[u8], limits: &Limits) -> Result<Directory, Invalid> {
    let raw: RawDirectory = json(body, "directory")?;
    let meta = raw.meta.unwrap_or(RawMeta {
        terms_of_service: None,
        external_account_required: None,
    });
    Ok(Directory {
        new_nonce: url(&raw.new_nonce, "newNonce", limits)?,
        new_account: url(&raw.new_account, "newAccount", limits)?,
        new_order: url(&raw.new_order, "newOrder", limits)?,
        terms_of_service: meta.terms_of_service.map(|t| sanitize(t.as_bytes())),
        external_account_required: meta.external_account_required.unwrap_or(false),
    })
}

// ---------------------------------------------------------------- account

#[derive(Deserialize)]
struct RawAccount {
    status: String,
}

/// Parses an account object; only its status matters here.
pub fn account(body: &[u8]) -> Result<Status, Invalid> {
    let raw: RawAccount = json(body, "account")?;
    Status::parse(&raw.status)
}

// ---------------------------------------------------------------- order

#[derive(Deserialize)]
struct RawOrder {
    status: String,
    #[serde(default)]
    authorizations: Vec<String>,
    finalize: String,
    #[serde(default)]
    certificate: Option<String>,
    #[serde(default)]
    error: Option<RawProblem>,
}

/// An order (RFC 8555 §7.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// Its status.
    pub status: Status,
    /// Its authorizations.
    pub authorizations: Vec<Url>,
    /// Where to send the CSR.
    pub finalize: Url,
    /// Where to download the certificate, once `valid`.
    pub certificate: Option<Url>,
    /// Why it is `invalid`, if the server said.
    pub error: Option<Problem>,
}

/// Parses an order object. A `valid` order must name its certificate; an order that still
/// needs validation must list at least one authorization, and none lists more than
/// [`Limits::max_names`].
pub fn order(body: &[u8], limits: &Limits) -> Result<Order, Invalid> {
    let raw: RawOrder = json(body, "order")?;
    let status = Status::parse(&raw.status)?;
    if raw.authorizations.len() > limits.max_names {
        return Err(invalid(
            "order lists more authorizations than the name limit",
        ));
    }
    if status == Status::Pending && raw.authorizations.is_empty() {
        return Err(invalid("pending order without authorizations"));
    }
    let authorizations = raw
        .authorizations
        .iter()
        .map(|a| url(a, "authorizations", limits))
        .collect::<Result<Vec<_>, _>>()?;
    let certificate = match raw.certificate {
        Some(c) => Some(url(&c, "certificate", limits)?),
        None if status == Status::Valid => {
            return Err(invalid("valid order without a certificate URL"));
        }
        None => None,
    };
    Ok(Order {
        status,
        authorizations,
        finalize: url(&raw.finalize, "finalize", limits)?,
        certificate,
        error: raw.error.map(RawProblem::into_problem),
    })
}

// ---------------------------------------------------------------- authorization

#[derive(Deserialize)]
struct RawIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
struct RawAuthorization {
    identifier: RawIdentifier,
    status: String,
    #[serde(default)]
    challenges: Vec<RawChallenge>,
    #[serde(default)]
    wildcard: Option<bool>,
}

#[derive(Deserialize)]
struct RawChallenge {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default)]
    token: Option<String>,
    status: String,
    #[serde(default)]
    error: Option<RawProblem>,
}

/// A challenge of a type this client answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeObject {
    /// Its type.
    pub kind: ChallengeKind,
    /// Where to POST the answer.
    pub url: Url,
    /// The token (checked base64url).
    pub token: String,
    /// Its status.
    pub status: Status,
    /// The validation error, if any.
    pub error: Option<Problem>,
}

/// An authorization (RFC 8555 §7.1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The DNS name (lowercased, sanitised).
    pub name: String,
    /// Its status.
    pub status: Status,
    /// The challenges of types this client answers, in the server's order.
    pub challenges: Vec<ChallengeObject>,
    /// The types of the other challenges (sanitised), for error messages.
    pub other_types: Vec<String>,
}

/// Parses an authorization object. Only `dns` identifiers are accepted; challenges of
/// other types keep only their type name, so their fields are not checked.
pub fn authorization(body: &[u8], limits: &Limits) -> Result<Authorization, Invalid> {
    let raw: RawAuthorization = json(body, "authorization")?;
    if raw.identifier.kind != "dns" {
        return Err(invalid(
            "authorization for an identifier that is not a DNS name",
        ));
    }
    if raw.wildcard == Some(true) {
        return Err(invalid(
            "wildcard authorization, but no wildcard was ordered",
        ));
    }
    if raw.challenges.len() > limits.max_challenges {
        return Err(invalid("more challenges than the limit"));
    }
    let mut challenges = Vec::new();
    let mut other_types = Vec::new();
    for c in raw.challenges {
        let Some(kind) = ChallengeKind::from_type(&c.kind) else {
            other_types.push(sanitize(c.kind.as_bytes()));
            continue;
        };
        challenges.push(challenge_fields(kind, c, limits)?);
    }
    Ok(Authorization {
        name: sanitize(raw.identifier.value.as_bytes()).to_ascii_lowercase(),
        status: Status::parse(&raw.status)?,
        challenges,
        other_types,
    })
}

fn challenge_fields(
    kind: ChallengeKind,
    c: RawChallenge,
    limits: &Limits,
) -> Result<ChallengeObject, Invalid> {
    let token = c.token.unwrap_or_default();
    if !valid_token(&token, limits.max_token_len) {
        return Err(invalid("challenge token missing or not base64url"));
    }
    Ok(ChallengeObject {
        kind,
        url: url(&c.url, "challenge url", limits)?,
        token,
        status: Status::parse(&c.status)?,
        error: c.error.map(RawProblem::into_problem),
    })
}

/// Parses a challenge object (the answer to the challenge POST).
pub fn challenge(body: &[u8], limits: &Limits) -> Result<ChallengeObject, Invalid> {
    let raw: RawChallenge = json(body, "challenge")?;
    let Some(kind) = ChallengeKind::from_type(&raw.kind) else {
        return Err(invalid("challenge of another type than the one answered"));
    };
    challenge_fields(kind, raw, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> Limits {
        Limits::default()
    }

    #[test]
    fn pebble_directory() {
        let body = br#"{
           "keyChange": "https://127.0.0.1:14000/rollover-account-key",
           "meta": {"externalAccountRequired": false, "termsOfService": "data:text/plain,Do%20what%20thou%20wilt"},
           "newAccount": "https://127.0.0.1:14000/sign-me-up",
           "newNonce": "https://127.0.0.1:14000/nonce-plz",
           "newOrder": "https://127.0.0.1:14000/order-plz",
           "revokeCert": "https://127.0.0.1:14000/revoke-cert"
        }"#;
        let d = directory(body, &l()).unwrap();
        assert_eq!(d.new_nonce.as_str(), "https://127.0.0.1:14000/nonce-plz");
        assert_eq!(d.new_order.path_and_query(), "/order-plz");
        assert!(!d.external_account_required);
        assert!(d.terms_of_service.unwrap().starts_with("data:"));
    }

    #[test]
    fn directory_errors() {
        assert!(
            directory(b"{}", &l())
                .unwrap_err()
                .contains("missing field")
        );
        assert!(directory(b"[]", &l()).is_err());
        assert!(directory(b"", &l()).is_err());
        let e = directory(
            br#"{"newNonce":"http://x/","newAccount":"https://x/","newOrder":"https://x/"}"#,
            &l(),
        )
        .unwrap_err();
        assert!(e.starts_with("newNonce: "), "{e}");
        assert!(
            directory(
                br#"{"newNonce":1,"newAccount":"https://x/","newOrder":"https://x/"}"#,
                &l()
            )
            .is_err()
        );
    }

    #[test]
    fn orders() {
        let body = br#"{"status":"pending","expires":"2030-01-01T00:00:00Z",
            "identifiers":[{"type":"dns","value":"a.example"}],
            "finalize":"https://ca/finalize/1","authorizations":["https://ca/authz/1"]}"#;
        let o = order(body, &l()).unwrap();
        assert_eq!(o.status, Status::Pending);
        assert_eq!(o.authorizations.len(), 1);
        assert_eq!(o.certificate, None);

        let valid = br#"{"status":"valid","finalize":"https://ca/f","authorizations":[],
            "certificate":"https://ca/cert/1"}"#;
        assert_eq!(
            order(valid, &l()).unwrap().certificate.unwrap().as_str(),
            "https://ca/cert/1"
        );
        let invalid_order = br#"{"status":"invalid","finalize":"https://ca/f",
            "error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"nope"}}"#;
        assert_eq!(
            order(invalid_order, &l()).unwrap().error.unwrap().detail,
            "nope"
        );

        for (bad, why) in [
            (
                &br#"{"status":"valid","finalize":"https://ca/f"}"#[..],
                "valid order without",
            ),
            (
                br#"{"status":"pending","finalize":"https://ca/f"}"#,
                "pending order without",
            ),
            (
                br#"{"status":"weird","finalize":"https://ca/f"}"#,
                "unknown status",
            ),
            (br#"{"status":"ready"}"#, "missing field"),
            (
                br#"{"status":"ready","finalize":"https://ca/f","authorizations":["ftp://x"]}"#,
                "authorizations: ",
            ),
        ] {
            let e = order(bad, &l()).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let many: Vec<_> = (0..101)
            .map(|i| alloc::format!("\"https://ca/a/{i}\""))
            .collect();
        let body = alloc::format!(
            r#"{{"status":"pending","finalize":"https://ca/f","authorizations":[{}]}}"#,
            many.join(",")
        );
        assert!(
            order(body.as_bytes(), &l())
                .unwrap_err()
                .contains("name limit")
        );
    }

    #[test]
    fn authorizations() {
        let body = br#"{"status":"pending","identifier":{"type":"dns","value":"A.example"},
           "challenges":[
             {"type":"dns-01","url":"https://ca/c/1","token":"t1","status":"pending"},
             {"type":"http-01","url":"https://ca/c/2","token":"t2","status":"pending"},
             {"type":"tls-alpn-01","url":"https://ca/c/3","token":"t3","status":"pending"},
             {"type":"new-thing","url":"not even a url","status":"whatever"}
           ],"expires":"2030-01-01T00:00:00Z"}"#;
        let a = authorization(body, &l()).unwrap();
        assert_eq!(a.name, "a.example");
        assert_eq!(a.challenges.len(), 2);
        assert_eq!(a.challenges[0].kind, ChallengeKind::Http01);
        assert_eq!(a.challenges[1].token, "t3");
        assert_eq!(a.other_types, ["dns-01", "new-thing"]);

        for (bad, why) in [
            (&br#"{"status":"pending","identifier":{"type":"ip","value":"1.2.3.4"}}"#[..], "not a DNS name"),
            (br#"{"status":"pending","identifier":{"type":"dns","value":"a"},"wildcard":true}"#, "wildcard"),
            (br#"{"status":"pending","identifier":{"type":"dns","value":"a"},"challenges":[{"type":"http-01","url":"https://ca/c","token":"../x","status":"pending"}]}"#, "token"),
            (br#"{"status":"pending","identifier":{"type":"dns","value":"a"},"challenges":[{"type":"http-01","url":"https://ca/c","status":"pending"}]}"#, "token"),
            (br#"{"status":"pending","identifier":{"type":"dns","value":"a"},"challenges":[{"type":"http-01","url":"https://ca/c","token":"x","status":"nope"}]}"#, "unknown status"),
            (br#"{"status":"pending"}"#, "missing field"),
        ] {
            let e = authorization(bad, &l()).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let many: Vec<_> = (0..17)
            .map(|_| r#"{"type":"dns-01","url":"x","status":"pending"}"#)
            .collect();
        let body = alloc::format!(
            r#"{{"status":"pending","identifier":{{"type":"dns","value":"a"}},"challenges":[{}]}}"#,
            many.join(",")
        );
        assert!(
            authorization(body.as_bytes(), &l())
                .unwrap_err()
                .contains("limit")
        );
    }

    #[test]
    fn challenges_and_accounts() {
        let c = challenge(
            br#"{"type":"http-01","url":"https://ca/c/2","token":"t2","status":"invalid",
                 "error":{"type":"urn:ietf:params:acme:error:incorrectResponse","detail":"wrong"}}"#,
            &l(),
        )
        .unwrap();
        assert_eq!(c.status, Status::Invalid);
        assert_eq!(c.error.unwrap().detail, "wrong");
        assert!(
            challenge(
                br#"{"type":"dns-01","url":"https://ca/c","token":"t","status":"valid"}"#,
                &l()
            )
            .is_err()
        );
        assert_eq!(
            account(br#"{"status":"valid","orders":"x"}"#).unwrap(),
            Status::Valid
        );
        assert!(account(br#"{"status":5}"#).is_err());
        // Deep nesting is refused by serde_json's recursion limit, not by the stack.
        let deep = alloc::format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(account(deep.as_bytes()).is_err());
    }
}
