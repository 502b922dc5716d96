//! Opus round trips on the synthetic tone: frequency kept, beep markers on time, PLC and FEC.

use confab_engine::media::CaptureTime;
use confab_engine::media::opus_codec::{
    AudioDecoder, FRAME_SAMPLES, OpusDecoder, OpusEncoder, OpusEncoderConfig, opus_packet_has_fec,
};
use confab_engine::media::synthetic_audio::{
    SyntheticAudio, SyntheticAudioConfig, detect_beeps, goertzel_power,
};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// `seconds` of the default synthetic signal, in 20 ms frames.
fn source_frames(seconds: usize) -> TestResult<(SyntheticAudio, Vec<Vec<f32>>)> {
    let src = SyntheticAudio::new(SyntheticAudioConfig::default())?;
    let frames = (0..seconds * 50)
        .map(|i| {
            src.render(
                (i * FRAME_SAMPLES) as u64,
                FRAME_SAMPLES,
                CaptureTime::default(),
            )
            .samples
        })
        .collect();
    Ok((src, frames))
}

/// Encodes every frame; returns the packets and the encoder lookahead.
fn encode(frames: &[Vec<f32>], config: OpusEncoderConfig) -> TestResult<(Vec<Vec<u8>>, usize)> {
    let mut enc = OpusEncoder::new(config)?;
    let lookahead = enc.lookahead()?;
    let packets = frames
        .iter()
        .map(|f| enc.encode(f).map(|p| p.data))
        .collect::<Result<_, _>>()?;
    Ok((packets, lookahead))
}

/// Signal-to-error ratio of `x` against `reference`, in dB.
fn snr_db(reference: &[f32], x: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|s| f64::from(*s).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(x)
        .map(|(r, s)| f64::from(r - s).powi(2))
        .sum();
    10.0 * (signal / noise.max(1e-12)).log10()
}

#[test]
fn round_trip_keeps_tone_frequency_and_beep_timing() -> TestResult {
    let (src, frames) = source_frames(3)?;
    let (packets, lookahead) = encode(&frames, OpusEncoderConfig::default())?;
    let mut dec = OpusDecoder::new()?;
    let mut decoded = Vec::new();
    for p in &packets {
        decoded.extend(dec.decode(p)?);
    }
    let original: Vec<f32> = frames.concat();

    // Tone: between beeps (beep every 500 ms lasting 20 ms), 440 Hz dominates as in the source.
    let window =
        |s: &[f32]| s[48_000 + 2_400 + lookahead..48_000 + 2_400 + lookahead + 9_600].to_vec();
    let (orig_w, dec_w) = (window(&original), window(&decoded));
    let p_orig = goertzel_power(&orig_w, 440.0);
    let p_dec = goertzel_power(&dec_w, 440.0);
    println!("440 Hz power: source {p_orig:.5}, decoded {p_dec:.5}");
    assert!(
        (p_dec / p_orig - 1.0).abs() < 0.2,
        "tone power changed: {p_orig} -> {p_dec}"
    );
    for off in [300.0, 600.0, 880.0] {
        assert!(
            goertzel_power(&dec_w, off) < p_dec / 100.0,
            "energy at {off} Hz"
        );
    }

    // Beeps: every source beep is found in the decoded audio, delayed by the codec lookahead.
    let amp = src.config().beep_amplitude;
    let src_beeps = detect_beeps(&original, amp);
    let dec_beeps = detect_beeps(&decoded, amp);
    println!(
        "lookahead {lookahead} samples; source beeps {src_beeps:?}; decoded beeps {dec_beeps:?}"
    );
    assert_eq!(src_beeps.len(), 6);
    assert_eq!(dec_beeps.len(), src_beeps.len());
    for (s, d) in src_beeps.iter().zip(&dec_beeps) {
        let error = (*d as i64 - lookahead as i64 - *s as i64).abs();
        assert!(
            error <= 96,
            "beep at {s} decoded at {d}: off by {error} samples (> 2 ms)"
        );
    }
    Ok(())
}

#[test]
fn plc_fills_a_dropped_packet_and_fec_recovers_it() -> TestResult {
    let (_, frames) = source_frames(2)?;
    let (packets, _) = encode(&frames, OpusEncoderConfig::default())?;

    // Reference: everything received.
    let mut reference = OpusDecoder::new()?;
    let ref_frames: Vec<Vec<f32>> = packets
        .iter()
        .map(|p| reference.decode(p))
        .collect::<Result<_, _>>()?;

    // Frames near peaks of the 4 Hz syllable envelope, clear of the beeps (frames 0, 25, 50).
    for lost in [28, 40, 53, 65] {
        let mut plc = OpusDecoder::new()?;
        let mut fec = OpusDecoder::new()?;
        for p in &packets[..lost] {
            plc.decode(p)?;
            fec.decode(p)?;
        }
        let concealed = plc.conceal()?;
        let recovered = fec.decode_fec(&packets[lost + 1])?;
        assert_eq!(concealed.len(), FRAME_SAMPLES);
        assert_eq!(recovered.len(), FRAME_SAMPLES);

        let tone = goertzel_power(&ref_frames[lost], 440.0);
        let plc_tone = goertzel_power(&concealed, 440.0);
        let plc_snr = snr_db(&ref_frames[lost], &concealed);
        let fec_snr = snr_db(&ref_frames[lost], &recovered);
        println!(
            "frame {lost}: tone power {tone:.5}, PLC {plc_tone:.5}; SNR vs no-loss decode: \
             PLC {plc_snr:.1} dB, FEC {fec_snr:.1} dB"
        );
        assert!(
            plc_tone > tone * 0.1,
            "PLC should continue the tone, not go silent"
        );
        assert!(
            fec_snr > plc_snr + 6.0,
            "FEC ({fec_snr:.1} dB) should clearly beat PLC ({plc_snr:.1} dB)"
        );
        assert!(fec_snr > 15.0, "FEC recovery too poor: {fec_snr:.1} dB");
        // The decoder continues normally after either repair.
        assert_eq!(fec.decode(&packets[lost + 1])?.len(), FRAME_SAMPLES);
        assert_eq!(plc.decode(&packets[lost + 1])?.len(), FRAME_SAMPLES);
    }
    Ok(())
}

#[test]
fn fec_flag_follows_the_encoder_and_a_lost_beep_comes_back_from_fec() -> TestResult {
    let (_, frames) = source_frames(3)?;
    let (with_fec, _) = encode(&frames, OpusEncoderConfig::default())?;
    let (without, _) = encode(
        &frames,
        OpusEncoderConfig {
            inband_fec: false,
            ..OpusEncoderConfig::default()
        },
    )?;
    let flagged = with_fec.iter().filter(|p| opus_packet_has_fec(p)).count();
    let without_flag: Vec<usize> = (0..with_fec.len())
        .filter(|i| !opus_packet_has_fec(&with_fec[*i]))
        .collect();
    println!(
        "{flagged} of {} packets carry FEC; not: {without_flag:?}",
        with_fec.len()
    );
    // SILK codes LBRR only for frames its VAD calls active; the tone's 4 Hz envelope dips to
    // 10 % between "syllables".
    assert!(flagged * 2 >= with_fec.len(), "FEC in too few packets");
    assert_eq!(without.iter().filter(|p| opus_packet_has_fec(p)).count(), 0);
    assert!(!opus_packet_has_fec(&[]));

    // Each beep lies in one 20 ms frame (frames 0, 25, 50, ...): lose that frame, rebuild it
    // from the next packet's FEC, and the beep is still there; plain PLC loses it.
    let amplitude = SyntheticAudioConfig::default().beep_amplitude;
    for beep_frame in [25usize, 50, 75, 100, 125] {
        let mut fec = OpusDecoder::new()?;
        let mut plc = OpusDecoder::new()?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, p) in with_fec.iter().enumerate().take(beep_frame + 10) {
            if i == beep_frame {
                a.extend(fec.decode_fec(&with_fec[i + 1])?);
                b.extend(plc.conceal()?);
            } else {
                a.extend(fec.decode(p)?);
                b.extend(plc.decode(p)?);
            }
        }
        let at = (beep_frame * FRAME_SAMPLES) as u64;
        let window = at..at + 2 * FRAME_SAMPLES as u64;
        let heard = |x: &[f32]| {
            detect_beeps(x, amplitude)
                .iter()
                .any(|onset| window.contains(onset))
        };
        println!(
            "beep in frame {beep_frame}: FEC {}, PLC {}",
            heard(&a),
            heard(&b)
        );
        assert!(heard(&a), "beep {beep_frame} not rebuilt from FEC");
    }
    Ok(())
}

#[test]
fn dtx_sends_tiny_packets_in_silence_and_errors_are_typed() -> TestResult {
    let mut enc = OpusEncoder::new(OpusEncoderConfig::default())?;
    let silence = vec![0.0f32; FRAME_SAMPLES];
    let dtx = (0..50)
        .map(|_| enc.encode(&silence).map(|p| p.is_dtx()))
        .collect::<Result<Vec<bool>, _>>()?;
    assert!(
        dtx.iter().filter(|d| **d).count() > 25,
        "DTX should kick in during silence: {dtx:?}"
    );
    assert!(enc.encode(&silence[..100]).is_err());
    // A packet holding two 20 ms frames (TOC code 1) does not fit the one-frame contract: the
    // decoder reports it instead of overrunning or truncating.
    let mut dec = OpusDecoder::new()?;
    let one = enc.encode(&vec![0.1f32; FRAME_SAMPLES])?.data;
    let mut two = vec![(one[0] & !0x03) | 0x01];
    two.extend_from_slice(&one[1..]);
    two.extend_from_slice(&one[1..]);
    assert!(dec.decode(&two).is_err());
    Ok(())
}
