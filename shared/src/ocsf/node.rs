//! The source record as the normalizer reads it: a JSON tree that borrows its strings from the
//! input text (or from a [`serde_json::Value`]), with a "mapped" mark on every object member.
//!
//! Parsing JSON text into a [`Node`] costs far less than into a `Value`: no `String` per key
//! or unescaped string, no `BTreeMap`. Objects keep their members in input order; a repeated
//! key keeps its last value, as `Value` does.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// How much of an object member the mapping has read (see `Src::mark`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mark {
    /// Never read: copied whole to `unmapped`.
    #[default]
    None,
    /// Some member below it was read: split one level further in `unmapped`.
    Partly,
    /// Read: not copied to `unmapped`.
    Full,
}

/// One JSON value of a source record.
#[derive(Debug)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    /// A string borrowed from JSON text where it had no escape sequence: it holds no `"`,
    /// `\\` or control character, so it is written back as is.
    Plain(&'a str),
    Arr(Vec<Node<'a>>),
    Obj(Vec<Entry<'a>>),
}

/// One member of a JSON object.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub key: Cow<'a, str>,
    pub val: Node<'a>,
    pub mark: Cell<Mark>,
}

impl<'a> Node<'a> {
    /// The same tree, borrowing the strings of `v`.
    pub(crate) fn from_value(v: &'a Value) -> Node<'a> {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Num(n.clone()),
            Value::String(s) => Node::Str(Cow::Borrowed(s)),
            Value::Array(a) => Node::Arr(a.iter().map(Node::from_value).collect()),
            Value::Object(m) => Node::Obj(
                m.iter()
                    .map(|(k, v)| Entry {
                        key: Cow::Borrowed(k),
                        val: Node::from_value(v),
                        mark: Cell::new(Mark::None),
                    })
                    .collect(),
            ),
        }
    }

    /// Resets every mark below this value.
    pub(crate) fn clear_marks(&self) {
        match self {
            Node::Arr(items) => items.iter().for_each(Node::clear_marks),
            Node::Obj(entries) => {
                for e in entries {
                    e.mark.set(Mark::None);
                    e.val.clear_marks();
                }
            }
            _ => {}
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            Node::Plain(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Node<'a>]> {
        match self {
            Node::Arr(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&[Entry<'a>]> {
        match self {
            Node::Obj(o) => Some(o),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// Whether anything of this value survives `prune` (no nulls, blank strings, empty arrays
    /// or objects).
    pub(crate) fn survives_prune(&self) -> bool {
        match self {
            Node::Null => false,
            Node::Str(s) => !s.trim().is_empty(),
            Node::Plain(s) => !s.trim().is_empty(),
            Node::Arr(a) => a.iter().any(Node::survives_prune),
            Node::Obj(o) => o.iter().any(|e| e.val.survives_prune()),
            Node::Bool(_) | Node::Num(_) => true,
        }
    }

    /// A `Value` copy of everything, nulls and blanks included.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Num(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.to_string()),
            Node::Plain(s) => Value::String(s.to_string()),
            Node::Arr(a) => Value::Array(a.iter().map(Node::to_value).collect()),
            Node::Obj(o) => Value::Object(
                o.iter()
                    .map(|e| (e.key.to_string(), e.val.to_value()))
                    .collect(),
            ),
        }
    }

    /// A pruned `Value` copy; `None` when nothing survives.
    pub(crate) fn to_pruned_value(&self) -> Option<Value> {
        match self {
            Node::Null => None,
            Node::Bool(b) => Some(Value::Bool(*b)),
            Node::Num(n) => Some(Value::Number(n.clone())),
            Node::Str(s) => (!s.trim().is_empty()).then(|| Value::String(s.to_string())),
            Node::Plain(s) => (!s.trim().is_empty()).then(|| Value::String(s.to_string())),
            Node::Arr(a) => {
                let items: Vec<Value> = a.iter().filter_map(Node::to_pruned_value).collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            Node::Obj(o) => {
                let map: serde_json::Map<String, Value> = o
                    .iter()
                    .filter_map(|e| Some((e.key.to_string(), e.val.to_pruned_value()?)))
                    .collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
        }
    }

    /// Writes the value as compact JSON exactly as `Value::to_string` would: object keys in
    /// byte order, numbers and escapes as `serde_json` writes them.
    pub(crate) fn write_canonical(&self, buf: &mut Vec<u8>) {
        match self {
            Node::Null => buf.extend_from_slice(b"null"),
            Node::Bool(true) => buf.extend_from_slice(b"true"),
            Node::Bool(false) => buf.extend_from_slice(b"false"),
            Node::Num(n) => write_number(buf, n),
            Node::Str(s) => write_json_str(buf, s),
            Node::Plain(s) => write_plain_str(buf, s),
            Node::Arr(a) => {
                buf.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    v.write_canonical(buf);
                }
                buf.push(b']');
            }
            Node::Obj(o) => {
                let mut order: Vec<&Entry<'_>> = o.iter().collect();
                order.sort_unstable_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
                buf.push(b'{');
                for (i, e) in order.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    write_json_str(buf, &e.key);
                    buf.push(b':');
                    e.val.write_canonical(buf);
                }
                buf.push(b'}');
            }
        }
    }
}

/// Parses JSON text into a tree.
pub(crate) fn parse(json: &str) -> Result<Node<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    // The scratch space of the previous parse on this thread, if any.
    let (entries, items) = SCRATCH.with(|s| s.take());
    let mut scratch = Scratch {
        entries: recycle(entries),
        items: recycle(items),
    };
    let node = NodeSeed(&mut scratch).deserialize(&mut de);
    let Scratch { entries, items } = scratch;
    SCRATCH.with(|s| s.set((recycle(entries), recycle(items))));
    let node = node?;
    de.end()?;
    Ok(node)
}

thread_local! {
    /// Scratch space kept between parses (always empty: only its allocation is reused).
    static SCRATCH: Cell<(Vec<Entry<'static>>, Vec<Node<'static>>)> =
        const { Cell::new((Vec::new(), Vec::new())) };
}

/// An empty vector with the allocation of `v` (emptied) for a type of the same layout: the
/// same type with another lifetime. The standard library collects `into_iter` chains in
/// place, so this moves no data and allocates nothing; were it not to, it would still be
/// correct, only slower.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None::<U>).collect()
}

/// Members and items of the containers being parsed, shared by every nesting level: each
/// container collects above the ones it is nested in, then moves its own out in one
/// allocation of the exact size.
#[derive(Default)]
struct Scratch<'de> {
    entries: Vec<Entry<'de>>,
    items: Vec<Node<'de>>,
}

/// A small hash of a key, for the repeated-key check.
fn key_bit(k: &[u8]) -> u128 {
    let mut head = [0u8; 8];
    let mut tail = [0u8; 8];
    let n = k.len().min(8);
    head[..n].copy_from_slice(&k[..n]);
    tail[..n].copy_from_slice(&k[k.len() - n..]);
    let h = (u64::from_le_bytes(head) ^ u64::from_le_bytes(tail).rotate_left(29) ^ k.len() as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    1u128 << (h >> 57)
}

struct NodeSeed<'s, 'de>(&'s mut Scratch<'de>);

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Node<'de>, E> {
        Ok(Node::Num(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Node<'de>, E> {
        Ok(Node::Num(n.into()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Node<'de>, E> {
        // As `Value` does: a non-finite float is null.
        Ok(Number::from_f64(f).map_or(Node::Null, Node::Num))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Node<'de>, E> {
        // serde_json lends a string only when it had no escape sequence (and it rejects raw
        // control characters), so nothing in it needs escaping.
        Ok(Node::Plain(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(s)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let base = self.0.items.len();
        while let Some(v) = seq.next_element_seed(NodeSeed(&mut *self.0))? {
            self.0.items.push(v);
        }
        Ok(Node::Arr(self.0.items.drain(base..).collect()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let base = self.0.entries.len();
        let mut seen = 0u128;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let val = map.next_value_seed(NodeSeed(&mut *self.0))?;
            let bit = key_bit(key.as_bytes());
            // A repeated key keeps its last value (and its first position).
            let earlier = if seen & bit == 0 {
                None
            } else {
                self.0.entries[base..].iter_mut().find(|e| e.key == key)
            };
            seen |= bit;
            match earlier {
                Some(e) => e.val = val,
                None => self.0.entries.push(Entry {
                    key,
                    val,
                    mark: Cell::new(Mark::None),
                }),
            }
        }
        Ok(Node::Obj(self.0.entries.drain(base..).collect()))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s)))
    }
}

/// Whether a byte must be escaped in a JSON string (control characters, `"` and `\\`).
const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any of 8 bytes must be escaped (SWAR: a byte below 0x20, or equal to `"` or `\\`).
fn any_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// Writes `s` as a JSON string, escaped exactly as `serde_json` escapes it.
pub(crate) fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    write_escaped(buf, s);
    buf.push(b'"');
}

/// Writes a string that needs no escaping (see [`Node::Plain`]).
pub(crate) fn write_plain_str(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// Writes the concatenation of `parts` as one JSON string.
pub(crate) fn write_json_str_parts(buf: &mut Vec<u8>, parts: &[&str]) {
    buf.push(b'"');
    for p in parts {
        write_escaped(buf, p);
    }
    buf.push(b'"');
}

/// Writes the escaped content of a JSON string.
fn write_escaped(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 plain bytes at a time.
        if let Some(chunk) = bytes.get(i..i + 8)
            && let Ok(w) = <[u8; 8]>::try_from(chunk)
            && !any_needs_escape(u64::from_le_bytes(w))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        if !needs_escape(b) {
            i += 1;
            continue;
        }
        buf.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            _ => buf.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        i += 1;
        start = i;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// A `fmt::Write` over a byte buffer.
struct Utf8Buf<'b>(&'b mut Vec<u8>);

impl fmt::Write for Utf8Buf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes a number as `serde_json` writes it (its `Display` is its serialization).
pub(crate) fn write_number(buf: &mut Vec<u8>, n: &Number) {
    use fmt::Write as _;
    // Neither `Utf8Buf` nor `Number`'s `Display` can fail.
    let _ = write!(Utf8Buf(buf), "{n}");
}

/// Writes an integer.
pub(crate) fn write_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    write_u64(buf, n.unsigned_abs());
}

/// Writes an unsigned integer.
pub(crate) fn write_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        // `n % 10` is below 10.
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_like_value_and_writes_like_to_string() {
        let text = r#"{"b":[1,-2,3.5,1e3,18446744073709551615,-9223372036854775808,true,null],
            "a\u0041":"x\"\\\n\u0001é","a":{"z":{},"y":[]},"dup":1,"dup":{"k":"v"}}"#;
        let node = parse(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        let mut buf = Vec::new();
        node.write_canonical(&mut buf);
        assert_eq!(String::from_utf8(buf).unwrap(), value.to_string());
        let mut buf = Vec::new();
        Node::from_value(&value).write_canonical(&mut buf);
        assert_eq!(String::from_utf8(buf).unwrap(), value.to_string());
        // The repeated key keeps its last value, once.
        let keys: Vec<&str> = node
            .as_object()
            .unwrap()
            .iter()
            .map(|e| e.key.as_ref())
            .collect();
        assert_eq!(keys, vec!["b", "aA", "a", "dup"]);
        let Some(Node::Obj(dup)) = node.as_object().unwrap().last().map(|e| &e.val) else {
            panic!("dup is an object");
        };
        assert_eq!(dup.len(), 1);
        // Many keys (hash collisions) and trailing garbage.
        let many: String = (0..300).map(|i| format!("\"k{}\":{i},", i % 150)).collect();
        let text = format!("{{{}\"end\":1}}", many);
        let node = parse(&text).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let mut buf = Vec::new();
        node.write_canonical(&mut buf);
        assert_eq!(String::from_utf8(buf).unwrap(), value.to_string());
        assert!(parse("{} x").is_err());
        assert!(parse("{\"a\":1,}").is_err());
    }

    #[test]
    fn only_unescaped_strings_are_plain() {
        let node = parse(r#"["plain é", "esc\"aped", "tab\t", "\u0041"]"#).unwrap();
        let kinds: Vec<bool> = node
            .as_array()
            .unwrap()
            .iter()
            .map(|n| matches!(n, Node::Plain(_)))
            .collect();
        assert_eq!(kinds, vec![true, false, false, false]);
        assert!(parse("[\"raw\u{1}control\"]").is_err());
    }

    #[test]
    fn escapes_match_serde_json() {
        let all: String = (0u8..0x80)
            .map(char::from)
            .chain(['é', '€', '😀'])
            .collect();
        let mut buf = Vec::new();
        write_json_str(&mut buf, &all);
        assert_eq!(String::from_utf8(buf).unwrap(), json!(all).to_string());
    }

    #[test]
    fn integers_are_written_in_full() {
        for n in [0, 7, -7, 10, 1_714_590_941_619, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            write_i64(&mut buf, n);
            assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
        }
        let mut buf = Vec::new();
        write_u64(&mut buf, u64::MAX);
        assert_eq!(String::from_utf8(buf).unwrap(), u64::MAX.to_string());
    }

    #[test]
    fn prune_survival() {
        let v = json!({"a": [null, " ", {"b": []}], "c": {}});
        assert!(!Node::from_value(&v).survives_prune());
        assert_eq!(Node::from_value(&v).to_pruned_value(), None);
        let v = json!({"a": [null, 0, {"b": []}], "c": false});
        assert!(Node::from_value(&v).survives_prune());
        assert_eq!(
            Node::from_value(&v).to_pruned_value(),
            Some(json!({"a": [0], "c": false}))
        );
    }
}
