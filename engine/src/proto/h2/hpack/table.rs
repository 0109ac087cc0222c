//! HPACK's index space (RFC 7541 §2.3): the static table of Appendix A, then the dynamic table,
//! newest entry first. The dynamic table keeps its entries back to back in one buffer sized once
//! (twice the table's limit, compacted when the end is reached), so inserting and evicting never
//! allocate.

use std::collections::VecDeque;

/// RFC 7541 Appendix A; index 1 is the first entry.
pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// What an entry costs against the table's size: its bytes plus 32 (RFC 7541 §4.1).
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// The dynamic table of one decoding context.
pub struct DynamicTable {
    /// Live entries are `bytes[head..]`, oldest first; each is its name then its value.
    bytes: Vec<u8>,
    head: usize,
    /// (start in `bytes`, name length, value length), oldest at the front.
    entries: VecDeque<(usize, usize, usize)>,
    /// The RFC's size of what is in the table.
    size: usize,
    /// The size the encoder last set (at most `limit`).
    max: usize,
    /// What our SETTINGS_HEADER_TABLE_SIZE allows: `max` never goes past it.
    limit: usize,
}

impl DynamicTable {
    pub fn new(limit: usize) -> Self {
        DynamicTable {
            bytes: Vec::with_capacity(2 * limit),
            head: 0,
            entries: VecDeque::with_capacity(limit / 32 + 1),
            size: 0,
            max: limit,
            limit,
        }
    }

    /// Entry `index` of the whole index space (1-based; static first).
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        if let Some(&entry) = index.checked_sub(1).and_then(|i| STATIC.get(i)) {
            return Some(entry);
        }
        let newest_first = index.checked_sub(STATIC.len() + 1)?;
        let at = self.entries.len().checked_sub(newest_first + 1)?;
        let &(start, name, value) = self.entries.get(at)?;
        Some((
            &self.bytes[start..start + name],
            &self.bytes[start + name..start + name + value],
        ))
    }

    /// A Dynamic Table Size Update: `Err` past our limit (RFC 7541 §6.3).
    pub fn set_max(&mut self, max: usize) -> Result<(), ()> {
        if max > self.limit {
            return Err(());
        }
        self.max = max;
        self.evict_to(max);
        Ok(())
    }

    /// Adds `name: value` as the newest entry, evicting the oldest to make room; an entry
    /// larger than the whole table empties it and is not added (RFC 7541 §4.4).
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.max {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max - size);
        let needed = name.len() + value.len();
        if self.bytes.len() + needed > self.bytes.capacity() {
            // Live bytes are under `max`, so after this the new entry fits in 2 × limit.
            self.bytes.copy_within(self.head.., 0);
            self.bytes.truncate(self.bytes.len() - self.head);
            for e in self.entries.iter_mut() {
                e.0 -= self.head;
            }
            self.head = 0;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.entries.push_back((start, name.len(), value.len()));
        self.size += size;
    }

    /// Evicts the oldest entries until the size is at most `target`.
    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some((_, name, value)) = self.entries.pop_front() else {
                break;
            };
            self.size -= name + value + 32;
            self.head = match self.entries.front() {
                Some(&(start, ..)) => start,
                None => {
                    self.bytes.clear();
                    0
                }
            };
        }
    }
}
