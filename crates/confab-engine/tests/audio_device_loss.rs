//! Hot-plug and device loss on a real audio server: a private PulseAudio daemon
//! (`confab_test_support::pulse`) where "plugging in" a device loads a null sink and "unplugging" it unloads
//! the sink, which kills the streams on it — exactly what a USB headset being pulled does.
//!
//! Confab's own [`Speaker`] and [`Microphone`] run in this process, so the daemon's address is
//! put into the environment before anything talks to the audio system. That is why this file
//! holds a single test: no other test thread may read the environment meanwhile.
//!
//! PulseAudio (since 15, like PipeWire) moves the streams of a removed device to the default
//! one by itself, so the sound goes on without Confab doing anything; the test checks that
//! first. Where the stream dies with its device instead (ALSA, older servers), Confab must
//! notice and reopen on the default device; the test makes that happen by killing Confab's
//! stream right after the unplug (`pacmd kill-sink-input` / `kill-source-output`). It checks
//! that a plugged device shows up in the device list, that the loss is reported (`Lost`) and
//! recovered from on the default device (`FellBack`) with no help from the caller, and that
//! sound really flows afterwards: a tone played into the fallback speaker is heard on the
//! default sink's monitor, and the microphone that fell back hears a tone played into the
//! default sink.
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
use confab_engine::devices::{DeviceKind, DeviceNotice, DeviceState, DeviceStatus};
use confab_engine::media::{AudioFrame, AudioSource, CaptureTime, synthetic_audio};
use confab_engine::testing::devices::Microphone;
use confab_engine::testing::devices::Speaker;
use confab_test_support::pulse::Pulse;

const TONE_HZ: f64 = 660.0;

/// Collects the notices a device reports.
fn recorder() -> (DeviceStatus, Arc<Mutex<Vec<DeviceNotice>>>) {
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let status: DeviceStatus = Arc::new(move |n: DeviceNotice| {
        println!("notice: {n:?}");
        sink.lock().unwrap().push(n);
    });
    (status, notices)
}

/// 20 ms blocks of a sine at -12 dBFS peak.
struct Tone {
    phase: f64,
}

impl Tone {
    fn block(&mut self) -> Vec<f32> {
        let step = TAU * TONE_HZ / 48_000.0;
        (0..AudioFrame::SAMPLES_20MS)
            .map(|_| {
                self.phase = (self.phase + step) % TAU;
                (self.phase.sin() * 0.25) as f32
            })
            .collect()
    }
}

/// Power of the test tone in a stretch of recording (~0.0156 for the tone at full level).
fn tone_power(samples: &[f32]) -> f64 {
    synthetic_audio::goertzel_power(samples, TONE_HZ as f32)
}

/// Records from `id` on its own thread until `stop`; returns every 10 ms frame.
fn record(
    id: &str,
    status: DeviceStatus,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<AudioFrame>> {
    let id = id.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("test-recorder".into())
        .spawn(move || {
            let mut mic = Microphone::open(Some(&id), status).expect("open the microphone");
            ready_tx.send(()).unwrap();
            let mut frames = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                frames.push(mic.next_frame().expect("a frame"));
            }
            frames
        })
        .unwrap();
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the microphone starts");
    handle
}

/// Plays `block` into `speaker` every 20 ms for `how_long`, or until `until` holds.
fn play_for(
    speaker: &mut Speaker,
    how_long: Duration,
    mut block: impl FnMut() -> Vec<f32>,
    until: impl Fn() -> bool,
) -> Duration {
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < how_long && !until() {
        speaker.play(&block());
        next += Duration::from_millis(20);
        // Real-time pacing, on purpose: a speaker is fed 20 ms of audio every 20 ms.
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    start.elapsed()
}

/// The index of the one stream `pactl list short …` lists.
fn only_index(listing: &str) -> String {
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stream: {listing}");
    lines[0]
        .split_whitespace()
        .next()
        .expect("an index")
        .to_string()
}

/// Whether a device of `kind` reported switching to the default one.
fn has_fallen_back(notices: &Mutex<Vec<DeviceNotice>>, kind: DeviceKind) -> bool {
    states(notices, kind)
        .iter()
        .any(|(s, _)| *s == DeviceState::FellBack)
}

fn states(notices: &Mutex<Vec<DeviceNotice>>, kind: DeviceKind) -> Vec<(DeviceState, String)> {
    notices
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.kind == kind)
        .map(|n| (n.state, n.device.clone()))
        .collect()
}

#[test]
fn unplugged_devices_fall_back_to_the_default_and_plugged_ones_are_listed() {
    let Some(pulse) = Pulse::start() else { return };
    for (key, value) in pulse.env() {
        // SAFETY: the only test in this binary, run before anything else reads the environment
        // or starts a thread of its own.
        unsafe { std::env::set_var(key, value) };
    }

    // Hot-plug: a new device is listed by the next enumeration (the watcher polls it).
    let before = confab_engine::devices::enumerate();
    assert!(
        !before.speakers.iter().any(|d| d.name == "USB-Headset"),
        "{before:?}"
    );
    let headset = pulse.plug_sink("confab_usb", "USB-Headset");
    let after = confab_engine::devices::enumerate();
    println!("after plugging: {after:?}");
    let usb_speaker = after
        .speakers
        .iter()
        .find(|d| d.id.ends_with("confab_usb"))
        .expect("the plugged speaker is listed");
    assert!(
        after
            .microphones
            .iter()
            .any(|d| d.id.ends_with("confab_usb.monitor")),
        "the plugged device's microphone is listed"
    );
    assert!(!usb_speaker.is_default);

    // Speaker loss: play a tone into the headset while recording the default sink's monitor.
    let (speaker_status, speaker_notices) = recorder();
    let mut speaker = Speaker::open(Some(&usb_speaker.id), speaker_status).unwrap();
    assert_eq!(speaker.device_name(), Some("USB-Headset"));
    let (mic_status, mic_notices) = recorder();
    let stop = Arc::new(AtomicBool::new(false));
    let default_monitor = record(
        "pulseaudio:confab_test.monitor",
        mic_status,
        Arc::clone(&stop),
    );
    let mut tone = Tone { phase: 0.0 };
    play_for(
        &mut speaker,
        Duration::from_secs(1),
        || tone.block(),
        || false,
    );
    let unplugged_at = CaptureTime::now();
    pulse.unplug(&headset);
    // The server moved the stream to the default sink: the tone is heard there at once.
    play_for(
        &mut speaker,
        Duration::from_secs(1),
        || tone.block(),
        || false,
    );
    let moved_until = CaptureTime::now();
    // Now the stream dies, as it would where the server does not rescue it.
    let stream = only_index(&pulse.pactl(&["list", "short", "sink-inputs"]));
    pulse.pacmd(&["kill-sink-input", &stream]);
    let fell_back = || has_fallen_back(&speaker_notices, DeviceKind::Speaker);
    let took = play_for(
        &mut speaker,
        Duration::from_secs(10),
        || tone.block(),
        fell_back,
    );
    println!("speaker fell back {took:?} after the unplug");
    // The tone now goes to the default sink: let a second of it through.
    play_for(
        &mut speaker,
        Duration::from_secs(1),
        || tone.block(),
        || false,
    );
    stop.store(true, Ordering::Relaxed);
    let frames = default_monitor.join().unwrap();
    drop(speaker);

    let speaker_states = states(&speaker_notices, DeviceKind::Speaker);
    assert_eq!(
        speaker_states,
        vec![
            (DeviceState::Lost, "USB-Headset".to_string()),
            (DeviceState::FellBack, "Null Output".to_string()),
        ]
    );
    assert!(
        mic_notices.lock().unwrap().is_empty(),
        "the default microphone was not disturbed"
    );
    // Before the unplug the default sink was silent; after the fallback it carries the tone.
    let split = frames
        .iter()
        .position(|f| f.capture_time >= unplugged_at)
        .expect("recorded past the unplug");
    let samples = |fs: &[AudioFrame]| -> Vec<f32> {
        fs.iter().flat_map(|f| f.samples.iter().copied()).collect()
    };
    let before = tone_power(&samples(&frames[..split]));
    let moved: Vec<AudioFrame> = frames
        .iter()
        .filter(|f| {
            f.capture_time >= unplugged_at.plus(Duration::from_millis(300))
                && f.capture_time < moved_until
        })
        .cloned()
        .collect();
    let moved = tone_power(&samples(&moved));
    let last_second = samples(&frames[frames.len().saturating_sub(50)..]);
    let after = tone_power(&last_second);
    println!(
        "tone power on the default sink: before {before:.2e}, moved by the server {moved:.2e}, \
         after the fallback {after:.2e}"
    );
    assert!(before < 1e-6, "the headset's tone leaked: {before}");
    assert!(moved > 1e-3, "the server did not move the stream: {moved}");
    assert!(after > 1e-3, "the fallback speaker is silent: {after}");

    // Microphone loss: record the headset's monitor, unplug it, keep reading.
    let headset = pulse.plug_sink("confab_usb", "USB-Headset");
    let (mic_status, mic_notices) = recorder();
    let stop = Arc::new(AtomicBool::new(false));
    let headset_mic = record(
        "pulseaudio:confab_usb.monitor",
        mic_status,
        Arc::clone(&stop),
    );
    let (speaker_status, _) = recorder();
    let mut speaker = Speaker::open(None, speaker_status).unwrap();
    let silence = || vec![0.0f32; AudioFrame::SAMPLES_20MS];
    play_for(&mut speaker, Duration::from_millis(500), silence, || false);
    pulse.unplug(&headset);
    let stream = only_index(&pulse.pactl(&["list", "short", "source-outputs"]));
    let unplugged = Instant::now();
    let unplugged_at = CaptureTime::now();
    pulse.pacmd(&["kill-source-output", &stream]);
    let mic_fell_back = || has_fallen_back(&mic_notices, DeviceKind::Microphone);
    let took = play_for(
        &mut speaker,
        Duration::from_secs(10),
        silence,
        mic_fell_back,
    );
    println!("microphone fell back {took:?} after the unplug");
    let fell_back_at = Instant::now();
    let fell_back_capture = CaptureTime::now();
    // The fallback microphone is the default sink's monitor: it hears what the speaker plays.
    let mut tone = Tone { phase: 0.0 };
    play_for(
        &mut speaker,
        Duration::from_secs(1),
        || tone.block(),
        || false,
    );
    stop.store(true, Ordering::Relaxed);
    let frames = headset_mic.join().unwrap();

    let mic_states = states(&mic_notices, DeviceKind::Microphone);
    assert_eq!(
        mic_states.first(),
        Some(&(DeviceState::Lost, "Monitor of USB-Headset".to_string()))
    );
    assert_eq!(
        mic_states.last(),
        Some(&(DeviceState::FellBack, "Monitor of Null Output".to_string()))
    );
    // The capture thread kept delivering frames through the loss (silence while no device
    // worked), so the call's audio clock never stopped.
    let during: Vec<&AudioFrame> = frames
        .iter()
        .filter(|f| f.capture_time >= unplugged_at && f.capture_time < fell_back_capture)
        .collect();
    let gap = fell_back_at - unplugged;
    let delivered = during.len() as f64 * 0.010;
    println!(
        "{delivered:.2} s of audio delivered in the {:.2} s without a device",
        gap.as_secs_f64()
    );
    assert!(
        delivered > gap.as_secs_f64() * 0.8,
        "capture stalled during the loss"
    );
    let last_half_second = samples(&frames[frames.len().saturating_sub(50)..]);
    let heard = tone_power(&last_half_second);
    assert!(
        heard > 1e-3,
        "the fallback microphone hears nothing: {heard}"
    );
}
