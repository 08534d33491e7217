//! Zero-copy SIP message parsing and writing (RFC 3261 §7, §20, §25).
//!
//! The parser indexes a message in place: the start line and every header
//! line become byte ranges ([`Span`]) into the receive buffer, and the headers
//! a proxy needs are decoded lazily into typed views that borrow the buffer.
//! Changes are recorded as [`Edits`] and applied in one pass by the writer.
//! Nothing here does I/O, and a full parse allocates nothing.

pub mod edit;
pub mod framing;
pub mod params;
pub mod scan;
pub mod sdp;
pub mod span;
pub mod uri;

pub use edit::{EditError, Edits};
pub use params::{Param, Params};
pub use span::Span;
