//! Where a mapping writes its event: straight to JSON text ([`JsonOut`]) or to a
//! [`serde_json::Value`] ([`ValueOut`]). Both prune as they go: blank strings are never written,
//! and an object or array that ends up empty disappears with its key, exactly as `prune` would
//! remove it afterwards.
//!
//! Keys are ignored inside arrays (callers pass `""`).

use serde_json::{Map, Number, Value};

use super::node::{
    Node, write_i64, write_json_str, write_json_str_parts, write_number, write_plain_str, write_u64,
};

/// Whether a string is empty or only whitespace (as `str::trim` sees it); cheap for the usual
/// string that starts with a visible ASCII character.
pub(crate) fn is_blank(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        Some(&b) if b.is_ascii() && !matches!(b, b'\t'..=b'\r' | b' ') => false,
        Some(_) => s.trim().is_empty(),
    }
}

/// The event being written.
pub(crate) trait Out {
    /// Opens an object under `key`.
    fn begin_obj(&mut self, key: &str);
    /// Closes the innermost object or array; drops it when it is empty.
    fn end(&mut self);
    /// Opens an array under `key`.
    fn begin_arr(&mut self, key: &str);
    /// A string; skipped when blank.
    fn str(&mut self, key: &str, v: &str);
    fn u64(&mut self, key: &str, v: u64);
    fn i64(&mut self, key: &str, v: i64);
    /// A finite float (callers filter non-finite values).
    fn f64(&mut self, key: &str, v: f64);
    fn bool(&mut self, key: &str, v: bool);
    /// A copy of a source value, pruned; skipped when nothing survives.
    fn node(&mut self, key: &str, v: &Node<'_>);

    /// The concatenation of `parts`; skipped when blank.
    fn str_parts(&mut self, key: &str, parts: &[&str]);

    fn opt_str(&mut self, key: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(key, v);
        }
    }
}

struct Frame {
    /// Buffer length before the separator and key of this container.
    start: usize,
    /// Members written so far.
    len: u32,
    array: bool,
}

/// Writes compact JSON into a byte buffer.
pub(crate) struct JsonOut<'b> {
    buf: &'b mut Vec<u8>,
    frames: Vec<Frame>,
}

impl<'b> JsonOut<'b> {
    /// Starts the top-level object.
    pub(crate) fn new(buf: &'b mut Vec<u8>) -> Self {
        let start = buf.len();
        buf.push(b'{');
        let mut frames = Vec::with_capacity(8);
        frames.push(Frame {
            start,
            len: 0,
            array: false,
        });
        JsonOut { buf, frames }
    }

    /// Closes every open container (the top-level object last).
    pub(crate) fn finish(mut self) {
        while !self.frames.is_empty() {
            self.end();
        }
    }

    /// Writes the separator and the key of a new member of the innermost container.
    fn member(&mut self, key: &str) {
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        if f.len > 0 {
            self.buf.push(b',');
        }
        f.len += 1;
        if !f.array {
            write_json_str(self.buf, key);
            self.buf.push(b':');
        }
    }

    fn open(&mut self, key: &str, array: bool) {
        let start = self.buf.len();
        self.member(key);
        self.buf.push(if array { b'[' } else { b'{' });
        self.frames.push(Frame {
            start,
            len: 0,
            array,
        });
    }

    /// Writes a pruned copy of `v` (separator and key included); rolls everything back and
    /// returns false when nothing survives.
    fn node_member(&mut self, key: &str, v: &Node<'_>) -> bool {
        match v {
            Node::Null => false,
            Node::Str(s) if is_blank(s) => false,
            Node::Plain(s) if is_blank(s) => false,
            Node::Plain(s) => {
                self.member(key);
                write_plain_str(self.buf, s);
                true
            }
            Node::Str(s) => {
                self.member(key);
                write_json_str(self.buf, s);
                true
            }
            Node::Bool(b) => {
                self.bool(key, *b);
                true
            }
            Node::Num(n) => {
                self.member(key);
                write_number(self.buf, n);
                true
            }
            Node::Arr(items) => {
                self.open(key, true);
                for item in items {
                    self.node_member("", item);
                }
                self.close()
            }
            Node::Obj(entries) => {
                self.open(key, false);
                for e in entries {
                    self.node_member(&e.key, &e.val);
                }
                self.close()
            }
        }
    }

    /// Closes the innermost container; returns whether it was kept.
    fn close(&mut self) -> bool {
        let Some(f) = self.frames.pop() else {
            return false;
        };
        if f.len == 0 && !self.frames.is_empty() {
            self.buf.truncate(f.start);
            if let Some(parent) = self.frames.last_mut() {
                parent.len -= 1;
            }
            return false;
        }
        self.buf.push(if f.array { b']' } else { b'}' });
        true
    }
}

impl Out for JsonOut<'_> {
    fn begin_obj(&mut self, key: &str) {
        self.open(key, false);
    }

    fn begin_arr(&mut self, key: &str) {
        self.open(key, true);
    }

    fn end(&mut self) {
        self.close();
    }

    fn str(&mut self, key: &str, v: &str) {
        if !is_blank(v) {
            self.member(key);
            write_json_str(self.buf, v);
        }
    }

    fn str_parts(&mut self, key: &str, parts: &[&str]) {
        if !parts.iter().all(|p| is_blank(p)) {
            self.member(key);
            write_json_str_parts(self.buf, parts);
        }
    }

    fn u64(&mut self, key: &str, v: u64) {
        self.member(key);
        write_u64(self.buf, v);
    }

    fn i64(&mut self, key: &str, v: i64) {
        self.member(key);
        write_i64(self.buf, v);
    }

    fn f64(&mut self, key: &str, v: f64) {
        if let Some(n) = Number::from_f64(v) {
            self.member(key);
            write_number(self.buf, &n);
        }
    }

    fn bool(&mut self, key: &str, v: bool) {
        self.member(key);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    fn node(&mut self, key: &str, v: &Node<'_>) {
        self.node_member(key, v);
    }
}

/// Builds a `serde_json::Value`.
pub(crate) struct ValueOut {
    /// Open containers with the key each goes under in its parent.
    frames: Vec<(String, Value)>,
}

impl ValueOut {
    pub(crate) fn new() -> Self {
        ValueOut {
            frames: vec![(String::new(), Value::Object(Map::new()))],
        }
    }

    /// Closes every open container and returns the top-level object.
    pub(crate) fn finish(mut self) -> Value {
        while self.frames.len() > 1 {
            self.end();
        }
        self.frames
            .pop()
            .map_or_else(|| Value::Object(Map::new()), |(_, v)| v)
    }

    fn put(&mut self, key: &str, v: Value) {
        match self.frames.last_mut().map(|(_, c)| c) {
            Some(Value::Object(m)) => {
                m.insert(key.to_string(), v);
            }
            Some(Value::Array(a)) => a.push(v),
            _ => {}
        }
    }
}

impl Out for ValueOut {
    fn begin_obj(&mut self, key: &str) {
        self.frames
            .push((key.to_string(), Value::Object(Map::new())));
    }

    fn begin_arr(&mut self, key: &str) {
        self.frames
            .push((key.to_string(), Value::Array(Vec::new())));
    }

    fn end(&mut self) {
        if self.frames.len() < 2 {
            return;
        }
        let Some((key, v)) = self.frames.pop() else {
            return;
        };
        let empty = match &v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            self.put(&key, v);
        }
    }

    fn str(&mut self, key: &str, v: &str) {
        if !is_blank(v) {
            self.put(key, Value::String(v.to_string()));
        }
    }

    fn str_parts(&mut self, key: &str, parts: &[&str]) {
        self.str(key, &parts.concat());
    }

    fn u64(&mut self, key: &str, v: u64) {
        self.put(key, Value::from(v));
    }

    fn i64(&mut self, key: &str, v: i64) {
        self.put(key, Value::from(v));
    }

    fn f64(&mut self, key: &str, v: f64) {
        if let Some(n) = Number::from_f64(v) {
            self.put(key, Value::Number(n));
        }
    }

    fn bool(&mut self, key: &str, v: bool) {
        self.put(key, Value::Bool(v));
    }

    fn node(&mut self, key: &str, v: &Node<'_>) {
        if let Some(v) = v.to_pruned_value() {
            self.put(key, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn both(write: impl Fn(&mut dyn Out)) -> (Value, Value) {
        let mut buf = Vec::new();
        let mut j = JsonOut::new(&mut buf);
        write(&mut j);
        j.finish();
        let mut v = ValueOut::new();
        write(&mut v);
        (serde_json::from_slice(&buf).unwrap(), v.finish())
    }

    #[test]
    fn empty_containers_and_blank_strings_disappear() {
        let src = json!({"keep": [null, "", {"x": " "}, 1], "drop": {"a": [], "b": null}});
        let node = Node::from_value(&src);
        let (j, v) = both(|o| {
            o.str("a", "x");
            o.str("blank", "  ");
            o.str_parts("parts", &["a", " ", "b\"c"]);
            o.str_parts("blank_parts", &[" ", "\u{a0}", ""]);
            o.str("nbsp", "\u{a0}");
            o.str("vt", "\u{b}x");
            o.begin_obj("empty");
            o.begin_obj("inner");
            o.str("b", "");
            o.end();
            o.begin_arr("arr");
            o.end();
            o.end();
            o.begin_arr("list");
            o.str("", "one");
            o.str("", " ");
            o.begin_obj("");
            o.u64("n", 2);
            o.end();
            o.end();
            o.i64("neg", -3);
            o.f64("f", 1.5);
            o.f64("nan", f64::NAN);
            o.bool("t", false);
            o.node("src", &node);
            o.begin_obj("open");
            o.str("c", "d");
        });
        let want = json!({"a": "x", "parts": "a b\"c", "vt": "\u{b}x", "list": ["one", {"n": 2}], "neg": -3, "f": 1.5, "t": false,
            "src": {"keep": [1]}, "open": {"c": "d"}});
        assert_eq!(j, want);
        assert_eq!(v, want);
    }
}
