//! Decoding one header block into fields (RFC 7541 §6): indexed fields, literals with and without
//! indexing, never-indexed literals, and table size updates, over the index space of `table` and
//! the Huffman code of `huffman`. Nothing here allocates once the scratch buffers have grown to
//! the longest strings seen; the RFC 9113 rules on top (pseudo-fields, names) are `BlockDecoder`'s.

use super::huffman;
use super::table::DynamicTable;

/// Why a block cannot be decoded. Every case is a COMPRESSION_ERROR for the connection: the
/// dynamic table may now differ from the server's.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

/// Where a string's bytes are, once read.
#[derive(Clone, Copy)]
enum Text {
    /// In the block itself (not Huffman coded).
    Block(usize, usize),
    /// Decoded into the name or the value scratch buffer.
    Name,
    Value,
    /// The name of a table entry.
    Indexed(usize),
}

/// The decoding context of one connection's responses.
pub struct FieldDecoder {
    table: DynamicTable,
    name: Vec<u8>,
    value: Vec<u8>,
    /// A copy of the field being added to the table (its name may be an entry that the insert
    /// evicts).
    entry: Vec<u8>,
}

impl FieldDecoder {
    /// `limit`: our SETTINGS_HEADER_TABLE_SIZE.
    pub fn new(limit: usize) -> Self {
        FieldDecoder {
            table: DynamicTable::new(limit),
            name: Vec::with_capacity(256),
            value: Vec::with_capacity(256),
            entry: Vec::with_capacity(512),
        }
    }

    /// Calls `field(name, value)` for each field of `block`, in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), Invalid> {
        let mut at = 0;
        let mut fields_seen = false;
        while at < block.len() {
            let first = block[at];
            if first & 0x80 != 0 {
                let (index, next) = integer(block, at, 7)?;
                at = next;
                let (name, value) = self.table.get(index).ok_or(Invalid)?;
                field(name, value);
            } else if first & 0xe0 == 0x20 {
                // A size update may only open a block (RFC 7541 §4.2).
                if fields_seen {
                    return Err(Invalid);
                }
                let (size, next) = integer(block, at, 5)?;
                at = next;
                self.table.set_max(size).map_err(|()| Invalid)?;
                continue;
            } else {
                let (prefix, indexing) = match first & 0xc0 {
                    0x40 => (6, true),
                    _ => (4, false),
                };
                at = self.literal(block, at, prefix, indexing, &mut field)?;
            }
            fields_seen = true;
        }
        Ok(())
    }

    fn literal(
        &mut self,
        block: &[u8],
        at: usize,
        prefix: u8,
        indexing: bool,
        field: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<usize, Invalid> {
        let (index, mut at) = integer(block, at, prefix)?;
        let name = if index == 0 {
            let (text, next) = self.string(block, at, true)?;
            at = next;
            text
        } else {
            self.table.get(index).ok_or(Invalid)?;
            Text::Indexed(index)
        };
        let (value, at) = self.string(block, at, false)?;
        let mut entry = std::mem::take(&mut self.entry);
        let name_len = {
            let name = self.bytes(block, name);
            let value = self.bytes(block, value);
            field(name, value);
            if indexing {
                entry.clear();
                entry.extend_from_slice(name);
                entry.extend_from_slice(value);
            }
            name.len()
        };
        if indexing {
            let (name, value) = entry.split_at(name_len);
            self.table.insert(name, value);
        }
        self.entry = entry;
        Ok(at)
    }

    /// A string literal at `at` (RFC 7541 §5.2): where its bytes are, and where the next thing
    /// starts.
    fn string(&mut self, block: &[u8], at: usize, name: bool) -> Result<(Text, usize), Invalid> {
        let huffman_coded = block.get(at).ok_or(Invalid)? & 0x80 != 0;
        let (len, start) = integer(block, at, 7)?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= block.len())
            .ok_or(Invalid)?;
        if !huffman_coded {
            return Ok((Text::Block(start, end), end));
        }
        let dst = if name {
            &mut self.name
        } else {
            &mut self.value
        };
        dst.clear();
        huffman::decode(&block[start..end], dst).map_err(|()| Invalid)?;
        Ok((if name { Text::Name } else { Text::Value }, end))
    }

    fn bytes<'a>(&'a self, block: &'a [u8], text: Text) -> &'a [u8] {
        match text {
            Text::Block(start, end) => &block[start..end],
            Text::Name => &self.name,
            Text::Value => &self.value,
            Text::Indexed(i) => self.table.get(i).map_or(&[][..], |(name, _)| name),
        }
    }
}

/// An integer with an `n`-bit prefix at `at` (RFC 7541 §5.1): its value and where the next
/// thing starts. Values past 2^28 (far past any table or string we accept) are refused.
fn integer(block: &[u8], at: usize, n: u8) -> Result<(usize, usize), Invalid> {
    let max_prefix = (1usize << n) - 1;
    let mut value = usize::from(*block.get(at).ok_or(Invalid)?) & max_prefix;
    let mut at = at + 1;
    if value < max_prefix {
        return Ok((value, at));
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(at).ok_or(Invalid)?;
        at += 1;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, at));
        }
        shift += 7;
        if shift > 21 {
            return Err(Invalid);
        }
    }
}
