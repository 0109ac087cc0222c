//! The bytes of a buffer handed to `write`. monoio's `IoBuf` offers only a raw pointer to them;
//! asking for the concrete buffer type (every `IoBuf` is `'static`) keeps this crate free of
//! `unsafe`. It refuses buffer types it does not know rather than guess at their layout.

use std::any::Any;

use monoio::buf::{IoBuf, Slice, SliceMut};

/// The bytes of `buf` if it is one of the types connection code writes: `Vec<u8>`,
/// `Box<[u8]>`, `&'static [u8]`, `&'static str`, or a `Slice`/`SliceMut` of one of these
/// (`write_all` passes slices).
pub(super) fn bytes_of<T: IoBuf>(buf: &T) -> Option<&[u8]> {
    let any: &dyn Any = buf;
    owned_bytes(any)
        .or_else(|| slice_bytes::<Vec<u8>>(any))
        .or_else(|| slice_bytes::<Box<[u8]>>(any))
        .or_else(|| slice_bytes::<&'static [u8]>(any))
        .or_else(|| slice_bytes::<&'static str>(any))
}

fn owned_bytes(any: &dyn Any) -> Option<&[u8]> {
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        Some(v)
    } else if let Some(b) = any.downcast_ref::<Box<[u8]>>() {
        Some(b)
    } else if let Some(s) = any.downcast_ref::<&'static [u8]>() {
        Some(s)
    } else {
        any.downcast_ref::<&'static str>().map(|s| s.as_bytes())
    }
}

fn slice_bytes<B: IoBuf>(any: &dyn Any) -> Option<&[u8]> {
    if let Some(s) = any.downcast_ref::<Slice<B>>() {
        owned_bytes(s.get_ref())?.get(s.begin()..s.end())
    } else {
        // Its initialized part, which may end before `end()` (a read target's spare room).
        any.downcast_ref::<SliceMut<B>>().map(|s| &s[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monoio::buf::IoBufMut;

    #[test]
    fn write_buffers_of_the_usual_types_are_seen() {
        let v = b"hello".to_vec();
        assert_eq!(bytes_of(&v), Some(&b"hello"[..]));
        assert_eq!(bytes_of(&v.clone().slice(1..4)), Some(&b"ell"[..]));
        assert_eq!(bytes_of(&"static"), Some(&b"static"[..]));
        assert_eq!(bytes_of(&"s".slice(0..1)), Some(&b"s"[..]));
        let boxed: Box<[u8]> = Box::new(*b"box");
        assert_eq!(bytes_of(&boxed.slice(1..)), Some(&b"ox"[..]));
        let mut grown = Vec::with_capacity(8);
        grown.extend_from_slice(b"abc");
        assert_eq!(bytes_of(&grown.slice_mut(1..8)), Some(&b"bc"[..]));
        // A type it does not know is refused, not misread.
        assert_eq!(bytes_of(&std::rc::Rc::new(b"x".to_vec())), None);
    }
}
