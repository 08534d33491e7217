//! Edits: the changes a proxy makes to a message, recorded as byte-range
//! operations against the original buffer and applied once, in one pass, when
//! the outgoing message is written (the "lumps" of SER, with types).
//!
//! Inserted bytes live in a scratch arena owned by [`Edits`]; a worker keeps
//! one `Edits` and one output buffer and reuses them for every message, so the
//! steady state allocates nothing.

use super::span::Span;
use std::fmt;

/// One recorded change. `span` is the range of the original buffer that is
/// replaced; an insertion has an empty span (`start == end`), a deletion an
/// empty `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Edit {
    span: Span,
    /// Range of the replacement bytes inside the arena.
    data: Span,
    /// Order of recording, so that insertions at one point keep their order.
    seq: u32,
}

/// Why a set of edits cannot be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditError {
    /// Two edits change overlapping ranges of the original.
    Overlap { first: Span, second: Span },
    /// An edit points past the end of the buffer.
    OutOfBounds(Span),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Overlap { first, second } => {
                write!(f, "edits overlap: {first:?} and {second:?}")
            }
            EditError::OutOfBounds(s) => write!(f, "edit out of bounds: {s:?}"),
        }
    }
}

impl std::error::Error for EditError {}

/// A list of edits to one message plus the arena holding the inserted bytes.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    list: Vec<Edit>,
    arena: Vec<u8>,
}

impl Edits {
    pub fn new() -> Self {
        Edits::with_capacity(16, 512)
    }

    pub fn with_capacity(edits: usize, bytes: usize) -> Self {
        Edits {
            list: Vec::with_capacity(edits),
            arena: Vec::with_capacity(bytes),
        }
    }

    /// Forget all edits, keeping the allocations for the next message.
    pub fn clear(&mut self) {
        self.list.clear();
        self.arena.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    fn push(&mut self, span: Span, data: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(data);
        let seq = self.list.len() as u32;
        self.list.push(Edit {
            span,
            data: Span::new(start, self.arena.len()),
            seq,
        });
    }

    /// Insert `data` before offset `at` of the original.
    pub fn insert(&mut self, at: usize, data: &[u8]) {
        self.push(Span::new(at, at), data);
    }

    /// Replace the original range `span` by `data`.
    pub fn replace(&mut self, span: Span, data: &[u8]) {
        self.push(span, data);
    }

    /// Delete the original range `span`.
    pub fn delete(&mut self, span: Span) {
        self.push(span, &[]);
    }

    /// Insert the concatenation of `parts` before `at`, as one edit (a
    /// header line from its pieces, without a `String` in between).
    pub fn insert_parts(&mut self, at: usize, parts: &[&[u8]]) {
        self.replace_with(Span::new(at, at), |arena| {
            for p in parts {
                arena.extend_from_slice(p);
            }
        });
    }

    /// Replace `span` by the bytes `write` appends to the arena.
    #[inline]
    pub fn replace_with(&mut self, span: Span, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.arena.len();
        write(&mut self.arena);
        let seq = self.list.len() as u32;
        self.list.push(Edit {
            span,
            data: Span::new(start, self.arena.len()),
            seq,
        });
    }

    /// Insert the bytes `write` appends to the arena before `at`.
    #[inline]
    pub fn insert_with(&mut self, at: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.replace_with(Span::new(at, at), write);
    }

    /// Replace `span` by formatted text (for numbers and addresses), without
    /// an intermediate `String`.
    pub fn replace_fmt(&mut self, span: Span, args: fmt::Arguments<'_>) {
        let start = self.arena.len();
        let mut w = ArenaWriter(&mut self.arena);
        // Writing into a Vec cannot fail.
        let _ = fmt::Write::write_fmt(&mut w, args);
        let seq = self.list.len() as u32;
        self.list.push(Edit {
            span,
            data: Span::new(start, self.arena.len()),
            seq,
        });
    }

    /// Insert formatted text before `at`.
    pub fn insert_fmt(&mut self, at: usize, args: fmt::Arguments<'_>) {
        self.replace_fmt(Span::new(at, at), args);
    }

    /// Size of the output once applied to an original of `orig_len` bytes.
    pub fn output_len(&self, orig_len: usize) -> usize {
        let (added, removed) = self
            .list
            .iter()
            .fold((0, 0), |(a, r), e| (a + e.data.len(), r + e.span.len()));
        orig_len + added - removed.min(orig_len + added)
    }

    /// Apply the edits to `orig` and append the result to `out`, in one pass.
    /// Edits are applied in offset order; insertions at the same offset keep
    /// the order they were recorded in and come before a replacement or
    /// deletion starting there. Overlapping edits are refused.
    pub fn apply(&mut self, orig: &[u8], out: &mut Vec<u8>) -> Result<(), EditError> {
        // The order as one integer: offset, insertion before replacement,
        // then recording order.
        let key = |e: &Edit| {
            (u64::from(e.span.start) << 32)
                | (u64::from(e.span.end > e.span.start) << 31)
                | u64::from(e.seq & 0x7fff_ffff)
        };
        if !self.list.is_sorted_by_key(key) {
            self.list.sort_unstable_by_key(key);
        }
        out.reserve(self.output_len(orig.len()));
        let mut pos = 0usize;
        let mut prev: Option<Span> = None;
        for e in &self.list {
            let (s, t) = (e.span.start as usize, e.span.end as usize);
            if t > orig.len() || s > t {
                return Err(EditError::OutOfBounds(e.span));
            }
            if s < pos {
                return Err(EditError::Overlap {
                    first: prev.unwrap_or_default(),
                    second: e.span,
                });
            }
            out.extend_from_slice(&orig[pos..s]);
            out.extend_from_slice(e.data.get(&self.arena));
            pos = t;
            prev = Some(e.span);
        }
        out.extend_from_slice(&orig[pos..]);
        Ok(())
    }
}

struct ArenaWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for ArenaWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(orig: &[u8], f: impl FnOnce(&mut Edits)) -> Result<Vec<u8>, EditError> {
        let mut e = Edits::new();
        f(&mut e);
        let mut out = Vec::new();
        e.apply(orig, &mut out).map(|_| out)
    }

    #[test]
    fn no_edits_is_identity() {
        assert_eq!(run(b"abc", |_| {}).unwrap(), b"abc");
    }

    #[test]
    fn insert_replace_delete_in_one_pass() {
        let out = run(b"0123456789", |e| {
            e.delete(Span::new(8, 10));
            e.insert(0, b"<");
            e.replace(Span::new(2, 4), b"xyz");
            e.insert(5, b"-");
            e.insert(5, b"+");
        })
        .unwrap();
        assert_eq!(out, b"<01xyz4-+567");
    }

    #[test]
    fn insertion_before_replacement_at_same_offset() {
        let out = run(b"abc", |e| {
            e.replace(Span::new(1, 2), b"B");
            e.insert(1, b"^");
        })
        .unwrap();
        assert_eq!(out, b"a^Bc");
    }

    #[test]
    fn formatted_edits() {
        let out = run(b"Max-Forwards: 70\r\n", |e| {
            e.replace_fmt(Span::new(14, 16), format_args!("{}", 69));
        })
        .unwrap();
        assert_eq!(out, b"Max-Forwards: 69\r\n");
    }

    #[test]
    fn overlap_and_bounds_are_refused() {
        assert!(matches!(
            run(b"abcdef", |e| {
                e.delete(Span::new(1, 4));
                e.delete(Span::new(2, 5));
            }),
            Err(EditError::Overlap { .. })
        ));
        assert!(matches!(
            run(b"abc", |e| e.delete(Span::new(2, 9))),
            Err(EditError::OutOfBounds(_))
        ));
    }

    #[test]
    fn output_len_matches() {
        let mut e = Edits::new();
        e.insert(0, b"xx");
        e.delete(Span::new(1, 3));
        let mut out = Vec::new();
        e.apply(b"hello", &mut out).unwrap();
        assert_eq!(e.output_len(5), out.len());
    }
}
