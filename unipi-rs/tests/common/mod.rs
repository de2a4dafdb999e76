//! Helpers shared by the in-process tests: an in-memory Ethernet link
//! between the application's smoltcp interface and a second smoltcp stack
//! that plays "the world", and a DNS answer for the world's names.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

/// Frames in flight in one direction.
pub type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory Ethernet link.
pub struct Link {
    pub rx: Queue,
    pub tx: Queue,
}

/// The two ends of a new link: (application's, world's).
pub fn link_pair() -> (Link, Link) {
    let a: Queue = Rc::default();
    let b: Queue = Rc::default();
    (
        Link {
            rx: a.clone(),
            tx: b.clone(),
        },
        Link { rx: b, tx: a },
    )
}

pub struct Rx(Vec<u8>);
pub struct Tx(Queue);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.borrow_mut().push_back(buf);
        r
    }
}

impl Device for Link {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        let frame = self.rx.borrow_mut().pop_front()?;
        Some((Rx(frame), Tx(self.tx.clone())))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx(self.tx.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

/// A DNS answer to an A query for one of `names` (name, address): the
/// name asked for and the response bytes.
pub fn dns_answer(q: &[u8], names: &[(&str, Ipv4Address)]) -> Option<(String, Vec<u8>)> {
    if q.len() < 12 || q[4..6] != [0, 1] {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    while i < q.len() && q[i] != 0 {
        let l = q[i] as usize;
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + l)?).into_owned());
        i += 1 + l;
    }
    let qend = i + 5; // zero label + type + class
    let name = labels.join(".");
    let &(_, ip) = names.iter().find(|(n, _)| *n == name)?;
    if q.get(i + 1..i + 3) != Some(&[0, 1]) || q.len() < qend {
        return None;
    }
    let mut r = q[..qend].to_vec();
    r[2] = 0x81; // response, recursion desired
    r[3] = 0x80; // recursion available, no error
    r[6..8].copy_from_slice(&[0, 1]); // one answer
    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    r.extend_from_slice(&ip.octets());
    Some((name, r))
}
