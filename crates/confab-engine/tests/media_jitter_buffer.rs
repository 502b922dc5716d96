//! Jitter buffer and mixer under a simulated network and clock: reordering, 10 % loss, late
//! packets, jitter spikes, DTX gaps, sequence/timestamp wraparound. Every run prints its seed;
//! set `CONFAB_TEST_SEED` to replay one.

use std::collections::BTreeSet;

use confab_engine::media::CaptureTime;
use confab_engine::media::jitter_buffer::{
    FrameKind, JitterBuffer, JitterBufferConfig, JitterStats, RtpAudioPacket,
};
use confab_engine::media::mixer::AudioMixer;
use confab_engine::media::opus_codec::{
    AudioDecoder, FRAME_SAMPLES, OpusDecoder, OpusEncoder, OpusEncoderConfig, OpusError,
    opus_packet_has_fec,
};
use confab_engine::media::synthetic_audio::{SyntheticAudio, SyntheticAudioConfig, goertzel_power};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A decoder whose output says which packet it came from: a packet's payload is its frame index
/// (u32 BE); decode fills the frame with that index, FEC with the index before it, PLC with -1.
#[derive(Debug, Default)]
struct IndexDecoder;

fn index_of(payload: &[u8]) -> Result<u32, OpusError> {
    let bytes: [u8; 4] = payload
        .try_into()
        .map_err(|_| OpusError::FrameSize(payload.len()))?;
    Ok(u32::from_be_bytes(bytes))
}

impl AudioDecoder for IndexDecoder {
    fn decode(&mut self, packet: &[u8]) -> Result<Vec<f32>, OpusError> {
        Ok(vec![index_of(packet)? as f32; FRAME_SAMPLES])
    }
    fn conceal(&mut self) -> Result<Vec<f32>, OpusError> {
        Ok(vec![-1.0; FRAME_SAMPLES])
    }
    fn decode_fec(&mut self, next_packet: &[u8]) -> Result<Vec<f32>, OpusError> {
        Ok(vec![index_of(next_packet)? as f32 - 1.0; FRAME_SAMPLES])
    }
}

fn seed() -> u64 {
    let seed = std::env::var("CONFAB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005E_EDC0_FFEE);
    println!("seed {seed} (replay with CONFAB_TEST_SEED={seed})");
    seed
}

/// Network model for one simulated run.
#[derive(Debug, Clone, Copy)]
struct Net {
    base_delay_ms: f64,
    jitter_ms: f64,
    loss: f64,
    /// Packets `spike.0..spike.1` are held back and released together at the end of the spike.
    spike: Option<(u32, u32)>,
    /// This packet arrives this many ms late on top of everything else.
    straggler: Option<(u32, f64)>,
}

struct Run {
    /// Packets that arrived after a packet sent later than them.
    reordered: usize,
    /// What each pop produced: (kind, first sample).
    out: Vec<(FrameKind, f32)>,
    delivered: BTreeSet<u32>,
    stats: JitterStats,
    delays_ms: Vec<f64>,
    targets_ms: Vec<f64>,
}

/// Sends `frames` 20 ms packets (starting near the u16/u32 wrap points) through `net` into a
/// jitter buffer popped every 20 ms on a simulated clock.
fn simulate(net: Net, frames: u32, seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let seq0: u16 = 65_000;
    let ts0: u32 = u32::MAX - 960 * 300;
    let mut arrivals: Vec<(u64, u32)> = Vec::new();
    let mut delivered = BTreeSet::new();
    for i in 0..frames {
        if rng.random_bool(net.loss) {
            continue;
        }
        let send_us = 1_000_000 + u64::from(i) * 20_000;
        let mut delay = net.base_delay_ms + rng.random_range(0.0..=net.jitter_ms.max(1e-9));
        if let Some((a, b)) = net.spike
            && (a..b).contains(&i)
        {
            delay += f64::from(b - i) * 20.0;
        }
        if let Some((p, extra)) = net.straggler
            && p == i
        {
            delay += extra;
        }
        arrivals.push((send_us + (delay * 1000.0) as u64, i));
        delivered.insert(i);
    }
    arrivals.sort_unstable();
    let mut highest = None;
    let mut reordered = 0;
    for (_, i) in &arrivals {
        if highest.is_some_and(|h| *i < h) {
            reordered += 1;
        }
        highest = highest.max(Some(*i));
    }
    let mut jb = JitterBuffer::new(IndexDecoder, JitterBufferConfig::default());
    let mut out = Vec::new();
    let mut delays_ms = Vec::new();
    let mut targets_ms = Vec::new();
    let mut next = arrivals.iter().peekable();
    // Playout clock: 7 ms out of phase with the sender, runs 1 s past the last send.
    let mut now = 1_000_000 + 7_000;
    let end = 1_000_000 + u64::from(frames) * 20_000 + 1_000_000;
    while now < end {
        while let Some((at, i)) = next.next_if(|(at, _)| *at <= now) {
            let packet = RtpAudioPacket {
                seq: seq0.wrapping_add(*i as u16),
                timestamp: ts0.wrapping_add(i * 960),
                payload: i.to_be_bytes().to_vec(),
            };
            jb.push(packet, CaptureTime::from_micros(*at));
        }
        let frame = jb.pop(CaptureTime::from_micros(now));
        assert_eq!(
            frame.samples.len(),
            FRAME_SAMPLES,
            "every pop yields one 20 ms frame"
        );
        out.push((frame.kind, frame.samples[0]));
        delays_ms.push(jb.current_delay().as_secs_f64() * 1000.0);
        targets_ms.push(jb.target_delay().as_secs_f64() * 1000.0);
        now += 20_000;
    }
    Run {
        reordered,
        out,
        delivered,
        stats: *jb.stats(),
        delays_ms,
        targets_ms,
    }
}

/// Indices of frames played from real data (decoded, compressed-after, or FEC), in order.
fn played(run: &Run) -> Vec<u32> {
    run.out
        .iter()
        .filter(|(k, _)| {
            matches!(
                k,
                FrameKind::Normal | FrameKind::Compressed | FrameKind::Fec
            )
        })
        .map(|(_, v)| *v as u32)
        .collect()
}

fn assert_in_order(run: &Run) {
    let p = played(run);
    assert!(
        p.windows(2).all(|w| w[0] < w[1]),
        "playout out of order: {p:?}"
    );
}

#[test]
fn reorders_jittery_packets_without_loss() {
    let net = Net {
        base_delay_ms: 40.0,
        jitter_ms: 60.0,
        loss: 0.0,
        spike: None,
        straggler: None,
    };
    let run = simulate(net, 1000, seed());
    println!("{} packets reordered; {:?}", run.reordered, run.stats);
    assert!(
        run.reordered > 100,
        "the network model should reorder heavily"
    );
    assert_in_order(&run);
    let p = played(&run);
    // With 60 ms of uniform jitter many packets arrive out of order, yet after the buffer has
    // learned the jitter (first 2 s) nothing is late and every packet is played.
    let late_after_warmup = (100..1000).filter(|i| !p.contains(i)).count();
    assert!(
        late_after_warmup <= run.stats.compressed as usize,
        "{late_after_warmup} packets missing from playout after warm-up"
    );
    let target = run.targets_ms[run.targets_ms.len() - 60];
    assert!(
        (60.0..=110.0).contains(&target),
        "target {target} ms for 60 ms jitter"
    );
    // A packet can only miss its slot (and be rebuilt from FEC) while the jitter is being learned.
    for (kind, v) in &run.out {
        assert!(
            *kind != FrameKind::Fec || *v < 100.0,
            "frame {v} missed its slot after warm-up"
        );
    }
}

#[test]
fn ten_percent_loss_is_concealed_or_recovered_by_fec() {
    let net = Net {
        base_delay_ms: 30.0,
        jitter_ms: 10.0,
        loss: 0.10,
        spike: None,
        straggler: None,
    };
    let run = simulate(net, 1500, seed());
    println!("{:?}", run.stats);
    assert_in_order(&run);
    let lost = 1500 - run.delivered.len() as u64;
    assert!(
        (100..=200).contains(&lost),
        "loss model produced {lost} losses"
    );
    // Every lost frame is either rebuilt from FEC or concealed; FEC frames carry exactly the
    // index of a packet the network dropped.
    assert!(
        run.stats.fec_recovered > lost / 2,
        "FEC used for {} of {lost}",
        run.stats.fec_recovered
    );
    assert!(run.stats.fec_recovered + run.stats.concealed >= lost);
    for (kind, v) in &run.out {
        if *kind == FrameKind::Fec {
            assert!(
                !run.delivered.contains(&(*v as u32)),
                "FEC for a packet that arrived: {v}"
            );
        }
    }
    assert_eq!(run.stats.late, 0);
}

#[test]
fn late_packet_is_dropped_not_played_out_of_order() {
    let net = Net {
        base_delay_ms: 30.0,
        jitter_ms: 5.0,
        loss: 0.0,
        spike: None,
        straggler: Some((300, 400.0)),
    };
    let run = simulate(net, 600, seed());
    println!("{:?}", run.stats);
    assert_in_order(&run);
    assert_eq!(run.stats.late, 1, "the straggler is counted late");
    // Its slot was filled from the next packet's FEC (the fake decoder's FEC names the frame it
    // rebuilds), and the late original was not played again afterwards.
    let slot: Vec<FrameKind> = run
        .out
        .iter()
        .filter(|(_, v)| *v == 300.0)
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(slot, vec![FrameKind::Fec]);
}

#[test]
fn jitter_spike_grows_the_delay_then_it_shrinks_back() {
    // Packets 500..515 (300 ms) are held back and then arrive in a burst.
    let net = Net {
        base_delay_ms: 30.0,
        jitter_ms: 5.0,
        loss: 0.0,
        spike: Some((500, 515)),
        straggler: None,
    };
    let run = simulate(net, 1500, seed());
    println!("{:?}", run.stats);
    assert_in_order(&run);
    let before = run.delays_ms[450];
    let peak = run.delays_ms[500..560].iter().copied().fold(0.0, f64::max);
    let after = run.delays_ms[run.delays_ms.len() - 60];
    println!("delay before {before:.0} ms, peak {peak:.0} ms, long after {after:.0} ms");
    assert!(before < 80.0, "steady delay should be small, was {before}");
    assert!(
        peak > 200.0,
        "spike should be absorbed by stretching, peak was {peak}"
    );
    assert!(
        after < 100.0,
        "delay should shrink back after the spike, was {after}"
    );
    assert!(run.stats.stretched > 0 && run.stats.compressed > 0);
    // The burst was delayed, not lost: no packet was late, and the only spiked frames not heard
    // are the ones time compression skipped to shrink the delay again.
    assert_eq!(run.stats.late, 0);
    let p = played(&run);
    let skipped = (500..515).filter(|i| !p.contains(i)).count();
    assert!(
        skipped as u64 <= run.stats.compressed,
        "spiked packets were dropped"
    );
}

#[test]
fn same_seed_same_run() {
    let net = Net {
        base_delay_ms: 50.0,
        jitter_ms: 40.0,
        loss: 0.1,
        spike: Some((200, 210)),
        straggler: Some((400, 300.0)),
    };
    let s = seed();
    let a = simulate(net, 800, s);
    let b = simulate(net, 800, s);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.out, b.out);
    assert_in_order(&a);
}

#[test]
fn dtx_gap_is_not_a_loss() {
    let mut jb = JitterBuffer::new(IndexDecoder, JitterBufferConfig::default());
    // Frames 0..10, then 40 frames of DTX silence (timestamps jump, sequence continues).
    let mut t = 0;
    for (k, i) in (0..10).chain(50..60).enumerate() {
        let packet = RtpAudioPacket {
            seq: k as u16,
            timestamp: i * 960,
            payload: i.to_be_bytes().to_vec(),
        };
        jb.push(
            packet,
            CaptureTime::from_micros(u64::from(i) * 20_000 + 30_000),
        );
        t = t.max(u64::from(i) * 20_000 + 30_000);
    }
    let kinds: Vec<FrameKind> = (0..70)
        .map(|n| jb.pop(CaptureTime::from_micros(60_000 + n * 20_000)).kind)
        .collect();
    assert!(kinds.contains(&FrameKind::Dtx));
    assert_eq!(jb.stats().concealed, 0, "DTX counted as loss: {kinds:?}");
    assert_eq!(jb.stats().fec_recovered, 0);
    assert!(t > 0);
}

#[test]
fn opus_stream_through_buffer_and_mixer_keeps_both_voices() -> TestResult {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mixer: AudioMixer<String, OpusDecoder> = AudioMixer::new(JitterBufferConfig::default());
    let voices = [("alice", 440.0f32), ("bob", 1000.0)];
    let mut streams = Vec::new();
    for (name, hz) in voices {
        mixer.add_participant(name.to_string(), OpusDecoder::new()?);
        let src = SyntheticAudio::new(SyntheticAudioConfig {
            tone_hz: hz,
            beep_amplitude: 0.0,
            ..SyntheticAudioConfig::default()
        })?;
        streams.push((
            name.to_string(),
            src,
            OpusEncoder::new(OpusEncoderConfig::default())?,
        ));
    }
    // 3 s of audio, 10 % loss, 0-30 ms jitter.
    let mut arrivals = Vec::new();
    for i in 0..150u32 {
        for (name, src, enc) in &mut streams {
            let frame = src.render(u64::from(i) * 960, 960, CaptureTime::default());
            let packet = enc.encode(&frame.samples)?;
            if rng.random_bool(0.1) {
                continue;
            }
            let at = u64::from(i) * 20_000 + 20_000 + rng.random_range(0..30_000);
            arrivals.push((at, name.clone(), i, packet.data));
        }
    }
    arrivals.sort();
    let mut next = arrivals.into_iter().peekable();
    let mut mixed = Vec::new();
    let mut now = 5_000;
    while now < 3_400_000 {
        while let Some((at, name, i, data)) = next.next_if(|a| a.0 <= now) {
            let packet = RtpAudioPacket {
                seq: i as u16,
                timestamp: i * 960,
                payload: data,
            };
            mixer.push(&name, packet, CaptureTime::from_micros(at))?;
        }
        mixed.extend(mixer.pull(CaptureTime::from_micros(now)).samples);
        now += 20_000;
    }
    assert!(
        mixer
            .push(
                &"carol".to_string(),
                RtpAudioPacket {
                    seq: 0,
                    timestamp: 0,
                    payload: vec![]
                },
                CaptureTime::default()
            )
            .is_err()
    );
    for (name, _) in voices {
        let stats = mixer
            .buffer(&name.to_string())
            .ok_or("participant missing")?
            .stats();
        println!("{name}: {stats:?}");
        assert!(
            stats.fec_recovered > 0,
            "{name}: no FEC recovery with real Opus"
        );
    }
    let window = &mixed[48_000..48_000 + 48_000];
    let (a, b, none) = (
        goertzel_power(window, 440.0),
        goertzel_power(window, 1000.0),
        goertzel_power(window, 700.0),
    );
    println!("mixed power: 440 Hz {a:.5}, 1000 Hz {b:.5}, 700 Hz {none:.7}");
    assert!(
        a > 50.0 * none && b > 50.0 * none,
        "both voices must be in the mix"
    );
    assert!(mixed.iter().all(|s| s.abs() <= 1.0));
    Ok(())
}

#[test]
fn timestamp_jump_resyncs_instead_of_dropping_everything() {
    let mut jb = JitterBuffer::new(IndexDecoder, JitterBufferConfig::default());
    let mut now = 0u64;
    let mut kinds = Vec::new();
    for i in 0..200u32 {
        // After 100 frames the sender restarts with a new timestamp and sequence base.
        let (seq, ts) = if i < 100 {
            (i as u16, i * 960)
        } else {
            (40_000 + i as u16, 3_000_000_000 + i * 960)
        };
        jb.push(
            RtpAudioPacket {
                seq,
                timestamp: ts,
                payload: i.to_be_bytes().to_vec(),
            },
            CaptureTime::from_micros(now + 10_000),
        );
        kinds.push(jb.pop(CaptureTime::from_micros(now + 30_000)));
        now += 20_000;
    }
    assert_eq!(jb.stats().resyncs, 1);
    let last: Vec<f32> = kinds[150..].iter().map(|f| f.samples[0]).collect();
    assert!(
        last.windows(2).all(|w| w[1] == w[0] + 1.0),
        "playout resumed in order: {last:?}"
    );
}

/// Real Opus that never admits to carrying FEC: the jitter buffer must then conceal (PLC).
struct PlcOnly(OpusDecoder);

impl AudioDecoder for PlcOnly {
    fn decode(&mut self, packet: &[u8]) -> Result<Vec<f32>, OpusError> {
        self.0.decode(packet)
    }
    fn conceal(&mut self) -> Result<Vec<f32>, OpusError> {
        self.0.conceal()
    }
    fn decode_fec(&mut self, next_packet: &[u8]) -> Result<Vec<f32>, OpusError> {
        self.0.decode_fec(next_packet)
    }
    fn has_fec(&self, _packet: &[u8]) -> bool {
        false
    }
}

fn snr_db(reference: &[f32], x: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|s| f64::from(*s).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(x)
        .map(|(r, s)| f64::from(r - s).powi(2))
        .sum();
    10.0 * (signal / noise.max(1e-12)).log10()
}

/// Plays `packets` (20 ms each, each arriving just before the pop 20 ms after it) through a jitter buffer, leaving out
/// `dropped`; returns what each pop played, from the first decoded frame on, and the stats.
fn play_through<D: AudioDecoder>(
    decoder: D,
    packets: &[Vec<u8>],
    dropped: &[usize],
) -> (Vec<PlayoutFrameCopy>, JitterStats) {
    let mut jb = JitterBuffer::new(decoder, JitterBufferConfig::default());
    let mut out = Vec::new();
    for n in 0..packets.len() + 10 {
        let now = n as u64 * 20_000;
        if let Some(p) = packets.get(n)
            && !dropped.contains(&n)
        {
            jb.push(
                RtpAudioPacket {
                    seq: n as u16,
                    timestamp: (n * FRAME_SAMPLES) as u32,
                    payload: p.clone(),
                },
                CaptureTime::from_micros(now),
            );
        }
        let frame = jb.pop(CaptureTime::from_micros(now));
        if frame.kind != FrameKind::Silence {
            out.push((frame.kind, frame.samples));
        }
    }
    (out, *jb.stats())
}

type PlayoutFrameCopy = (FrameKind, Vec<f32>);

#[test]
fn a_lost_opus_packet_is_rebuilt_from_the_next_ones_fec_better_than_plc() -> TestResult {
    let src = SyntheticAudio::new(SyntheticAudioConfig {
        beep_amplitude: 0.0,
        ..SyntheticAudioConfig::default()
    })?;
    let mut enc = OpusEncoder::new(OpusEncoderConfig::default())?;
    let packets: Vec<Vec<u8>> = (0..100u64)
        .map(|i| {
            let f = src.render(i * 960, 960, CaptureTime::default());
            enc.encode(&f.samples).map(|p| p.data)
        })
        .collect::<Result<_, _>>()?;
    // Near a peak of the 4 Hz envelope, like real speech between pauses.
    let lost = 53;
    assert!(opus_packet_has_fec(&packets[lost + 1]));
    let (reference, clean) = play_through(OpusDecoder::new()?, &packets, &[]);
    let (with_fec, fec_stats) = play_through(OpusDecoder::new()?, &packets, &[lost]);
    let (with_plc, plc_stats) = play_through(PlcOnly(OpusDecoder::new()?), &packets, &[lost]);
    println!("clean {clean:?}\nFEC {fec_stats:?}\nPLC {plc_stats:?}");
    assert_eq!(clean.fec_recovered + clean.concealed, 0);
    assert_eq!(
        fec_stats.fec_recovered, 1,
        "the lost packet counts as recovered"
    );
    assert_eq!(fec_stats.concealed, 0);
    assert_eq!((plc_stats.fec_recovered, plc_stats.concealed), (0, 1));
    // The three runs play the same slots; compare the lost one with the clean decode.
    let slot = reference
        .iter()
        .zip(&with_fec)
        .position(|(r, f)| r.0 == FrameKind::Normal && f.0 == FrameKind::Fec)
        .ok_or("no FEC frame played")?;
    assert_eq!(with_plc[slot].0, FrameKind::Concealed);
    let fec_snr = snr_db(&reference[slot].1, &with_fec[slot].1);
    let plc_snr = snr_db(&reference[slot].1, &with_plc[slot].1);
    println!("lost frame vs clean decode: FEC {fec_snr:.1} dB, PLC {plc_snr:.1} dB");
    assert!(
        fec_snr > plc_snr + 6.0,
        "FEC {fec_snr:.1} dB should beat PLC {plc_snr:.1} dB"
    );
    Ok(())
}

#[test]
fn two_lost_in_a_row_conceal_the_first_and_rebuild_the_second() {
    let mut jb = JitterBuffer::new(IndexDecoder, JitterBufferConfig::default());
    let mut kinds = Vec::new();
    for n in 0..40u32 {
        let now = u64::from(n) * 20_000;
        if n != 20 && n != 21 {
            jb.push(
                RtpAudioPacket {
                    seq: n as u16,
                    timestamp: n * 960,
                    payload: n.to_be_bytes().to_vec(),
                },
                CaptureTime::from_micros(now),
            );
        }
        let f = jb.pop(CaptureTime::from_micros(now));
        kinds.push((f.kind, f.samples[0]));
    }
    let at = |v: f32| kinds.iter().find(|(_, s)| *s == v).map(|(k, _)| *k);
    assert_eq!(at(21.0), Some(FrameKind::Fec), "{kinds:?}");
    assert!(kinds.contains(&(FrameKind::Concealed, -1.0)));
    assert_eq!(jb.stats().concealed, 1);
    assert_eq!(jb.stats().fec_recovered, 1);
    assert!(at(22.0) == Some(FrameKind::Normal));
}

/// A 3 s outage (no packets at all, then the stream carries on in real time, as after a cable
/// was pulled): the buffer stretches while it is dry, then must get back to the target delay
/// at once rather than play everything that follows seconds late.
#[test]
fn after_an_outage_playout_catches_up_to_the_target_delay() {
    let mut jb = JitterBuffer::new(IndexDecoder, JitterBufferConfig::default());
    let transit = 10_000u64;
    let mut last_played = Vec::new();
    for i in 0..500u32 {
        let now = u64::from(i) * 20_000;
        // Frames 100..250 are sent into the outage and never arrive.
        if !(100..250).contains(&i) {
            jb.push(
                RtpAudioPacket {
                    seq: i as u16,
                    timestamp: i * 960,
                    payload: i.to_be_bytes().to_vec(),
                },
                CaptureTime::from_micros(now + transit),
            );
        }
        let frame = jb.pop(CaptureTime::from_micros(now + transit + 20_000));
        if i >= 270 {
            last_played.push((i, frame.samples[0]));
        }
    }
    assert!(jb.stats().caught_up >= 1, "{:?}", jb.stats());
    // 400 ms after the path came back, what plays is what was sent at most ~100 ms earlier.
    for (i, played) in last_played {
        assert!(
            played >= (i - 5) as f32,
            "frame {i} played frame {played} (stats {:?})",
            jb.stats()
        );
    }
}
