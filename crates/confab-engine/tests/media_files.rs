//! Y4M and WAV file sources: round trips on files the test writes, looping, and clear errors for
//! malformed or unsupported files. Files go to a per-test directory under the system temp dir.

use std::path::PathBuf;

use confab_engine::media::CaptureTime;
use confab_engine::media::frame::I420Frame;
use confab_engine::media::source::{AudioSource, Pacing, VideoSource};
use confab_engine::media::synthetic_audio::goertzel_power;
use confab_engine::media::synthetic_video::{SyntheticVideo, read_marker};
use confab_engine::media::wav::{WavError, WavSource, write_wav};
use confab_engine::media::y4m::{Y4mError, Y4mSource, Y4mWriter};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A fresh directory for one test (removed first if a previous run left it).
fn temp_dir(test: &str) -> Result<PathBuf, std::io::Error> {
    let dir = std::env::temp_dir().join(format!("confab-media-{test}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[test]
fn y4m_round_trip_and_loop() -> TestResult {
    let dir = temp_dir("y4m")?;
    let path = dir.join("clip.y4m");
    let src = SyntheticVideo::new(320, 240, 25)?;
    let frames: Vec<I420Frame> = (0..5)
        .map(|n| src.render(n, CaptureTime::from_micros(u64::from(n))))
        .collect();
    let mut w = Y4mWriter::create(&path, 320, 240, 25)?;
    for f in &frames {
        w.write_frame(f)?;
    }
    w.finish()?;

    let mut r = Y4mSource::open(&path)?;
    assert_eq!(
        (r.header().width, r.header().height, r.header().fps_num),
        (320, 240, 25)
    );
    assert_eq!(
        r.pacing(),
        Pacing::Interval(std::time::Duration::from_millis(40))
    );
    for lap in 0..2 {
        for (n, f) in frames.iter().enumerate() {
            let got = r.next_frame_at(f.capture_time)?;
            assert_eq!(&got, f, "lap {lap} frame {n}");
            assert_eq!(read_marker(&got)?.frame_number, n as u32);
        }
    }
    assert_eq!(r.loops(), 1);
    // Through the trait, stamped with the shared clock.
    assert!(r.next_frame()?.capture_time > CaptureTime::default());
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[test]
fn y4m_accepts_420_variants_and_odd_sizes() -> TestResult {
    for tag in [
        "",
        " C420",
        " C420mpeg2",
        " C420paldv",
        " C420jpeg XYSCSS=420JPEG",
    ] {
        // 3x3: chroma planes are 2x2.
        let mut data =
            format!("YUV4MPEG2 W3 H3 F30000:1001 It A0:0{tag}\nFRAME Ixyz\n").into_bytes();
        data.extend((0..9 + 4 + 4).map(|i| i as u8));
        let mut r = Y4mSource::new(std::io::Cursor::new(data), format!("inline{tag}"))?;
        let f = r.next_frame_at(CaptureTime::default())?;
        assert_eq!((f.width(), f.height()), (3, 3));
        assert_eq!(f.u(), &[9, 10, 11, 12]);
        assert_eq!(f.v(), &[13, 14, 15, 16]);
    }
    Ok(())
}

#[test]
fn malformed_y4m_gives_clear_errors() {
    let open = |bytes: &[u8]| -> Result<I420Frame, Y4mError> {
        let mut r = Y4mSource::new(std::io::Cursor::new(bytes.to_vec()), "test.y4m".into())?;
        r.next_frame_at(CaptureTime::default())
    };
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "not a Y4M"),
        (b"RIFF....WAVEfmt ", "not a Y4M"),
        (b"YUV4MPEG2 W320\n", "missing H"),
        (b"YUV4MPEG2 Wabc H2\n", "width"),
        (b"YUV4MPEG2 W2 H2 F0:1\n", "frame rate"),
        (b"YUV4MPEG2 W2 H2 C444\nFRAME\n", "C444"),
        (b"YUV4MPEG2 W2 H2 C420p10\nFRAME\n", "C420p10"),
        (b"YUV4MPEG2 W2 H2 Cmono\n", "Cmono"),
        (b"YUV4MPEG2 W2 H2\n", "no frames"),
        (b"YUV4MPEG2 W2 H2\nFRAME\n\x01\x02", "truncated"),
        (
            b"YUV4MPEG2 W2 H2\nFRAMX\n\x01\x02\x03\x04\x05\x06",
            "malformed frame header",
        ),
        (b"YUV4MPEG2 W2 H2", "not terminated"),
        ("YUV4MPEG2 W2 H2 \u{e9}x\n".as_bytes(), "no frames"),
        (b"YUV4MPEG2 W100000 H2\n", "frame size"),
    ];
    for (bytes, expected) in cases {
        match open(bytes) {
            Ok(_) => panic!("{:?} was accepted", String::from_utf8_lossy(bytes)),
            Err(e) => {
                let msg = e.to_string();
                println!("{msg}");
                assert!(
                    msg.contains(expected),
                    "error {msg:?} should mention {expected:?}"
                );
            }
        }
    }
    assert!(matches!(
        Y4mSource::open(std::path::Path::new("/nonexistent/x.y4m")),
        Err(Y4mError::Io { .. })
    ));
}

fn write_pcm16(
    path: &std::path::Path,
    rate: u32,
    channels: u16,
    frames: usize,
    hz: f32,
) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for n in 0..frames {
        let s = (0.5 * (2.0 * std::f32::consts::PI * hz * n as f32 / rate as f32).sin() * 32767.0)
            as i16;
        for c in 0..channels {
            // Right channel inverted and halved so the downmix is visible: (s - s/2) / 2 = s/4.
            w.write_sample(if c == 0 { s } else { -s / 2 })?;
        }
    }
    w.finalize()
}

#[test]
fn wav_round_trip_and_loop() -> TestResult {
    let dir = temp_dir("wav")?;
    let path = dir.join("clip.wav");
    let samples: Vec<f32> = (0..1500)
        .map(|n| ((n % 100) as f32 / 100.0) - 0.5)
        .collect();
    write_wav(&path, &samples)?;
    let mut src = WavSource::open(&path)?;
    assert_eq!(src.original_format(), (48_000, 1));
    let mut out = Vec::new();
    for _ in 0..4 {
        let frame = src.next_frame_at(CaptureTime::default());
        assert_eq!(frame.samples.len(), 960);
        out.extend(frame.samples);
    }
    // Loops: sample k of the output is sample k % 1500 of the clip (16-bit quantisation).
    for (k, s) in out.iter().enumerate() {
        assert!((s - samples[k % 1500]).abs() < 1e-4, "sample {k}");
    }
    let mut ten_ms = WavSource::open(&path)?.with_frame_samples(480)?;
    assert_eq!(ten_ms.next_frame()?.samples.len(), 480);
    assert!(WavSource::open(&path)?.with_frame_samples(500).is_err());
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[test]
fn wav_stereo_is_downmixed_and_44k1_is_resampled() -> TestResult {
    let dir = temp_dir("wav-convert")?;
    let stereo = dir.join("stereo.wav");
    write_pcm16(&stereo, 48_000, 2, 4800, 1000.0)?;
    let src = WavSource::open(&stereo)?;
    assert_eq!(src.original_format(), (48_000, 2));
    let peak = src.samples().iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(
        (peak - 0.125).abs() < 0.01,
        "downmix peak {peak}, expected 0.125"
    );

    let cd = dir.join("cd.wav");
    write_pcm16(&cd, 44_100, 1, 44_100, 1000.0)?;
    let src = WavSource::open(&cd)?;
    let n = src.samples().len();
    assert!(
        (47_000..=49_000).contains(&n),
        "1 s at 44.1 kHz became {n} samples at 48 kHz"
    );
    // The tone is still at 1 kHz after resampling.
    let mid = &src.samples()[12_000..36_000];
    assert!(
        goertzel_power(mid, 1000.0) > 0.05,
        "1 kHz tone lost in resampling"
    );
    assert!(
        goertzel_power(mid, 1088.0) < 0.001,
        "tone shifted by the rate change"
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[test]
fn malformed_wav_gives_clear_errors() -> TestResult {
    let dir = temp_dir("wav-bad")?;
    let garbage = dir.join("garbage.wav");
    std::fs::write(&garbage, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")?;
    let err = WavSource::open(&garbage).err().ok_or("garbage accepted")?;
    println!("{err}");
    assert!(matches!(err, WavError::Read { .. }));
    assert!(err.to_string().contains("garbage.wav"));

    let empty = dir.join("empty.wav");
    write_wav(&empty, &[])?;
    assert!(matches!(WavSource::open(&empty), Err(WavError::Empty(_))));

    // Truncated data chunk: the header promises more samples than the file holds.
    let truncated = dir.join("truncated.wav");
    write_wav(&truncated, &vec![0.25; 1000])?;
    let bytes = std::fs::read(&truncated)?;
    std::fs::write(&truncated, &bytes[..bytes.len() - 501])?;
    let err = WavSource::open(&truncated)
        .err()
        .ok_or("truncated accepted")?;
    println!("{err}");

    assert!(WavSource::from_reader(&b"not a wav at all"[..]).is_err());
    assert!(matches!(
        WavSource::open(&dir.join("missing.wav")),
        Err(WavError::Read { .. })
    ));
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
