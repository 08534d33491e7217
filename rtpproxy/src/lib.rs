//! `sipfront-rtpproxy`: the media relay companion of sipfront.
//!
//! | module | owns |
//! |---|---|
//! | [`classic`] | the classic rtpproxy control protocol codec (reference Part 1) |
//! | [`bencode`], [`ng`] | the rtpengine "ng" protocol codec (reference Part 2) |
//! | [`sdp`] | the SDP rewrite for ng offer/answer |
//! | [`session`] | the session table: sessions, ports, latching rules, timeouts (sans I/O) |
//! | [`control`] | both protocols over the session table, reply cache (sans I/O) |
//! | [`stats`] | per-leg counters and RTP loss/jitter |
//! | [`relay`] | the media workers: epoll + recvmmsg/sendmmsg, latching |
//! | [`server`] | the control listeners and process wiring |
//! | [`client`] | a blocking UDP client for both protocols (for sipfront) |

pub mod bencode;
pub mod classic;
pub mod client;
pub mod control;
pub mod ng;
pub mod relay;
pub mod sdp;
pub mod server;
pub mod session;
pub mod stats;
