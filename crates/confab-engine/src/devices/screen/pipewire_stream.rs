//! The PipeWire stream of a screen the portal granted, read on its own thread and turned into
//! frames to send.
//!
//! Owns the `confab-pipewire` thread: a PipeWire main loop connected through the portal's
//! remote (the one connection that may read the granted node), one video stream linked to the
//! node, asking for packed 8-bit RGB (`BGRx`, `BGRA`, `RGBx`, `RGBA`) at most at the share's
//! frame rate. No DMA-BUF modifiers are offered, so producers send mappable memory (MemFd or
//! MemPtr, mapped by PipeWire for us): one copy on the compositor's side instead of a GPU
//! import. Every picture is converted and fitted to 1080p on this thread ([`ScreenConverter`])
//! — none is skipped, as a compositor sends only on change and the last picture of a scroll
//! may be the last for a while — and sent on a one-slot drop-oldest queue, so a slow encoder
//! never holds the compositor's buffers.
//!
//! Contract: [`PipeWireStream::start`] returns once the stream is connected (or with why not).
//! Pictures the producer marks corrupted or empty (cursor-only updates, damage with no
//! content), unmapped (DMA-BUF) or bottom-up (negative stride) are skipped, the last two said
//! once in the log; the chunk's offset and size bound what is read. When the stream fails, is unlinked or the daemon goes away,
//! [`PipeWireStream::ended`] says why; dropping it stops the loop and joins the thread.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use pipewire as pw;
use pw::spa;
use pw::spa::param::video::VideoFormat;
use tracing::{debug, info, warn};

use super::ScreenError;
use super::bgra_to_i420::{ByteOrder, ScreenConverter};
use crate::media::drop_oldest::DropOldestSender;
use crate::media::{CaptureTime, I420Frame};

/// Largest picture side asked for.
const MAX_SIDE: u32 = 8192;

/// Why the stream ended, once it has (shared with the loop's callbacks).
type Ended = Arc<Mutex<Option<ScreenError>>>;

/// A running PipeWire screen stream; stopped when dropped.
pub(super) struct PipeWireStream {
    quit: Option<pw::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    ended: Ended,
}

impl std::fmt::Debug for PipeWireStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeWireStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl PipeWireStream {
    /// Connects through `remote` to node `node_id` and starts reading it at up to `fps` pictures
    /// a second (the producer sends fewer when nothing changes), sending frames on `frames`.
    /// `size` is the portal's word on the picture's size (the default asked for).
    ///
    /// # Errors
    /// [`ScreenError::PipeWire`] when the loop, the connection or the stream cannot be set up.
    pub(super) fn start(
        remote: OwnedFd,
        node_id: u32,
        fps: u32,
        size: Option<(u32, u32)>,
        frames: DropOldestSender<I420Frame>,
    ) -> Result<Self, ScreenError> {
        let ended: Ended = Arc::new(Mutex::new(None));
        let (quit_tx, quit_rx) = pw::channel::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let loop_ended = Arc::clone(&ended);
        let thread = std::thread::Builder::new()
            .name("confab-pipewire".to_owned())
            .spawn(move || {
                let request = StreamRequest { node_id, fps, size };
                if let Err(e) = run_loop(remote, request, frames, quit_rx, &loop_ended, &ready_tx) {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| ScreenError::PipeWire(format!("cannot start a thread: {e}")))?;
        let mut stream = Self {
            quit: Some(quit_tx),
            thread: Some(thread),
            ended,
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                stream.quit.take();
                Err(ScreenError::PipeWire(
                    "the PipeWire thread stopped while connecting".to_owned(),
                ))
            }
        }
    }

    /// Why the stream ended, if it has (taken: asked once).
    pub(super) fn ended(&self) -> Option<ScreenError> {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Whether the loop's thread has stopped.
    pub(super) fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for PipeWireStream {
    fn drop(&mut self) {
        if let Some(quit) = self.quit.take() {
            let _ = quit.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("the PipeWire thread panicked");
        }
    }
}

/// What to ask the node for.
#[derive(Clone, Copy)]
struct StreamRequest {
    node_id: u32,
    fps: u32,
    size: Option<(u32, u32)>,
}

/// What the stream's callbacks keep.
struct StreamState {
    format: spa::param::video::VideoInfoRaw,
    /// The negotiated layout: byte order, width, height; `None` before (or for a format we
    /// do not read).
    layout: Option<(ByteOrder, u32, u32)>,
    converter: ScreenConverter,
    frames: DropOldestSender<I420Frame>,
    ended: Ended,
    mainloop: pw::main_loop::MainLoopRc,
    /// A picture failed to convert (said once, not per frame).
    warned: bool,
    /// A picture whose last row has no padding, copied out whole-stride (reused).
    padded: Vec<u8>,
}

impl StreamState {
    /// Logs `what` the first time something goes wrong with a picture (not once per frame).
    fn warn_once(&mut self, what: &str) {
        if !self.warned {
            warn!("screen picture from PipeWire: {what}");
            self.warned = true;
        }
    }

    /// Records why the stream ended (the first reason wins) and stops the loop.
    fn end(&self, why: ScreenError) {
        let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        if ended.is_none() {
            *ended = Some(why);
        }
        self.mainloop.quit();
    }
}

/// `pixels`, or a copy in `padded` filled out to `stride` x `height` when the producer left the
/// last row's padding out (the conversion walks whole strides).
fn whole_strides<'a>(
    pixels: &'a [u8],
    padded: &'a mut Vec<u8>,
    stride: u32,
    height: u32,
) -> &'a [u8] {
    let whole = stride as usize * height as usize;
    if pixels.len() >= whole || pixels.len() + stride as usize <= whole {
        // Whole already, or short by more than one row's padding: as it is (the conversion
        // refuses a short one).
        return pixels;
    }
    padded.clear();
    padded.extend_from_slice(pixels);
    padded.resize(whole, 0);
    padded
}

/// Sets up the loop, the connection and the stream, says so on `ready`, and runs until told to
/// quit or the stream ends.
fn run_loop(
    remote: OwnedFd,
    request: StreamRequest,
    frames: DropOldestSender<I420Frame>,
    quit: pw::channel::Receiver<()>,
    ended: &Ended,
    ready: &std::sync::mpsc::Sender<Result<(), ScreenError>>,
) -> Result<(), ScreenError> {
    let failed = |what: &str, e: pw::Error| ScreenError::PipeWire(format!("{what}: {e}"));
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(|e| failed("main loop", e))?;
    let context = pw::context::ContextRc::new(&mainloop, None).map_err(|e| failed("context", e))?;
    let core = context
        .connect_fd_rc(remote, None)
        .map_err(|e| failed("connecting through the portal's remote", e))?;
    let core_ended = Arc::clone(ended);
    let core_loop = mainloop.clone();
    let _core_listener = core
        .add_listener_local()
        .error(move |id, _seq, _res, message| {
            if id == pw::core::PW_ID_CORE {
                let mut ended = core_ended.lock().unwrap_or_else(PoisonError::into_inner);
                if ended.is_none() {
                    *ended = Some(ScreenError::PipeWire(format!(
                        "the connection to PipeWire failed: {message}"
                    )));
                }
                core_loop.quit();
            }
        })
        .register();
    let stream = pw::stream::StreamRc::new(
        core,
        "confab-screen-share",
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_ROLE => "Screen",
        },
    )
    .map_err(|e| failed("creating the stream", e))?;
    let state = StreamState {
        format: spa::param::video::VideoInfoRaw::default(),
        layout: None,
        converter: ScreenConverter::default(),
        frames,
        ended: Arc::clone(ended),
        mainloop: mainloop.clone(),
        warned: false,
        padded: Vec::new(),
    };
    let _listener = stream
        .add_local_listener_with_user_data(state)
        .state_changed(|_, state, old, new| {
            debug!(?old, ?new, "screen stream state");
            match new {
                pw::stream::StreamState::Error(message) => {
                    state.end(ScreenError::PipeWire(message));
                }
                pw::stream::StreamState::Unconnected => state.end(ScreenError::PortalEnded),
                _ => {}
            }
        })
        .param_changed(|_, state, id, param| {
            let Some(param) = param else { return };
            if id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            if let Err(e) = state.format.parse(param) {
                state.end(ScreenError::PipeWire(format!(
                    "the stream's format cannot be read: {e}"
                )));
                return;
            }
            let order = match state.format.format() {
                VideoFormat::BGRx | VideoFormat::BGRA => ByteOrder::Bgrx,
                VideoFormat::RGBx | VideoFormat::RGBA => ByteOrder::Rgbx,
                other => {
                    state.end(ScreenError::Unsupported(format!(
                        "the desktop offers the screen as {other:?}"
                    )));
                    return;
                }
            };
            let size = state.format.size();
            info!(format = ?state.format.format(), width = size.width, height = size.height,
                "screen stream format");
            state.layout = Some((order, size.width, size.height));
        })
        .process(|stream, state| {
            if let Some(mut buffer) = stream.dequeue_buffer()
                && let Some((order, width, height)) = state.layout
            {
                let captured = CaptureTime::now();
                let Some(data) = buffer.datas_mut().first_mut() else {
                    return;
                };
                let chunk = data.chunk();
                if chunk.size() == 0 || chunk.flags().contains(spa::buffer::ChunkFlags::CORRUPTED) {
                    return;
                }
                let (offset, size) = (chunk.offset() as usize, chunk.size() as usize);
                let stride = match chunk.stride() {
                    0 => width * 4,
                    s if s > 0 => s.unsigned_abs(),
                    _ => {
                        state.warn_once("a bottom-up picture (negative stride) is not read");
                        return;
                    }
                };
                // DMA-BUF data is not mapped (`data()` is None): never asked for, see the
                // module docs.
                let Some(mapped) = data.data() else {
                    state.warn_once("a picture PipeWire did not map (DMA-BUF?) is not read");
                    return;
                };
                let Some(pixels) = mapped
                    .len()
                    .checked_sub(offset)
                    .map(|left| &mapped[offset..offset + left.min(size)])
                else {
                    return;
                };
                let pixels = whole_strides(pixels, &mut state.padded, stride, height);
                match state
                    .converter
                    .convert(pixels, (width, height, stride), order, captured)
                {
                    Ok(frame) => {
                        state.frames.send(frame);
                    }
                    Err(e) => state.warn_once(&format!("a picture cannot be converted: {e}")),
                }
            }
        })
        .register()
        .map_err(|e| failed("listening to the stream", e))?;
    let format = format_request(&request)?;
    let mut params = [spa::pod::Pod::from_bytes(&format)
        .ok_or_else(|| ScreenError::PipeWire("the format request does not parse".to_owned()))?];
    stream
        .connect(
            spa::utils::Direction::Input,
            Some(request.node_id),
            pw::stream::StreamFlags::AUTOCONNECT
                | pw::stream::StreamFlags::MAP_BUFFERS
                | pw::stream::StreamFlags::DONT_RECONNECT,
            &mut params,
        )
        .map_err(|e| failed("connecting the stream to the screen", e))?;
    let quit_loop = mainloop.clone();
    let _quit = quit.attach(mainloop.loop_(), move |()| quit_loop.quit());
    let _ = ready.send(Ok(()));
    mainloop.run();
    Ok(())
}

/// The `EnumFormat` the stream asks for: raw video in the four packed RGB layouts, any size up
/// to [`MAX_SIDE`] (the portal's size preferred), `fps` pictures a second preferred (up to 60
/// accepted, so a producer with a fixed rate still links) and at most `fps` from a producer that
/// sends on change (`maxFramerate`: compositors pace themselves to it).
fn format_request(request: &StreamRequest) -> Result<Vec<u8>, ScreenError> {
    use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
    use spa::utils::{Fraction, Rectangle};
    let (width, height) = request.size.unwrap_or((1920, 1080));
    let fps = request.fps.clamp(1, 60);
    let object = spa::pod::object!(
        spa::utils::SpaTypes::ObjectParamFormat,
        spa::param::ParamType::EnumFormat,
        spa::pod::property!(FormatProperties::MediaType, Id, MediaType::Video),
        spa::pod::property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        spa::pod::property!(
            FormatProperties::VideoFormat,
            Choice,
            Enum,
            Id,
            VideoFormat::BGRx,
            VideoFormat::BGRx,
            VideoFormat::BGRA,
            VideoFormat::RGBx,
            VideoFormat::RGBA
        ),
        spa::pod::property!(
            FormatProperties::VideoSize,
            Choice,
            Range,
            Rectangle,
            Rectangle {
                width: width.clamp(1, MAX_SIDE),
                height: height.clamp(1, MAX_SIDE)
            },
            Rectangle {
                width: 1,
                height: 1
            },
            Rectangle {
                width: MAX_SIDE,
                height: MAX_SIDE
            }
        ),
        spa::pod::property!(
            FormatProperties::VideoFramerate,
            Choice,
            Range,
            Fraction,
            Fraction { num: fps, denom: 1 },
            Fraction { num: 0, denom: 1 },
            Fraction { num: 60, denom: 1 }
        ),
        spa::pod::property!(
            FormatProperties::VideoMaxFramerate,
            Choice,
            Range,
            Fraction,
            Fraction { num: fps, denom: 1 },
            Fraction { num: 1, denom: 1 },
            Fraction { num: fps, denom: 1 }
        ),
    );
    spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(object),
    )
    .map(|(cursor, _)| cursor.into_inner())
    .map_err(|e| ScreenError::PipeWire(format!("the format request: {e:?}")))
}
