//! `sipfront-rtpproxy`: the media relay companion of sipfront.
//!
//! This package is a placeholder in the workspace until its own issue lands:
//! the control protocols (rtpproxy, ng) and the relay will live here.
