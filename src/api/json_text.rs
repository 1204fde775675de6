//! Compact JSON for the key checks' answers, written straight into a buffer: names are the
//! program's own (written as they are), and a value is copied as it is when it holds nothing
//! JSON escapes, which is nearly always. serde_json escapes every name and value byte by byte
//! through its serializer; for `GET /api/v1/apikeys/current` that was a sixth of the request.
//!
//! Each answer written here keeps its `#[derive(Serialize)]` as the description of its JSON (and
//! for the OpenAPI document); a unit test beside each writer holds the two to the same bytes.

use serde_json::value::RawValue;

/// A byte JSON leaves as it is inside a string: not a control character, quote or backslash
/// (serde_json writes everything else, non-ASCII included, unescaped).
fn plain(b: u8) -> bool {
    b >= 0x20 && b != b'"' && b != b'\\'
}

/// Whether no byte of `bytes` needs escaping, eight bytes at a time. Exact: each test below is
/// the classic "has a byte less than n" or "has a zero byte" of a 64-bit word, which can be
/// wrong about which byte but never about whether there is one.
fn all_plain(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    fn escapes(w: u64) -> u64 {
        let less_than = |n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        less_than(0x20) | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))
    }
    let mut words = bytes.chunks_exact(8);
    let mut found = 0;
    for word in &mut words {
        found |= escapes(u64::from_le_bytes(word.try_into().expect("eight bytes")));
    }
    // The rest, padded with a letter.
    let mut last = [b'a'; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    found |= escapes(u64::from_le_bytes(last));
    found == 0
}

/// Writes `s` as a JSON string.
pub fn string(out: &mut Vec<u8>, s: &str) {
    // One check and one copy; serde_json for anything to escape.
    if all_plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string is written into memory");
    }
}

/// A JSON object being written: `{`, then members, then [`Object::end`].
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Starts the member `name` and gives the buffer to write its value into. `name` is
    /// written as it is: a name of the program's, with nothing to escape.
    pub fn member(&mut self, name: &'static str) -> &mut Vec<u8> {
        debug_assert!(name.bytes().all(plain), "a member name to escape: {name}");
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, name: &'static str, value: &str) {
        string(self.member(name), value);
    }

    /// A string, or `null` for none.
    pub fn opt_str(&mut self, name: &'static str, value: Option<&str>) {
        match value {
            Some(v) => self.str(name, v),
            None => self.null(name),
        }
    }

    pub fn null(&mut self, name: &'static str) {
        self.member(name).extend_from_slice(b"null");
    }

    pub fn bool(&mut self, name: &'static str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.member(name).extend_from_slice(text);
    }

    pub fn int(&mut self, name: &'static str, value: i64) {
        let mut digits = itoa::Buffer::new();
        self.member(name)
            .extend_from_slice(digits.format(value).as_bytes());
    }

    /// A number as serde_json writes an `f64` (`1.0`, `0.5`; `null` when not finite).
    pub fn float(&mut self, name: &'static str, value: f64) {
        serde_json::to_writer(self.member(name), &value).expect("a number is written into memory");
    }

    /// An array of strings.
    pub fn strings(&mut self, name: &'static str, values: &[String]) {
        let out = self.member(name);
        out.push(b'[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, v);
        }
        out.push(b']');
    }

    /// A key's permissions: the array written once for their set, or the names as they are.
    pub fn permissions(&mut self, name: &'static str, permissions: &[String]) {
        match super::permission_list::written(permissions) {
            Some(array) => self.raw(name, array),
            None => self.strings(name, permissions),
        }
    }

    /// JSON written before (serde_json's checked text).
    pub fn raw(&mut self, name: &'static str, value: &RawValue) {
        self.member(name).extend_from_slice(value.get().as_bytes());
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_check_agrees_with_the_byte_check() {
        // Every byte alone and at each place in a word and its tail, among plain neighbours.
        for b in 0..=255u8 {
            for len in 1..=17 {
                for at in 0..len {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = b;
                    assert_eq!(all_plain(&bytes), plain(b), "{b:#x} at {at} of {len}");
                }
            }
        }
        // Neighbours that borrow or carry in the word arithmetic.
        for (a, b) in [
            (0x00, 0x22),
            (0x21, 0x20),
            (0x5b, 0x5d),
            (0xff, 0x1f),
            (0x80, 0x00),
        ] {
            for len in 2..=16 {
                let mut bytes = vec![a; len];
                bytes[len - 1] = b;
                assert_eq!(
                    all_plain(&bytes),
                    bytes.iter().all(|&c| plain(c)),
                    "{bytes:?}"
                );
            }
        }
        // Every pair of bytes side by side, inside a word and across two.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for at in [3, 7] {
                    let mut bytes = [b'x'; 10];
                    bytes[at] = a;
                    bytes[at + 1] = b;
                    assert_eq!(
                        all_plain(&bytes),
                        plain(a) && plain(b),
                        "{a:#x} {b:#x} at {at}"
                    );
                }
            }
        }
        assert!(all_plain(b""));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain name",
            "quote \" and backslash \\",
            "tab\tnew line\n nul \0 bell \u{7} unit sep \u{1f} del \u{7f}",
            "é ü 日本 🔑 \u{2028}",
            "</script>&<>'",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn an_object_matches_serde_json() {
        let mut out = Vec::new();
        let mut o = Object::begin(&mut out);
        o.str("a", "x\"y");
        o.opt_str("b", None);
        o.opt_str("c", Some("z"));
        o.bool("d", true);
        o.bool("e", false);
        o.int("f", -42);
        o.float("g", 0.5);
        o.float("h", 1_000_000.0);
        o.float("i", f64::NAN);
        o.strings("j", &["p".into(), "q\n".into()]);
        o.strings("k", &[]);
        o.raw("l", &RawValue::from_string("[1,2]".into()).unwrap());
        {
            let inner = o.member("m");
            let mut m = Object::begin(inner);
            m.int("n", 0);
            m.end();
        }
        o.end();
        let expected = serde_json::json!({
            "a": "x\"y", "b": null, "c": "z", "d": true, "e": false, "f": -42, "g": 0.5,
            "h": 1_000_000.0, "i": null, "j": ["p", "q\n"], "k": [], "l": [1, 2], "m": {"n": 0}
        });
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            expected
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x\"y","b":null,"c":"z","d":true,"e":false,"f":-42,"g":0.5,"h":1000000.0,"i":null,"j":["p","q\n"],"k":[],"l":[1,2],"m":{"n":0}}"#
        );
    }
}
