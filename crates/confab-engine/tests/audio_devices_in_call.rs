//! Real audio devices inside a real call: two engines in this process joined through a real
//! signaling server, one of them ("ben") on a private PulseAudio daemon (`confab_test_support::pulse`) with
//! three null sinks: the default one (`confab_test`), a "USB headset" and a "microphone" sink
//! whose monitor is ben's microphone.
//!
//! - Ben plays ann's audio on the headset; mid-call he switches to the default speaker
//!   (`SelectSpeaker`). Ann's tone is measured on each sink's monitor before and after: it
//!   moves, at once, and nothing is renegotiated (the link stays connected and ann's video keeps
//!   arriving).
//! - The test plays a speech-like tone into the microphone sink; ben's microphone path (with
//!   echo cancellation, noise suppression and gain control on) sends it, and ann's playout has
//!   it.
//!
//! The daemon's address goes into this process's environment before anything touches audio, so
//! this file holds a single test.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
#![allow(
    unsafe_code,
    reason = "set_var before any other thread reads the environment (one test per binary)"
)]

use std::f64::consts::TAU;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_engine::api::AudioSink;
use confab_engine::media::{AudioFrame, AudioSource, CaptureTime, synthetic_audio};
use confab_engine::observer::CallObserver;
use confab_engine::testing::devices::Microphone;
use confab_engine::testing::devices::Speaker;
use confab_engine::testing::{
    PlayoutCounter, WAIT_GUARD, small_engine_config, start_engine, wait_all_until,
};
use confab_engine::{AudioInput, AudioOutput, EngineCommand, LinkState, MediaProbe, VideoInput};
use confab_test_support::pulse::Pulse;
use confab_test_support::signaling::start_server_runtime;

/// Ann's synthetic tone (the default synthetic source).
const ANN_HZ: f32 = 440.0;
/// What the test "says" into ben's microphone.
const BEN_HZ: f64 = 660.0;

/// Ann's playout, as handed to her (null) speaker.
#[derive(Default)]
struct Played(Mutex<Vec<(CaptureTime, Vec<f32>)>>);

impl MediaProbe for Played {
    fn audio_played(&self, samples: &[f32], at: CaptureTime, _decoded: bool) {
        self.0.lock().unwrap().push((at, samples.to_vec()));
    }
}

/// Records the monitor of `sink` for `how_long` with Confab's own microphone path.
fn record_monitor(sink: &str, how_long: Duration) -> Vec<f32> {
    let id = format!("pulseaudio:{sink}.monitor");
    std::thread::Builder::new()
        .name("test-monitor".into())
        .spawn(move || {
            let mut mic = Microphone::open(Some(&id), Arc::new(|_| {})).unwrap();
            let start = Instant::now();
            let mut samples = Vec::new();
            while start.elapsed() < how_long {
                samples.extend(mic.next_frame().unwrap().samples);
            }
            samples
        })
        .unwrap()
        .join()
        .unwrap()
}

fn db(power: f64) -> f64 {
    10.0 * power.max(1e-12).log10()
}

#[test]
fn speaker_switches_mid_call_and_the_microphone_is_heard() {
    let Some(pulse) = Pulse::start() else { return };
    for (key, value) in pulse.env() {
        // SAFETY: the only test in this binary, run before anything else reads the environment
        // or starts a thread of its own.
        unsafe { std::env::set_var(key, value) };
    }
    for (name, description) in [("confab_usb", "USB-Headset"), ("confab_mic", "Mic-Room")] {
        pulse.plug_sink(name, description);
    }

    // Ben's "voice": a 660 Hz tone with a 4 Hz syllable envelope, played into the microphone
    // sink for the whole call.
    let talking = Arc::new(AtomicBool::new(true));
    let voice = {
        let talking = Arc::clone(&talking);
        std::thread::spawn(move || {
            let mut speaker = Speaker::open(Some("pulseaudio:confab_mic"), Arc::new(|_| {}))
                .expect("open the microphone sink");
            let mut n = 0u64;
            let mut next = Instant::now();
            while talking.load(Ordering::Relaxed) {
                let block: Vec<f32> = (0..AudioFrame::SAMPLES_20MS)
                    .map(|_| {
                        let t = n as f64 / 48_000.0;
                        n += 1;
                        let envelope = 0.55 + 0.45 * (TAU * 4.0 * t).sin();
                        (0.3 * envelope * (TAU * BEN_HZ * t).sin()) as f32
                    })
                    .collect();
                speaker.play(&block);
                next += Duration::from_millis(20);
                // Real-time pacing, on purpose: the "voice" is played at its own speed.
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };

    let (rt, server) = start_server_runtime();
    let played = Arc::new(Played::default());
    let mut ann_config = small_engine_config("ann");
    ann_config.probe = Some(Arc::clone(&played) as Arc<dyn MediaProbe>);
    let mut ann = CallObserver::new("ann", start_engine(ann_config));
    let ben_played = Arc::new(PlayoutCounter::default());
    let mut ben_config = small_engine_config("ben");
    ben_config.audio_input = AudioInput::Microphone("pulseaudio:confab_mic.monitor".into());
    ben_config.video_input = VideoInput::Synthetic;
    ben_config.probe = Some(Arc::clone(&ben_played) as Arc<dyn MediaProbe>);
    let mut ben = CallObserver::new("ben", start_engine(ben_config));
    ben.send(EngineCommand::SelectSpeaker(AudioOutput::Speaker(
        "pulseaudio:confab_usb".into(),
    )))
    .unwrap();
    for e in [&ann, &ben] {
        e.send(EngineCommand::Join {
            url: server.ws_url(),
            room: "devices".into(),
            password: None,
        })
        .unwrap();
    }
    let frames_from_ann =
        |ben: &CallObserver| -> u64 { ben.view.participants.values().map(|p| p.frames).sum() };
    wait_all_until(&mut [&mut ann, &mut ben], "ben decodes ann's video", |m| {
        frames_from_ann(m[1]) > 0
    });
    // Audio has settled (jitter buffer filled, the headset stream started) once ben's playout
    // has played half a second of ann's decoded audio.
    assert!(
        ben_played.wait_for(ben_played.samples(), Duration::from_millis(500), WAIT_GUARD),
        "ben's playout never played ann's audio"
    );
    let notices = |ben: &CallObserver| -> Vec<String> {
        ben.view
            .device_notices
            .iter()
            .map(|n| n.message.clone())
            .collect()
    };
    ben.drain();
    let ben_notices = notices(&ben);

    let on_headset = synthetic_audio::goertzel_power(
        &record_monitor("confab_usb", Duration::from_secs(2)),
        ANN_HZ,
    );
    let on_default = synthetic_audio::goertzel_power(
        &record_monitor("confab_test", Duration::from_secs(2)),
        ANN_HZ,
    );
    println!(
        "before the switch: ann's tone on the headset {:.1} dB, on the default speaker {:.1} dB; \
         ben's notices: {ben_notices:?}",
        db(on_headset),
        db(on_default)
    );
    assert!(on_headset > 1e-4, "ann is not heard on the headset");
    assert!(on_default < 1e-8, "ann leaks to the default speaker");

    ben.drain();
    let frames_before_switch = frames_from_ann(&ben);
    let switched_at = Instant::now();
    let played_before_switch = ben_played.samples();
    ben.send(EngineCommand::SelectSpeaker(AudioOutput::Speaker(
        "pulseaudio:confab_test".into(),
    )))
    .unwrap();
    // The playout thread takes the switch before its next 20 ms period; half a second of ann's
    // audio played after the command has gone to the new speaker.
    assert!(
        ben_played.wait_for(played_before_switch, Duration::from_millis(500), WAIT_GUARD),
        "ben's playout stopped after the switch"
    );
    let on_default = synthetic_audio::goertzel_power(
        &record_monitor("confab_test", Duration::from_secs(2)),
        ANN_HZ,
    );
    let on_headset = synthetic_audio::goertzel_power(
        &record_monitor("confab_usb", Duration::from_secs(2)),
        ANN_HZ,
    );
    println!(
        "after the switch: ann's tone on the default speaker {:.1} dB, on the headset {:.1} dB",
        db(on_default),
        db(on_headset)
    );
    assert!(on_default > 1e-4, "ann is not heard on the new speaker");
    assert!(on_headset < 1e-8, "ann still plays on the old speaker");
    // No renegotiation: the link never left "connected", and ann's video still arrives.
    ben.drain();
    ann.drain();
    let frames_after = frames_from_ann(&ben) - frames_before_switch;
    let ben_notices = notices(&ben);
    let links_after_switch: Vec<LinkState> = ben
        .view
        .participants
        .values()
        .flat_map(|p| &p.link_history)
        .filter(|(at, _)| *at >= switched_at)
        .map(|(_, state)| *state)
        .collect();
    println!(
        "{frames_after} frames from ann in the {:.1} s after the switch; ben's notices: {ben_notices:?}",
        switched_at.elapsed().as_secs_f64()
    );
    assert!(frames_after > 0, "ann's video stopped");
    assert!(
        links_after_switch
            .iter()
            .all(|s| *s == LinkState::Connected),
        "{links_after_switch:?}"
    );
    assert!(
        ben_notices.iter().all(|m| !m.contains("stopped working")),
        "{ben_notices:?}"
    );

    // Ben's microphone reached ann: her playout in the last two seconds carries his tone.
    let recent: Vec<f32> = {
        let since = CaptureTime::now().plus(Duration::ZERO);
        let played = played.0.lock().unwrap();
        played
            .iter()
            .filter(|(at, _)| since.saturating_since(*at) < Duration::from_secs(2))
            .flat_map(|(_, s)| s.iter().copied())
            .collect()
    };
    let ben_heard = synthetic_audio::goertzel_power(&recent, BEN_HZ as f32);
    println!(
        "ben's voice in ann's playout: {:.1} dB over {:.2} s",
        db(ben_heard),
        recent.len() as f64 / 48_000.0
    );
    assert!(recent.len() > 48_000, "ann played too little");
    assert!(ben_heard > 1e-4, "ann does not hear ben's microphone");

    talking.store(false, Ordering::Relaxed);
    voice.join().unwrap();
    drop((ann, ben));
    rt.block_on(server.shutdown(Duration::from_secs(1)));
}
