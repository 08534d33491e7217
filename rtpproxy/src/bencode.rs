//! Bencode (the ng protocol's document format, reference §2.1): a zero-copy
//! decoder with depth, size and element-count limits, and an encoder.
//!
//! Byte strings borrow the input; lists and dictionaries are small vectors
//! of borrowed values. Dictionary keys are kept in wire order and are not
//! required to be sorted (rtpengine README: "the requirement ... that
//! dictionary keys must be present in lexicographical order is not currently
//! honoured"; Kamailio sends them in insertion order). No input panics.

use std::fmt;

/// Limits applied while decoding.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Maximum nesting of lists/dictionaries.
    pub max_depth: usize,
    /// Maximum input length in bytes.
    pub max_len: usize,
    /// Maximum number of values in the whole document.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_len: 256 * 1024,
            max_items: 4096,
        }
    }
}

/// A decoded value borrowing the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The first entry with this key, for a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| *k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
}

/// Why a document did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start or continue a value here.
    Syntax { at: usize },
    /// An integer that is malformed (`i-0e`, leading zeros) or overflows i64.
    BadInt { at: usize },
    /// Nesting deeper than the limit.
    TooDeep,
    /// Input longer than the limit, or a string length beyond the input.
    TooLarge,
    /// More values than the limit.
    TooMany,
    /// Bytes after the top-level value.
    Trailing { at: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated bencode"),
            DecodeError::Syntax { at } => write!(f, "bencode syntax error at byte {at}"),
            DecodeError::BadInt { at } => write!(f, "bad bencode integer at byte {at}"),
            DecodeError::TooDeep => write!(f, "bencode nested too deep"),
            DecodeError::TooLarge => write!(f, "bencode document too large"),
            DecodeError::TooMany => write!(f, "too many bencode values"),
            DecodeError::Trailing { at } => write!(f, "trailing bytes after bencode at byte {at}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value spanning the whole input.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    decode_with(input, Limits::default())
}

/// [`decode`] with explicit limits.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value<'_>, DecodeError> {
    if input.len() > limits.max_len {
        return Err(DecodeError::TooLarge);
    }
    let mut d = Decoder {
        input,
        pos: 0,
        items: 0,
        limits,
    };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::Trailing { at: d.pos });
    }
    Ok(v)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    limits: Limits,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    fn count(&mut self) -> Result<(), DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(DecodeError::TooMany);
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        self.count()?;
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let start = self.pos;
                let end = self.find(b'e')?;
                let i = parse_int(self.input.get(start..end).unwrap_or(&[]))
                    .ok_or(DecodeError::BadInt { at: start })?;
                self.pos = end + 1;
                Ok(Value::Int(i))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                if depth >= self.limits.max_depth {
                    return Err(DecodeError::TooDeep);
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth >= self.limits.max_depth {
                    return Err(DecodeError::TooDeep);
                }
                self.pos += 1;
                let mut entries = Vec::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::Syntax { at: self.pos });
                    }
                    self.count()?;
                    let k = self.bytes()?;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            _ => Err(DecodeError::Syntax { at: self.pos }),
        }
    }

    fn find(&self, b: u8) -> Result<usize, DecodeError> {
        let rest = self.input.get(self.pos..).unwrap_or(&[]);
        memchr::memchr(b, rest)
            .map(|i| self.pos + i)
            .ok_or(DecodeError::Truncated)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let colon = self.find(b':')?;
        let digits = self.input.get(start..colon).unwrap_or(&[]);
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(DecodeError::Syntax { at: start });
        }
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(DecodeError::Syntax { at: start });
        }
        let len: usize = digits
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        let data_start = colon + 1;
        let data_end = data_start.checked_add(len).ok_or(DecodeError::TooLarge)?;
        let data = self
            .input
            .get(data_start..data_end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = data_end;
        Ok(data)
    }
}

/// `-?[1-9][0-9]*|0` as i64.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits.first() == Some(&b'0') {
        return None;
    }
    if neg && digits == b"0" {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits {
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// Appends bencode to a buffer. Dictionaries are written in the order the
/// caller gives; the caller picks the key order.
#[derive(Debug, Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder { buf: Vec::new() }
    }

    pub fn with_buf(buf: Vec<u8>) -> Self {
        Encoder { buf }
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b.len().to_string().as_bytes());
        self.buf.push(b':');
        self.buf.extend_from_slice(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn int(&mut self, i: i64) -> &mut Self {
        self.buf.push(b'i');
        self.buf.extend_from_slice(i.to_string().as_bytes());
        self.buf.push(b'e');
        self
    }

    pub fn begin_dict(&mut self) -> &mut Self {
        self.buf.push(b'd');
        self
    }

    pub fn begin_list(&mut self) -> &mut Self {
        self.buf.push(b'l');
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.buf.push(b'e');
        self
    }

    /// A dictionary key followed by a string value.
    pub fn kv_str(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.str(k).bytes(v)
    }

    /// A dictionary key followed by an integer value.
    pub fn kv_int(&mut self, k: &str, v: i64) -> &mut Self {
        self.str(k).int(v)
    }

    /// Any decoded value (used to echo and in tests).
    pub fn value(&mut self, v: &Value<'_>) -> &mut Self {
        match v {
            Value::Int(i) => self.int(*i),
            Value::Bytes(b) => self.bytes(b),
            Value::List(l) => {
                self.begin_list();
                for x in l {
                    self.value(x);
                }
                self.end()
            }
            Value::Dict(d) => {
                self.begin_dict();
                for (k, x) in d {
                    self.bytes(k);
                    self.value(x);
                }
                self.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference §2.1 / rtpengine README wire example: `d7:command4:pinge`.
    #[test]
    fn decodes_the_readme_ping() {
        let v = decode(b"d7:command4:pinge").unwrap();
        assert_eq!(v.get("command").and_then(Value::as_str), Some("ping"));
    }

    // Reference §2.1: keys need not be sorted; Kamailio's insertion order.
    #[test]
    fn accepts_unsorted_keys_in_wire_order() {
        let v = decode(b"d8:supportsl10:load limite3:sdp3:v=07:command5:offere").unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(d[0].0, b"supports");
        assert_eq!(d[2].0, b"command");
        assert_eq!(v.get("sdp").and_then(Value::as_bytes), Some(&b"v=0"[..]));
    }

    // BEP 3 integer rules: no leading zeros, no negative zero.
    #[test]
    fn integers() {
        assert_eq!(decode(b"i42e"), Ok(Value::Int(42)));
        assert_eq!(decode(b"i-7e"), Ok(Value::Int(-7)));
        assert_eq!(decode(b"i0e"), Ok(Value::Int(0)));
        assert!(matches!(decode(b"i-0e"), Err(DecodeError::BadInt { .. })));
        assert!(matches!(decode(b"i03e"), Err(DecodeError::BadInt { .. })));
        assert!(matches!(decode(b"ie"), Err(DecodeError::BadInt { .. })));
        assert!(matches!(
            decode(b"i99999999999999999999e"),
            Err(DecodeError::BadInt { .. })
        ));
    }

    #[test]
    fn limits() {
        let deep = "l".repeat(100) + &"e".repeat(100);
        assert_eq!(decode(deep.as_bytes()), Err(DecodeError::TooDeep));
        assert_eq!(decode(b"5:abc"), Err(DecodeError::Truncated));
        assert_eq!(decode(b"99999999999:a"), Err(DecodeError::Syntax { at: 0 }));
        assert_eq!(decode(b"d3:abc"), Err(DecodeError::Truncated));
        assert_eq!(decode(b"i1ei2e"), Err(DecodeError::Trailing { at: 3 }));
        assert!(matches!(
            decode(b"di1ei2ee"),
            Err(DecodeError::Syntax { .. })
        ));
        let many = "l".to_string() + &"i1e".repeat(5000) + "e";
        assert_eq!(decode(many.as_bytes()), Err(DecodeError::TooMany));
        let small = Limits {
            max_len: 4,
            ..Limits::default()
        };
        assert_eq!(decode_with(b"4:abcd", small), Err(DecodeError::TooLarge));
    }

    #[test]
    fn encode_roundtrip() {
        let mut e = Encoder::new();
        e.begin_dict()
            .kv_str("result", b"ok")
            .str("list")
            .begin_list()
            .int(-3)
            .str("")
            .end()
            .end();
        assert_eq!(e.buf, b"d6:result2:ok4:listli-3e0:ee");
        let v = decode(&e.buf).unwrap();
        let mut again = Encoder::new();
        again.value(&v);
        assert_eq!(again.buf, e.buf);
    }
}
