//! Byte ranges into a message buffer: how the parser records where things are
//! without copying them.

/// A half-open byte range `start..end` into the buffer a message was parsed from.
///
/// Offsets are `u32`: a SIP message is bounded by the configured maximum size
/// (far below 4 GiB), and the smaller type keeps header tables compact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// A span from `usize` offsets. Callers keep offsets below the message
    /// size limit, which the parser enforces before building spans.
    #[inline]
    pub const fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The span of `sub` inside `buf`, where `sub` is a subslice of `buf`.
    /// Returns an empty span at 0 when `sub` is not inside `buf`.
    #[inline]
    pub fn of(buf: &[u8], sub: &[u8]) -> Span {
        let base = buf.as_ptr() as usize;
        let p = sub.as_ptr() as usize;
        if p < base || p + sub.len() > base + buf.len() {
            return Span::default();
        }
        Span::new(p - base, p - base + sub.len())
    }

    #[inline]
    pub const fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    #[inline]
    pub const fn range(&self) -> core::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The bytes this span covers in `buf`; empty when out of bounds (never panics).
    #[inline]
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.range()).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_and_get_round_trip() {
        let buf = b"INVITE sip:a@b SIP/2.0";
        let sub = &buf[7..14];
        let s = Span::of(buf, sub);
        assert_eq!(s, Span::new(7, 14));
        assert_eq!(s.get(buf), b"sip:a@b");
    }

    #[test]
    fn out_of_bounds_is_empty_not_panic() {
        let buf = b"abc";
        assert_eq!(Span::new(2, 10).get(buf), b"");
        assert_eq!(Span::of(buf, b"zzz"), Span::default());
    }
}
