//! Typed parse and validation errors, each mapped to the status code a
//! server or proxy answers with (RFC 3261 §8.2, §16.3, §21).

use super::header::HeaderName;
use super::method::StatusCode;
use std::fmt;

/// Why a message was refused. Every variant maps to a status code through
/// [`SipError::status`]; a response that fails to parse has no one to answer
/// and is dropped and counted by the caller instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipError {
    /// Nothing but whitespace.
    Empty,
    /// The start line is not `Method SP Request-URI SP SIP-Version` or
    /// `SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 §7.1, §7.2),
    /// including extra or trailing SP (RFC 4475 §3.1.2.7, §3.1.2.8).
    BadStartLine,
    /// The method is not a token (RFC 3261 §25.1).
    BadMethod,
    /// The Request-URI does not parse (RFC 3261 §19.1, RFC 4475 §3.1.2.5).
    BadRequestUri,
    /// The Request-URI has a scheme sipfront does not route (RFC 3261 §8.2.2.1: 416).
    UnsupportedUriScheme,
    /// The version is not `SIP/<digits>.<digits>`.
    BadVersion,
    /// A well-formed version other than SIP/2.0 (RFC 3261 §8.2.2.1 via §16.3: 505).
    VersionNotSupported,
    /// A status code that is not three digits in 100..=699 (RFC 3261 §7.2).
    BadStatusCode,
    /// A header line without a colon or with a name that is not a token.
    BadHeaderLine,
    /// The message ends before the empty line that closes the headers.
    Truncated,
    /// A physical line longer than the configured limit.
    LineTooLong,
    /// More header lines than the configured limit.
    TooManyHeaders,
    /// The message is larger than the configured limit (RFC 3261 §18.1.1: 513).
    MessageTooLarge,
    /// A header sipfront needs did not parse.
    BadHeader(HeaderName),
    /// A header required by RFC 3261 §8.1.1 / §16.3 is absent.
    MissingHeader(HeaderName),
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    CSeqMethodMismatch,
    /// Content-Length says more bytes than the datagram carries (RFC 3261 §18.3).
    ContentLengthTooLarge,
    /// Two Content-Length headers disagree (RFC 4475 §3.3.9 mcl01).
    ConflictingContentLength,
    /// A header that may appear once appears again (RFC 4475 §3.3.8 multi01).
    DuplicateHeader(HeaderName),
    /// Proxy-Require names an extension sipfront does not support
    /// (RFC 3261 §16.3 step 5: 420 with an Unsupported header).
    BadExtension,
}

impl SipError {
    /// The status code to answer a request that failed this way.
    pub fn status(&self) -> StatusCode {
        match self {
            SipError::UnsupportedUriScheme => StatusCode::UNSUPPORTED_URI_SCHEME,
            SipError::BadExtension => StatusCode::BAD_EXTENSION,
            SipError::VersionNotSupported => StatusCode::VERSION_NOT_SUPPORTED,
            SipError::MessageTooLarge | SipError::TooManyHeaders | SipError::LineTooLong => {
                StatusCode::MESSAGE_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short, stable label for logs and the drop counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            SipError::Empty => "empty",
            SipError::BadStartLine => "bad_start_line",
            SipError::BadMethod => "bad_method",
            SipError::BadRequestUri => "bad_request_uri",
            SipError::UnsupportedUriScheme => "unsupported_uri_scheme",
            SipError::BadVersion => "bad_version",
            SipError::VersionNotSupported => "version_not_supported",
            SipError::BadStatusCode => "bad_status_code",
            SipError::BadHeaderLine => "bad_header_line",
            SipError::Truncated => "truncated",
            SipError::LineTooLong => "line_too_long",
            SipError::TooManyHeaders => "too_many_headers",
            SipError::MessageTooLarge => "message_too_large",
            SipError::BadHeader(_) => "bad_header",
            SipError::MissingHeader(_) => "missing_header",
            SipError::CSeqMethodMismatch => "cseq_method_mismatch",
            SipError::ContentLengthTooLarge => "content_length_too_large",
            SipError::ConflictingContentLength => "conflicting_content_length",
            SipError::DuplicateHeader(_) => "duplicate_header",
            SipError::BadExtension => "bad_extension",
        }
    }
}

impl fmt::Display for SipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SipError::BadHeader(h) => write!(f, "bad {} header", h.as_str()),
            SipError::MissingHeader(h) => write!(f, "missing {} header", h.as_str()),
            SipError::DuplicateHeader(h) => write!(f, "more than one {} header", h.as_str()),
            e => f.write_str(e.as_str()),
        }
    }
}

impl std::error::Error for SipError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_rfc3261_21() {
        assert_eq!(SipError::VersionNotSupported.status().as_u16(), 505);
        assert_eq!(SipError::UnsupportedUriScheme.status().as_u16(), 416);
        assert_eq!(SipError::MessageTooLarge.status().as_u16(), 513);
        assert_eq!(SipError::CSeqMethodMismatch.status().as_u16(), 400);
        assert_eq!(SipError::BadExtension.status().as_u16(), 420);
        assert_eq!(
            SipError::DuplicateHeader(HeaderName::To).status().as_u16(),
            400
        );
        assert_eq!(
            SipError::MissingHeader(HeaderName::CallId).to_string(),
            "missing Call-ID header"
        );
    }
}
