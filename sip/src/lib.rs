//! Zero-copy SIP message parsing and writing (RFC 3261 §7, §20, §25).
//!
//! The parser indexes a message in place: the start line and every header
//! line become byte ranges ([`Span`]) into the receive buffer, and the headers
//! a proxy needs are decoded lazily into typed views that borrow the buffer.
//! Changes are recorded as [`Edits`] and applied in one pass by the writer.
//! Nothing here does I/O, and a full parse allocates nothing.
//!
//! | module | owns |
//! |---|---|
//! | [`message`] | the index: start line, header lines, body; lazy typed accessors |
//! | [`header`], [`method`] | header names (compact forms), methods, status codes |
//! | [`via`], [`cseq`], [`nameaddr`], [`uri`], [`host`], [`params`] | typed views |
//! | [`transport`] | the SIP [`Transport`] of a Via, a listen socket, a destination |
//! | [`validate`] | RFC 3261 §16.3 checks before forwarding |
//! | [`edit`], [`writer`] | edits and the proxy/reply helpers that record them |
//! | [`framing`] | stream (TCP/TLS) message boundaries |
//! | [`sdp`] | the SDP view for media rewriting |
//! | [`scan`], [`span`] | byte-level scanning and ranges |
//! | [`text`] | numbers and addresses written without `core::fmt` |

pub mod cseq;
pub mod edit;
pub mod error;
pub mod framing;
pub mod header;
pub mod host;
pub mod message;
pub mod method;
pub mod nameaddr;
pub mod params;
pub mod scan;
pub mod sdp;
pub mod span;
pub mod text;
pub mod transport;
pub mod uri;
pub mod validate;
pub mod via;
pub mod writer;

pub use cseq::CSeq;
pub use edit::{EditError, Edits};
pub use error::SipError;
pub use header::HeaderName;
pub use message::{Header, Limits, Message, RequestLine, StartLine, StatusLine};
pub use method::{Method, StatusCode};
pub use nameaddr::{Contact, NameAddr};
pub use params::{Param, Params};
pub use span::Span;
pub use transport::Transport;
pub use uri::Uri;
pub use validate::{validate_request, validate_response, Request, Response};
pub use via::Via;
