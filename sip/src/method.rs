//! SIP methods (RFC 3261 §7.1, §27.4 and the extension RFCs) and status codes.

use super::scan::is_token_str;
use std::fmt;

/// A request method. Extension methods (any token, RFC 3261 §25.1
/// `extension-method`) are `Other`; compare them by their bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Prack,
    Subscribe,
    Notify,
    Publish,
    Info,
    Refer,
    Message,
    Update,
    Other,
}

impl Method {
    /// Classifies a method token. Methods are case-sensitive (RFC 3261 §7.1),
    /// so `invite` is an extension method, not INVITE.
    pub fn from_bytes(b: &[u8]) -> Option<Method> {
        // Known methods first: they are tokens by construction.
        Some(match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"UPDATE" => Method::Update,
            _ if is_token_str(b) => Method::Other,
            _ => return None,
        })
    }

    /// The canonical name; `None` for extension methods.
    pub fn as_str(&self) -> Option<&'static str> {
        Some(match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Other => return None,
        })
    }

    /// Methods that may create a dialog (RFC 3261 §12, RFC 6665, RFC 3515),
    /// for which a proxy adds Record-Route.
    pub fn creates_dialog(&self) -> bool {
        matches!(self, Method::Invite | Method::Subscribe | Method::Refer)
    }
}

/// A response status code, 100..=699 (RFC 3261 §7.2, §21).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(u16);

impl StatusCode {
    pub const TRYING: StatusCode = StatusCode(100);
    pub const OK: StatusCode = StatusCode(200);
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    pub const LOOP_DETECTED: StatusCode = StatusCode(482);
    pub const TOO_MANY_HOPS: StatusCode = StatusCode(483);
    pub const REQUEST_TERMINATED: StatusCode = StatusCode(487);
    pub const SERVER_ERROR: StatusCode = StatusCode(500);
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);
    pub const MESSAGE_TOO_LARGE: StatusCode = StatusCode(513);

    /// A code in 100..=699; anything else is not a SIP status code.
    pub const fn new(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 699 {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    pub const fn as_u16(&self) -> u16 {
        self.0
    }

    /// 1 for provisional, 2 for success, ... 6 for global failure.
    pub const fn class(&self) -> u8 {
        (self.0 / 100) as u8
    }

    pub const fn is_provisional(&self) -> bool {
        self.0 < 200
    }

    /// The RFC 3261 §21 reason phrase for the codes sipfront sends.
    pub fn reason(&self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            183 => "Session Progress",
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            408 => "Request Timeout",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            487 => "Request Terminated",
            500 => "Server Internal Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            c if c < 200 => "Provisional",
            c if c < 300 => "Success",
            c if c < 400 => "Redirection",
            c if c < 500 => "Client Error",
            c if c < 600 => "Server Error",
            _ => "Global Failure",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_rfc3261_7_1() {
        assert_eq!(Method::from_bytes(b"INVITE"), Some(Method::Invite));
        assert_eq!(Method::from_bytes(b"invite"), Some(Method::Other));
        assert_eq!(Method::from_bytes(b"NEWMETHOD"), Some(Method::Other));
        assert_eq!(Method::from_bytes(b"IN VITE"), None);
        assert_eq!(Method::from_bytes(b""), None);
    }

    #[test]
    fn status_code_range_rfc3261_7_2() {
        assert!(StatusCode::new(99).is_none());
        assert!(StatusCode::new(700).is_none());
        assert_eq!(StatusCode::new(486).map(|c| c.class()), Some(4));
        assert_eq!(StatusCode::TOO_MANY_HOPS.reason(), "Too Many Hops");
    }
}
