//! The app: persisted settings, the one engine, and which screen shows.
//!
//! What each engine event does to the model is in the sibling `engine_events` module.
//!
//! The UI thread never blocks on the engine: each frame drains engine events and decoded frames
//! with `try_recv`, updates its model, and draws. The engine wakes the UI (repaint) when
//! something arrives, so an idle lobby or a call without new frames does not spin.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use eframe::egui;
use eframe::egui_wgpu::RenderState;
use signaling_client::ParticipantId;

use super::active_speaker::ActiveSpeaker;
use super::settings::{Settings, ThemeChoice};
use super::settings_file::{Loaded, SettingsFile};
use super::ui_timing::{FrameTime, UiTiming};
use super::video::{Source, Upload, VideoTextures};
use crate::host::HostedServer;
use confab_engine::devices::{DeviceKind, DeviceList, DeviceNotice};
use confab_engine::media::NullSink;
use confab_engine::{AudioOutput, VideoInput};
use confab_engine::{
    CallState, Engine, EngineCommand, EngineConfig, EngineEvent, LinkState, ParticipantStats,
};

/// eframe storage key under which versions before the settings file kept [`Settings`] (read
/// once, to migrate them).
const LEGACY_SETTINGS_KEY: &str = "confab-settings";
/// How long a toast stays.
const TOAST_TIME: Duration = Duration::from_secs(4);

/// How the app is started (tests use loopback addresses and a small picture).
#[derive(Clone)]
pub struct AppOptions {
    /// The engine's configuration (name and sources are taken from the settings).
    pub engine: EngineConfig,
    /// Where "Host a call" listens (`0.0.0.0` to be reachable from the LAN).
    pub host_bind: IpAddr,
    /// Join this right away (a `confab://` link or `--join`): address and room.
    pub join_now: Option<(String, Option<String>)>,
    /// Use real cameras, microphones and speakers by default and watch for hot-plug. Off, the
    /// defaults are the test sources and no sound (UI tests).
    pub devices: bool,
    /// The settings file (read at start, created on first launch, written when settings
    /// change). `None`: settings live only as long as the app (tests).
    pub settings_file: Option<PathBuf>,
    /// eframe's window-state file (size, position, UI memory). `None`: eframe's default place.
    pub window_state_file: Option<PathBuf>,
    /// A message the lobby shows at start (a `confab://` link that could not be used).
    pub lobby_message: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            engine: EngineConfig::new("me"),
            host_bind: IpAddr::from([0, 0, 0, 0]),
            join_now: None,
            devices: true,
            settings_file: None,
            window_state_file: None,
            lobby_message: None,
        }
    }
}

/// A remote participant as the call view shows it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Display name.
    pub name: String,
    /// Microphone on.
    pub mic: bool,
    /// Camera on.
    pub camera: bool,
    /// Connection state.
    pub link: LinkState,
    /// Latest statistics.
    pub stats: Option<ParticipantStats>,
    /// The verification code of our connection with it.
    pub code: Option<String>,
    /// It shares its screen.
    pub sharing: bool,
}

/// One chat line.
#[derive(Debug, Clone)]
pub struct ChatLine {
    /// Sender's name.
    pub name: String,
    /// Text.
    pub text: String,
    /// When.
    pub at: SystemTime,
    /// Sent by us.
    pub mine: bool,
    /// Why this message of ours did not reach anyone (shown in red under it); `None` once it
    /// went out.
    pub not_delivered: Option<String>,
    /// Not a message but a note from the app about the chat (a message that did not reach
    /// someone).
    pub notice: bool,
}

impl ChatLine {
    /// A message as sent (ours when `mine`) or received.
    pub fn message(name: String, text: String, at: SystemTime, mine: bool) -> Self {
        Self {
            name,
            text,
            at,
            mine,
            not_delivered: None,
            notice: false,
        }
    }

    /// A message of ours that reached nobody, and why.
    pub fn not_sent(text: String, why: String) -> Self {
        Self {
            not_delivered: Some(why),
            ..Self::message(String::new(), text, SystemTime::now(), true)
        }
    }

    /// A note from the app about the chat, now.
    pub fn notice(text: String) -> Self {
        Self {
            notice: true,
            ..Self::message(String::new(), text, SystemTime::now(), false)
        }
    }
}

/// The call in progress.
#[derive(Debug)]
pub struct Call {
    /// The room.
    pub room: String,
    /// Our id.
    pub my_id: Option<ParticipantId>,
    /// When we got in.
    pub started: Instant,
    /// Everyone else, in the order they appeared.
    pub remotes: BTreeMap<ParticipantId, Remote>,
    /// Order of arrival (for a stable grid).
    pub order: Vec<ParticipantId>,
    /// Chat history.
    pub chat: Vec<ChatLine>,
    /// Our microphone is on.
    pub mic_on: bool,
    /// Our camera is on.
    pub camera_on: bool,
    /// Signaling is reconnecting.
    pub reconnecting: bool,
    /// Unread chat lines while the panel is closed.
    pub unread: usize,
    /// Who is talking, and who has the big tile in the speaker view.
    pub speakers: ActiveSpeaker,
    /// Grid or speaker view.
    pub layout: TileLayout,
    /// The participant pinned to the big tile (a click on a tile pins and unpins).
    pub pinned: Option<ParticipantId>,
    /// Who presents: the participant sharing its screen (shown large, cameras in a strip).
    pub presenter: Option<ParticipantId>,
    /// Our own screen share, while it runs: what is shared.
    pub sharing: Option<String>,
    /// The shared screen at its own size (scrollable) instead of fitted.
    pub screen_actual_size: bool,
}

/// How the tiles are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TileLayout {
    /// Everybody the same size.
    #[default]
    Grid,
    /// One large tile (the pinned participant, else the active speaker), the others in a strip.
    Speaker,
}

impl Call {
    /// Who the speaker view shows large: the pinned participant, else the active speaker,
    /// else the first to arrive.
    pub fn spotlight(&self) -> Option<&ParticipantId> {
        self.pinned
            .as_ref()
            .or(self.speakers.active())
            .filter(|id| self.remotes.contains_key(*id))
            .or(self.order.first())
    }

    /// Whether `id` is talking now (the tile highlight).
    pub fn speaking(&self, id: &ParticipantId) -> bool {
        self.speakers.speaking(id)
    }
}

/// Which screen shows.
#[derive(Debug)]
pub enum Screen {
    /// Pick a name and a room; host or join.
    Lobby,
    /// Waiting for the signaling server.
    Connecting {
        /// Where to.
        target: String,
        /// Since when.
        since: Instant,
    },
    /// In a call.
    InCall(Box<Call>),
    /// "Test my call" is running or shows its result.
    Check(Box<crate::call_check::CallCheck>),
    /// The call is over.
    Ended {
        /// How long it lasted.
        duration: Option<Duration>,
        /// Why it ended, worded for the person.
        reason: String,
    },
}

/// A short message in the corner.
#[derive(Debug, Clone)]
pub struct Toast {
    /// Text.
    pub text: String,
    /// When it appeared.
    pub at: Instant,
}

/// The Confab desktop app.
pub struct ConfabApp {
    /// Persisted settings.
    pub settings: Settings,
    /// Where they are persisted (none in tests).
    settings_file: Option<SettingsFile>,
    /// eframe's storage still holds an older version's settings, now in the settings file.
    legacy_in_storage: bool,
    pub(super) engine: Engine,
    pub(super) options: AppOptions,
    /// Current screen.
    pub screen: Screen,
    pub(super) videos: VideoTextures,
    pub(super) hosted: Option<HostedServer>,
    /// A lobby error to show.
    pub lobby_error: Option<String>,
    pub(super) toasts: Vec<Toast>,
    pub(super) mic_level_db: f32,
    /// Chat panel open.
    pub chat_open: bool,
    /// Participants panel open (it and the chat share the right side: one at a time).
    pub people_open: bool,
    /// Stats overlay open.
    pub stats_open: bool,
    /// Device switcher open (in a call).
    pub devices_open: bool,
    /// The settings window is open (lobby or call).
    pub settings_open: bool,
    pub(super) chat_input: String,
    pub(super) password: String,
    pub(super) applied_theme: Option<ThemeChoice>,
    pub(super) title: String,
    pub(super) focus_name: bool,
    /// A tile clicked at this time, pinned once no second click makes it a double click.
    pub(super) pending_pin: Option<(ParticipantId, Instant)>,
    /// Give the chat field the keyboard the next time the chat panel draws (it was opened).
    pub(super) focus_chat_input: bool,
    /// The host asked to leave a call others are in: "Leave" or "End for everyone" shows.
    pub confirm_leave: bool,
    /// We ended the call for everyone (the ended screen says so in the first person).
    pub(super) ended_by_us: bool,
    /// We left a call we host while others were still in it (it goes on for them).
    pub(super) left_hosted_call_running: bool,
    /// The devices found, for the pickers (updated on hot-plug).
    pub devices: DeviceList,
    /// The latest problem per kind of device, shown under its picker.
    pub device_notes: Vec<DeviceNotice>,
    /// The UI thread's time per frame.
    pub(super) ui_timing: UiTiming,
    /// Wakes the UI (handed to what runs beside it: the call check's test peer).
    pub(super) repaint: confab_engine::Repaint,
    /// The call check's "Details" are shown.
    pub(super) check_details_open: bool,
    /// A check we left (done or cancelled) still has its call ending: the engine's call events
    /// up to its `CallState::Ended` are that call's, not a new one's.
    pub(super) stale_check_call: bool,
    /// The screen picker, while open (`screen_share_view`).
    pub screen_picker: Option<super::screen_share_view::ScreenPicker>,
}

impl ConfabApp {
    /// Creates the app from eframe's creation context. Settings come from
    /// [`AppOptions::settings_file`] (or, on the first launch after an upgrade, from what eframe's
    /// storage kept for older versions).
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        options: AppOptions,
    ) -> Result<Self, confab_engine::EngineError> {
        let defaults = if options.devices {
            Settings::default()
        } else {
            Settings::with_test_sources()
        };
        let legacy: Option<Settings> = cc
            .storage
            .and_then(|s| eframe::get_value(s, LEGACY_SETTINGS_KEY));
        let legacy_in_storage = legacy.is_some();
        let (settings, settings_file, settings_note) =
            open_settings(options.settings_file.clone(), legacy, defaults);
        let ctx = cc.egui_ctx.clone();
        super::style::apply(&ctx);
        let mut config = options.engine.clone();
        config.name = display_name(&settings.name);
        // Cameras are not listed yet: "first camera" resolves when the device list arrives.
        config.video_input = settings.video_input(&DeviceList::default());
        config.audio_input = settings.audio_input();
        config.processing = settings.processing;
        config.video = video_settings(&settings, &options);
        config.watch_devices = options.devices;
        config.preview = true;
        let repaint: confab_engine::Repaint = Arc::new(move || ctx.request_repaint());
        let engine = Engine::start(config, Box::new(NullSink), Arc::clone(&repaint))?;
        let _ = engine.send(EngineCommand::Preview(true));
        let output = settings.audio_output();
        if output != AudioOutput::None {
            let _ = engine.send(EngineCommand::SelectSpeaker(output));
        }
        let lobby_error = options.lobby_message.clone().or(settings_note);
        let mut app = Self {
            settings,
            legacy_in_storage: legacy_in_storage && settings_file.is_some(),
            settings_file,
            engine,
            options,
            screen: Screen::Lobby,
            videos: VideoTextures::default(),
            hosted: None,
            lobby_error,
            toasts: Vec::new(),
            mic_level_db: -100.0,
            chat_open: false,
            people_open: false,
            stats_open: false,
            devices_open: false,
            settings_open: false,
            chat_input: String::new(),
            password: String::new(),
            applied_theme: None,
            title: String::new(),
            focus_name: true,
            focus_chat_input: false,
            pending_pin: None,
            confirm_leave: false,
            ended_by_us: false,
            left_hosted_call_running: false,
            devices: DeviceList::default(),
            device_notes: Vec::new(),
            ui_timing: UiTiming::default(),
            repaint,
            check_details_open: false,
            stale_check_call: false,
            screen_picker: None,
        };
        if let Some((address, room)) = app.options.join_now.clone() {
            if let Some(room) = room {
                app.settings.room = room;
            }
            app.settings.address = address;
            app.join();
        }
        Ok(app)
    }

    /// The URL of the server this app hosts, if it hosts one.
    pub fn hosted_url(&self) -> Option<String> {
        self.hosted.as_ref().map(HostedServer::local_url)
    }

    /// Frames shown so far from `id` (`None`: our preview).
    pub fn frames_shown(&self, id: &Option<ParticipantId>) -> u64 {
        self.videos
            .tile(&Source::of(id.as_ref(), confab_engine::VideoRole::Camera))
            .map_or(0, |t| t.frames)
    }

    /// The size of the last shared-screen picture shown from `id` (`None`: the preview of our
    /// own share) and how many were shown.
    pub fn screen_shown(&self, id: &Option<ParticipantId>) -> Option<([usize; 2], u64)> {
        self.videos
            .tile(&Source::of(id.as_ref(), confab_engine::VideoRole::Screen))
            .map(|t| (t.size, t.frames))
    }

    /// Pictures of our camera shown as the call check's test peer decoded them.
    pub fn check_picture_frames(&self) -> u64 {
        self.videos.tile(&Source::CheckEcho).map_or(0, |t| t.frames)
    }

    /// The size of the last picture shown from `id` (`None`: our preview), width and height.
    pub fn picture_size(&self, id: &Option<ParticipantId>) -> Option<[usize; 2]> {
        self.videos
            .tile(&Source::of(id.as_ref(), confab_engine::VideoRole::Camera))
            .map(|t| t.size)
    }

    /// The chat message being typed.
    pub fn chat_draft(&self) -> &str {
        &self.chat_input
    }

    /// The video settings the engine uses.
    pub(super) fn video_settings(&self) -> confab_engine::VideoSettings {
        video_settings(&self.settings, &self.options)
    }

    /// The UI thread's time per frame over the recent frames.
    pub fn ui_frame_time(&self) -> Option<FrameTime> {
        self.ui_timing.summary()
    }

    /// How pictures reach the screen (GPU conversion, or CPU).
    pub fn video_upload(&self) -> Upload {
        self.videos.upload()
    }

    /// Median decoded→texture time, ms.
    pub fn frame_to_screen_p50_ms(&self) -> Option<f64> {
        self.videos.frame_to_screen_p50_ms()
    }

    pub(super) fn toast(&mut self, text: impl Into<String>) {
        self.toasts.push(Toast {
            text: text.into(),
            at: Instant::now(),
        });
    }

    /// Applies a changed camera/microphone choice (lobby or mid-call, no renegotiation).
    pub(super) fn sources_changed(&mut self) {
        let video = self.settings.video_input(&self.devices);
        if video == VideoInput::None {
            self.videos.remove(&Source::Preview);
        }
        self.device_notes.retain(|n| n.kind == DeviceKind::Speaker);
        let _ = self.engine.send(EngineCommand::SelectSources {
            video,
            audio: self.settings.audio_input(),
        });
    }

    /// Applies a changed speaker choice (at once, no renegotiation).
    pub(super) fn speaker_changed(&mut self) {
        self.device_notes.retain(|n| n.kind != DeviceKind::Speaker);
        let _ = self
            .engine
            .send(EngineCommand::SelectSpeaker(self.settings.audio_output()));
    }

    /// Applies changed echo cancellation / noise suppression / gain control switches.
    pub(super) fn processing_changed(&mut self) {
        let _ = self
            .engine
            .send(EngineCommand::SetAudioProcessing(self.settings.processing));
    }

    /// Whether a microphone (or the test tone) is chosen: without one we are heard by nobody,
    /// whatever the mute button says.
    pub(super) fn has_microphone(&self) -> bool {
        self.settings.audio_input() != confab_engine::AudioInput::None
    }

    /// Whether we send a picture (a camera or the test pattern is chosen and present).
    pub(super) fn has_camera(&self) -> bool {
        self.settings.video_input(&self.devices) != VideoInput::None
    }

    /// Starts the embedded server and joins it.
    pub(super) fn host(&mut self) {
        self.lobby_error = None;
        if self.hosted.is_none() {
            match HostedServer::start(self.options.host_bind) {
                Ok(h) => self.hosted = Some(h),
                Err(e) => {
                    self.lobby_error = Some(e);
                    return;
                }
            }
        }
        let Some(url) = self.hosted_url() else { return };
        self.start_join(url);
    }

    /// Joins the address typed in the lobby.
    pub(super) fn join(&mut self) {
        self.lobby_error = None;
        match crate::address::parse_join_address(&self.settings.address) {
            Ok(target) => {
                if let Some(room) = target.room {
                    self.settings.room = room;
                }
                if self.settings.room.trim().is_empty() {
                    self.lobby_error = Some("Enter a room name".into());
                    return;
                }
                let others = self.hosted_others();
                if others > 0 {
                    // Never end a call others are in as a side effect: the host decides.
                    self.lobby_error = Some(format!(
                        "This computer still hosts a call with {} in it. End it for everyone \
                         first (above), then join.",
                        crate::wording::people(others)
                    ));
                    return;
                }
                // Joining someone else's call: stop hosting our own (nobody is in it).
                if let Some(h) = self.hosted.take() {
                    h.end_in_background();
                }
                self.start_join(target.url);
            }
            Err(e) => self.lobby_error = Some(e),
        }
    }

    fn start_join(&mut self, url: String) {
        let room = self.settings.room.trim().to_owned();
        if room.is_empty() {
            self.lobby_error = Some("Enter a room name".into());
            return;
        }
        self.settings.remember_room(&room);
        let password = (!self.password.is_empty()).then(|| self.password.clone());
        let _ = self
            .engine
            .send(EngineCommand::SetName(display_name(&self.settings.name)));
        let _ = self.engine.send(EngineCommand::Join {
            url: url.clone(),
            room,
            password,
        });
        self.screen = Screen::Connecting {
            target: url,
            since: Instant::now(),
        };
    }

    /// Hangs up. The host of a call that others are in is asked first (see
    /// [`ConfabApp::confirm_leave`]): leaving keeps the call going while the app stays open,
    /// ending it tells everyone it is over.
    pub(super) fn hang_up(&mut self) {
        if self.hosting_others_in_call() {
            self.confirm_leave = true;
            return;
        }
        self.leave_call();
    }

    /// Whether this computer hosts the call we are in and others are in it too.
    fn hosting_others_in_call(&self) -> bool {
        self.hosted.is_some()
            && matches!(&self.screen, Screen::InCall(call) if !call.order.is_empty())
    }

    /// Leaves the call; a hosted server keeps running for the others.
    pub(super) fn leave_call(&mut self) {
        self.confirm_leave = false;
        self.left_hosted_call_running = self.hosting_others_in_call();
        let _ = self.engine.send(EngineCommand::Leave);
    }

    /// How many others are in the call this computer hosts, when we are not in it ourselves
    /// (in a call, our own connection is one of the server's).
    pub(super) fn hosted_others(&self) -> usize {
        let Some(h) = &self.hosted else { return 0 };
        let ours = usize::from(matches!(
            self.screen,
            Screen::InCall(_) | Screen::Connecting { .. }
        ));
        h.connections().saturating_sub(ours)
    }

    /// Stops the hosted server, which ends the call for everyone on it (our own engine hears
    /// the same and shows the ended screen).
    pub(super) fn end_for_everyone(&mut self) {
        self.confirm_leave = false;
        self.ended_by_us = self.hosted.is_some();
        self.left_hosted_call_running = false;
        self.lobby_error = None;
        if let Some(h) = self.hosted.take() {
            h.end_in_background();
        }
        if let Screen::Ended { reason, .. } = &mut self.screen {
            // Ended from the ended screen (after leaving it running): say what happened now.
            "You ended the call for everyone.".clone_into(reason);
        }
    }

    /// Back to the lobby from the ended screen.
    pub(super) fn back_to_lobby(&mut self) {
        self.screen = Screen::Lobby;
        self.ended_by_us = false;
        self.left_hosted_call_running = false;
        self.videos.clear_remote();
        self.videos.remove(&Source::CheckEcho);
        let _ = self.engine.send(EngineCommand::Preview(true));
    }

    pub(super) fn set_mic(&mut self, on: bool) {
        if let Screen::InCall(call) = &mut self.screen {
            call.mic_on = on;
        }
        let _ = self.engine.send(EngineCommand::SetMic(on));
    }

    pub(super) fn set_camera(&mut self, on: bool) {
        if let Screen::InCall(call) = &mut self.screen {
            call.camera_on = on;
        }
        if !on {
            self.videos.remove(&Source::Preview);
        }
        let _ = self.engine.send(EngineCommand::SetCamera(on));
    }

    pub(super) fn send_chat(&mut self) {
        let text = self.chat_input.trim().to_owned();
        if text.is_empty() {
            return;
        }
        self.chat_input.clear();
        let _ = self.engine.send(EngineCommand::SendChat(text));
    }

    /// Drains the engine: events into the model, frames into textures.
    fn pump(&mut self, ctx: &egui::Context, render: Option<&RenderState>) {
        let now = Instant::now();
        while let Ok(event) = self.engine.events().try_recv() {
            let devices = concerns_devices(&event);
            if self.stale_check_call && !devices {
                // A finished or cancelled check's call, still ending: not a call of ours.
                if matches!(event, EngineEvent::CallState(CallState::Ended { .. })) {
                    self.stale_check_call = false;
                }
                continue;
            }
            if let Screen::Check(check) = &mut self.screen {
                // The check owns the call; devices and the meter stay the app's.
                check.on_engine_event(&event, now);
                if !devices {
                    continue;
                }
            }
            self.on_event(event);
        }
        if let Screen::Check(check) = &mut self.screen {
            for command in check.poll(now) {
                let _ = self.engine.send(command);
            }
            if let Some(frame) = check.take_far_picture() {
                self.videos.update(ctx, render, &Source::CheckEcho, &frame);
            }
        }
        // Only the newest picture of each source is worth converting and uploading: take what
        // is queued now (never more, or a slow frame could keep this loop from ever returning)
        // and keep the last per source.
        let queued = self.engine.video().len();
        let mut newest: BTreeMap<Source, confab_engine::VideoFrameEvent> = BTreeMap::new();
        for frame in self.engine.video().try_iter().take(queued) {
            newest.insert(Source::of(frame.from.as_ref(), frame.role), frame);
        }
        // Our own picture only while our camera is on: frames still queued when it was turned
        // off would otherwise bring the self-view back.
        let camera_on = match &self.screen {
            Screen::InCall(call) => call.camera_on,
            _ => self.has_camera(),
        };
        for (source, frame) in newest {
            let known = match &source {
                Source::Preview => camera_on,
                Source::MyScreen => {
                    matches!(&self.screen, Screen::InCall(c) if c.sharing.is_some())
                }
                Source::Remote(id) => {
                    matches!(&self.screen, Screen::InCall(c) if c.remotes.contains_key(id))
                }
                Source::RemoteScreen(id) => {
                    matches!(&self.screen, Screen::InCall(c) if c.remotes.get(id).is_some_and(|r| r.sharing))
                }
                Source::CheckEcho => false,
            };
            if known {
                self.videos.update(ctx, render, &source, &frame);
            }
        }
        self.toasts.retain(|t| t.at.elapsed() < TOAST_TIME);
        if !self.toasts.is_empty() {
            // Wake up again to fade toasts out.
            ctx.request_repaint_after(Duration::from_millis(250));
        }
    }

    fn apply_theme(&mut self, ctx: &egui::Context) {
        if self.applied_theme == Some(self.settings.theme) {
            return;
        }
        let preference = match self.settings.theme {
            ThemeChoice::System => egui::ThemePreference::System,
            ThemeChoice::Light => egui::ThemePreference::Light,
            ThemeChoice::Dark => egui::ThemePreference::Dark,
        };
        ctx.set_theme(preference);
        self.applied_theme = Some(self.settings.theme);
    }

    fn update_title(&mut self, ctx: &egui::Context) {
        let title = match &self.screen {
            Screen::InCall(call) => format!("{} — Confab", call.room),
            _ => "Confab".to_owned(),
        };
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }
}

/// Opens the settings file (creating it on first launch). Returns the settings, the file to save
/// them to, and a note for the lobby when the person should know something went wrong.
fn open_settings(
    path: Option<PathBuf>,
    legacy: Option<Settings>,
    defaults: Settings,
) -> (Settings, Option<SettingsFile>, Option<String>) {
    let Some(path) = path else {
        return (legacy.unwrap_or(defaults), None, None);
    };
    match SettingsFile::open(path, legacy.clone(), defaults.clone()) {
        Ok((file, settings, loaded)) => {
            let note = match loaded {
                Loaded::FromFile => None,
                Loaded::Created => {
                    tracing::info!("first launch: created {}", file.path().display());
                    None
                }
                Loaded::Migrated => {
                    tracing::info!("settings moved into {}", file.path().display());
                    None
                }
                Loaded::Replaced { backup, reason } => {
                    tracing::warn!(
                        "unreadable settings ({reason}); kept as {}",
                        backup.display()
                    );
                    Some(format!(
                        "Your settings file could not be read ({reason}), so Confab starts with \
                         default settings. The old file is kept as {}.",
                        backup.display()
                    ))
                }
            };
            (settings, Some(file), note)
        }
        Err(e) => {
            tracing::warn!("settings file unusable: {e}");
            let note = format!("Settings will not be remembered: {e}");
            (legacy.unwrap_or(defaults), None, Some(note))
        }
    }
}

/// Whether an event is about devices (the lists, a device's state, the meter, a source that
/// failed) rather than the call: those reach the app whatever call is going on.
fn concerns_devices(event: &EngineEvent) -> bool {
    matches!(
        event,
        EngineEvent::Devices(_)
            | EngineEvent::Device(_)
            | EngineEvent::MicLevel(_)
            | EngineEvent::Error(
                confab_engine::Problem::SourceFailed { .. }
                    | confab_engine::Problem::SourceStopped { .. }
            )
    )
}

/// What the engine sends: the settings' video quality in the real app; tests keep their small
/// picture.
fn video_settings(settings: &Settings, options: &AppOptions) -> confab_engine::VideoSettings {
    if options.devices {
        settings.video_quality.video_settings()
    } else {
        options.engine.video
    }
}

/// The name to use: what was typed, or a neutral default.
pub(super) fn display_name(name: &str) -> String {
    let n = name.trim();
    if n.is_empty() {
        "Guest".into()
    } else {
        n.to_owned()
    }
}

impl eframe::App for ConfabApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.ui_timing.record(frame.info().cpu_usage);
        if let Screen::InCall(call) = &self.screen {
            let what = format!(
                "{} others, pictures converted on the {:?}",
                call.order.len(),
                self.videos.upload()
            );
            self.ui_timing.log_if_due(&what);
        }
        self.apply_theme(&ctx);
        self.pump(&ctx, frame.wgpu_render_state());
        self.update_title(&ctx);
        match self.screen {
            Screen::Lobby => self.lobby_ui(ui),
            Screen::Connecting { .. } => self.connecting_ui(ui),
            Screen::InCall(_) => self.call_ui(ui),
            Screen::Ended { .. } => self.ended_ui(ui),
            Screen::Check(_) => self.check_ui(ui),
        }
        if self.settings_open {
            self.settings_window(&ctx);
        }
        self.toasts_ui(&ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let Some(file) = &mut self.settings_file else {
            return;
        };
        match file.save(&self.settings) {
            Ok(_) if self.legacy_in_storage => {
                // Moved, not copied: one place to look for settings.
                storage.remove_string(LEGACY_SETTINGS_KEY);
                self.legacy_in_storage = false;
            }
            Ok(_) => {}
            // Reported here only: the next save (every 30 s and on exit) tries again.
            Err(e) => tracing::warn!("settings not saved: {e}"),
        }
    }
}
