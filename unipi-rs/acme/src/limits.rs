//! Explicit resource limits applied to everything an ACME server sends, and the bounds on
//! retries and polling.

/// Resource limits and retry bounds for one issuance. Every response is checked against
/// these before it is parsed; exceeding one ends the issuance with a specific
/// [`Error`](crate::Error).
///
/// The defaults fit Let's Encrypt's and pebble's answers with a wide margin (their largest
/// JSON object, an order for 100 names, is about 10 KiB; a certificate chain about 6 KiB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of a JSON body (directory, account, order, authorization, challenge,
    /// problem document) in bytes (default 64 KiB).
    pub max_json_bytes: usize,
    /// Maximum size of the certificate chain download (PEM) in bytes (default 64 KiB).
    pub max_chain_bytes: usize,
    /// Maximum number of certificates in the chain, leaf included (default 8).
    pub max_chain_certs: usize,
    /// Maximum number of names in one order (default 100, Let's Encrypt's own limit).
    pub max_names: usize,
    /// Maximum number of challenges accepted in one authorization (default 16).
    pub max_challenges: usize,
    /// Maximum length of a URL the server hands out (directory entries, `Location`,
    /// `Link`) in bytes (default 2048).
    pub max_url_len: usize,
    /// Maximum length of a `Replay-Nonce` in bytes (default 256).
    pub max_nonce_len: usize,
    /// Maximum length of a challenge token in bytes (default 256).
    pub max_token_len: usize,
    /// How often one request is signed again after a `badNonce` problem (default 5).
    pub max_bad_nonce_retries: u32,
    /// How often a request that does not change server state (directory, nonce,
    /// POST-as-GET of an object or the certificate) is sent again after a transport
    /// failure or a 5xx answer (default 3).
    pub max_transient_retries: u32,
    /// Maximum number of status polls of one object (authorization, order) before giving
    /// up (default 30).
    pub max_polls: u32,
    /// First wait between polls in seconds when the server sends no `Retry-After`; it
    /// doubles up to [`max_poll_interval`](Limits::max_poll_interval) (default 1).
    pub poll_interval: u64,
    /// Longest wait between polls in seconds; a `Retry-After` is clamped to it (default 30).
    pub max_poll_interval: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_bytes: 64 << 10,
            max_chain_bytes: 64 << 10,
            max_chain_certs: 8,
            max_names: 100,
            max_challenges: 16,
            max_url_len: 2048,
            max_nonce_len: 256,
            max_token_len: 256,
            max_bad_nonce_retries: 5,
            max_transient_retries: 3,
            max_polls: 30,
            poll_interval: 1,
            max_poll_interval: 30,
        }
    }
}
