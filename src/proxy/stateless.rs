//! Stateless mode (RFC 3261 §16.11): no per-call state at all. A request is
//! routed and forwarded with a branch derived from the request itself, so a
//! retransmission gets the same branch and lands on the same destination; a
//! response is relayed by its Via alone. Like Kamailio's `forward()`.

use super::forward::{DialogAffinity, Forwarder, Target};
use super::{Datagram, Routing};
use crate::dispatch::Health;
use crate::sip::{Message, Request};

/// The stateless proxy: it owns nothing.
#[derive(Debug, Default)]
pub(crate) struct Stateless;

impl Stateless {
    /// Routes and forwards a validated request.
    pub fn request(
        &mut self,
        fw: &mut Forwarder,
        m: &Message<'_>,
        req: &Request<'_>,
        routing: &Routing,
        health: &dyn Health,
        d: Datagram<'_>,
    ) {
        if fw.refuses_new_dialog(req) {
            return fw.reply(m, d, crate::sip::StatusCode::SERVICE_UNAVAILABLE);
        }
        forward(fw, m, req, routing, health, d, None);
    }
}

/// Routes `req` and forwards it with a branch derived from the request
/// (§16.11), or answers it. Stateful mode forwards this way what is not a
/// transaction of its own (the ACK of a 2xx, a CANCEL matching nothing),
/// with its dialog affinity.
pub(crate) fn forward(
    fw: &mut Forwarder,
    m: &Message<'_>,
    req: &Request<'_>,
    routing: &Routing,
    health: &dyn Health,
    d: Datagram<'_>,
    affinity: Option<&dyn DialogAffinity>,
) {
    if req.method == crate::sip::Method::Ack && fw.acks_own_reply(m, req) {
        return fw.drop(super::stats::DropReason::OwnReplyAck);
    }
    match fw.route(m, req, routing, health, d, false, affinity) {
        Ok(r) => match r.target {
            Target::Reply(code) => fw.reply(m, d, code),
            Target::Send {
                to,
                socket,
                backend,
            } => {
                let mut out = fw.out.buffer();
                match fw.forward(m, req, d, socket, &mut out, None) {
                    Ok(()) => {
                        fw.count_forward(req.method, backend);
                        fw.send(socket, to, out);
                    }
                    Err(e) => {
                        fw.out.recycle(out);
                        fw.reply(m, d, e.status());
                    }
                }
            }
        },
        Err(e) => fw.reply(m, d, e.status()),
    }
}
