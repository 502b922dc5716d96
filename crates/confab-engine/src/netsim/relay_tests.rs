#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::*;

async fn socket() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

/// Receives datagrams on `s` until `n` arrived or nothing came for 500 ms.
async fn receive(s: &UdpSocket, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < n {
        match tokio::time::timeout(Duration::from_millis(500), s.recv_from(&mut buf)).await {
            Ok(Ok((len, from))) => out.push((buf[..len].to_vec(), from)),
            _ => break,
        }
    }
    out
}

#[tokio::test]
async fn datagrams_cross_through_the_mirrors_per_direction() {
    let sim = NetworkSimulator::start(&NetworkSpec::parse("delay=5ms").unwrap(), 1).unwrap();
    let (a, a_addr) = socket().await;
    let (b, b_addr) = socket().await;
    // Each side learns the other's mirror through its rewritten candidate.
    let cand = |addr: SocketAddr| {
        format!(
            "candidate:1 1 udp 2130706431 {} {} typ host",
            addr.ip(),
            addr.port()
        )
    };
    let a_cand = sim.rewriter(Side::A).rewrite(&cand(a_addr)).unwrap();
    let b_cand = sim.rewriter(Side::B).rewrite(&cand(b_addr)).unwrap();
    let field = |c: &str, i: usize| c.split(' ').nth(i).unwrap().to_owned();
    let m_a: SocketAddr = format!("{}:{}", field(&a_cand, 4), field(&a_cand, 5))
        .parse()
        .unwrap();
    let m_b: SocketAddr = format!("{}:{}", field(&b_cand, 4), field(&b_cand, 5))
        .parse()
        .unwrap();
    assert!(sim.is_mirror(m_a) && sim.is_mirror(m_b));
    assert_ne!(m_a, a_addr);
    assert_eq!(
        sim.mirror_of(Side::A, a_addr).unwrap(),
        m_a,
        "one mirror per endpoint"
    );

    let sent = Instant::now();
    for i in 0..20u8 {
        a.send_to(&[i; 100], m_b).await.unwrap();
    }
    let got = receive(&b, 20).await;
    assert!(sent.elapsed() >= Duration::from_millis(5), "delayed");
    assert_eq!(got.len(), 20);
    assert!(
        got.iter().all(|(_, from)| *from == m_a),
        "B only ever sees A's mirror"
    );
    let order: Vec<u8> = got.iter().map(|(d, _)| d[0]).collect();
    assert_eq!(order, (0..20).collect::<Vec<_>>(), "in order");
    b.send_to(b"back", m_a).await.unwrap();
    let back = receive(&a, 1).await;
    assert_eq!(back, [(b"back".to_vec(), m_b)]);
    let ab = sim.counters(Direction::AToB);
    assert_eq!((ab.forwarded_packets, ab.forwarded_bytes), (20, 2000));
    assert_eq!(sim.counters(Direction::BToA).forwarded_packets, 1);

    // Runtime changes: a black hole, then loss.
    sim.set_blackhole(true);
    a.send_to(b"lost", m_b).await.unwrap();
    assert!(receive(&b, 1).await.is_empty());
    sim.set_blackhole(false);
    sim.set_loss(1.0);
    a.send_to(b"lost", m_b).await.unwrap();
    assert!(receive(&b, 1).await.is_empty());
    let ab = sim.counters(Direction::AToB);
    assert_eq!((ab.dropped_outage, ab.dropped_loss), (1, 1));
    sim.set_loss(0.0);
    sim.set_delay(Duration::ZERO);
    a.send_to(b"again", m_b).await.unwrap();
    assert_eq!(receive(&b, 1).await.len(), 1);
}

#[tokio::test]
async fn outages_count_from_the_call_start_and_unmirrorable_candidates_are_withheld() {
    let sim = NetworkSimulator::start(&NetworkSpec::parse("outage=10s@0s").unwrap(), 2).unwrap();
    let (a, a_addr) = socket().await;
    let (_b, b_addr) = socket().await;
    let m_b = sim.mirror_of(Side::B, b_addr).unwrap();
    let _ = sim.mirror_of(Side::A, a_addr).unwrap();
    sim.call_started(Instant::now());
    a.send_to(b"x", m_b).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.counters(Direction::AToB).dropped_outage == 0 {
        assert!(Instant::now() < deadline, "the datagram was judged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = sim.rewriter(Side::A);
    assert!(
        r.rewrite("candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype active")
            .is_none()
    );
    assert!(
        r.rewrite("candidate:1 1 udp 1 abcd.local 5000 typ host")
            .is_none()
    );
    assert!(r.rewrite("garbage").is_none());
    assert_eq!(sim.seed(), 2);
    assert_eq!(sim.spec().outages.len(), 1);
}
