//! [`NetworkSimulator`]: the sockets that put the [`LinkModel`]s between two engines.
//!
//! For every real endpoint `E` (a local candidate of one side) the simulator opens a mirror
//! socket `M(E)` on 127.0.0.1, and that side's [`CandidateRewriter`] (from
//! [`NetworkSimulator::rewriter`], set as [`crate::EngineConfig::candidate_rewriter`]) signals
//! `M(E)` instead of `E`. A datagram from `S` arriving at `M(E)` is judged by the link model of
//! its direction (the side that owns `E` receives it) and, if it survives, sent on to `E` *from*
//! `M(S)` when its delivery time comes. Each engine only ever learns the other's mirrors, so every
//! datagram of the call (ICE, DTLS, RTP, RTCP, SCTP) crosses the simulator: the far side's
//! view of where a packet came from is always a mirror, so even a peer-reflexive candidate it
//! learns is one. A candidate that cannot be mirrored (not UDP, or a hostname) is not signaled
//! at all.
//!
//! Sockets and timers run on the simulator's own thread (`confab-netsim`, a single-threaded
//! tokio runtime), independent of the engines' runtimes; dropping the simulator stops it and
//! closes every mirror.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::link::{LinkCounters, LinkModel, Verdict};
use super::spec::{LinkParams, NetworkSpec};
use crate::api::CandidateRewriter;

/// One of the two parties the simulator sits between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first party (alice in `confab loopback`).
    A,
    /// The second party (bob).
    B,
}

/// A direction through the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From side A's endpoints to side B's.
    AToB,
    /// From side B's endpoints to side A's.
    BToA,
}

impl Direction {
    const BOTH: [Self; 2] = [Self::AToB, Self::BToA];

    fn index(self) -> usize {
        match self {
            Self::AToB => 0,
            Self::BToA => 1,
        }
    }
}

/// Why the simulator could not start or mirror an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A socket or the simulator's thread could not be set up.
    #[error("network simulator: {0}")]
    Io(#[from] std::io::Error),
    /// The simulator has stopped.
    #[error("the network simulator has stopped")]
    Stopped,
}

/// A datagram waiting for its delivery time.
struct Scheduled {
    at: Instant,
    seq: u64,
    data: Vec<u8>,
    via: Arc<UdpSocket>,
    to: SocketAddr,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Endpoints {
    /// Real endpoint → its mirror socket.
    mirrors: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// Mirror address → the real endpoint behind it.
    real_of: HashMap<SocketAddr, SocketAddr>,
    /// Real endpoint → which side it belongs to.
    owner: HashMap<SocketAddr, Side>,
}

struct Inner {
    handle: tokio::runtime::Handle,
    spec: NetworkSpec,
    seed: u64,
    links: [Mutex<LinkModel>; 2],
    endpoints: Mutex<Endpoints>,
    delivery: [mpsc::UnboundedSender<Scheduled>; 2],
    seq: std::sync::atomic::AtomicU64,
    /// Datagrams whose direction could not be told (neither end known): dropped.
    unknown: std::sync::atomic::AtomicU64,
    /// Tests only: the two endpoints whose DTLS datagrams are dropped (see
    /// [`NetworkSimulator::stall_first_dtls_handshake`]), and whether the next handshake's
    /// endpoints are to be.
    dtls_stalled: Mutex<Vec<SocketAddr>>,
    stall_first_dtls: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent under any panic (counters and maps), so poisoning is ignored.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The simulator; see the module docs.
pub struct NetworkSimulator {
    inner: Arc<Inner>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NetworkSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSimulator")
            .field("spec", &self.inner.spec.spec)
            .field("seed", &self.inner.seed)
            .finish_non_exhaustive()
    }
}

impl NetworkSimulator {
    /// Starts a simulator applying `spec`, its random decisions seeded by `seed` (print it: the
    /// same seed replays the same decisions for the same sequence of datagrams).
    ///
    /// # Errors
    /// [`SimError::Io`] if its thread or runtime cannot start.
    pub fn start(spec: &NetworkSpec, seed: u64) -> Result<Self, SimError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("confab-netsim".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        let (tx_ab, rx_ab) = mpsc::unbounded_channel();
        let (tx_ba, rx_ba) = mpsc::unbounded_channel();
        handle.spawn(deliver(rx_ab));
        handle.spawn(deliver(rx_ba));
        let inner = Arc::new(Inner {
            handle,
            spec: spec.clone(),
            seed,
            links: [
                Mutex::new(LinkModel::new(spec.a_to_b, seed, 1)),
                Mutex::new(LinkModel::new(spec.b_to_a, seed, 2)),
            ],
            endpoints: Mutex::new(Endpoints::default()),
            delivery: [tx_ab, tx_ba],
            seq: std::sync::atomic::AtomicU64::new(0),
            unknown: std::sync::atomic::AtomicU64::new(0),
            dtls_stalled: Mutex::new(Vec::new()),
            stall_first_dtls: std::sync::atomic::AtomicBool::new(false),
        });
        Ok(Self {
            inner,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The spec it applies (as given at start; runtime changes are not reflected).
    #[must_use]
    pub fn spec(&self) -> &NetworkSpec {
        &self.inner.spec
    }

    /// The seed of its random decisions.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// The hook for `side`'s [`crate::EngineConfig::candidate_rewriter`]: each of its UDP
    /// candidates is signaled as its mirror, and marks the endpoint as `side`'s.
    #[must_use]
    pub fn rewriter(&self, side: Side) -> Arc<dyn CandidateRewriter> {
        Arc::new(MirrorRewriter {
            inner: Arc::clone(&self.inner),
            side,
        })
    }

    /// The mirror to advertise instead of `side`'s endpoint `real`, opened on first use.
    ///
    /// # Errors
    /// [`SimError`] if the mirror socket cannot be opened.
    pub fn mirror_of(&self, side: Side, real: SocketAddr) -> Result<SocketAddr, SimError> {
        self.inner.mirror_for(side, real)
    }

    /// Whether `addr` is one of the simulator's mirrors.
    #[must_use]
    pub fn is_mirror(&self, addr: SocketAddr) -> bool {
        lock(&self.inner.endpoints).real_of.contains_key(&addr)
    }

    /// The call started at `at`: the spec's outages count from here.
    pub fn call_started(&self, at: Instant) {
        let windows: Vec<(Instant, Instant)> = self
            .inner
            .spec
            .outages
            .iter()
            .map(|o| (at + o.start, at + o.end()))
            .collect();
        for d in Direction::BOTH {
            lock(&self.inner.links[d.index()]).set_outages(windows.clone());
        }
    }

    /// Replaces one direction's parameters from now on.
    pub fn set_params(&self, direction: Direction, params: LinkParams) {
        lock(&self.inner.links[direction.index()]).set_params(params);
    }

    /// Sets the loss rate (0.0..=1.0, independent losses) both ways.
    pub fn set_loss(&self, fraction: f64) {
        for d in Direction::BOTH {
            let mut link = lock(&self.inner.links[d.index()]);
            let mut p = *link.params();
            p.loss = fraction.clamp(0.0, 1.0);
            p.burst = None;
            link.set_params(p);
        }
    }

    /// Sets the one-way delay both ways.
    pub fn set_delay(&self, delay: Duration) {
        for d in Direction::BOTH {
            let mut link = lock(&self.inner.links[d.index()]);
            let mut p = *link.params();
            p.delay = delay;
            link.set_params(p);
        }
    }

    /// Drops every datagram both ways while on (a cable pulled); counted as outage.
    pub fn set_blackhole(&self, on: bool) {
        for d in Direction::BOTH {
            lock(&self.inner.links[d.index()]).set_blackhole(on);
        }
    }

    /// Tests only: the two endpoints between which the next DTLS datagram (RFC 7983: first
    /// byte 20-63) flows never get a DTLS datagram through again, either way; STUN and
    /// everything else pass, and other endpoints (a new peer connection's) are not affected.
    /// That is a peer connection whose ICE connects and whose DTLS handshake is dead, the
    /// webrtc-rs failure a rebuilt connection recovers from.
    #[cfg(test)]
    pub(crate) fn stall_first_dtls_handshake(&self) {
        self.inner
            .stall_first_dtls
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// What one direction did so far.
    #[must_use]
    pub fn counters(&self, direction: Direction) -> LinkCounters {
        lock(&self.inner.links[direction.index()]).counters()
    }

    /// Datagrams dropped because neither their source nor their destination was known.
    #[must_use]
    pub fn unknown_datagrams(&self) -> u64 {
        self.inner
            .unknown
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for NetworkSimulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn mirror_for(self: &Arc<Self>, side: Side, real: SocketAddr) -> Result<SocketAddr, SimError> {
        let socket = self.mirror(real, Some(side))?;
        Ok(socket.local_addr()?)
    }

    /// The mirror socket of `real` (created, with its receive loop, on first use), and records
    /// `owner` for it when known.
    fn mirror(
        self: &Arc<Self>,
        real: SocketAddr,
        owner: Option<Side>,
    ) -> Result<Arc<UdpSocket>, SimError> {
        let mut ep = lock(&self.endpoints);
        if let Some(side) = owner {
            ep.owner.insert(real, side);
        }
        if let Some(s) = ep.mirrors.get(&real) {
            return Ok(Arc::clone(s));
        }
        let ip = if real.is_ipv6() {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        } else {
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        };
        let std_socket = std::net::UdpSocket::bind((ip, 0))?;
        std_socket.set_nonblocking(true)?;
        let socket = {
            let _guard = self.handle.enter();
            Arc::new(UdpSocket::from_std(std_socket)?)
        };
        let mirror_addr = socket.local_addr()?;
        ep.mirrors.insert(real, Arc::clone(&socket));
        ep.real_of.insert(mirror_addr, real);
        drop(ep);
        debug!(%real, mirror = %mirror_addr, ?owner, "network simulator: mirror opened");
        let inner = Arc::clone(self);
        let rx = Arc::clone(&socket);
        self.handle.spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match rx.recv_from(&mut buf).await {
                    Ok((n, from)) => inner.forward(&buf[..n], from, real),
                    // An ICMP error from an earlier send; the socket still works.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionRefused
                                | std::io::ErrorKind::ConnectionReset
                        ) => {}
                    Err(e) => {
                        warn!(error = %e, %real, "network simulator: mirror socket failed");
                        break;
                    }
                }
            }
        });
        Ok(socket)
    }

    /// `data` from `from` arrived at the mirror of `to`.
    fn forward(self: &Arc<Self>, data: &[u8], from: SocketAddr, to: SocketAddr) {
        let (to_owner, from_owner) = {
            let ep = lock(&self.endpoints);
            (ep.owner.get(&to).copied(), ep.owner.get(&from).copied())
        };
        let (direction, sender) = match (to_owner, from_owner) {
            (Some(Side::A), _) => (Direction::BToA, Side::B),
            (Some(Side::B), _) => (Direction::AToB, Side::A),
            (None, Some(Side::A)) => (Direction::AToB, Side::A),
            (None, Some(Side::B)) => (Direction::BToA, Side::B),
            (None, None) => {
                self.unknown
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        };
        if data.first().is_some_and(|b| (20..=63).contains(b)) {
            let mut stalled = lock(&self.dtls_stalled);
            if self
                .stall_first_dtls
                .swap(false, std::sync::atomic::Ordering::Relaxed)
            {
                stalled.extend([from, to]);
            }
            if stalled.contains(&from) || stalled.contains(&to) {
                return;
            }
        }
        let verdict = lock(&self.links[direction.index()]).offer(Instant::now(), data.len());
        let Verdict::Deliver(at) = verdict else {
            return;
        };
        // The sender's endpoint may be one it never signaled; it is then the sender's too.
        let via = match self.mirror(from, from_owner.is_none().then_some(sender)) {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "network simulator: no mirror for a sender");
                return;
            }
        };
        let _ = self.delivery[direction.index()].send(Scheduled {
            at,
            seq: self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            data: data.to_vec(),
            via,
            to,
        });
    }
}

/// Sends each scheduled datagram when its time comes, earliest first.
async fn deliver(mut rx: mpsc::UnboundedReceiver<Scheduled>) {
    let mut queue: BinaryHeap<Reverse<Scheduled>> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        while queue.peek().is_some_and(|s| s.0.at <= now) {
            if let Some(Reverse(s)) = queue.pop() {
                let _ = s.via.send_to(&s.data, s.to).await;
            }
        }
        let next = queue.peek().map(|s| s.0.at);
        tokio::select! {
            item = rx.recv() => match item {
                Some(s) => queue.push(Reverse(s)),
                None => return,
            },
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(
                next.unwrap_or(now + Duration::from_secs(3600)),
            )), if next.is_some() => {}
        }
    }
}

/// A side's [`CandidateRewriter`].
struct MirrorRewriter {
    inner: Arc<Inner>,
    side: Side,
}

impl CandidateRewriter for MirrorRewriter {
    fn rewrite(&self, candidate: &str) -> Option<String> {
        // candidate:<foundation> <component> <transport> <priority> <address> <port> typ …
        let mut fields: Vec<String> = candidate.split(' ').map(str::to_owned).collect();
        let udp = fields.get(2).is_some_and(|t| t.eq_ignore_ascii_case("udp"));
        let real = match (fields.get(4), fields.get(5)) {
            (Some(a), Some(p)) => format!("{a}:{p}").parse::<SocketAddr>().ok().or_else(|| {
                // IPv6 without brackets.
                format!("[{a}]:{p}").parse().ok()
            }),
            _ => None,
        };
        let Some(real) = real.filter(|_| udp) else {
            debug!(
                candidate,
                "network simulator: candidate not mirrored, not signaled"
            );
            return None;
        };
        match self.inner.mirror_for(self.side, real) {
            Ok(mirror) => {
                fields[4] = mirror.ip().to_string();
                fields[5] = mirror.port().to_string();
                Some(fields.join(" "))
            }
            Err(e) => {
                warn!(error = %e, "network simulator: candidate not mirrored, not signaled");
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
