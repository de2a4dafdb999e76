//! The two error types: [`ParamError`] for the boot-parameter parsers, [`Error`] for a
//! session.

use alloc::string::String;
use core::fmt;

use crate::fingerprint::Fingerprint;

/// Why `--ssh-key`, a key file or `--ssh-authenticator` was refused. Messages name the
/// expected form and never contain key material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamError {
    /// `--ssh-key` is not `ed25519:<base64>`.
    KeyFormat,
    /// `--ssh-key=rsa:<seed>`: Unipi derives RSA keys from a seed with its own generator,
    /// and sunset signs with RSA only with `std`.
    RsaUnsupported,
    /// The base64 after `ed25519:` does not decode.
    KeyBase64,
    /// The base64 after `ed25519:` decodes to other than 32 bytes.
    SeedLength {
        /// Bytes it decodes to (estimated when far too long).
        len: usize,
    },
    /// The key file is not an OpenSSH private key.
    NotOpenSshKey,
    /// The key file is a PEM private key, but not in OpenSSH's format (PKCS#8, PKCS#1...).
    PemNotOpenSsh,
    /// The key file is larger than [`MAX_KEY_FILE_BYTES`](crate::keys::MAX_KEY_FILE_BYTES).
    KeyFileTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The key file is protected by a passphrase.
    EncryptedKey,
    /// The key file holds a key of another type than ed25519.
    UnsupportedKeyType {
        /// The type named in the file (sanitised).
        found: String,
    },
    /// The key file is damaged.
    KeyFileCorrupt(&'static str),
    /// `--ssh-authenticator` is not `SHA256:<base64>`.
    AuthenticatorFormat,
    /// `--ssh-authenticator` is an MD5 fingerprint.
    AuthenticatorMd5,
    /// The base64 of `--ssh-authenticator` does not decode.
    AuthenticatorBase64,
    /// The base64 of `--ssh-authenticator` decodes to other than 32 bytes.
    AuthenticatorLength {
        /// Bytes it decodes to (estimated when far too long).
        len: usize,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParamError::*;
        match self {
            KeyFormat => {
                f.write_str("SSH key must be 'ed25519:<base64 of the 32-byte private key>'")
            }
            RsaUnsupported => f.write_str(
                "unsupported: RSA keys need an RSA implementation this no_std build does not have \
                 (and Unipi's rsa:<seed> keys come from its own generator); use an ed25519 key \
                 (ssh-keygen -t ed25519)",
            ),
            KeyBase64 => f.write_str("SSH key: the part after 'ed25519:' is not valid base64"),
            SeedLength { len } => write!(
                f,
                "SSH key: 'ed25519:' must be followed by the base64 of exactly 32 bytes, got {len}"
            ),
            NotOpenSshKey => f.write_str(
                "SSH key file: no '-----BEGIN OPENSSH PRIVATE KEY-----' block \
                 (write one with ssh-keygen -t ed25519 -N '')",
            ),
            PemNotOpenSsh => f.write_str(
                "SSH key file: a PEM private key, but not in OpenSSH's format; \
                 convert it with ssh-keygen -p -f FILE (it rewrites the file in OpenSSH format)",
            ),
            KeyFileTooLarge { limit } => {
                write!(f, "SSH key file larger than {limit} bytes")
            }
            EncryptedKey => f.write_str(
                "SSH key file is passphrase-protected; remove the passphrase with \
                 ssh-keygen -p -N '' -f FILE",
            ),
            UnsupportedKeyType { found } => write!(
                f,
                "SSH key file holds a '{found}' key; only ssh-ed25519 is supported \
                 (ssh-keygen -t ed25519)"
            ),
            KeyFileCorrupt(what) => write!(f, "SSH key file is damaged: {what}"),
            AuthenticatorFormat => f.write_str(
                "SSH authenticator must be 'SHA256:<base64>' as printed by ssh-keygen -lf",
            ),
            AuthenticatorMd5 => f.write_str(
                "SSH authenticator: MD5 fingerprints are not supported; \
                 use the SHA256:... form ssh-keygen -lf prints",
            ),
            AuthenticatorBase64 => {
                f.write_str("SSH authenticator: the part after 'SHA256:' is not valid base64")
            }
            AuthenticatorLength { len } => write!(
                f,
                "SSH authenticator: a SHA256 fingerprint is 32 bytes (43 base64 characters), got {len} bytes"
            ),
        }
    }
}

impl core::error::Error for ParamError {}

/// Where a session is, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Version exchange and key exchange (host key check included).
    Handshake,
    /// User authentication.
    Authenticating,
    /// Opening the session channel and starting the command.
    OpeningChannel,
    /// The command runs; its stdin and stdout flow.
    Running,
    /// The channel is closed; the session is over.
    Closed,
}

impl fmt::Display for Phase {
    /// A gerund phrase: "exchanging keys", "authenticating", ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Handshake => "exchanging keys",
            Phase::Authenticating => "authenticating",
            Phase::OpeningChannel => "starting the remote command",
            Phase::Running => "the remote command was running",
            Phase::Closed => "closing",
        })
    }
}

/// Why a session failed. `Display` says what happened and what to do; remote-controlled text
/// is sanitised and truncated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The [`Config`](crate::Config) cannot be used.
    Config(&'static str),
    /// The driver used the client out of order.
    Usage(&'static str),
    /// The server's host key is not the pinned one; the connection was refused before
    /// authentication (the client key was never offered).
    HostKeyMismatch {
        /// The pin (`--ssh-authenticator`).
        expected: Fingerprint,
        /// What the server presented.
        offered: Fingerprint,
    },
    /// The server did not accept the client key.
    AuthenticationRefused {
        /// The user name tried.
        user: String,
        /// The fingerprint of the client's public key (public information).
        key: Fingerprint,
        /// Whether the server offers public-key authentication at all.
        publickey_offered: bool,
    },
    /// The server refused to open a session channel.
    ChannelRefused,
    /// The TCP connection ended before the session was over.
    ConnectionClosed {
        /// Where the session was.
        phase: Phase,
    },
    /// The driver gave up waiting ([`SshClient::timeout`](crate::SshClient::timeout)).
    Timeout {
        /// Where the session was.
        phase: Phase,
    },
    /// The server and this client have no algorithm of some kind in common.
    NoCommonAlgorithm {
        /// Which kind ("kex", "hostkey", "encryption", ...), as sunset names it.
        what: &'static str,
    },
    /// The server does not speak SSH 2.0.
    NotSsh,
    /// The server's messages break the SSH protocol (bad packet, bad MAC, bad signature...).
    Protocol {
        /// Where the session was.
        phase: Phase,
        /// sunset's description.
        detail: String,
    },
    /// More than [`Limits::max_handshake_bytes`](crate::Limits) before the command started.
    HandshakeTooLarge {
        /// The limit.
        limit: usize,
    },
    /// More than [`Limits::max_received_bytes`](crate::Limits) in the whole session.
    TooMuchData {
        /// The limit.
        limit: u64,
    },
    /// An internal inconsistency in sunset or this crate (a bug, not the server's fault).
    Internal(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            Config(what) => write!(f, "SSH configuration: {what}"),
            Usage(what) => write!(f, "SSH client driven incorrectly: {what}"),
            HostKeyMismatch { expected, offered } => write!(
                f,
                "SSH host key mismatch: expected {expected}, server offered {offered}; \
                 connection refused before authentication (if the server's key changed \
                 legitimately, update --ssh-authenticator)"
            ),
            AuthenticationRefused {
                user,
                key,
                publickey_offered: true,
            } => write!(
                f,
                "SSH authentication refused: the server does not accept key {key} for user \
                 '{user}' (add the public key to the server's authorized_keys)"
            ),
            AuthenticationRefused {
                user,
                publickey_offered: false,
                ..
            } => write!(
                f,
                "SSH authentication refused: the server does not offer public-key \
                 authentication for user '{user}'"
            ),
            ChannelRefused => f.write_str(
                "SSH server refused to open a session channel (check the server's limits \
                 and the key's restrictions in authorized_keys)",
            ),
            ConnectionClosed { phase } => {
                write!(f, "SSH connection closed by the remote while {phase}")
            }
            Timeout { phase } => write!(f, "SSH timed out while {phase}"),
            NoCommonAlgorithm { what } => write!(
                f,
                "SSH server shares no {what} algorithm with this client (it needs an ed25519 \
                 host key, curve25519 key exchange and chacha20-poly1305 or aes256-ctr)"
            ),
            NotSsh => f.write_str("remote is not an SSH-2.0 server"),
            Protocol { phase, detail } => {
                write!(f, "SSH protocol error while {phase}: {detail}")
            }
            HandshakeTooLarge { limit } => write!(
                f,
                "SSH server sent more than {limit} bytes before the command started"
            ),
            TooMuchData { limit } => write!(f, "SSH server sent more than {limit} bytes"),
            Internal(what) => write!(f, "SSH internal error (a bug): {what}"),
        }
    }
}

impl core::error::Error for Error {}

/// Turns remote-controlled bytes into printable text of at most `max` characters: invalid
/// UTF-8 becomes U+FFFD, control characters become `?`, trailing whitespace is trimmed.
pub(crate) fn sanitize(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(bytes).chars().take(max) {
        out.push(if c.is_control() { '?' } else { c });
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}
