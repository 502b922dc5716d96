//! Sound check: play a tone through a speaker, record it with a microphone, and measure what
//! came back (`confab sound-check`, and the real-device test on a PulseAudio null sink).
//!
//! It drives the same `Speaker` and `Microphone` the engine uses: the tone goes through the
//! speaker's resampler, ring buffer and device callback, and comes back through the
//! microphone's callback, ring buffer and 10 ms framing. The analysis is pure and unit-tested:
//! the dominant frequency (zero crossings refined by a Goertzel peak search), the RMS level in
//! dBFS, how much of the power is the tone, and the delay from the first played sample to the
//! tone's onset in the recording (the device round trip).

use std::f64::consts::TAU;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::microphone::Microphone;
use super::speaker::Speaker;
use super::{DeviceError, DeviceStatus};
use crate::api::AudioSink;
use crate::media::synthetic_audio;
use crate::media::{AUDIO_SAMPLE_RATE, AudioFrame, AudioSource, CaptureTime};
use crate::worker::Worker;

/// What to play and for how long.
#[derive(Debug, Clone)]
pub struct SoundCheckOptions {
    /// Speaker id (`None`: default).
    pub speaker: Option<String>,
    /// Microphone id (`None`: default).
    pub microphone: Option<String>,
    /// Tone frequency in Hz.
    pub frequency_hz: f64,
    /// Tone level in dBFS (peak of the sine).
    pub level_dbfs: f64,
    /// How long to play.
    pub duration: Duration,
}

impl Default for SoundCheckOptions {
    fn default() -> Self {
        Self {
            speaker: None,
            microphone: None,
            frequency_hz: 440.0,
            level_dbfs: -12.0,
            duration: Duration::from_secs(2),
        }
    }
}

/// What the microphone heard.
#[derive(Debug, Clone, Serialize)]
pub struct SoundCheckReport {
    /// Speaker used.
    pub speaker: String,
    /// Microphone used.
    pub microphone: String,
    /// Frequency played.
    pub played_hz: f64,
    /// Dominant frequency recorded (None: nothing but silence came back).
    pub heard_hz: Option<f64>,
    /// RMS level recorded while the tone was on, dBFS (a full-scale sine is -3 dBFS).
    pub level_dbfs: f64,
    /// Expected RMS level of the played tone, dBFS.
    pub played_level_dbfs: f64,
    /// Share of the recorded power at the heard frequency, 0..1 (1: a clean tone).
    pub tone_purity: f64,
    /// Length of the longest unbroken stretch of the tone in the recording (the rest was lost
    /// or delayed past the end of the recording).
    pub tone_heard_seconds: f64,
    /// Audio the microphone delivered, in seconds.
    pub recorded_seconds: f64,
    /// Wall-clock time the recording ran (a working microphone delivers about as much audio).
    pub recording_wall_seconds: f64,
    /// From the first played sample to the tone's onset in the recording, by the capture
    /// timestamps (it includes the audio server's buffering only as far as it reports it).
    pub round_trip_ms: Option<f64>,
    /// Speaker underruns during the check.
    pub speaker_underruns: u64,
    /// Samples the microphone dropped during the check.
    pub microphone_overruns: u64,
}

/// Longest wait for the microphone's first audio.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence played after the microphone starts and before the tone.
const WARM_UP: Duration = Duration::from_millis(300);
/// Silence played after the tone while the recording goes on.
const TAIL: Duration = Duration::from_millis(500);

/// What the recorder thread brings back.
struct Recording {
    frames: Vec<AudioFrame>,
    microphone: String,
    overruns: u64,
    wall: Duration,
}

/// Paces the speaker feed at one 20 ms block per 20 ms of wall clock.
struct Pacer {
    next: Instant,
}

impl Pacer {
    fn new() -> Self {
        Self {
            next: Instant::now(),
        }
    }

    fn wait(&mut self) {
        self.next += Duration::from_millis(20);
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
    }
}

/// Plays and records; see the module docs. Blocks for about `duration` plus a second, more when
/// the devices are slow to start (up to `START_TIMEOUT`).
///
/// # Errors
/// A [`DeviceError`] if either device cannot be opened or fails during the check.
pub fn run(
    options: &SoundCheckOptions,
    status: &DeviceStatus,
) -> Result<SoundCheckReport, DeviceError> {
    let mut speaker = Speaker::open(options.speaker.as_deref(), Arc::clone(status))?;
    let speaker_name = speaker.device_name().unwrap_or("?").to_string();
    let amplitude = 10f64.powf(options.level_dbfs / 20.0);

    // The microphone must be opened on the thread that reads it. It records until told to
    // stop, so the whole tone is inside the recording however long the devices take to start.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), DeviceError>>();
    let mic_options = options.clone();
    let mic_status = Arc::clone(status);
    let longest = options.duration + START_TIMEOUT + WARM_UP + TAIL + Duration::from_secs(5);
    // Dropped on an early return: stopped and joined (it has ended, or its microphone returns
    // every 10 ms), except after a start timeout, when it is let go.
    let recorder = Worker::spawn(
        "confab-sound-check-mic",
        move |stop| -> Result<Recording, DeviceError> {
            let mut mic = match Microphone::open(mic_options.microphone.as_deref(), mic_status) {
                Ok(mic) => mic,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            let _ = ready_tx.send(Ok(()));
            let name = mic.device_name().unwrap_or("?").to_string();
            let mut frames = Vec::new();
            let started = Instant::now();
            while !stop.is_raised() && started.elapsed() < longest {
                match mic.next_frame() {
                    Ok(f) => frames.push(f),
                    Err(e) => return Err(DeviceError::Backend(e.to_string())),
                }
            }
            Ok(Recording {
                frames,
                microphone: name,
                overruns: mic.overruns(),
                wall: started.elapsed(),
            })
        },
    )?;

    // An audio server may take a while to start a new stream (PulseAudio's null sink wakes on
    // a timer of up to 2 s): keep the speaker fed with silence until the microphone delivers,
    // then a little longer so both streams run before the tone starts.
    let mut pacer = Pacer::new();
    let silence = vec![0.0f32; AudioFrame::SAMPLES_20MS];
    let waiting = Instant::now();
    loop {
        match ready_rx.try_recv() {
            Ok(Ok(())) => break,
            Ok(Err(e)) => return Err(e),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err(DeviceError::Backend("the recorder thread stopped".into()));
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        if waiting.elapsed() > START_TIMEOUT {
            // The microphone may still be stuck opening: do not wait for it.
            recorder.stop();
            recorder.detach();
            return Err(DeviceError::Backend(format!(
                "the microphone delivered no audio within {} s",
                START_TIMEOUT.as_secs()
            )));
        }
        speaker.play(&silence);
        pacer.wait();
    }
    let warm = Instant::now();
    while warm.elapsed() < WARM_UP {
        speaker.play(&silence);
        pacer.wait();
    }

    let underruns_before = speaker.underruns();
    let mut phase = 0.0f64;
    let step = TAU * options.frequency_hz / f64::from(AUDIO_SAMPLE_RATE);
    let mut first_played: Option<CaptureTime> = None;
    let tone_start = Instant::now();
    while tone_start.elapsed() < options.duration {
        let block: Vec<f32> = (0..AudioFrame::SAMPLES_20MS)
            .map(|_| {
                let v = (phase.sin() * amplitude) as f32;
                phase = (phase + step) % TAU;
                v
            })
            .collect();
        first_played.get_or_insert_with(CaptureTime::now);
        speaker.play(&block);
        pacer.wait();
    }
    // The tail: what is still queued in the speaker and the audio server reaches the
    // microphone.
    let tail = Instant::now();
    while tail.elapsed() < TAIL {
        speaker.play(&silence);
        pacer.wait();
    }
    recorder.stop();
    let speaker_underruns = speaker.underruns() - underruns_before;
    drop(speaker);
    let Recording {
        frames,
        microphone,
        overruns: microphone_overruns,
        wall,
    } = recorder.join()??;

    let samples: Vec<f32> = frames
        .iter()
        .flat_map(|f| f.samples.iter().copied())
        .collect();
    let start = frames
        .first()
        .map_or(CaptureTime::default(), |f| f.capture_time);
    let onset = find_onset(&samples, 0.3 * amplitude);
    let round_trip_ms = match (onset, first_played) {
        (Some(i), Some(played)) => {
            let heard = start.plus(crate::media::frame::samples_to_duration(i));
            Some(heard.as_micros() as f64 / 1000.0 - played.as_micros() as f64 / 1000.0)
        }
        _ => None,
    };
    // Analyse the longest stretch where the tone is loud (at least a third of its level),
    // without its first and last 10 ms.
    let (from, to) = loud_span(&samples, amplitude / 3.0 / std::f64::consts::SQRT_2);
    let steady = samples.get(from..to).unwrap_or(&[]);
    let heard_hz = dominant_frequency(steady);
    let tone_purity = heard_hz.map_or(0.0, |f| tone_share(steady, f));
    Ok(SoundCheckReport {
        speaker: speaker_name,
        microphone,
        played_hz: options.frequency_hz,
        heard_hz,
        level_dbfs: rms_dbfs(steady),
        played_level_dbfs: options.level_dbfs - 3.0103,
        tone_purity,
        tone_heard_seconds: steady.len() as f64 / f64::from(AUDIO_SAMPLE_RATE),
        recorded_seconds: samples.len() as f64 / f64::from(AUDIO_SAMPLE_RATE),
        recording_wall_seconds: wall.as_secs_f64(),
        round_trip_ms,
        speaker_underruns,
        microphone_overruns,
    })
}

/// RMS level in dBFS (-100 for silence or no samples).
#[must_use]
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return -100.0;
    }
    let mean = samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
    mean_square_dbfs(mean)
}

/// A mean square (0 silence, 0.5 a full-scale sine) in dBFS, -100 for digital silence: the one
/// conversion behind every level the engine reports (this check, the microphone meter, who is
/// talking).
#[must_use]
pub fn mean_square_dbfs(mean: f64) -> f64 {
    if mean <= 1e-10 {
        -100.0
    } else {
        10.0 * mean.log10()
    }
}

/// The longest run of 10 ms blocks whose RMS reaches `rms_threshold`, minus one block at each
/// end, as a sample range (`(0, 0)` if there is none).
#[must_use]
pub fn loud_span(samples: &[f32], rms_threshold: f64) -> (usize, usize) {
    const BLOCK: usize = AudioFrame::SAMPLES_10MS;
    let loud: Vec<bool> = samples
        .chunks(BLOCK)
        .map(|b| rms_dbfs(b) >= 20.0 * rms_threshold.max(1e-9).log10())
        .collect();
    let (mut best, mut run_start) = ((0, 0), None);
    for (i, &l) in loud.iter().chain(std::iter::once(&false)).enumerate() {
        match (l, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(s)) => {
                if i - s > best.1 - best.0 {
                    best = (s, i);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    if best.1 - best.0 < 3 {
        return (0, 0);
    }
    (
        (best.0 + 1) * BLOCK,
        ((best.1 - 1) * BLOCK).min(samples.len()),
    )
}

/// Index of the first sample whose magnitude reaches `threshold`.
#[must_use]
pub fn find_onset(samples: &[f32], threshold: f64) -> Option<usize> {
    samples.iter().position(|s| f64::from(s.abs()) >= threshold)
}

/// Power of `samples` at `freq` (the media module's Goertzel filter), scaled so a full sine of
/// amplitude `a` gives about `a² / 2`, its mean square.
#[must_use]
pub fn goertzel_power(samples: &[f32], freq: f64) -> f64 {
    2.0 * synthetic_audio::goertzel_power(samples, freq as f32)
}

/// The dominant frequency of 48 kHz `samples`: zero-crossing estimate, refined by a Goertzel
/// peak search around it. `None` for silence or fewer than 100 ms of samples.
#[must_use]
pub fn dominant_frequency(samples: &[f32]) -> Option<f64> {
    let rate = f64::from(AUDIO_SAMPLE_RATE);
    if (samples.len() as f64) < rate / 10.0 || rms_dbfs(samples) < -70.0 {
        return None;
    }
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let rough = crossings as f64 / 2.0 / (samples.len() as f64 / rate);
    let (mut best_f, mut best_p) = (rough, 0.0);
    let mut f = (rough * 0.9).max(20.0);
    while f <= rough * 1.1 + 1.0 {
        let p = goertzel_power(samples, f);
        if p > best_p {
            best_p = p;
            best_f = f;
        }
        f += 0.5;
    }
    // A second, finer pass around the coarse peak: over a few seconds of tone a 0.25 Hz error
    // already halves the power the filter sees.
    let coarse = best_f;
    let mut f = coarse - 0.5;
    while f <= coarse + 0.5 {
        let p = goertzel_power(samples, f);
        if p > best_p {
            best_p = p;
            best_f = f;
        }
        f += 0.02;
    }
    Some(best_f)
}

/// Share of the total power of 48 kHz `samples` that sits at `freq`, measured in 50 ms blocks
/// (each block's tone power over its total, weighted by the block's power) so that a small
/// frequency error or clock drift between speaker and microphone does not count as impurity;
/// distortion, noise and dropouts still do.
#[must_use]
pub fn tone_share(samples: &[f32], freq: f64) -> f64 {
    const BLOCK: usize = AUDIO_SAMPLE_RATE as usize / 20;
    let (mut tone, mut total) = (0.0, 0.0);
    for block in samples.chunks(BLOCK).filter(|b| b.len() == BLOCK) {
        let power = block.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / BLOCK as f64;
        tone += goertzel_power(block, freq).min(power);
        total += power;
    }
    if total <= 0.0 {
        return 0.0;
    }
    (tone / total).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, amp: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (amp * (TAU * freq * i as f64 / 48_000.0).sin()) as f32)
            .collect()
    }

    #[test]
    fn finds_the_frequency_of_a_tone() {
        for freq in [220.0, 440.0, 1000.0, 2500.0] {
            let s = sine(freq, 0.25, 48_000);
            let heard = dominant_frequency(&s).unwrap();
            assert!((heard - freq).abs() < 1.0, "{freq} heard as {heard}");
            assert!(tone_share(&s, heard) > 0.95);
        }
    }

    /// A tone between the coarse search's 0.5 Hz steps, over the ~2 s a sound check records,
    /// is still found to within a fraction of a hertz and counts as pure.
    #[test]
    fn a_tone_off_the_search_grid_is_still_pure() {
        for freq in [879.8, 880.0, 880.13, 1000.37] {
            let s = sine(freq, 0.18, 95_040);
            let heard = dominant_frequency(&s).unwrap();
            assert!((heard - freq).abs() < 0.1, "{freq} heard as {heard}");
            let purity = tone_share(&s, heard);
            assert!(purity > 0.95, "{freq}: purity {purity}");
        }
    }

    /// Another tone mixed in at equal power halves the purity.
    #[test]
    fn a_second_tone_is_impurity() {
        let a = sine(880.0, 0.2, 48_000);
        let b = sine(1320.0, 0.2, 48_000);
        let mix: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let purity = tone_share(&mix, 880.0);
        assert!((purity - 0.5).abs() < 0.05, "purity {purity}");
    }

    #[test]
    fn level_of_a_sine_is_3_db_below_its_peak() {
        let s = sine(440.0, 0.5, 48_000);
        assert!((rms_dbfs(&s) - (20.0 * 0.5f64.log10() - 3.0103)).abs() < 0.05);
        assert_eq!(rms_dbfs(&[0.0; 100]), -100.0);
    }

    #[test]
    fn silence_and_noise_are_not_a_tone() {
        assert!(dominant_frequency(&[0.0; 48_000]).is_none());
        let mut seed = 12345u32;
        let noise: Vec<f32> = (0..48_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        let f = dominant_frequency(&noise).unwrap();
        assert!(tone_share(&noise, f) < 0.05);
    }

    #[test]
    fn the_loud_span_is_the_longest_unbroken_tone() {
        let mut s = vec![0.0f32; 4800];
        s.extend(sine(440.0, 0.5, 4800));
        s.extend(vec![0.0f32; 960]);
        s.extend(sine(440.0, 0.5, 9600));
        s.extend(vec![0.0f32; 4800]);
        let (from, to) = loud_span(&s, 0.1);
        assert_eq!(
            (from, to),
            (4800 + 4800 + 960 + 480, 4800 + 4800 + 960 + 9600 - 480)
        );
        assert_eq!(loud_span(&[0.0; 9600], 0.1), (0, 0));
    }

    #[test]
    fn onset_is_the_first_loud_sample() {
        let mut s = vec![0.0f32; 1000];
        s.extend(sine(440.0, 0.5, 1000));
        let onset = find_onset(&s, 0.15).unwrap();
        assert!((1000..1020).contains(&onset), "{onset}");
    }
}
