//! The connection table: a slab of connections addressed by [`ConnId`],
//! the queue of connections that need a visit (filled by smoltcp's socket
//! wakers), and the timer set.
//!
//! Work per event-loop iteration is proportional to what happened, not to
//! the number of connections: a socket that received data or freed send
//! space wakes its connection (smoltcp calls the waker registered with
//! `register_recv_waker`/`register_send_waker`), and a connection whose
//! deadline passed is found at the front of an ordered set.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Waker;

use smoltcp::time::Instant;

/// A connection's place in the table. The generation tells a reused slot
/// from its previous occupant, so a late wake-up never reaches the wrong
/// connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

/// Connections whose sockets saw something since their last visit.
#[derive(Default)]
struct ReadyQueue(spin::Mutex<Vec<ConnId>>);

/// The waker of one connection: queues its id once until the next visit.
struct ConnWaker {
    id: ConnId,
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.0.lock().push(self.id);
        }
    }
}

/// What the table keeps beside each connection. The entry is boxed: the
/// slot vector grows by doubling, and with the connection inline (≈ 600
/// bytes) its unused half cost ≈ 3.8 MB at 10,000 connections; boxed, a
/// slot is 16 bytes and the entry is allocated exactly while it is in use.
struct Slot<T> {
    generation: u32,
    entry: Option<Box<Entry<T>>>,
}

struct Entry<T> {
    value: T,
    waker: Arc<ConnWaker>,
    /// The same waker as a `core::task::Waker`, for smoltcp.
    task_waker: Waker,
    /// The deadline in the timer set, if any.
    timer: Option<Instant>,
}

/// See the module documentation.
pub struct Table<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    ready: Arc<ReadyQueue>,
    timers: BTreeSet<(Instant, ConnId)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            ready: Arc::default(),
            timers: BTreeSet::new(),
        }
    }
}

impl<T> Table<T> {
    /// Number of connections.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds a connection; it is queued for a first visit.
    pub fn insert(&mut self, value: T) -> ConnId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        let waker = Arc::new(ConnWaker {
            id,
            queued: AtomicBool::new(false),
            queue: self.ready.clone(),
        });
        let task_waker = Waker::from(waker.clone());
        slot.entry = Some(Box::new(Entry {
            value,
            waker,
            task_waker,
            timer: None,
        }));
        self.len += 1;
        self.wake(id);
        id
    }

    fn entry(&self, id: ConnId) -> Option<&Entry<T>> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.entry.as_deref())
            .flatten()
    }

    fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry<T>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_deref_mut()
    }

    /// The connection `id`, if it still exists.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        self.entry_mut(id).map(|e| &mut e.value)
    }

    /// The waker to register with the connection's socket.
    pub fn waker(&self, id: ConnId) -> Option<&Waker> {
        self.entry(id).map(|e| &e.task_waker)
    }

    /// Removes a connection.
    pub fn remove(&mut self, id: ConnId) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        if let Some(t) = entry.timer {
            self.timers.remove(&(t, id));
        }
        self.free.push(id.index);
        self.len -= 1;
        Some(entry.value)
    }

    /// Queues a visit of `id` (as its socket's waker would).
    pub fn wake(&self, id: ConnId) {
        if let Some(e) = self.entry(id) {
            e.waker.wake_by_ref();
        }
    }

    /// Takes the connections queued for a visit (each once), and marks them
    /// as no longer queued: a wake-up during their visit queues them again.
    pub fn take_ready(&mut self, into: &mut Vec<ConnId>) {
        into.clear();
        core::mem::swap(into, &mut *self.ready.0.lock());
        into.retain(|id| match self.entry(*id) {
            Some(e) => {
                e.waker.queued.store(false, Ordering::Release);
                true
            }
            None => false,
        });
    }

    /// True when a visit is queued.
    pub fn has_ready(&self) -> bool {
        !self.ready.0.lock().is_empty()
    }

    /// Sets when `id` needs a visit without input (`None`: never).
    pub fn set_timer(&mut self, id: ConnId, at: Option<Instant>) {
        let Some(e) = self.entry_mut(id) else { return };
        if e.timer == at {
            return;
        }
        let old = core::mem::replace(&mut e.timer, at);
        if let Some(t) = old {
            self.timers.remove(&(t, id));
        }
        if let Some(t) = at {
            self.timers.insert((t, id));
        }
    }

    /// Moves the connections whose timer is due at `now` into `into` (their
    /// timers are cleared).
    pub fn take_due(&mut self, now: Instant, into: &mut Vec<ConnId>) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            if let Some(e) = self.entry_mut(id) {
                e.timer = None;
                into.push(id);
            }
        }
    }

    /// The earliest timer.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Every connection (for the rare scans: eviction).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let e = s.entry.as_ref()?;
            Some((
                ConnId {
                    index: i as u32,
                    generation: s.generation,
                },
                &e.value,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_not_reused_across_generations() {
        let mut t = Table::default();
        let a = t.insert("a");
        assert_eq!(t.remove(a), Some("a"));
        let b = t.insert("b");
        assert_eq!(t.get_mut(a), None, "stale id");
        assert_eq!(t.get_mut(b), Some(&mut "b"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn wakers_queue_once_until_taken() {
        let mut t = Table::default();
        let a = t.insert(1);
        let b = t.insert(2);
        let mut ready = Vec::new();
        t.take_ready(&mut ready);
        assert_eq!(ready, [a, b], "new connections get a first visit");
        let w = t.waker(b).unwrap().clone();
        w.wake_by_ref();
        w.wake_by_ref();
        t.wake(b);
        t.take_ready(&mut ready);
        assert_eq!(ready, [b]);
        w.wake();
        t.remove(b);
        t.take_ready(&mut ready);
        assert!(ready.is_empty(), "removed connections are skipped");
    }

    #[test]
    fn timers_in_order() {
        let mut t = Table::default();
        let a = t.insert(1);
        let b = t.insert(2);
        t.set_timer(a, Some(Instant::from_secs(5)));
        t.set_timer(b, Some(Instant::from_secs(3)));
        t.set_timer(a, Some(Instant::from_secs(2)));
        assert_eq!(t.next_timer(), Some(Instant::from_secs(2)));
        let mut due = Vec::new();
        t.take_due(Instant::from_secs(4), &mut due);
        assert_eq!(due, [a, b]);
        assert_eq!(t.next_timer(), None);
        t.set_timer(a, Some(Instant::from_secs(9)));
        t.remove(a);
        assert_eq!(t.next_timer(), None);
    }
}
