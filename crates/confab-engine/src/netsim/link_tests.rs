#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use super::*;
use crate::netsim::spec::{LinkParams, NetworkSpec};

fn params(spec: &str) -> LinkParams {
    NetworkSpec::parse(spec).unwrap().a_to_b
}

/// Offers `n` datagrams of `bytes`, one every `every`, and returns the verdicts.
fn run(
    model: &mut LinkModel,
    t0: Instant,
    n: usize,
    bytes: usize,
    every: Duration,
) -> Vec<Verdict> {
    (0..n)
        .map(|i| model.offer(t0 + every * i as u32, bytes))
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_clean_link_delivers_everything_at_once() {
    let t0 = Instant::now();
    let mut m = LinkModel::new(LinkParams::default(), 1, 0);
    for v in run(&mut m, t0, 100, 1200, ms(1)).iter().enumerate() {
        assert_eq!(*v.1, Verdict::Deliver(t0 + ms(1) * v.0 as u32));
    }
    let c = m.counters();
    assert_eq!(c.forwarded_packets, 100);
    assert_eq!(c.forwarded_bytes, 120_000);
    assert_eq!(c.dropped(), 0);
}

#[test]
fn independent_loss_matches_the_rate_and_replays_from_its_seed() {
    let t0 = Instant::now();
    let p = params("loss=5%");
    let mut a = LinkModel::new(p, 99, 0);
    let va = run(&mut a, t0, 100_000, 100, Duration::from_micros(10));
    let lost = a.counters().dropped_loss;
    assert!((4_500..5_500).contains(&lost), "{lost} of 100000 lost");
    assert_eq!(a.counters().forwarded_packets + lost, 100_000);
    let mut b = LinkModel::new(p, 99, 0);
    assert_eq!(va, run(&mut b, t0, 100_000, 100, Duration::from_micros(10)));
    let mut c = LinkModel::new(p, 100, 0);
    assert_ne!(va, run(&mut c, t0, 100_000, 100, Duration::from_micros(10)));
}

/// Lengths of the runs of consecutive losses.
fn bursts(verdicts: &[Verdict]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut run = 0;
    for v in verdicts {
        if *v == Verdict::Lost {
            run += 1;
        } else if run > 0 {
            out.push(run);
            run = 0;
        }
    }
    out
}

#[test]
fn bursty_loss_keeps_the_average_and_has_the_mean_burst_length() {
    let t0 = Instant::now();
    let mut m = LinkModel::new(params("loss=5%,burst=4"), 7, 0);
    let v = run(&mut m, t0, 200_000, 100, Duration::from_micros(10));
    let lost = m.counters().dropped_loss as f64 / 200_000.0;
    assert!((0.04..0.06).contains(&lost), "average loss {lost}");
    let b = bursts(&v);
    let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
    assert!((3.5..4.5).contains(&mean), "mean burst {mean}");
    // Independent loss at 5 % has bursts of about 1/(1-p) ≈ 1.05.
    let mut i = LinkModel::new(params("loss=5%"), 7, 0);
    let b = bursts(&run(&mut i, t0, 200_000, 100, Duration::from_micros(10)));
    let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
    assert!(mean < 1.2, "independent bursts {mean}");
}

#[test]
fn the_rate_limit_queues_then_drops_the_tail() {
    let t0 = Instant::now();
    // 800 kbit/s: a 1000-byte datagram takes 10 ms. Offer one per 5 ms: twice the rate.
    let mut m = LinkModel::new(params("rate=800kbit,queue=100ms"), 1, 0);
    let v = run(&mut m, t0, 1000, 1000, ms(5));
    let delivered: Vec<Instant> = v
        .iter()
        .filter_map(|v| match v {
            Verdict::Deliver(at) => Some(*at),
            _ => None,
        })
        .collect();
    let c = m.counters();
    // 5 s of offers at twice the rate: about half goes through, the rest is tail-dropped.
    assert!(
        (480..=520).contains(&delivered.len()),
        "{}",
        delivered.len()
    );
    assert_eq!(c.dropped_queue as usize, 1000 - delivered.len());
    assert_eq!(c.dropped_loss, 0);
    // Served back to back at the rate, never faster.
    for w in delivered.windows(2) {
        assert!(
            w[1] - w[0] >= ms(10) - Duration::from_micros(1),
            "{:?}",
            w[1] - w[0]
        );
    }
    // Queueing delay stays within the bound (100 ms) plus one datagram's serialization.
    for (i, verdict) in v.iter().enumerate() {
        if let Verdict::Deliver(at) = verdict {
            let sent = t0 + ms(5) * i as u32;
            assert!(*at - sent <= ms(111), "waited {:?}", *at - sent);
        }
    }
    // Below the rate nothing is dropped and nothing waits beyond its serialization.
    let mut slow = LinkModel::new(params("rate=800kbit"), 1, 0);
    let v = run(&mut slow, t0, 100, 1000, ms(20));
    assert_eq!(slow.counters().dropped(), 0);
    let Verdict::Deliver(at) = v[3] else {
        panic!("{:?}", v[3])
    };
    assert!((at - (t0 + ms(70))).max((t0 + ms(70)) - at) < Duration::from_micros(1));
}

#[test]
fn jitter_never_reorders_unless_allowed() {
    let t0 = Instant::now();
    let mut m = LinkModel::new(params("delay=40ms,jitter=15ms"), 3, 0);
    let times: Vec<Instant> = run(&mut m, t0, 2000, 200, ms(2))
        .into_iter()
        .map(|v| match v {
            Verdict::Deliver(at) => at,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(times.windows(2).all(|w| w[1] >= w[0]), "in order");
    let delays: Vec<f64> = times
        .iter()
        .enumerate()
        .map(|(i, at)| (*at - (t0 + ms(2) * i as u32)).as_secs_f64() * 1000.0)
        .collect();
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    assert!(delays.iter().all(|d| *d >= 0.0));
    assert!((40.0..90.0).contains(&mean), "mean delay {mean}");
    let spread = delays.iter().cloned().fold(f64::MIN, f64::max)
        - delays.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 15.0, "delays vary: {spread}");

    let mut r = LinkModel::new(params("delay=40ms,jitter=15ms,reorder"), 3, 0);
    let times: Vec<Instant> = run(&mut r, t0, 2000, 200, ms(2))
        .into_iter()
        .filter_map(|v| match v {
            Verdict::Deliver(at) => Some(at),
            _ => None,
        })
        .collect();
    assert!(times.windows(2).any(|w| w[1] < w[0]), "reordered");
}

#[test]
fn an_outage_drops_everything_in_its_window_only() {
    let t0 = Instant::now();
    let mut m = LinkModel::new(LinkParams::default(), 1, 0);
    m.set_outages(vec![(t0 + ms(100), t0 + ms(200))]);
    let v = run(&mut m, t0, 300, 100, ms(1));
    assert!(v[..100].iter().all(|v| matches!(v, Verdict::Deliver(_))));
    assert!(v[100..200].iter().all(|v| *v == Verdict::Outage));
    assert!(v[200..].iter().all(|v| matches!(v, Verdict::Deliver(_))));
    assert_eq!(m.counters().dropped_outage, 100);
    m.set_blackhole(true);
    assert_eq!(m.offer(t0 + ms(500), 100), Verdict::Outage);
    m.set_blackhole(false);
    assert!(matches!(m.offer(t0 + ms(501), 100), Verdict::Deliver(_)));
    // Changing the parameters takes effect at once.
    m.set_params(params("loss=100%"));
    assert_eq!(m.offer(t0 + ms(502), 100), Verdict::Lost);
    assert_eq!(m.params().loss, 1.0);
}
