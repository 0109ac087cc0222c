//! A JSON pointer's value in a message, found without building the document: serde walks the
//! bytes, skipping what the pointer does not name, so looking up `/ts_us` or `/type` in every
//! received message allocates nothing (a key with escapes is compared after unescaping, which
//! is the one case that allocates).

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The scalar a pointer leads to; containers are not compared this way.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    Str(&'a str),
    /// A string that needed unescaping: only its length is kept, so it matches nothing.
    Escaped,
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    /// An object or an array.
    Container,
}

impl Scalar<'_> {
    /// As a number: a JSON number, or a string of one (`"1733000000123"`).
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Scalar::U64(n) => Some(n as f64),
            Scalar::I64(n) => Some(n as f64),
            Scalar::F64(n) => Some(n),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Equal to `expected`, for a scalar; `None` when `expected` is a container (the caller
    /// compares whole documents then).
    pub fn equals(self, expected: &serde_json::Value) -> Option<bool> {
        use serde_json::Value;
        Some(match (self, expected) {
            (_, Value::Array(_) | Value::Object(_)) => return None,
            (Scalar::Str(a), Value::String(b)) => a == b,
            (Scalar::Bool(a), Value::Bool(b)) => a == *b,
            (Scalar::Null, Value::Null) => true,
            (Scalar::U64(a), Value::Number(b)) => b.as_u64() == Some(a),
            (Scalar::I64(a), Value::Number(b)) => b.as_i64() == Some(a),
            (Scalar::F64(a), Value::Number(b)) => b.as_f64() == Some(a),
            _ => false,
        })
    }
}

/// The value at `pointer` (RFC 6901) in `json`, or `None` when there is none or `json` is
/// not JSON.
pub fn find<'a>(json: &'a [u8], pointer: &str) -> Option<Scalar<'a>> {
    // "" is the whole document; anything else starts with '/'.
    let rest = if pointer.is_empty() {
        None
    } else {
        Some(pointer.strip_prefix('/')?)
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = Seek { rest }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    found
}

/// Looks for the rest of a pointer in the value being read (`None`: this value is it).
struct Seek<'p> {
    rest: Option<&'p str>,
}

impl<'p> Seek<'p> {
    /// The next reference token (unescaped only if it needs it) and what follows it.
    fn split(&self) -> Option<(std::borrow::Cow<'p, str>, Option<&'p str>)> {
        let rest = self.rest?;
        let (token, after) = match rest.split_once('/') {
            Some((t, a)) => (t, Some(a)),
            None => (rest, None),
        };
        let token = if token.contains('~') {
            std::borrow::Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            std::borrow::Cow::Borrowed(token)
        };
        Some((token, after))
    }
}

impl<'de, 'p> DeserializeSeed<'de> for Seek<'p> {
    type Value = Option<Scalar<'de>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'p> Visitor<'de> for Seek<'p> {
    type Value = Option<Scalar<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(self.rest.is_none().then_some(Scalar::Bool(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.rest.is_none().then_some(Scalar::U64(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.rest.is_none().then_some(Scalar::I64(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.rest.is_none().then_some(Scalar::F64(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.rest.is_none().then_some(Scalar::Null))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self.rest.is_none().then_some(Scalar::Str(v)))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(self.rest.is_none().then_some(Scalar::Escaped))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some((token, after)) = self.split() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Some(Scalar::Container));
        };
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(&token))? {
            if hit && found.is_none() {
                found = map.next_value_seed(Seek { rest: after })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Some((token, after)) = self.split() else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Some(Scalar::Container));
        };
        let index: Option<usize> = token.parse().ok();
        let mut found = None;
        let mut i = 0;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(Seek { rest: after })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }
}

/// Reads a key and says whether it is `.0`.
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"{"type":"tick","seq":7,"ts_us":"1733000000123456","n":-3,"f":1.5,
        "ok":true,"none":null,"a":[10,{"b":"deep"}],"k~/":"escaped key","s":"say \"hi\"","o":{}}"#;

    #[test]
    fn finds_scalars_at_every_depth() {
        assert_eq!(find(DOC, "/type"), Some(Scalar::Str("tick")));
        assert_eq!(find(DOC, "/seq"), Some(Scalar::U64(7)));
        assert_eq!(find(DOC, "/n"), Some(Scalar::I64(-3)));
        assert_eq!(find(DOC, "/f"), Some(Scalar::F64(1.5)));
        assert_eq!(find(DOC, "/ok"), Some(Scalar::Bool(true)));
        assert_eq!(find(DOC, "/none"), Some(Scalar::Null));
        assert_eq!(find(DOC, "/a/0"), Some(Scalar::U64(10)));
        assert_eq!(find(DOC, "/a/1/b"), Some(Scalar::Str("deep")));
        assert_eq!(find(DOC, "/k~0~1"), Some(Scalar::Str("escaped key")));
        assert_eq!(find(DOC, "/s"), Some(Scalar::Escaped));
        assert_eq!(find(DOC, "/o"), Some(Scalar::Container));
        assert_eq!(
            find(DOC, "/ts_us").and_then(Scalar::as_f64),
            Some(1_733_000_000_123_456.0)
        );
    }

    #[test]
    fn misses_are_none() {
        for pointer in ["/nope", "/a/2", "/a/x", "/type/0", "/seq/x", "type"] {
            assert_eq!(find(DOC, pointer), None, "{pointer}");
        }
        assert_eq!(find(b"not json", "/a"), None);
        assert_eq!(find(br#"{"a":1} trailing"#, "/a"), None);
    }

    #[test]
    fn scalars_compare_with_expected_values() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("json");
        assert_eq!(Scalar::Str("tick").equals(&v(r#""tick""#)), Some(true));
        assert_eq!(Scalar::U64(7).equals(&v("7")), Some(true));
        assert_eq!(Scalar::U64(7).equals(&v(r#""7""#)), Some(false));
        assert_eq!(Scalar::Escaped.equals(&v(r#""x""#)), Some(false));
        assert_eq!(Scalar::Container.equals(&v("{}")), None);
    }
}
