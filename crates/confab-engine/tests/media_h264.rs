//! H.264 round trips on the synthetic pattern: marker recovery, PSNR, keyframes on demand,
//! mid-GOP join, RTP-sized slices, runtime bitrate changes.

use confab_engine::media::CaptureTime;
use confab_engine::media::convert::psnr;
use confab_engine::media::h264::{
    EncodedFrame, H264Decoder, H264Encoder, H264EncoderConfig, H264Error, nal_type,
};
use confab_engine::media::synthetic_video::{SyntheticVideo, read_marker, read_marker_rgba};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Frame `n` of a 30 fps stream starting at an arbitrary clock value.
fn time_of(n: u32) -> CaptureTime {
    CaptureTime::from_micros(5_000_000 + u64::from(n) * 33_333)
}

fn encode_all(
    src: &SyntheticVideo,
    enc: &mut H264Encoder,
    frames: u32,
) -> Result<Vec<(u32, EncodedFrame)>, H264Error> {
    let mut out = Vec::new();
    for n in 0..frames {
        if let Some(e) = enc.encode(&src.render(n, time_of(n)))? {
            out.push((n, e));
        }
    }
    Ok(out)
}

fn round_trip(width: u32, height: u32, bitrate: u32, frames: u32, min_psnr: f64) -> TestResult {
    let src = SyntheticVideo::new(width, height, 30)?;
    let mut enc = H264Encoder::new(H264EncoderConfig::new(width, height, 30.0, bitrate))?;
    let mut dec = H264Decoder::new()?;
    let encoded = encode_all(&src, &mut enc, frames)?;
    assert!(encoded[0].1.keyframe, "first frame must be an IDR");
    let mut decoded = 0u32;
    let mut psnr_sum = 0.0;
    let mut worst = f64::INFINITY;
    let mut bytes = 0usize;
    for (n, e) in &encoded {
        bytes += e.data.len();
        let Some(frame) = dec.decode(&e.data, e.capture_time)? else {
            continue;
        };
        decoded += 1;
        let marker = read_marker(&frame)?;
        assert_eq!(marker.frame_number, *n, "marker frame number");
        assert_eq!(marker.capture_time_near(e.capture_time), time_of(*n));
        let p = psnr(&src.render(*n, time_of(*n)), &frame)?;
        psnr_sum += p;
        worst = worst.min(p);
    }
    let mean = psnr_sum / f64::from(decoded);
    let kbps = bytes as f64 * 8.0 / (f64::from(frames) / 30.0) / 1000.0;
    println!(
        "{width}x{height}@{}kbps: {decoded}/{} pictures decoded, {} skipped, mean PSNR {mean:.2} dB, \
         worst {worst:.2} dB, actual {kbps:.0} kbps",
        bitrate / 1000,
        encoded.len(),
        frames as usize - encoded.len()
    );
    assert_eq!(
        decoded as usize,
        encoded.len(),
        "every encoded picture decodes"
    );
    assert!(mean >= min_psnr, "mean PSNR {mean:.2} < {min_psnr}");
    Ok(())
}

#[test]
fn round_trip_640x480_at_1_5_mbps_keeps_markers_and_quality() -> TestResult {
    round_trip(640, 480, 1_500_000, 60, 32.0)
}

#[test]
fn round_trip_1280x720_at_1_5_mbps_keeps_markers_and_quality() -> TestResult {
    round_trip(1280, 720, 1_500_000, 45, 32.0)
}

#[test]
fn round_trip_320x240_at_300_kbps_keeps_markers() -> TestResult {
    round_trip(320, 240, 300_000, 60, 28.0)
}

#[test]
fn slices_fit_rtp_and_idr_carries_parameter_sets() -> TestResult {
    let src = SyntheticVideo::new(1280, 720, 30)?;
    let mut enc = H264Encoder::new(H264EncoderConfig::new(1280, 720, 30.0, 2_500_000))?;
    for (n, e) in encode_all(&src, &mut enc, 10)? {
        for nal in e.nal_units() {
            assert!(nal.len() <= 1200, "frame {n}: NAL of {} bytes", nal.len());
        }
        let types: Vec<u8> = e.nal_units().filter_map(nal_type).collect();
        if e.keyframe {
            let idr = types
                .iter()
                .position(|t| *t == 5)
                .ok_or("IDR without IDR slice")?;
            let sps = types
                .iter()
                .position(|t| *t == 7)
                .ok_or("IDR without SPS")?;
            let pps = types
                .iter()
                .position(|t| *t == 8)
                .ok_or("IDR without PPS")?;
            assert!(
                sps < idr && pps < idr,
                "SPS/PPS must precede the IDR slice: {types:?}"
            );
            // Constrained baseline: profile_idc 66 with constraint_set1 (matches 42e0xx offers).
            let sps_nal = e
                .nal_units()
                .find(|n| nal_type(n) == Some(7))
                .ok_or("no SPS")?;
            println!("SPS profile/constraints/level: {:02x?}", &sps_nal[1..4]);
            assert_eq!(sps_nal[1], 0x42, "profile_idc must be baseline");
            assert_ne!(
                sps_nal[2] & 0x40,
                0,
                "constraint_set1_flag (constrained baseline)"
            );
            assert!(
                types.iter().filter(|t| **t == 5).count() > 1,
                "expected several slices"
            );
        } else {
            assert!(
                !types.contains(&5),
                "non-key frame with IDR slice: {types:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn keyframe_on_demand_and_mid_gop_join() -> TestResult {
    let src = SyntheticVideo::new(320, 240, 30)?;
    let mut enc = H264Encoder::new(H264EncoderConfig::new(320, 240, 30.0, 400_000))?;
    let mut stream = Vec::new();
    for n in 0..30 {
        if n == 20 {
            enc.request_keyframe();
        }
        if let Some(e) = enc.encode(&src.render(n, time_of(n)))? {
            stream.push((n, e));
        }
    }
    let keyframes: Vec<u32> = stream
        .iter()
        .filter(|(_, e)| e.keyframe)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(keyframes, vec![0, 20], "IDR at start and where requested");

    // A receiver joining at frame 5 sees P frames first: errors (or nothing), never a picture,
    // until the IDR at 20; from then on every picture decodes with an intact marker.
    let mut dec = H264Decoder::new()?;
    let mut errors = 0;
    for (n, e) in stream.iter().filter(|(n, _)| *n >= 5) {
        match dec.decode(&e.data, e.capture_time) {
            Err(H264Error::Decode(_)) => {
                assert!(*n < 20, "decode error after the IDR at frame {n}");
                errors += 1;
            }
            Err(other) => return Err(other.into()),
            Ok(None) => assert!(*n < 20, "no picture after the IDR at frame {n}"),
            Ok(Some(frame)) => {
                assert!(*n >= 20, "picture decoded before the IDR at frame {n}");
                assert_eq!(read_marker(&frame)?.frame_number, *n);
            }
        }
    }
    assert!(
        errors > 0,
        "a mid-GOP join must report errors so the engine asks for a keyframe"
    );
    Ok(())
}

#[test]
fn rgba_output_carries_the_marker() -> TestResult {
    let src = SyntheticVideo::new(640, 480, 30)?;
    let mut enc = H264Encoder::new(H264EncoderConfig::new(640, 480, 30.0, 1_000_000))?;
    let mut dec = H264Decoder::new()?;
    let mut rgba = Vec::new();
    for (n, e) in encode_all(&src, &mut enc, 5)? {
        let (w, h) = dec.decode_rgba(&e.data, &mut rgba)?.ok_or("no picture")?;
        assert_eq!((w, h), (640, 480));
        assert_eq!(read_marker_rgba(&rgba, w, h)?.frame_number, n);
    }
    Ok(())
}

#[test]
fn bitrate_changes_at_runtime_without_a_keyframe() -> TestResult {
    let src = SyntheticVideo::new(640, 480, 30)?;
    let mut enc = H264Encoder::new(H264EncoderConfig::new(640, 480, 30.0, 2_000_000))?;
    let mut bytes_high = 0;
    let mut bytes_low = 0;
    let mut keyframes = 0;
    for n in 0..120 {
        if n == 60 {
            enc.set_bitrate(300_000)?;
        }
        if let Some(e) = enc.encode(&src.render(n, time_of(n)))? {
            keyframes += usize::from(e.keyframe);
            // Skip the first second of each phase while rate control settles.
            match n {
                30..60 => bytes_high += e.data.len(),
                90..120 => bytes_low += e.data.len(),
                _ => {}
            }
        }
    }
    println!("bytes per second: {bytes_high} at 2 Mbps, {bytes_low} at 300 kbps");
    assert_eq!(keyframes, 1, "a bitrate change must not force an IDR");
    assert!(
        bytes_low * 2 < bytes_high,
        "bitrate cut had no effect: {bytes_high} -> {bytes_low}"
    );
    assert_eq!(enc.config().bitrate_bps, 300_000);
    assert!(enc.set_bitrate(1).is_err());
    Ok(())
}

#[test]
fn garbage_input_is_an_error_not_a_panic() -> TestResult {
    let mut dec = H264Decoder::new()?;
    let junk: Vec<u8> = (0..500u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut framed = vec![0, 0, 0, 1, 0x65];
    framed.extend_from_slice(&junk);
    for data in [&junk[..], &framed[..], &[0, 0, 0, 1][..]] {
        // Either an error or no picture is acceptable; a panic or a picture is not.
        if let Ok(Some(_)) = dec.decode(data, CaptureTime::default()) {
            return Err("garbage produced a picture".into());
        }
    }
    assert!(H264Encoder::new(H264EncoderConfig::new(641, 480, 30.0, 1_000_000)).is_err());
    Ok(())
}

#[test]
fn resolution_change_restarts_with_an_idr_at_the_new_size() -> TestResult {
    let big = SyntheticVideo::new(640, 480, 30)?;
    let small = SyntheticVideo::new(320, 240, 30)?;
    let mut enc = H264Encoder::new(H264EncoderConfig::new(640, 480, 30.0, 800_000))?;
    enc.set_bitrate(600_000)?;
    let mut dec = H264Decoder::new()?;
    for n in 0..20 {
        let src = if n < 10 { &big } else { &small };
        let Some(e) = enc.encode(&src.render(n, time_of(n)))? else {
            continue;
        };
        if n == 10 {
            assert!(e.keyframe, "a size change must start with an IDR");
        }
        let frame = dec.decode(&e.data, e.capture_time)?.ok_or("no picture")?;
        assert_eq!((frame.width(), frame.height()), (src.width(), src.height()));
        assert_eq!(read_marker(&frame)?.frame_number, n);
    }
    assert_eq!(
        enc.config().bitrate_bps,
        600_000,
        "bitrate survives the reconfiguration"
    );
    Ok(())
}
