#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn every_setting_parses_into_both_directions() {
    let s = NetworkSpec::parse(
        "loss=2%,burst=4,delay=40ms,jitter=15ms,rate=800kbit,queue=64kB,outage=3s@8s",
    )
    .unwrap();
    assert_eq!(
        s.spec,
        "loss=2%,burst=4,delay=40ms,jitter=15ms,rate=800kbit,queue=64kB,outage=3s@8s"
    );
    assert_eq!(s.profile, None);
    for p in [s.a_to_b, s.b_to_a] {
        assert!((p.loss - 0.02).abs() < 1e-12);
        assert_eq!(p.burst, Some(4.0));
        assert_eq!(p.delay, ms(40));
        assert_eq!(p.jitter, ms(15));
        assert!(!p.reorder);
        assert_eq!(p.rate_bps, Some(800_000));
        assert_eq!(p.queue, QueueLimit::Bytes(64_000));
        assert_eq!(p.queue_bytes(), Some(64_000));
    }
    assert_eq!(
        s.outages,
        [Outage {
            start: Duration::from_secs(8),
            duration: Duration::from_secs(3)
        }]
    );
    assert_eq!(s.outages[0].end(), Duration::from_secs(11));
}

#[test]
fn units_and_defaults() {
    let s = NetworkSpec::parse("rate=1.5mbit").unwrap();
    assert_eq!(s.a_to_b.rate_bps, Some(1_500_000));
    // Default queue: 200 ms at the rate.
    assert_eq!(s.a_to_b.queue, DEFAULT_QUEUE);
    assert_eq!(s.a_to_b.queue_bytes(), Some(37_500));
    assert_eq!(
        NetworkSpec::parse("rate=600kbps").unwrap().a_to_b.rate_bps,
        Some(600_000)
    );
    assert_eq!(
        NetworkSpec::parse("rate=2Mbps,queue=50ms")
            .unwrap()
            .a_to_b
            .queue_bytes(),
        Some(12_500)
    );
    // A tiny bound still holds two full datagrams.
    assert_eq!(
        NetworkSpec::parse("rate=100kbit,queue=1ms")
            .unwrap()
            .a_to_b
            .queue_bytes(),
        Some(MIN_QUEUE_BYTES)
    );
    assert_eq!(
        NetworkSpec::parse("delay=1.5s").unwrap().a_to_b.delay,
        ms(1500)
    );
    assert_eq!(
        NetworkSpec::parse("delay=500us").unwrap().a_to_b.delay,
        Duration::from_micros(500)
    );
    assert_eq!(
        NetworkSpec::parse("queue=2KiB").unwrap().a_to_b.queue,
        QueueLimit::Bytes(2048)
    );
    // Without a rate nothing queues.
    assert_eq!(
        NetworkSpec::parse("loss=1%").unwrap().a_to_b.queue_bytes(),
        None
    );
    assert!(
        NetworkSpec::parse("jitter=5ms,reorder")
            .unwrap()
            .b_to_a
            .reorder
    );
    assert!(
        !NetworkSpec::parse("reorder,reorder=off")
            .unwrap()
            .b_to_a
            .reorder
    );
    assert!(NetworkSpec::parse("loss=0%").unwrap().is_clean());
    assert!(!NetworkSpec::parse("outage=1s@1s").unwrap().is_clean());
}

#[test]
fn profiles_resolve_and_later_items_override_them() {
    for (name, _, _) in PROFILES {
        let s = NetworkSpec::parse(name).unwrap();
        assert_eq!(s.profile, Some(name));
        assert!(!s.is_clean(), "{name} impairs something");
    }
    let s = NetworkSpec::parse("3g,loss=5%").unwrap();
    assert_eq!(s.profile, Some("3g"));
    assert_eq!(s.a_to_b.rate_bps, Some(750_000));
    assert!((s.a_to_b.loss - 0.05).abs() < 1e-12);
    assert!(profiles_help().contains("congested"));
}

#[test]
fn one_direction_can_differ() {
    let s = NetworkSpec::parse("loss=1%,a_to_b.rate=600kbit,b_to_a.delay=20ms").unwrap();
    assert_eq!(s.a_to_b.rate_bps, Some(600_000));
    assert_eq!(s.b_to_a.rate_bps, None);
    assert_eq!(s.a_to_b.delay, Duration::ZERO);
    assert_eq!(s.b_to_a.delay, ms(20));
    assert!((s.b_to_a.loss - 0.01).abs() < 1e-12);
    assert_eq!(
        NetworkSpec::parse("a_to_b.outage=1s@2s").unwrap_err(),
        SpecError::NotPerDirection("a_to_b.outage=1s@2s".into())
    );
    assert!(matches!(
        NetworkSpec::parse("a_to_b.wifi"),
        Err(SpecError::NotPerDirection(_))
    ));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let err = |s: &str| NetworkSpec::parse(s).unwrap_err();
    assert_eq!(err(""), SpecError::Empty);
    assert_eq!(err(" , "), SpecError::Empty);
    assert_eq!(
        err("satellite"),
        SpecError::UnknownProfile("satellite".into())
    );
    assert!(
        err("satellite")
            .to_string()
            .contains("wifi, lossy, 3g, congested")
    );
    assert_eq!(err("los=5%"), SpecError::UnknownKey("los".into()));
    assert_eq!(err("loss="), SpecError::MissingValue("loss".into()));
    assert!(matches!(err("loss=five%"), SpecError::BadNumber { .. }));
    assert!(matches!(err("loss=-5%"), SpecError::BadNumber { .. }));
    assert!(matches!(err("loss=5"), SpecError::BadUnit { .. }));
    let e = err("loss=150%");
    assert!(matches!(e, SpecError::OutOfRange { .. }));
    assert!(e.to_string().contains("100 %"), "{e}");
    assert!(matches!(err("burst=0.5"), SpecError::OutOfRange { .. }));
    assert!(matches!(err("burst=4x"), SpecError::BadNumber { .. }));
    assert!(matches!(err("delay=40"), SpecError::BadUnit { .. }));
    assert!(matches!(err("delay=40min"), SpecError::BadUnit { .. }));
    assert!(matches!(err("delay=11s"), SpecError::OutOfRange { .. }));
    assert!(matches!(err("rate=800"), SpecError::BadUnit { .. }));
    assert!(matches!(err("rate=800kB"), SpecError::BadUnit { .. }));
    assert!(matches!(err("rate=1bit"), SpecError::OutOfRange { .. }));
    assert!(matches!(err("queue=10pkts"), SpecError::BadUnit { .. }));
    assert_eq!(err("outage=3s"), SpecError::BadOutage("3s".into()));
    assert!(matches!(err("outage=0s@1s"), SpecError::OutOfRange { .. }));
    assert!(matches!(err("outage=3@8s"), SpecError::BadUnit { .. }));
    assert!(matches!(err("reorder=maybe"), SpecError::OutOfRange { .. }));
    assert!(matches!(
        err("loss=80%,burst=2"),
        SpecError::Inconsistent(_)
    ));
    assert!(NetworkSpec::parse("loss=80%,burst=4").is_ok());
    // The first bad item is named even after good ones.
    assert_eq!(
        err("loss=1%,jiter=5ms"),
        SpecError::UnknownKey("jiter".into())
    );
}

#[test]
fn the_resolved_spec_serializes_in_readable_units() {
    let s = NetworkSpec::parse("loss=5%,delay=40ms,outage=3s@8s").unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["spec"], "loss=5%,delay=40ms,outage=3s@8s");
    assert_eq!(v["a_to_b"]["loss_percent"], 5.0);
    assert_eq!(v["a_to_b"]["delay_ms"], 40.0);
    assert_eq!(v["outages"][0]["start_ms"], 8000.0);
    assert_eq!(v["outages"][0]["duration_ms"], 3000.0);
}
