//! A user-space UDP relay that impairs traffic, for tests (this kernel has no `tc netem`).
//!
//! For every real endpoint `E` (a peer's host candidate) the relay opens a mirror socket `M(E)`,
//! and the test's signaling rewrites each candidate `E` to `M(E)`. A datagram from `S` arriving
//! at `M(E)` is sent on to `E` *from* `M(S)`, so each peer only ever sees the other's mirror:
//! every packet of the call (ICE, DTLS, RTP, RTCP, SCTP) crosses the relay, where it can be
//! dropped (a seeded random loss rate), delayed, or black-holed entirely.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

/// The relay; see the module docs.
pub struct ImpairmentRelay {
    mirrors: Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>,
    /// Loss rate in parts per million.
    loss_ppm: AtomicU32,
    delay_ms: AtomicU32,
    blackhole: AtomicBool,
    rng: Mutex<StdRng>,
    /// Datagrams forwarded to their destination.
    pub forwarded: AtomicU64,
    /// Datagrams dropped by the loss rate or the blackhole.
    pub dropped: AtomicU64,
}

impl ImpairmentRelay {
    /// A relay that drops nothing yet; `seed` makes the loss pattern repeatable.
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            mirrors: Mutex::new(HashMap::new()),
            loss_ppm: AtomicU32::new(0),
            delay_ms: AtomicU32::new(0),
            blackhole: AtomicBool::new(false),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Drops this fraction of datagrams (0.0..=1.0).
    pub fn set_loss(&self, fraction: f64) {
        self.loss_ppm
            .store((fraction.clamp(0.0, 1.0) * 1e6) as u32, Ordering::Relaxed);
    }

    /// Delays every datagram by this much.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u32, Ordering::Relaxed);
    }

    /// Drops everything while on (a cable pulled).
    pub fn set_blackhole(&self, on: bool) {
        self.blackhole.store(on, Ordering::Relaxed);
    }

    /// The mirror address to advertise instead of `real`.
    pub fn mirror_of(self: &Arc<Self>, real: SocketAddr) -> SocketAddr {
        self.mirror(real).local_addr().unwrap_or(real)
    }

    /// The mirror socket of `real`, created (with its receive loop) on first use. Must run
    /// inside a tokio runtime.
    fn mirror(self: &Arc<Self>, real: SocketAddr) -> Arc<UdpSocket> {
        let Ok(mut mirrors) = self.mirrors.lock() else {
            panic!("relay lock poisoned");
        };
        if let Some(s) = mirrors.get(&real) {
            return Arc::clone(s);
        }
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(UdpSocket::from_std)
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("relay cannot bind a mirror socket: {e}"));
        mirrors.insert(real, Arc::clone(&socket));
        let relay = Arc::clone(self);
        let rx = Arc::clone(&socket);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = rx.recv_from(&mut buf).await {
                relay.forward(buf[..n].to_vec(), from, real);
            }
        });
        socket
    }

    /// Sends `data` (which `from` sent to the mirror of `to`) on to `to`, from `from`'s mirror.
    fn forward(self: &Arc<Self>, data: Vec<u8>, from: SocketAddr, to: SocketAddr) {
        let lost = self.blackhole.load(Ordering::Relaxed) || {
            let ppm = self.loss_ppm.load(Ordering::Relaxed);
            ppm > 0
                && self
                    .rng
                    .lock()
                    .map(|mut r| r.random_range(0..1_000_000) < ppm)
                    .unwrap_or(false)
        };
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        let via = self.mirror(from);
        let delay = Duration::from_millis(u64::from(self.delay_ms.load(Ordering::Relaxed)));
        if delay.is_zero() {
            let _ = via.try_send_to(&data, to);
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = via.send_to(&data, to).await;
            });
        }
    }

    /// Rewrites the address of an ICE `candidate:` line to its mirror.
    pub fn rewrite_candidate(self: &Arc<Self>, candidate: &str) -> String {
        // candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
        let fields: Vec<&str> = candidate.split(' ').collect();
        let (Some(addr), Some(port)) = (fields.get(4), fields.get(5)) else {
            return candidate.to_owned();
        };
        let Ok(real) = format!("{addr}:{port}").parse::<SocketAddr>() else {
            return candidate.to_owned();
        };
        let mirror = self.mirror_of(real);
        let mut out: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        out[4] = mirror.ip().to_string();
        out[5] = mirror.port().to_string();
        out.join(" ")
    }
}

/// Removes `a=candidate` lines from an SDP, so candidates only travel (rewritten) by trickle.
pub fn strip_candidates(sdp: &str) -> String {
    sdp.split("\r\n")
        .filter(|l| !l.starts_with("a=candidate:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}
