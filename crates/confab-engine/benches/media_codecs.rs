//! Media pipeline speed at 1280x720 on the synthetic pattern, single-threaded: H.264 encode and
//! decode per frame, RGBA <-> I420 conversion per frame, Opus encode+decode per 20 ms frame, and
//! capture-path audio processing (AEC+NS+AGC, render analysis included) per 10 ms frame.
//! Targets on the reference machine: encode <= 6 ms, decode <= 3 ms, conversion <= 1 ms.
//!
//! Run: `cargo bench -p confab-engine --bench media_codecs -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use confab_engine::media::CaptureTime;
use confab_engine::media::audio_processing::{
    AudioProcessor, PROCESSING_FRAME_SAMPLES, ProcessingSettings,
};
use confab_engine::media::convert::{Scaler, i420_to_rgba, rgba_to_i420};
use confab_engine::media::h264::{H264Decoder, H264Encoder, H264EncoderConfig};
use confab_engine::media::opus_codec::{
    AudioDecoder, FRAME_SAMPLES, OpusDecoder, OpusEncoder, OpusEncoderConfig,
};
use confab_engine::media::synthetic_audio::{SyntheticAudio, SyntheticAudioConfig};
use confab_engine::media::synthetic_video::SyntheticVideo;
use criterion::{Criterion, criterion_main};

const W: u32 = 1280;
const H: u32 = 720;
/// Frames per cycle: one GOP, so decoding can loop from the IDR.
const GOP: u32 = 60;

fn time_of(n: u32) -> CaptureTime {
    CaptureTime::from_micros(u64::from(n) * 33_333)
}

fn config() -> H264EncoderConfig {
    H264EncoderConfig {
        // Benchmark every frame: no rate-control skips.
        allow_frame_skip: false,
        keyframe_interval: Some(GOP),
        ..H264EncoderConfig::new(W, H, 30.0, 1_500_000)
    }
}

fn h264(c: &mut Criterion) {
    let Ok(src) = SyntheticVideo::new(W, H, 30) else {
        return;
    };
    let frames: Vec<_> = (0..GOP).map(|n| src.render(n, time_of(n))).collect();

    if let Ok(mut enc) = H264Encoder::new(config()) {
        let mut i = 0usize;
        c.bench_function("h264_encode_720p_1.5mbps", |b| {
            b.iter(|| {
                let out = enc.encode(black_box(&frames[i % frames.len()]));
                i += 1;
                black_box(out.ok())
            });
        });
    }

    let Ok(mut enc) = H264Encoder::new(config()) else {
        return;
    };
    let stream: Vec<_> = frames
        .iter()
        .filter_map(|f| enc.encode(f).ok().flatten())
        .collect();
    if let Ok(mut dec) = H264Decoder::new() {
        let mut i = 0usize;
        c.bench_function("h264_decode_720p_to_i420", |b| {
            b.iter(|| {
                let e = &stream[i % stream.len()];
                i += 1;
                black_box(dec.decode(black_box(&e.data), e.capture_time).ok())
            });
        });
    }
    if let Ok(mut dec) = H264Decoder::new() {
        let mut i = 0usize;
        let mut rgba = Vec::new();
        c.bench_function("h264_decode_720p_to_rgba", |b| {
            b.iter(|| {
                let e = &stream[i % stream.len()];
                i += 1;
                black_box(dec.decode_rgba(black_box(&e.data), &mut rgba).ok())
            });
        });
    }
}

fn conversion(c: &mut Criterion) {
    let Ok(src) = SyntheticVideo::new(W, H, 30) else {
        return;
    };
    let frame = src.render(10, time_of(10));
    let mut rgba = Vec::new();
    c.bench_function("i420_to_rgba_720p", |b| {
        b.iter(|| black_box(i420_to_rgba(black_box(&frame), &mut rgba).ok()));
    });
    c.bench_function("rgba_to_i420_720p", |b| {
        b.iter(|| black_box(rgba_to_i420(black_box(&rgba), W, H, CaptureTime::default()).ok()));
    });
    let mut scaler = Scaler::new();
    c.bench_function("scale_i420_720p_to_360p", |b| {
        b.iter(|| black_box(scaler.scale(black_box(&frame), 640, 360).ok()));
    });
}

fn opus(c: &mut Criterion) {
    let Ok(src) = SyntheticAudio::new(SyntheticAudioConfig::default()) else {
        return;
    };
    let frames: Vec<Vec<f32>> = (0..50)
        .map(|i| {
            src.render(
                i * FRAME_SAMPLES as u64,
                FRAME_SAMPLES,
                CaptureTime::default(),
            )
            .samples
        })
        .collect();
    let (Ok(mut enc), Ok(mut dec)) = (
        OpusEncoder::new(OpusEncoderConfig::default()),
        OpusDecoder::new(),
    ) else {
        return;
    };
    let mut i = 0usize;
    c.bench_function("opus_encode_decode_20ms", |b| {
        b.iter(|| {
            let frame = &frames[i % frames.len()];
            i += 1;
            let packet = enc.encode(black_box(frame));
            black_box(packet.and_then(|p| dec.decode(&p.data)).ok())
        });
    });
}

/// 10 s of a far-end signal (harmonics on a gliding pitch under a syllable-rate envelope) and its
/// echo: 100 ms later, -10 dB, plus faint noise, so AEC3 runs converged as in a call. (A steady
/// pitch would be periodic enough to confuse its delay estimator.)
fn far_and_echo() -> (Vec<f32>, Vec<f32>) {
    use std::f32::consts::{PI, TAU};
    let len: usize = 10 * 48_000;
    let mut phase = 0.0f32;
    let far: Vec<f32> = (0..len)
        .map(|n| {
            let t = n as f32 / 48_000.0;
            let envelope = (PI * 3.0 * t).sin().abs();
            let f0 = 130.0 + 40.0 * (TAU * 0.7 * t).sin();
            // Wrapped at a multiple of 2 pi so every harmonic stays continuous.
            phase = (phase + TAU * f0 / 48_000.0) % (TAU * 1000.0);
            let voice: f32 = (1..=20).map(|h| (h as f32 * phase).sin() / h as f32).sum();
            0.1 * envelope * voice
        })
        .collect();
    let mut noise = 0x1234_5678u32;
    let echo = (0..len)
        .map(|n| {
            noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let hiss = (noise >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            0.316 * n.checked_sub(4_800).map_or(0.0, |d| far[d]) + 1e-4 * hiss
        })
        .collect();
    (far, echo)
}

fn audio_processing(c: &mut Criterion) {
    let (far, echo) = far_and_echo();
    let frames = far.len() / PROCESSING_FRAME_SAMPLES;
    let all = ProcessingSettings::default();
    let ns_only = ProcessingSettings {
        echo_cancellation: false,
        auto_gain: false,
        ..all
    };
    for (name, settings) in [
        ("audio_processing_aec_ns_agc_10ms", all),
        ("audio_processing_ns_10ms", ns_only),
    ] {
        let mut processor = AudioProcessor::new(settings);
        // The production path: the playout thread's RenderFeed, drained by process_capture.
        let feed = processor.render_feed();
        let mut capture = [0.0f32; PROCESSING_FRAME_SAMPLES];
        let mut i = 0usize;
        c.bench_function(name, |b| {
            b.iter(|| {
                let at = (i % frames) * PROCESSING_FRAME_SAMPLES;
                i += 1;
                let span = at..at + PROCESSING_FRAME_SAMPLES;
                capture.copy_from_slice(&echo[span.clone()]);
                let rendered = feed.push(black_box(&far[span]));
                let processed = processor.process_capture(black_box(&mut capture));
                black_box((rendered.ok(), processed.ok(), capture[0]))
            });
        });
        let stats = processor.stats();
        eprintln!(
            "{name}: processor's own timing {:.0} us mean / {:.0} us max per 10 ms frame \
             (last second); AEC3 ERLE {:?} dB",
            stats.processing_time_mean_us, stats.processing_time_max_us, stats.erle_db,
        );
    }
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs, reason = "generated by criterion_group!")]
mod group {
    use super::{audio_processing, conversion, h264, opus};
    criterion::criterion_group!(benches, h264, conversion, opus, audio_processing);
}
criterion_main!(group::benches);
