//! Session tickets: rustls' own ticketer needs `std`, so this one is ours.
//!
//! ChaCha20-Poly1305 with a random key that is replaced every
//! [`Ticketer::ROTATE_SECS`]; the previous key still decrypts, so a ticket
//! lives at most two periods. Layout: key name (16) ‖ nonce (12) ‖
//! ciphertext ‖ tag; the key name is the associated data.

use alloc::vec::Vec;
use core::fmt;

use ring::aead;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use subtle::ConstantTimeEq;

/// See the module documentation.
pub struct Ticketer {
    keys: spin::Mutex<TicketKeys>,
    rng: SystemRandom,
}

struct TicketKey {
    name: [u8; 16],
    key: aead::LessSafeKey,
}

struct TicketKeys {
    current: TicketKey,
    previous: Option<TicketKey>,
    created: u64,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ticketer")
    }
}

impl Ticketer {
    /// Seconds between key rotations (and the advertised ticket lifetime).
    pub const ROTATE_SECS: u64 = 6 * 3600;

    /// A ticketer with a fresh random key; `None` without entropy.
    pub fn new(now: u64) -> Option<Self> {
        let rng = SystemRandom::new();
        let current = Self::fresh_key(&rng)?;
        Some(Ticketer {
            keys: spin::Mutex::new(TicketKeys {
                current,
                previous: None,
                created: now,
            }),
            rng,
        })
    }

    fn fresh_key(rng: &SystemRandom) -> Option<TicketKey> {
        let mut name = [0u8; 16];
        let mut key = [0u8; 32];
        rng.fill(&mut name).ok()?;
        rng.fill(&mut key).ok()?;
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &key).ok()?;
        Some(TicketKey {
            name,
            key: aead::LessSafeKey::new(unbound),
        })
    }

    /// Replaces the key when it is older than [`Self::ROTATE_SECS`].
    pub fn rotate(&self, now: u64) {
        let mut k = self.keys.lock();
        if now.saturating_sub(k.created) < Self::ROTATE_SECS {
            return;
        }
        if let Some(fresh) = Self::fresh_key(&self.rng) {
            let old = core::mem::replace(&mut k.current, fresh);
            k.previous = Some(old);
            k.created = now;
        }
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        Self::ROTATE_SECS as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).ok()?;
        let k = self.keys.lock();
        let mut out = Vec::with_capacity(16 + 12 + plain.len() + 16);
        out.extend_from_slice(&k.current.name);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        let aad = aead::Aad::from(k.current.name);
        k.current
            .key
            .seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aad, &mut body)
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < 16 + 12 + 16 || cipher.len() > 16 * 1024 {
            return None;
        }
        let (name, rest) = cipher.split_at(16);
        let (nonce, sealed) = rest.split_at(12);
        let k = self.keys.lock();
        let key = [Some(&k.current), k.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| bool::from(key.name.ct_eq(name)))?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let aad = aead::Aad::from(key.name);
        let plain_len = key.key.open_in_place(nonce, aad, &mut body).ok()?.len();
        body.truncate(plain_len);
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_rotate() {
        let t = Ticketer::new(1000).unwrap();
        let c = t.encrypt(b"session state").unwrap();
        assert_eq!(t.decrypt(&c).unwrap(), b"session state");
        let mut bad = c.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(t.decrypt(&bad).is_none());
        assert!(t.decrypt(&c[..20]).is_none());
        t.rotate(1000 + Ticketer::ROTATE_SECS);
        assert_eq!(
            t.decrypt(&c).unwrap(),
            b"session state",
            "previous key still decrypts"
        );
        t.rotate(1000 + 2 * Ticketer::ROTATE_SECS);
        assert!(
            t.decrypt(&c).is_none(),
            "a ticket lives at most two periods"
        );
    }
}
