//! The static table (RFC 7541 Appendix A) and the dynamic table (§2.3.2,
//! §4).

use alloc::boxed::Box;
use alloc::collections::VecDeque;

/// Every entry of RFC 7541 Appendix A; index 1 is the first element.
#[rustfmt::skip]
pub(crate) const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""), // 1
    (b":method", b"GET"), // 2
    (b":method", b"POST"), // 3
    (b":path", b"/"), // 4
    (b":path", b"/index.html"), // 5
    (b":scheme", b"http"), // 6
    (b":scheme", b"https"), // 7
    (b":status", b"200"), // 8
    (b":status", b"204"), // 9
    (b":status", b"206"), // 10
    (b":status", b"304"), // 11
    (b":status", b"400"), // 12
    (b":status", b"404"), // 13
    (b":status", b"500"), // 14
    (b"accept-charset", b""), // 15
    (b"accept-encoding", b"gzip, deflate"), // 16
    (b"accept-language", b""), // 17
    (b"accept-ranges", b""), // 18
    (b"accept", b""), // 19
    (b"access-control-allow-origin", b""), // 20
    (b"age", b""), // 21
    (b"allow", b""), // 22
    (b"authorization", b""), // 23
    (b"cache-control", b""), // 24
    (b"content-disposition", b""), // 25
    (b"content-encoding", b""), // 26
    (b"content-language", b""), // 27
    (b"content-length", b""), // 28
    (b"content-location", b""), // 29
    (b"content-range", b""), // 30
    (b"content-type", b""), // 31
    (b"cookie", b""), // 32
    (b"date", b""), // 33
    (b"etag", b""), // 34
    (b"expect", b""), // 35
    (b"expires", b""), // 36
    (b"from", b""), // 37
    (b"host", b""), // 38
    (b"if-match", b""), // 39
    (b"if-modified-since", b""), // 40
    (b"if-none-match", b""), // 41
    (b"if-range", b""), // 42
    (b"if-unmodified-since", b""), // 43
    (b"last-modified", b""), // 44
    (b"link", b""), // 45
    (b"location", b""), // 46
    (b"max-forwards", b""), // 47
    (b"proxy-authenticate", b""), // 48
    (b"proxy-authorization", b""), // 49
    (b"range", b""), // 50
    (b"referer", b""), // 51
    (b"refresh", b""), // 52
    (b"retry-after", b""), // 53
    (b"server", b""), // 54
    (b"set-cookie", b""), // 55
    (b"strict-transport-security", b""), // 56
    (b"transfer-encoding", b""), // 57
    (b"user-agent", b""), // 58
    (b"vary", b""), // 59
    (b"via", b""), // 60
    (b"www-authenticate", b""), // 61
];

/// Size an entry counts against the table size (RFC 7541 §4.1).
pub(crate) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

struct Entry {
    name: Box<[u8]>,
    value: Box<[u8]>,
}

/// The decoder's dynamic table: newest entry first. Its size never exceeds
/// its current maximum, which the caller bounds.
#[derive(Default)]
pub(crate) struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl DynamicTable {
    pub(crate) fn new(max: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max,
        }
    }

    /// Current size (sum of entry sizes).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Changes the maximum, evicting entries until the table fits.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
        self.evict_to(max);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(e) => self.size -= entry_size(&e.name, &e.value),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Adds an entry, evicting old ones; an entry larger than the maximum
    /// empties the table and is not added (§4.4).
    pub(crate) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.max {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max - size);
        self.entries.push_front(Entry {
            name: name.into(),
            value: value.into(),
        });
        self.size += size;
    }

    /// Entry `i`, 0 being the newest.
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries.get(i).map(|e| (&*e.name, &*e.value))
    }
}

/// Looks up an index of the combined address space (§2.3.3): 1..=61 static,
/// 62.. dynamic.
pub(crate) fn lookup(dynamic: &DynamicTable, index: usize) -> Option<(&[u8], &[u8])> {
    match index {
        0 => None,
        1..=61 => STATIC.get(index - 1).copied(),
        _ => dynamic.get(index - 62),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_follows_the_rfc() {
        let mut t = DynamicTable::new(100);
        t.insert(b"a", b"b"); // 34
        t.insert(b"c", b"d"); // 34
        assert_eq!(t.size(), 68);
        t.insert(b"e", b"f"); // needs eviction of "a"
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(0), Some((&b"e"[..], &b"f"[..])));
        assert_eq!(t.get(1), Some((&b"c"[..], &b"d"[..])));
        // Larger than the table: empties it.
        t.insert(&[b'x'; 80], b"");
        assert_eq!(t.len(), 0);
        assert_eq!(t.size(), 0);
        t.insert(b"a", b"b");
        t.set_max(10);
        assert_eq!(t.len(), 0);
        assert_eq!(lookup(&t, 2), Some((&b":method"[..], &b"GET"[..])));
        assert_eq!(lookup(&t, 61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(lookup(&t, 62), None);
        assert_eq!(lookup(&t, 0), None);
    }
}
