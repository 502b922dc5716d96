#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
//! Capture-path audio processing on synthetic signals: echo cancellation through a simulated echo
//! path (ERLE at 50/100/150 ms, and with the microphone delivered late, in bursts, or not at all),
//! double-talk, noise suppression (tone SNR), gain control, bypass and toggling, and the
//! processor's algorithmic delay. Every figure is printed; asserts use
//! floors with margin below what was measured. Signals come from seeded generators (seed printed;
//! replay with `CONFAB_TEST_SEED`). Nothing here measures wall-clock time.

use std::sync::mpsc;

use confab_engine::media::audio_processing::{
    AudioProcessingError, AudioProcessor, PROCESSING_FRAME_SAMPLES, ProcessingSettings,
};
use confab_test_support::audio::{
    EchoPath, RATE, Voice, best_lag, level_dbfs, lsq_gain, mix, ms, power, ratio_db, seed,
    speech_like, tone, tone_snr_db, white_noise,
};

const FAR_VOICE: Voice = Voice {
    f0_hz: 115.0,
    level_dbfs: -20.0,
};
const NEAR_VOICE: Voice = Voice {
    f0_hz: 205.0,
    level_dbfs: -20.0,
};
/// Microphone self-noise.
const NOISE_DBFS: f64 = -80.0;
/// Frames before this are convergence time, left out of every figure.
const CONVERGED_AFTER: usize = 3 * RATE;

const AEC_ONLY: ProcessingSettings = ProcessingSettings {
    echo_cancellation: true,
    noise_suppression: false,
    auto_gain: false,
};
const AEC_NS: ProcessingSettings = ProcessingSettings {
    echo_cancellation: true,
    noise_suppression: true,
    auto_gain: false,
};
const NS_ONLY: ProcessingSettings = ProcessingSettings {
    echo_cancellation: false,
    noise_suppression: true,
    auto_gain: false,
};
const AGC_ONLY: ProcessingSettings = ProcessingSettings {
    echo_cancellation: false,
    noise_suppression: false,
    auto_gain: true,
};

/// Runs `far` (render) and `capture` through a processor in lockstep, `frame` samples at a time:
/// each render frame is analysed before the capture frame of the same time.
fn run(processor: &mut AudioProcessor, far: &[f32], capture: &[f32], frame: usize) -> Vec<f32> {
    let mut out = capture.to_vec();
    for (i, chunk) in out.chunks_exact_mut(frame).enumerate() {
        processor
            .process_render(&far[i * frame..(i + 1) * frame])
            .unwrap();
        processor.process_capture(chunk).unwrap();
    }
    out
}

/// What a microphone hears while `far` plays through `path` and nobody speaks locally.
fn echo_capture(far: &[f32], path: EchoPath, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let echo = path.apply(far);
    let noise = white_noise(far.len(), NOISE_DBFS, seed ^ 0x5EED);
    (echo.clone(), mix(&[&echo, &noise]))
}

/// ERLE = 10 log10(P_echo / P_out) after convergence, dB.
fn erle_db(echo: &[f32], out: &[f32]) -> f64 {
    ratio_db(
        power(&echo[CONVERGED_AFTER..]),
        power(&out[CONVERGED_AFTER..]),
    )
}

fn path(delay_ms: usize) -> EchoPath {
    EchoPath {
        delay_ms,
        // ERL 10 dB: a laptop speaker near its microphone.
        gain: 0.316,
        cutoff_hz: 3_500.0,
        reflections: &[],
    }
}

/// A small room: the direct path plus reflections decaying over 120 ms.
const ROOM: &[(usize, f32)] = &[
    (4, 0.6),
    (9, -0.45),
    (17, 0.35),
    (26, -0.25),
    (38, 0.18),
    (55, -0.12),
    (80, 0.08),
    (120, -0.05),
];

#[test]
fn echo_is_cancelled_at_50_100_150_ms() {
    let seed = seed("echo", 0xEC40);
    let far = speech_like(15 * RATE, FAR_VOICE, seed);
    println!(
        "far end {:.1} dBFS overall (speech {:.0} dBFS when voiced)",
        level_dbfs(&far),
        FAR_VOICE.level_dbfs
    );
    for delay_ms in [50, 100, 150] {
        let (echo, capture) = echo_capture(&far, path(delay_ms), seed + delay_ms as u64);
        let mut figures = Vec::new();
        for (name, settings, frame) in [
            ("AEC", AEC_ONLY, 480),
            ("AEC+NS", AEC_NS, 960),
            ("AEC+NS+AGC", ProcessingSettings::default(), 480),
        ] {
            let mut p = AudioProcessor::new(settings);
            let out = run(&mut p, &far, &capture, frame);
            let erle = erle_db(&echo, &out);
            let stats = p.stats();
            println!(
                "delay {delay_ms:>3} ms, {name:<10}: ERLE {erle:5.1} dB \
                 (echo in {:.1} dBFS, out {:.1} dBFS; sonora ERLE {:?} dB, delay estimate {:?} ms)",
                level_dbfs(&echo[CONVERGED_AFTER..]),
                level_dbfs(&out[CONVERGED_AFTER..]),
                stats.erle_db.map(|e| (e * 10.0).round() / 10.0),
                stats.aec_delay_ms,
            );
            figures.push((name, erle));
        }
        for (name, erle) in figures {
            // Measured 41.9..44.2 (AEC), 57.6..60.3 (AEC+NS), 42.6..45.3 dB (all, the AGC's
            // gain included) over seeds 1, 2, 3 and the default; the target is 20 dB.
            let floor = match name {
                "AEC" => 30.0,
                "AEC+NS" => 40.0,
                _ => 30.0,
            };
            assert!(
                erle >= floor,
                "{name} ERLE {erle:.1} dB < {floor} dB at {delay_ms} ms"
            );
        }
    }
}

#[test]
fn echo_is_cancelled_in_a_reverberant_room() {
    let seed = seed("room echo", 0xEC42);
    let far = speech_like(15 * RATE, FAR_VOICE, seed);
    let room = EchoPath {
        reflections: ROOM,
        ..path(100)
    };
    let (echo, capture) = echo_capture(&far, room, seed);
    for (name, settings) in [("AEC", AEC_ONLY), ("AEC+NS", AEC_NS)] {
        let mut p = AudioProcessor::new(settings);
        let out = run(&mut p, &far, &capture, 480);
        let erle = erle_db(&echo, &out);
        println!(
            "room (100 ms + reflections to 120 ms), {name:<6}: ERLE {erle:.1} dB (sonora ERLE \
             {:?} dB)",
            p.stats().erle_db.map(|e| (e * 10.0).round() / 10.0)
        );
        // Measured 43.2..43.6 (AEC) and 59.8..60.7 dB (AEC+NS) over seeds 3, 4 and the default.
        assert!(erle >= 30.0, "{name} ERLE {erle:.1} dB in the room");
    }
}

#[test]
fn render_fed_from_another_thread_cancels_echo() {
    let seed = seed("echo via RenderFeed", 0xEC41);
    let far = speech_like(10 * RATE, FAR_VOICE, seed);
    let (echo, capture) = echo_capture(&far, path(100), seed);
    let mut p = AudioProcessor::new(AEC_NS);
    let feed = p.render_feed();
    // The playout thread pushes 20 ms mixes. Two rendezvous channels keep the threads in
    // lockstep (push frame i, then process capture frame i) so the run is deterministic.
    let (go_tx, go_rx) = mpsc::sync_channel::<()>(0);
    let (pushed_tx, pushed_rx) = mpsc::sync_channel::<()>(0);
    let playout = std::thread::Builder::new()
        .name("test-playout".into())
        .spawn(move || {
            for chunk in far.chunks_exact(960) {
                if go_rx.recv().is_err() {
                    break;
                }
                feed.push(chunk).unwrap();
                pushed_tx.send(()).unwrap();
            }
        })
        .unwrap();
    let mut out = capture;
    for chunk in out.chunks_exact_mut(960) {
        go_tx.send(()).unwrap();
        pushed_rx.recv().unwrap();
        p.process_capture(chunk).unwrap();
    }
    drop(go_tx);
    playout.join().unwrap();
    let erle = erle_db(&echo, &out);
    println!(
        "RenderFeed from a playout thread, 100 ms, AEC+NS: ERLE {erle:.1} dB, dropped {}",
        p.stats().render_frames_dropped
    );
    assert_eq!(p.stats().render_frames_dropped, 0);
    // Measured 56.8..60.6 dB over seeds 1..4 and the default.
    assert!(erle >= 40.0, "ERLE {erle:.1} dB");
}

/// One call on a simulated clock, as the engine's threads make it: the playout thread pushes
/// each 20 ms mix `push_ahead_ms` before it starts playing, and the capture thread processes each
/// 10 ms microphone frame when the audio system delivers it, `latency_ms(frame)` after it was
/// captured (frames are never delivered out of order), unless `lost(frame)`: the audio system
/// dropped it. Returns the processed capture; lost frames are left as they were.
fn run_on_a_clock(
    processor: &mut AudioProcessor,
    far: &[f32],
    capture: &[f32],
    push_ahead_ms: usize,
    latency_ms: impl Fn(usize) -> usize,
    lost: impl Fn(usize) -> bool,
) -> Vec<f32> {
    let feed = processor.render_feed();
    let mut out = capture.to_vec();
    let mut pushed = 0;
    let mut delivered_at = 0;
    for (j, chunk) in out.chunks_exact_mut(PROCESSING_FRAME_SAMPLES).enumerate() {
        if lost(j) {
            continue;
        }
        // Captured over [10 j, 10 j + 10) ms, delivered `latency` later.
        delivered_at = ((j + 1) * 10 + latency_ms(j)).max(delivered_at);
        // Everything the playout thread pushed by then, in 20 ms mixes.
        while pushed + 960 <= far.len()
            && (pushed / 48).saturating_sub(push_ahead_ms) <= delivered_at
        {
            feed.push(&far[pushed..pushed + 960]).unwrap();
            pushed += 960;
        }
        processor.process_capture(chunk).unwrap();
    }
    out
}

#[test]
fn echo_stays_cancelled_when_the_audio_system_drops_microphone_audio() {
    let seed = seed("lost capture", 0x1057);
    let far = speech_like(14 * RATE, FAR_VOICE, seed);
    let (echo, capture) = echo_capture(&far, path(30), seed);
    // As PulseAudio did under load (its record buffer holds 10 ms): 300 ms of microphone audio
    // lost at 4 s, 7 s and 10 s. Each time the echo then comes 300 ms earlier relative to the
    // render, more than the 75 ms it lagged by.
    const LOSSES: [usize; 3] = [400, 700, 1000];
    let lost = |frame: usize| LOSSES.iter().any(|&at| (at..at + 30).contains(&frame));
    let mut p = AudioProcessor::new(AEC_NS);
    let out = run_on_a_clock(&mut p, &far, &capture, 40, |_| 5, lost);
    // Until the render lost with it is noticed (as many frames as were lost) the echo passes;
    // leave that and the following 500 ms out, and what was never delivered.
    let recovered = |n: usize| {
        let frame = n / PROCESSING_FRAME_SAMPLES;
        !LOSSES
            .iter()
            .any(|&at| (at..at + 30 + 30 + 50).contains(&frame))
    };
    let part = |x: &[f32]| -> Vec<f32> {
        (CONVERGED_AFTER..x.len())
            .filter(|&n| recovered(n))
            .map(|n| x[n])
            .collect()
    };
    let erle = ratio_db(power(&part(&echo)), power(&part(&out)));
    println!(
        "300 ms of capture lost three times, AEC+NS: ERLE {erle:.1} dB from 500 ms after each \
         loss was noticed (render frames dropped {})",
        p.stats().render_frames_dropped
    );
    // Measured 20.8..30.1 dB over seeds 1, 2, 3 and the default; 5.2..8.8 dB when every queued
    // render frame was drained before each capture frame (AEC3 then took the excess render for
    // a buffering fault after up to a second, and had to find the delay again).
    assert!(erle >= 15.0, "ERLE {erle:.1} dB");
}

#[test]
fn when_the_microphone_is_delivered_does_not_change_what_the_echo_canceller_does() {
    let seed = seed("bursty capture", 0xB0257);
    let far = speech_like(12 * RATE, FAR_VOICE, seed);
    let (echo, capture) = echo_capture(&far, path(30), seed);
    // The audio system delivers each microphone frame 5 ms after it was captured; or 5 ms and
    // then for 1.5 s 45 ms after (a server buffering more after a hiccup), by turns: each change
    // is a gap and then a burst of frames, and meanwhile the playout thread's mixes (pushed 40 ms
    // before they play) run 40 ms further ahead of the capture being processed. (A backlog
    // beyond RESYNC_BACKLOG_FRAMES would be taken for lost capture and discarded.)
    let steady = |_: usize| 5_usize;
    let bursty = |frame: usize| {
        if (frame / 150).is_multiple_of(2) {
            5_usize
        } else {
            45
        }
    };
    let mut outputs = Vec::new();
    for (name, latency) in [
        ("steady", &steady as &dyn Fn(usize) -> usize),
        ("bursty", &bursty),
    ] {
        let mut p = AudioProcessor::new(AEC_NS);
        let out = run_on_a_clock(&mut p, &far, &capture, 40, latency, |_| false);
        let erle = erle_db(&echo, &out);
        println!(
            "{name} delivery: ERLE {erle:.1} dB (sonora delay estimate {:?} ms, render frames \
             dropped {})",
            p.stats().aec_delay_ms,
            p.stats().render_frames_dropped
        );
        // Measured 57.3..60.6 dB (both the same) over seeds 1, 2, 3 and the default. Draining
        // every queued render frame before each capture frame instead gave 59.0 dB steady and
        // 59.5 dB bursty, from different outputs (and 36.4 dB bursty with an 80 ms step).
        assert!(erle >= 40.0, "{name} delivery: ERLE {erle:.1} dB");
        outputs.push(out);
    }
    // Render is consumed in step with capture, so AEC3 saw the same sequence of calls both times.
    assert!(
        outputs[0] == outputs[1],
        "the echo canceller's output depends on when the microphone was delivered"
    );
}

#[test]
fn near_end_speech_survives_double_talk() {
    let seed = seed("double talk", 0xD7A1);
    let len = 14 * RATE;
    let far = speech_like(len, FAR_VOICE, seed);
    let near_full = speech_like(len, NEAR_VOICE, seed + 1);
    // The near end talks from 6 s to 11 s only, while the far end keeps talking.
    let talk = 6 * RATE..11 * RATE;
    let near: Vec<f32> = near_full
        .iter()
        .enumerate()
        .map(|(n, &s)| if talk.contains(&n) { s } else { 0.0 })
        .collect();
    let (echo, noise_and_echo) = echo_capture(&far, path(100), seed);
    let noise = white_noise(len, NOISE_DBFS, seed ^ 0x5EED);
    let capture = mix(&[&noise_and_echo, &near]);
    let near_alone = mix(&[&noise, &near]);
    let silence = vec![0.0; len];
    println!(
        "near end {:.1} dBFS, echo {:.1} dBFS during double talk",
        level_dbfs(&near[talk.clone()]),
        level_dbfs(&echo[talk.clone()])
    );
    for (name, settings) in [("AEC", AEC_ONLY), ("AEC+NS", AEC_NS)] {
        let out = run(&mut AudioProcessor::new(settings), &far, &capture, 480);
        // The reference: the same processor on the near end alone, with a silent far end. The
        // band-splitting and high-pass filters shift the phase of low frequencies, so the output
        // is compared with this rather than with the raw near-end signal.
        let reference = run(
            &mut AudioProcessor::new(settings),
            &silence,
            &near_alone,
            480,
        );
        let gain = lsq_gain(&reference, &out, 0, talk.clone());
        let attenuation = -20.0 * gain.abs().max(1e-9).log10();
        let residual: Vec<f32> = out[talk.clone()]
            .iter()
            .zip(&reference[talk.clone()])
            .map(|(&o, &r)| o - (gain as f32) * r)
            .collect();
        let near_to_rest = ratio_db(
            power(&reference[talk.clone()]) * gain * gain,
            power(&residual),
        );
        let level_change = ratio_db(power(&out[talk.clone()]), power(&reference[talk.clone()]));
        // Single-talk echo after the near end stops: the canceller must not have diverged.
        let after = 11 * RATE + RATE / 2..len;
        let erle_after = ratio_db(power(&echo[after.clone()]), power(&out[after]));
        println!(
            "double talk, {name:<6}: near-end attenuation {attenuation:.1} dB (least-squares gain \
             {gain:.3} against the near end processed alone; output level {level_change:+.1} dB), \
             near end {near_to_rest:.1} dB above residual echo + distortion; ERLE after double \
             talk {erle_after:.1} dB"
        );
        // Measured 0.8..1.7 dB attenuation and 7.8..11.4 dB near end above the rest over seeds
        // 1..4 and the default.
        assert!(
            attenuation < 6.0,
            "{name}: near end attenuated by {attenuation:.1} dB"
        );
        assert!(
            near_to_rest > 5.0,
            "{name}: near end only {near_to_rest:.1} dB above echo + distortion"
        );
        assert!(
            erle_after > 30.0,
            "{name}: ERLE {erle_after:.1} dB after double talk"
        );
    }
}

#[test]
fn noise_suppression_improves_tone_snr() {
    let seed = seed("noise suppression", 0x0A15E);
    let len = 10 * RATE;
    // A steady tone is stationary, so the suppressor (built for speech) learns it as noise and
    // removes it; switched on and off like speech it is kept. The tone runs 400 ms on, 400 ms off.
    let on = |n: usize| (n / ms(400)).is_multiple_of(2);
    let steady = tone(len, 1_000.0, -20.0);
    let gated: Vec<f32> = steady
        .iter()
        .enumerate()
        .map(|(n, &s)| if on(n) { s } else { 0.0 })
        .collect();
    let noise = white_noise(len, -30.0, seed);
    let silence = vec![0.0; len];
    let analysed = CONVERGED_AFTER..len;

    let input = mix(&[&gated, &noise]);
    let out = run(&mut AudioProcessor::new(NS_ONLY), &silence, &input, 480);
    // The suppressor delays its output; the gate must be aligned for the fit.
    let lag = best_lag(&input, &out, ms(20));
    let snr_in = tone_snr_db(
        &input[analysed.clone()],
        1_000.0,
        |n| on(n + analysed.start),
    );
    let snr_out = tone_snr_db(&out[analysed.clone()], 1_000.0, |n| {
        (n + analysed.start).checked_sub(lag).is_some_and(on)
    });
    let gap = |x: &[f32], d: usize| -> f64 {
        let idle: Vec<f32> = analysed
            .clone()
            .filter(|&n| {
                n >= d && !on(n - d) && !on(n - d + ms(30)) && !on((n - d).saturating_sub(ms(30)))
            })
            .map(|n| x[n])
            .collect();
        level_dbfs(&idle)
    };
    println!(
        "noise suppression: 1 kHz tone at -20 dBFS (400 ms on / off) + white noise at -30 dBFS: \
         SNR in {snr_in:.1} dB, out {snr_out:.1} dB, improvement {:.1} dB (delay {lag} samples); \
         noise between tones {:.1} -> {:.1} dBFS",
        snr_out - snr_in,
        gap(&input, 0),
        gap(&out, lag),
    );

    let steady_in = mix(&[&steady, &noise]);
    let steady_out = run(&mut AudioProcessor::new(NS_ONLY), &silence, &steady_in, 480);
    println!(
        "noise suppression on a steady tone: tone level {:.1} -> {:.1} dBFS (treated as noise)",
        level_dbfs(&steady[analysed.clone()]),
        level_dbfs(&steady_out[analysed.clone()]),
    );
    assert!(
        // Measured 10.3..10.4 dB over seeds 1..4 and the default.
        snr_out - snr_in > 7.0,
        "SNR improvement {:.1} dB",
        snr_out - snr_in
    );
}

#[test]
fn gain_control_raises_quiet_speech() {
    let seed = seed("gain control", 0xA6C);
    let len = 12 * RATE;
    let quiet = speech_like(
        len,
        Voice {
            f0_hz: 160.0,
            level_dbfs: -45.0,
        },
        seed,
    );
    let mut p = AudioProcessor::new(AGC_ONLY);
    let silence = vec![0.0; len];
    let out = run(&mut p, &silence, &quiet, 480);
    let gains: Vec<f64> = (0..12)
        .map(|s| {
            let r = s * RATE..(s + 1) * RATE;
            ratio_db(power(&out[r.clone()]), power(&quiet[r]))
        })
        .collect();
    let levels: Vec<String> = (0..12)
        .map(|s| {
            let r = s * RATE..(s + 1) * RATE;
            format!(
                "{}s {:.1}->{:.1}",
                s,
                level_dbfs(&quiet[r.clone()]),
                level_dbfs(&out[r])
            )
        })
        .collect();
    println!("AGC levels in->out dBFS per second: {}", levels.join(", "));
    println!(
        "AGC gain per second (dB): {:?}",
        gains
            .iter()
            .map(|g| (g * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    let last = gains[9..].iter().sum::<f64>() / 3.0;
    // Measured: 15 dB (the initial gain) in the first second, 32..33.5 dB after 9 s, over seeds
    // 1..4 and the default.
    assert!(last > 25.0, "AGC gain after 9 s only {last:.1} dB");
    assert!(last > gains[0] + 10.0, "AGC gain did not rise: {gains:?}");
    assert!(level_dbfs(&out[9 * RATE..]) < -10.0, "AGC output too hot");
}

#[test]
fn everything_off_is_bit_exact_and_toggles_apply() {
    let seed = seed("bypass", 0xB1A5);
    let len = 3 * RATE;
    let far = speech_like(len, FAR_VOICE, seed);
    let near = mix(&[
        &speech_like(len, NEAR_VOICE, seed + 1),
        &white_noise(len, -50.0, seed + 2),
    ]);
    let mut p = AudioProcessor::new(ProcessingSettings::OFF);
    let out = run(&mut p, &far, &near, 960);
    assert_eq!(out, near, "bypass must not change a sample");

    // On, then off again through the cross-thread control: bypass is bit-exact again at once.
    let control = p.control();
    control.set_settings(ProcessingSettings::default());
    let processed = run(&mut p, &far, &near, 480);
    assert_ne!(processed, near);
    assert_eq!(p.settings(), ProcessingSettings::default());
    control.set_settings(ProcessingSettings::OFF);
    let out = run(&mut p, &far, &near, 480);
    assert_eq!(out, near);
    assert_eq!(control.stats().settings, ProcessingSettings::OFF);
    assert_eq!(control.stats().frames, 3 * (len / 480) as u64);
}

#[test]
fn agc_toggle_keeps_the_echo_canceller_converged() {
    let seed = seed("toggles", 0x70661E);
    let far = speech_like(12 * RATE, FAR_VOICE, seed);
    let (echo, capture) = echo_capture(&far, path(100), seed);
    // Toggle at the first 10 ms frame after 6 s where the echo is loud, so that the 500 ms after
    // the toggle carry echo.
    let split = (6 * RATE..10 * RATE)
        .step_by(480)
        .find(|&n| level_dbfs(&echo[n..n + ms(500)]) > -45.0)
        .expect("far end talks after 6 s");
    let first = split..split + ms(500);
    let mut erle_after = Vec::new();
    // AGC off only swaps AGC2's adaptive controller; NS off changes sonora's pipeline layout,
    // which re-initialises every submodule, AEC3 included.
    for (name, after) in [("AGC off", AEC_NS), ("NS off", AEC_ONLY)] {
        let mut p = AudioProcessor::new(ProcessingSettings::default());
        let mut out = run(&mut p, &far[..split], &capture[..split], 480);
        p.set_settings(after);
        out.extend(run(&mut p, &far[split..], &capture[split..], 480));
        let erle = ratio_db(power(&echo[first.clone()]), power(&out[first.clone()]));
        println!("ERLE in the 500 ms after turning {name}: {erle:.1} dB");
        erle_after.push(erle);
    }
    assert!(
        // Measured 52.5..66.1 dB (and 16..37 dB after an NS toggle) over seeds 3, 4 and the
        // default.
        erle_after[0] >= 40.0,
        "AGC toggle lost the echo canceller's state: {:.1} dB",
        erle_after[0]
    );
}

#[test]
fn processing_delay_is_small() {
    let seed = seed("delay", 0xDE1A);
    let len = 4 * RATE;
    // Broadband noise: the band-splitting and high-pass filters shift the phase of low
    // frequencies, so a speech-like signal would blur the cross-correlation peak.
    let input = white_noise(len, -30.0, seed);
    let silence = vec![0.0; len];
    for (name, settings) in [
        ("AGC", AGC_ONLY),
        ("NS", NS_ONLY),
        ("AEC", AEC_ONLY),
        ("AEC+NS+AGC", ProcessingSettings::default()),
    ] {
        let out = run(&mut AudioProcessor::new(settings), &silence, &input, 480);
        let lag = best_lag(&input[RATE..], &out[RATE..], ms(40));
        println!(
            "{name:<10}: output lags input by {lag} samples ({:.2} ms)",
            lag as f64 * 1000.0 / RATE as f64
        );
        assert!(lag <= ms(20), "{name}: {lag} samples of delay");
    }
}

#[test]
fn bad_frames_are_rejected_and_bad_samples_do_not_poison() {
    let mut p = AudioProcessor::new(ProcessingSettings::default());
    let mut odd = vec![0.1f32; 700];
    assert_eq!(
        p.process_capture(&mut odd),
        Err(AudioProcessingError::FrameLength { len: 700 })
    );
    assert!(
        odd.iter().all(|&s| s == 0.1),
        "a rejected frame is untouched"
    );
    assert_eq!(
        p.render_feed().push(&[0.0; 100]),
        Err(AudioProcessingError::FrameLength { len: 100 })
    );
    let mut bad = vec![f32::NAN; PROCESSING_FRAME_SAMPLES];
    bad[3] = f32::INFINITY;
    bad[4] = 7.0;
    p.process_render(&bad).unwrap();
    p.process_capture(&mut bad).unwrap();
    // Later frames are still finite: the NaNs never reached the filters.
    let mut frame = tone(PROCESSING_FRAME_SAMPLES * 50, 440.0, -20.0);
    for chunk in frame.chunks_exact_mut(PROCESSING_FRAME_SAMPLES) {
        p.process_render(&[0.0; PROCESSING_FRAME_SAMPLES]).unwrap();
        p.process_capture(chunk).unwrap();
    }
    assert!(frame.iter().all(|s| s.is_finite()));
    assert!(level_dbfs(&frame[frame.len() / 2..]) > -60.0);
}
