#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
//! The camera path with real frames: MJPEG encoded by `jpeg-encoder`, and YUYV, NV12 and RGB24
//! laid out by hand, all from one known picture (colour bars over a grey ramp). Each goes through
//! the same `FrameDecoder` the camera source uses and must come back as that picture; scaling,
//! cropping and corrupt input are covered too. The camera source itself (capture thread, unplug,
//! reopen, busy, no camera) runs on the in-tree fake camera system; `list_cameras()` and
//! `spawn_camera()` on the real one must simply not panic on a machine without a camera.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_engine::devices::{DeviceNotice, DeviceState, DeviceStatus};
use confab_engine::media::SourceError;
use confab_engine::media::convert::{Scaler, i420_to_rgba, psnr, rgba_to_i420};
use confab_engine::media::{CaptureTime, I420Frame};
use confab_engine::testing::FakeCameras;
use confab_engine::testing::devices::{
    CameraMode, CaptureRequest, DecodeError, FrameDecoder, PixelFormat, decode_to_i420,
};
use confab_engine::testing::devices::{list_cameras, spawn_camera, spawn_camera_with};

const W: u32 = 1280;
const H: u32 = 720;

#[path = "common/camera_frames.rs"]
mod camera_frames;

use camera_frames::{
    BARS, mjpeg_frame, noisy_mjpeg_frame, noisy_picture, nv12_frame, picture, yuyv_frame,
};

fn rgba(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

/// The picture as the pipeline's own RGB -> I420 conversion makes it.
fn reference(width: u32, height: u32) -> I420Frame {
    rgba_to_i420(
        &rgba(&picture(width, height)),
        width,
        height,
        CaptureTime(0),
    )
    .unwrap()
}

/// RGB of the pixel at (x, y) of a decoded frame.
fn rgb_at(frame: &I420Frame, x: u32, y: u32) -> [u8; 3] {
    let mut rgba = Vec::new();
    i420_to_rgba(frame, &mut rgba).unwrap();
    let i = (y * frame.width() + x) as usize * 4;
    [rgba[i], rgba[i + 1], rgba[i + 2]]
}

fn assert_close(got: [u8; 3], want: [u8; 3], tolerance: u8, what: &str) {
    let ok = got
        .iter()
        .zip(want)
        .all(|(&g, w)| g.abs_diff(w) <= tolerance);
    assert!(ok, "{what}: got {got:?}, want {want:?} (±{tolerance})");
}

/// Every bar's centre and three points of the ramp come back in colour.
fn assert_patches(frame: &I420Frame, tolerance: u8, what: &str) {
    let (w, h) = (frame.width(), frame.height());
    for (i, bar) in BARS.iter().enumerate() {
        let x = (2 * i as u32 + 1) * w / 16;
        assert_close(
            rgb_at(frame, x, h / 4),
            *bar,
            tolerance,
            &format!("{what} bar {i}"),
        );
    }
    for x in [w / 8, w / 2, w * 7 / 8] {
        let g = (x * 255 / (w - 1)) as u8;
        assert_close(
            rgb_at(frame, x, h * 3 / 4),
            [g, g, g],
            tolerance,
            &format!("{what} ramp at x={x}"),
        );
    }
}

fn decode(format: PixelFormat, data: &[u8], out: (u32, u32)) -> I420Frame {
    let mut decoder = FrameDecoder::new(out.0, out.1).unwrap();
    decoder
        .decode(format, W, H, data, CaptureTime(42))
        .unwrap_or_else(|e| panic!("{format} decode failed: {e}"))
}

#[test]
fn every_format_decodes_to_the_source_picture() {
    let reference = reference(W, H);
    let cases = [
        (PixelFormat::Mjpeg, mjpeg_frame(W, H), 30.0, 12),
        (PixelFormat::Yuyv, yuyv_frame(W, H), 35.0, 6),
        (PixelFormat::Nv12, nv12_frame(W, H), 35.0, 6),
        (PixelFormat::Rgb24, picture(W, H), 40.0, 4),
    ];
    for (format, data, psnr_floor, tolerance) in cases {
        let frame = decode(format, &data, (W, H));
        assert_eq!((frame.width(), frame.height()), (W, H));
        assert_eq!(
            frame.capture_time,
            CaptureTime(42),
            "{format} keeps its capture time"
        );
        let db = psnr(&frame, &reference).unwrap();
        println!(
            "{format}: {} bytes, PSNR {db:.1} dB against the reference",
            data.len()
        );
        assert!(db >= psnr_floor, "{format}: PSNR {db:.1} dB < {psnr_floor}");
        assert_patches(&frame, tolerance, &format.to_string());
    }
}

#[test]
fn mjpeg_with_driver_padding_decodes() {
    // V4L2 hands out the whole driver buffer: the JPEG, then whatever the buffer held before.
    let mut data = mjpeg_frame(W, H);
    data.extend(std::iter::repeat_n(0xAB, 64 * 1024));
    let frame = decode(PixelFormat::Mjpeg, &data, (W, H));
    assert!(psnr(&frame, &reference(W, H)).unwrap() >= 30.0);
}

#[test]
fn frames_are_scaled_to_the_requested_size() {
    // Same aspect ratio, smaller: a plain downscale.
    let small = decode(PixelFormat::Mjpeg, &mjpeg_frame(W, H), (640, 360));
    assert_eq!((small.width(), small.height()), (640, 360));
    let expected = Scaler::new().scale(&reference(W, H), 640, 360).unwrap();
    let db = psnr(&small, &expected).unwrap();
    assert!(db >= 28.0, "downscaled MJPEG PSNR {db:.1} dB");
    assert_patches(&small, 14, "MJPEG 640x360");

    // A camera smaller than the request: upscaled.
    let mut decoder = FrameDecoder::new(W, H).unwrap();
    let up = decoder
        .decode(
            PixelFormat::Yuyv,
            320,
            180,
            &yuyv_frame(320, 180),
            CaptureTime(1),
        )
        .unwrap();
    assert_eq!((up.width(), up.height()), (W, H));
    assert_patches(&up, 10, "YUYV 320x180 upscaled");
}

#[test]
fn other_aspect_ratios_are_centre_cropped_not_letterboxed() {
    // 16:9 camera, 4:3 request: the sides are cut (bars 0 and 7 mostly gone), no black bars.
    let frame = decode(PixelFormat::Yuyv, &yuyv_frame(W, H), (640, 480));
    assert_eq!((frame.width(), frame.height()), (640, 480));
    // The crop keeps x 160..1120 of the source, so the left edge is bar 1 (yellow) and the right
    // edge bar 6 (blue).
    assert_close(rgb_at(&frame, 4, 120), BARS[1], 8, "left edge");
    assert_close(rgb_at(&frame, 635, 120), BARS[6], 8, "right edge");
    assert_close(rgb_at(&frame, 350, 120), BARS[4], 8, "centre");
    // The bottom half is still the ramp, now from source x=160 to x=1120.
    let g = (640 * 255 / (W - 1)) as u8;
    assert_close(rgb_at(&frame, 320, 360), [g, g, g], 8, "ramp centre");
}

#[test]
fn corrupt_or_short_input_is_an_error_not_a_panic() {
    let jpeg = mjpeg_frame(320, 240);
    let t = CaptureTime(0);

    let truncated = decode_to_i420(PixelFormat::Mjpeg, 320, 240, &jpeg[..jpeg.len() / 2], t);
    assert!(
        matches!(truncated, Err(DecodeError::Truncated)),
        "{truncated:?}"
    );
    assert!(matches!(
        decode_to_i420(PixelFormat::Mjpeg, 320, 240, &[], t),
        Err(DecodeError::NotJpeg)
    ));
    assert!(matches!(
        decode_to_i420(PixelFormat::Mjpeg, 320, 240, &[0u8; 1000], t),
        Err(DecodeError::NotJpeg)
    ));
    // Every cut point: an error (or, past the end-of-image marker, a picture); never a panic.
    for cut in (0..jpeg.len()).step_by(97) {
        let result = decode_to_i420(PixelFormat::Mjpeg, 320, 240, &jpeg[..cut], t);
        assert!(result.is_err(), "cut at {cut} of {} decoded", jpeg.len());
    }
    // Flipped bytes anywhere (headers included): whatever comes out, no panic.
    let mut errors = 0;
    for pos in (2..jpeg.len()).step_by(13) {
        let mut bad = jpeg.clone();
        bad[pos] ^= 0x5A;
        errors += usize::from(decode_to_i420(PixelFormat::Mjpeg, 320, 240, &bad, t).is_err());
    }
    println!("byte flips: {errors} errors, the rest decoded with damage");

    let yuyv = yuyv_frame(320, 240);
    let short = decode_to_i420(PixelFormat::Yuyv, 320, 240, &yuyv[..yuyv.len() - 2], t);
    assert!(
        matches!(
            short,
            Err(DecodeError::BufferSize {
                expected: 153_600,
                actual: 153_598,
                ..
            })
        ),
        "{short:?}"
    );
    let nv12 = nv12_frame(320, 240);
    assert!(decode_to_i420(PixelFormat::Nv12, 320, 240, &nv12[..1000], t).is_err());
    assert!(decode_to_i420(PixelFormat::Rgb24, 320, 240, &[], t).is_err());
    assert!(matches!(
        decode_to_i420(PixelFormat::Yuyv, 0, 240, &yuyv, t),
        Err(DecodeError::ZeroSize { .. })
    ));
    assert!(FrameDecoder::new(0, 10).is_err());

    // A decoder that saw a bad frame keeps working.
    let mut decoder = FrameDecoder::new(320, 240).unwrap();
    assert!(
        decoder
            .decode(PixelFormat::Mjpeg, 320, 240, &jpeg[..100], t)
            .is_err()
    );
    assert!(
        decoder
            .decode(PixelFormat::Mjpeg, 320, 240, &jpeg, t)
            .is_ok()
    );
}

#[test]
fn listing_cameras_does_not_panic() {
    match list_cameras() {
        Ok(cameras) if cameras.is_empty() => println!("no camera on this machine"),
        Ok(cameras) => {
            for c in &cameras {
                println!(
                    "camera {:?}: {:?} (default: {})",
                    c.id, c.name, c.is_default
                );
            }
            assert_eq!(cameras.iter().filter(|c| c.is_default).count(), 1);
        }
        Err(e) => println!("cameras cannot be listed here: {e}"),
    }
}

/// A real webcam's MJPEG carries sensor noise (the fixture: [`noisy_picture`], fixed seed): such
/// a frame, several times the clean one's size, decodes to that noisy picture at full size and
/// downscaled, with every bar and the ramp in place. (What decoding costs per frame is measured
/// by `benches/camera_decode.rs`.)
#[test]
fn a_noisy_webcam_frame_decodes_to_its_picture_at_both_sizes() {
    println!("noise seed {:#x}", camera_frames::NOISE_SEED);
    let clean = mjpeg_frame(W, H);
    let noisy = noisy_mjpeg_frame(W, H);
    println!(
        "clean MJPEG frame {} KB, noisy {} KB",
        clean.len() / 1024,
        noisy.len() / 1024
    );
    assert!(
        noisy.len() > 2 * clean.len(),
        "the noise makes the JPEG bigger, as a camera's is"
    );
    let full_reference = rgba_to_i420(&rgba(&noisy_picture(W, H)), W, H, CaptureTime(0)).unwrap();
    for (out_w, out_h, psnr_floor, tolerance) in [(W, H, 30.0, 28), (640, 360, 30.0, 20)] {
        let frame = decode(PixelFormat::Mjpeg, &noisy, (out_w, out_h));
        assert_eq!((frame.width(), frame.height()), (out_w, out_h));
        assert_eq!(frame.capture_time, CaptureTime(42));
        let expected = if (out_w, out_h) == (W, H) {
            full_reference.clone()
        } else {
            Scaler::new().scale(&full_reference, out_w, out_h).unwrap()
        };
        let db = psnr(&frame, &expected).unwrap();
        println!("noisy MJPEG -> {out_w}x{out_h}: PSNR {db:.1} dB against the noisy picture");
        assert!(
            db >= psnr_floor,
            "{out_w}x{out_h}: PSNR {db:.1} dB < {psnr_floor}"
        );
        assert_patches(&frame, tolerance, &format!("noisy MJPEG {out_w}x{out_h}"));
    }
}

type Notices = Arc<Mutex<Vec<DeviceNotice>>>;

fn recorder() -> (DeviceStatus, Notices) {
    let notices = Notices::default();
    let sink = Arc::clone(&notices);
    (
        Arc::new(move |n: DeviceNotice| sink.lock().unwrap().push(n)),
        notices,
    )
}

fn states(notices: &Notices) -> Vec<DeviceState> {
    notices.lock().unwrap().iter().map(|n| n.state).collect()
}

/// A typical USB 2 webcam: MJPEG at 720p30, YUYV only at 10 fps there.
fn webcam(name: &str) -> FakeCameras {
    let mode = |format, width, height, fps| CameraMode {
        format,
        width,
        height,
        fps,
    };
    let cameras = FakeCameras::new();
    cameras.add(
        name,
        &[
            mode(PixelFormat::Yuyv, 1280, 720, 10),
            mode(PixelFormat::Yuyv, 640, 480, 30),
            mode(PixelFormat::Mjpeg, 1280, 720, 30),
        ],
    );
    cameras.set_frame(name, PixelFormat::Mjpeg, W, H, mjpeg_frame(W, H));
    cameras
}

const HD: CaptureRequest = CaptureRequest {
    width: W,
    height: H,
    fps: 30,
};

const WAIT: Duration = Duration::from_secs(10);

/// Receives until `accept` says yes, giving up after [`WAIT`].
fn recv_until(
    rx: &confab_engine::media::drop_oldest::DropOldestReceiver<I420Frame>,
    accept: impl Fn(&I420Frame) -> bool,
) -> I420Frame {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = rx.recv_timeout(left).expect("no matching frame in time");
        if accept(&frame) {
            return frame;
        }
    }
}

fn is_black(frame: &I420Frame) -> bool {
    frame.y().iter().all(|&y| y == 16)
}

#[test]
fn a_camera_streams_frames_of_the_requested_size() {
    let cameras = webcam("Fake HD");
    let (status, notices) = recorder();
    let request = CaptureRequest {
        width: 640,
        height: 360,
        fps: 30,
    };
    let mut last = CaptureTime::now();
    let (thread, rx) = spawn_camera_with(cameras, "Fake HD", request, status, 2).unwrap();
    let expected = Scaler::new().scale(&reference(W, H), 640, 360).unwrap();
    for _ in 0..5 {
        let frame = rx.recv_timeout(WAIT).expect("a frame");
        assert_eq!((frame.width(), frame.height()), (640, 360));
        assert!(psnr(&frame, &expected).unwrap() >= 28.0);
        assert!(frame.capture_time > last, "capture times increase");
        last = frame.capture_time;
    }
    thread.stop().unwrap();
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].state, DeviceState::Running);
    assert_eq!(notices[0].message, "Camera \"Fake HD\" is on");
}

#[test]
fn an_unplugged_camera_is_reported_and_reopened() {
    let cameras = webcam("Fake HD");
    let (status, notices) = recorder();
    let (thread, rx) = spawn_camera_with(cameras.clone(), "0", HD, status, 2).unwrap();
    recv_until(&rx, |f| !is_black(f));
    assert_eq!(cameras.starts(), 1);

    cameras.set_plugged("Fake HD", false);
    // While it is gone the source keeps handing out black frames (so stopping stays prompt).
    let placeholder = recv_until(&rx, is_black);
    assert_eq!((placeholder.width(), placeholder.height()), (W, H));
    assert_eq!(states(&notices), [DeviceState::Running, DeviceState::Lost]);
    let lost = notices.lock().unwrap()[1].clone();
    assert_eq!(
        lost.message,
        "Camera \"Fake HD\" was disconnected; waiting for it to come back"
    );
    // Several reopen attempts fail quietly (one notice), then it comes back.
    let attempts = cameras.counts().lists;
    assert!(
        cameras.wait_counts(WAIT, |c| c.lists >= attempts + 3),
        "the source does not retry opening the camera"
    );
    assert_eq!(states(&notices).len(), 2);
    cameras.set_plugged("Fake HD", true);
    let back = recv_until(&rx, |f| !is_black(f));
    assert!(psnr(&back, &reference(W, H)).unwrap() >= 30.0);
    assert_eq!(
        states(&notices),
        [
            DeviceState::Running,
            DeviceState::Lost,
            DeviceState::Running
        ]
    );
    assert_eq!(cameras.starts(), 2);
    thread.stop().unwrap();
}

#[test]
fn stopping_while_the_camera_is_lost_does_not_hang() {
    let cameras = webcam("Fake HD");
    let (status, _notices) = recorder();
    let (thread, rx) = spawn_camera_with(cameras.clone(), "0", HD, status, 2).unwrap();
    recv_until(&rx, |f| !is_black(f));
    cameras.set_plugged("Fake HD", false);
    recv_until(&rx, is_black);
    let started = Instant::now();
    thread.stop().unwrap();
    let took = started.elapsed();
    println!("stopped {took:?} after asking, camera lost");
    // A hang guard, not a speed check: the lost camera's placeholder frames are 1/30 s apart.
    assert!(took < WAIT, "stopping took {took:?}");
}

#[test]
fn corrupt_frames_are_dropped_and_capture_goes_on() {
    let cameras = webcam("Fake HD");
    let (status, notices) = recorder();
    let (thread, rx) = spawn_camera_with(cameras.clone(), "0", HD, status, 2).unwrap();
    recv_until(&rx, |f| !is_black(f));
    cameras.set_corrupt("Fake HD", true);
    // Once the camera has handed out a corrupt frame, every good one before it has been decoded
    // and queued (the capture thread reads, decodes and sends in turn): drain those, then
    // nothing arrives while every frame is bad. The 500 ms is a stretch of time on purpose: an
    // absence is what is checked.
    assert!(
        cameras.wait_counts(WAIT, |c| c.corrupt_frames > 0),
        "the camera never handed out a corrupt frame"
    );
    while rx.try_recv().is_ok() {}
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    cameras.set_corrupt("Fake HD", false);
    recv_until(&rx, |f| !is_black(f));
    assert_eq!(states(&notices), [DeviceState::Running]);
    thread.stop().unwrap();
}

#[test]
fn open_failures_end_the_thread_with_a_readable_reason() {
    let cameras = webcam("Fake HD");
    cameras.set_busy("Fake HD", true);
    let (status, notices) = recorder();
    let (thread, _rx) = spawn_camera_with(cameras.clone(), "0", HD, status, 2).unwrap();
    match thread.stop() {
        Err(SourceError::Device(message)) => {
            assert_eq!(
                message,
                "Camera \"Fake HD\" is busy; close other apps that use it"
            );
        }
        other => panic!("expected a device error, got {other:?}"),
    }
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].state, DeviceState::Absent);

    let (status, _) = recorder();
    let (thread, _rx) = spawn_camera_with(FakeCameras::new(), "0", HD, status, 2).unwrap();
    assert!(matches!(thread.stop(), Err(SourceError::Device(m)) if m == "No camera found"));

    let (status, _) = recorder();
    let (thread, _rx) = spawn_camera_with(cameras, "Other Cam", HD, status, 2).unwrap();
    assert!(
        matches!(thread.stop(), Err(SourceError::Device(m)) if m == "Camera \"Other Cam\" not found")
    );
}

#[test]
fn the_real_camera_path_without_a_camera_is_an_error_not_a_panic() {
    let (status, notices) = recorder();
    let (thread, _rx) = spawn_camera("no-such-camera", W, H, 30, status, 2).unwrap();
    let result = thread.stop();
    println!("spawn_camera on this machine: {result:?}");
    assert!(matches!(result, Err(SourceError::Device(_))));
    assert_eq!(states(&notices), [DeviceState::Absent]);
}
