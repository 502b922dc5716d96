//! Capture threads: named, bounded, drop-oldest, stop cleanly, report source errors. No timing
//! thresholds: the tests wait on events, never on the wall clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use confab_engine::media::frame::{AudioFrame, CaptureTime, I420Frame};
use confab_engine::media::source::{
    AudioSource, Pacing, SourceError, VideoSource, spawn_audio, spawn_video, spawn_video_with,
};
use confab_engine::media::synthetic_audio::{SyntheticAudio, SyntheticAudioConfig};
use confab_engine::media::synthetic_video::{SyntheticVideo, read_marker};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A self-paced (device-like) source that counts frames and fails after `fail_after`.
struct CountingCamera {
    produced: Arc<AtomicU32>,
    pattern: SyntheticVideo,
    fail_after: u32,
    thread_name: Arc<std::sync::Mutex<Option<String>>>,
}

impl VideoSource for CountingCamera {
    fn name(&self) -> String {
        "counting".into()
    }
    fn pacing(&self) -> Pacing {
        Pacing::SelfPaced
    }
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        if let Ok(mut name) = self.thread_name.lock() {
            *name = std::thread::current().name().map(str::to_string);
        }
        let n = self.produced.load(Ordering::SeqCst);
        if n >= self.fail_after {
            return Err(SourceError::Device("unplugged".into()));
        }
        // Slow the producer a little so the consumer's wait loop is not a pure spin.
        std::thread::yield_now();
        self.produced.store(n + 1, Ordering::SeqCst);
        Ok(self.pattern.render(n, CaptureTime::now()))
    }
}

#[test]
fn slow_consumer_gets_newest_frames_and_errors_end_capture() -> TestResult {
    let produced = Arc::new(AtomicU32::new(0));
    let thread_name = Arc::new(std::sync::Mutex::new(None));
    let camera = CountingCamera {
        produced: Arc::clone(&produced),
        pattern: SyntheticVideo::new(160, 64, 30)?,
        fail_after: 20,
        thread_name: Arc::clone(&thread_name),
    };
    let (thread, rx) = spawn_video(camera, 2)?;
    // Do not consume until the source has produced everything it will (it then fails).
    while !thread.is_finished() {
        std::thread::yield_now();
    }
    let frames: Vec<u32> = rx
        .try_iter()
        .map(|f| read_marker(&f).map(|m| m.frame_number))
        .collect::<Result<_, _>>()?;
    assert_eq!(produced.load(Ordering::SeqCst), 20);
    assert_eq!(frames, vec![18, 19], "only the newest frames are kept");
    assert_eq!(thread.dropped_frames(), 18);
    assert_eq!(
        thread_name.lock().map_err(|_| "poisoned")?.as_deref(),
        Some("confab-video-counting")
    );
    // Once the thread is gone the channel reports disconnection instead of blocking forever.
    assert!(rx.recv().is_err());
    match thread.stop() {
        Err(SourceError::Device(msg)) => assert_eq!(msg, "unplugged"),
        other => return Err(format!("expected the device error, got {other:?}").into()),
    }
    Ok(())
}

#[test]
fn paced_synthetic_sources_deliver_ordered_stamped_frames() -> TestResult {
    let (video, vrx) = spawn_video(SyntheticVideo::new(320, 240, 100)?, 4)?;
    let (audio, arx) = spawn_audio(SyntheticAudio::new(SyntheticAudioConfig::default())?, 4)?;
    let mut last: Option<(u32, CaptureTime)> = None;
    for _ in 0..5 {
        let f = vrx.recv()?;
        let m = read_marker(&f)?;
        assert_eq!(m.capture_time_near(CaptureTime::now()), f.capture_time);
        if let Some((n, t)) = last {
            assert!(m.frame_number > n && f.capture_time > t);
        }
        last = Some((m.frame_number, f.capture_time));
    }
    let a: AudioFrame = arx.recv()?;
    let b: AudioFrame = arx.recv()?;
    assert_eq!(a.samples.len(), 960);
    assert!(b.capture_time > a.capture_time);
    // Capture times share one clock across threads.
    let video_time = last.map(|(_, t)| t).ok_or("no video frames")?;
    assert!(a.capture_time <= CaptureTime::now() && video_time <= CaptureTime::now());
    video.stop()?;
    audio.stop()?;
    Ok(())
}

#[test]
fn dropping_the_receiver_stops_the_thread() -> TestResult {
    let (thread, rx) = spawn_audio(SyntheticAudio::new(SyntheticAudioConfig::default())?, 1)?;
    rx.recv()?;
    drop(rx);
    // The runner notices on its next send and exits without error.
    while !thread.is_finished() {
        std::thread::yield_now();
    }
    thread.stop()?;
    // Sources also work without a thread (deterministic tests drive them directly).
    let mut direct = SyntheticAudio::new(SyntheticAudioConfig::default())?;
    assert_eq!(AudioSource::next_frame(&mut direct)?.samples.len(), 960);
    Ok(())
}

/// A source holding a non-`Send` handle, like nokhwa's `Camera`.
struct ThreadBoundCamera {
    handle: std::rc::Rc<std::cell::Cell<u32>>,
    pattern: SyntheticVideo,
}

impl VideoSource for ThreadBoundCamera {
    fn name(&self) -> String {
        "bound".into()
    }
    fn pacing(&self) -> Pacing {
        Pacing::Interval(std::time::Duration::from_millis(5))
    }
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        let n = self.handle.get();
        self.handle.set(n + 1);
        Ok(self.pattern.render(n, CaptureTime::now()))
    }
}

#[test]
fn non_send_devices_are_built_on_their_capture_thread() -> TestResult {
    let (thread, rx) = spawn_video_with("confab-video-bound", 2, || {
        Ok(ThreadBoundCamera {
            handle: std::rc::Rc::new(std::cell::Cell::new(0)),
            pattern: SyntheticVideo::new(160, 64, 30)?,
        })
    })?;
    assert_eq!(read_marker(&rx.recv()?)?.frame_number, 0);
    thread.stop()?;

    // A failing factory (device missing) ends the thread with its error.
    let (thread, rx) = spawn_video_with("confab-video-missing", 2, || {
        Err::<ThreadBoundCamera, _>(SourceError::Device("no camera".into()))
    })?;
    assert!(rx.recv().is_err());
    assert!(matches!(thread.stop(), Err(SourceError::Device(_))));
    Ok(())
}
