//! Signaling without a server, for driving sessions in-process: a [`SignalRecorder`] that keeps
//! what a session sends, and a [`SignalBus`] that delivers signals between sessions as the
//! server would (optionally holding them back, so offers cross), logging each one's kind.
//!
//! Contract: both implement [`SignalSender`], the session's only way to send a signal; the bus
//! delivers to whatever queue is registered for the addressee ([`SignalBus::connect`],
//! [`SignalBus::reserve`]) and drops signals to nobody, like the server does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a poisoned lock is a test that already failed"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use signaling_client::{ClientEvent, ParticipantId, Signal};
use tokio::sync::mpsc;

use crate::SignalSender;

/// The name a signal is logged under (`"offer"`, `"answer"`, `"ice_restart"`, ...).
pub fn signal_kind(signal: &Signal) -> &'static str {
    match signal {
        Signal::Offer { .. } => "offer",
        Signal::Answer { .. } => "answer",
        Signal::IceRestart { .. } => "ice_restart",
        Signal::Candidate { .. } => "candidate",
        Signal::EndOfCandidates => "end_of_candidates",
        Signal::Hangup { .. } => "hangup",
    }
}

/// Keeps every signal the session sends.
#[derive(Debug, Default)]
pub struct SignalRecorder(Mutex<Vec<(ParticipantId, Signal)>>);

impl SignalSender for SignalRecorder {
    fn send(&self, to: &ParticipantId, signal: Signal) {
        self.0.lock().unwrap().push((to.clone(), signal));
    }
}

impl SignalRecorder {
    /// Whom offers went to, in order.
    pub fn offers_to(&self) -> Vec<ParticipantId> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| matches!(s, Signal::Offer { .. }))
            .map(|(to, _)| to.clone())
            .collect()
    }

    /// How many hang-ups were sent.
    pub fn hangups(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| matches!(s, Signal::Hangup { .. }))
            .count()
    }
}

/// Delivers signals between sessions in this process, as the server would, and logs
/// `(from, signal kind)` for each.
#[derive(Debug, Default)]
pub struct SignalBus {
    routes: Mutex<HashMap<ParticipantId, mpsc::Sender<ClientEvent>>>,
    log: Mutex<Vec<(String, &'static str)>>,
    /// While `Some`, signals are held here instead of delivered (to make offers cross).
    held: Mutex<Option<Vec<(ParticipantId, ClientEvent)>>>,
}

impl SignalBus {
    /// A sender for participant `me` on this bus.
    pub fn sender(self: &Arc<Self>, me: &str) -> Arc<BusSender> {
        Arc::new(BusSender {
            me: me.into(),
            bus: Arc::clone(self),
        })
    }

    /// Delivers signals to `id` into `session` (its signaling event channel) from now on.
    pub fn connect(&self, id: &str, session: mpsc::Sender<ClientEvent>) {
        self.routes.lock().unwrap().insert(id.into(), session);
    }

    /// Routes `id`'s signals into a queue before its session exists (it is signalled while it
    /// starts); [`forward_route`] connects the queue once the session runs.
    pub fn reserve(&self, id: &str) -> mpsc::Receiver<ClientEvent> {
        let (tx, rx) = mpsc::channel(256);
        self.routes.lock().unwrap().insert(id.into(), tx);
        rx
    }

    /// Holds every signal back until [`SignalBus::release`].
    pub fn hold(&self) {
        *self.held.lock().unwrap() = Some(Vec::new());
    }

    /// Delivers what was held, in order, and stops holding.
    ///
    /// The hold lock is kept while delivering: a signal sent meanwhile (an answer to a held
    /// offer that was just delivered) waits in [`BusSender::send`] and goes out after everything
    /// held, so each sender's signals arrive in the order sent, as through the server.
    pub fn release(&self) {
        let mut held = self.held.lock().unwrap();
        for (to, ev) in held.take().unwrap_or_default() {
            self.deliver(&to, ev);
        }
    }

    /// Where signals to `to` go, if anywhere.
    pub fn route(&self, to: &ParticipantId) -> Option<mpsc::Sender<ClientEvent>> {
        self.routes.lock().unwrap().get(to).cloned()
    }

    /// Logs that `from` sent `signal` (senders that deliver by other means call this).
    pub fn record(&self, from: &ParticipantId, signal: &Signal) {
        self.log
            .lock()
            .unwrap()
            .push((from.to_string(), signal_kind(signal)));
    }

    /// How many signals of `kind` (see [`signal_kind`]) `from` sent.
    pub fn count(&self, from: &str, kind: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, k)| f == from && *k == kind)
            .count()
    }

    /// Delivers `ev` to `to` now (dropped if nobody is registered or its queue is full).
    pub fn deliver(&self, to: &ParticipantId, ev: ClientEvent) {
        if let Some(tx) = self.route(to) {
            let _ = tx.try_send(ev);
        }
    }
}

/// One participant's [`SignalSender`] on a [`SignalBus`].
#[derive(Debug)]
pub struct BusSender {
    me: ParticipantId,
    bus: Arc<SignalBus>,
}

impl SignalSender for BusSender {
    fn send(&self, to: &ParticipantId, signal: Signal) {
        self.bus.record(&self.me, &signal);
        let ev = ClientEvent::Signal {
            from: self.me.clone(),
            signal,
        };
        if let Some(held) = self.bus.held.lock().unwrap().as_mut() {
            held.push((to.clone(), ev));
            return;
        }
        self.bus.deliver(to, ev);
    }
}

/// Forwards a reserved route's queue ([`SignalBus::reserve`]) into a started session.
pub fn forward_route(mut queue: mpsc::Receiver<ClientEvent>, session: mpsc::Sender<ClientEvent>) {
    tokio::spawn(async move {
        while let Some(ev) = queue.recv().await {
            if session.send(ev).await.is_err() {
                break;
            }
        }
    });
}
