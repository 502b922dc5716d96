//! Engine event handling: each [`EngineEvent`] the app drains (in `pump`) becomes a change to
//! the model ([`Screen`], [`Call`], toasts, the device list and notices).
//!
//! Contract: called on the UI thread only, never blocks, never sends more than the engine
//! commands the event itself calls for (preview back on after a failed join, source changes
//! when the chosen camera appears or goes away). Drawing lives in `lobby` and `call_view`.

use std::collections::BTreeMap;
use std::time::Instant;

use signaling_client::ParticipantId;

use super::app::{Call, ChatLine, ConfabApp, Remote, Screen};
use super::video::Source;
use confab_engine::devices::{DeviceList, DeviceNotice, DeviceState};
use confab_engine::{
    CallState, EndReason, EngineCommand, EngineEvent, LinkState, Problem, ScreenShareEnd,
    ScreenShareState,
};

impl ConfabApp {
    /// Applies one engine event to the model (screen, call, toasts, devices, lobby error).
    pub(super) fn on_event(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::CallState(state) => self.on_call_state(state),
            EngineEvent::ParticipantJoined { id, name } => {
                if let Screen::InCall(call) = &mut self.screen {
                    if !call.remotes.contains_key(&id) {
                        call.order.push(id.clone());
                    }
                    call.remotes.insert(
                        id,
                        Remote {
                            name: name.clone(),
                            mic: true,
                            camera: true,
                            link: LinkState::Connecting,
                            stats: None,
                            code: None,
                            sharing: false,
                        },
                    );
                    self.toast(format!("{name} joined"));
                }
            }
            EngineEvent::ParticipantLeft { id } => {
                if let Screen::InCall(call) = &mut self.screen
                    && let Some(r) = call.remotes.remove(&id)
                {
                    call.order.retain(|o| *o != id);
                    call.speakers.remove(&id);
                    if call.pinned.as_ref() == Some(&id) {
                        call.pinned = None;
                    }
                    if call.presenter.as_ref() == Some(&id) {
                        call.presenter = None;
                    }
                    let name = r.name;
                    self.videos.remove(&Source::RemoteScreen(id.clone()));
                    self.videos.remove(&Source::Remote(id));
                    self.toast(format!("{name} left"));
                }
            }
            EngineEvent::Link { id, state } => {
                let mut note = None;
                if let Screen::InCall(call) = &mut self.screen
                    && let Some(r) = call.remotes.get_mut(&id)
                {
                    if state == LinkState::Reconnecting && r.link == LinkState::Connected {
                        note = Some(format!("Connection to {} lost; reconnecting…", r.name));
                    }
                    if state == LinkState::Connected && r.link == LinkState::Reconnecting {
                        note = Some(format!("Reconnected to {}", r.name));
                    }
                    r.link = state;
                }
                if let Some(n) = note {
                    self.toast(n);
                }
            }
            EngineEvent::RemoteMedia { id, mic, camera } => {
                if let Screen::InCall(call) = &mut self.screen
                    && let Some(r) = call.remotes.get_mut(&id)
                {
                    r.mic = mic;
                    r.camera = camera;
                }
                if !camera {
                    self.videos.remove(&Source::Remote(id));
                }
            }
            EngineEvent::Chat {
                from,
                name,
                text,
                at,
            } => {
                if let Screen::InCall(call) = &mut self.screen {
                    let mine = call.my_id.as_ref() == Some(&from);
                    call.chat.push(ChatLine::message(name, text, at, mine));
                    if !self.chat_open && !mine {
                        call.unread += 1;
                    }
                }
            }
            EngineEvent::VerificationCode { id, code } => {
                if let Screen::InCall(call) = &mut self.screen
                    && let Some(r) = call.remotes.get_mut(&id)
                {
                    r.code = Some(code);
                }
            }
            EngineEvent::Stats(all) => {
                if let Screen::InCall(call) = &mut self.screen {
                    for s in all {
                        if let Some(r) = call.remotes.get_mut(&ParticipantId(s.id.clone())) {
                            r.stats = Some(s);
                        }
                    }
                }
            }
            EngineEvent::RemoteScreen { id, sharing } => self.on_remote_screen(id, sharing),
            EngineEvent::ScreenShare(state) => self.on_screen_share(state),
            EngineEvent::MicLevel(db) => self.mic_level_db = db,
            // Only the call check reads these.
            EngineEvent::IceServers(_) | EngineEvent::AudioProcessing(_) => {}
            EngineEvent::Devices(list) => self.on_devices(list),
            EngineEvent::Device(notice) => self.on_device_notice(notice),
            EngineEvent::SpeakerLevels(levels) => {
                if let Screen::InCall(call) = &mut self.screen {
                    call.speakers.update(&levels);
                }
            }
            // Chat that did not get through is said where it was typed: in the chat.
            EngineEvent::Error(Problem::ChatNoRecipients { text }) => {
                if let Screen::InCall(call) = &mut self.screen {
                    call.chat.push(ChatLine::not_sent(
                        text.clone(),
                        "Not sent: nobody else is in the call yet. It is back in the message \
                         field."
                            .into(),
                    ));
                    if self.chat_input.is_empty() {
                        self.chat_input = text;
                    }
                }
            }
            EngineEvent::Error(problem @ Problem::ChatNotDelivered { .. }) => {
                let text = crate::wording::problem(&problem);
                if let Screen::InCall(call) = &mut self.screen {
                    call.chat.push(ChatLine::notice(text.clone()));
                }
                if !self.chat_open {
                    self.toast(text);
                }
            }
            EngineEvent::Error(problem) => {
                let text = crate::wording::problem(&problem);
                match &self.screen {
                    Screen::Lobby | Screen::Connecting { .. } => self.lobby_error = Some(text),
                    _ => self.toast(text),
                }
            }
        }
    }

    /// A participant started or stopped sharing: it presents (large), or the layout goes back.
    fn on_remote_screen(&mut self, id: ParticipantId, sharing: bool) {
        let Screen::InCall(call) = &mut self.screen else {
            return;
        };
        let Some(r) = call.remotes.get_mut(&id) else {
            return;
        };
        r.sharing = sharing;
        let name = r.name.clone();
        if sharing {
            call.presenter = Some(id);
            call.screen_actual_size = false;
            self.toast(format!("{name} is sharing their screen"));
        } else {
            if call.presenter.as_ref() == Some(&id) {
                call.presenter = next_presenter(call);
            }
            self.videos.remove(&Source::RemoteScreen(id));
            self.toast(format!("{name} stopped sharing"));
        }
    }

    /// Our own share started or ended.
    fn on_screen_share(&mut self, state: ScreenShareState) {
        match state {
            ScreenShareState::Sharing { source } => {
                if let Screen::InCall(call) = &mut self.screen {
                    call.sharing = Some(source);
                    // Our screen is what the others look at now; ours is no one else's.
                    call.presenter = None;
                }
            }
            ScreenShareState::Ended { reason } => {
                let mut was_sharing = false;
                let mut replaced_by = None;
                if let Screen::InCall(call) = &mut self.screen {
                    was_sharing = call.sharing.take().is_some();
                    // Someone else may still be sharing (their share started while ours ran).
                    call.presenter = next_presenter(call);
                    if let ScreenShareEnd::Replaced { by } = &reason {
                        replaced_by = call.remotes.get(by).map(|r| r.name.clone());
                    }
                }
                self.videos.remove(&Source::MyScreen);
                let note = match reason {
                    ScreenShareEnd::Stopped | ScreenShareEnd::CallEnded => None,
                    ScreenShareEnd::Replaced { .. } => Some(format!(
                        "{} is now sharing; your share stopped.",
                        replaced_by.unwrap_or_else(|| "Someone else".to_owned())
                    )),
                    ScreenShareEnd::SourceFailed { detail } if was_sharing => {
                        Some(format!("Screen sharing stopped: {detail}"))
                    }
                    ScreenShareEnd::SourceFailed { detail } => {
                        Some(format!("Cannot share the screen: {detail}"))
                    }
                };
                if let Some(note) = note {
                    self.toast(note);
                }
            }
        }
    }

    fn on_call_state(&mut self, state: CallState) {
        match state {
            CallState::Idle => {}
            CallState::Connecting => {}
            CallState::InCall { id, room } => match &mut self.screen {
                Screen::InCall(call) => {
                    if call.reconnecting {
                        call.reconnecting = false;
                        self.toast("Back in touch with the server");
                    }
                }
                _ => {
                    self.screen = Screen::InCall(Box::new(Call {
                        room,
                        my_id: Some(id),
                        started: Instant::now(),
                        remotes: BTreeMap::new(),
                        order: Vec::new(),
                        chat: Vec::new(),
                        mic_on: true,
                        camera_on: self.has_camera(),
                        reconnecting: false,
                        unread: 0,
                        speakers: Default::default(),
                        layout: Default::default(),
                        pinned: None,
                        presenter: None,
                        sharing: None,
                        screen_actual_size: false,
                    }));
                }
            },
            CallState::Reconnecting => {
                if let Screen::InCall(call) = &mut self.screen {
                    call.reconnecting = true;
                }
            }
            CallState::Ended { reason } => {
                let duration = match &self.screen {
                    Screen::InCall(call) => Some(call.started.elapsed()),
                    _ => None,
                };
                if duration.is_none() {
                    // Never got in: that is a lobby error, not an ended call.
                    self.lobby_error = Some(crate::wording::end_reason(&reason));
                    self.screen = Screen::Lobby;
                    let _ = self.engine.send(EngineCommand::Preview(true));
                } else {
                    let reason = match reason {
                        EndReason::EndedForEveryone { .. } if self.ended_by_us => {
                            "You ended the call for everyone.".to_owned()
                        }
                        EndReason::Left if self.left_hosted_call_running => {
                            "You left. The call goes on for the others while Confab stays \
                             open (this computer hosts it)."
                                .to_owned()
                        }
                        other => crate::wording::end_reason(&other),
                    };
                    self.screen = Screen::Ended { duration, reason };
                }
                self.videos.clear_remote();
                self.screen_picker = None;
            }
        }
    }

    fn on_devices(&mut self, list: DeviceList) {
        let before = self.settings.video_input(&self.devices);
        self.devices = list;
        if self.settings.video_input(&self.devices) != before {
            self.sources_changed();
        }
    }

    fn on_device_notice(&mut self, notice: DeviceNotice) {
        self.device_notes.retain(|n| n.kind != notice.kind);
        let in_call = matches!(self.screen, Screen::InCall(_));
        if in_call {
            self.toast(notice.message.clone());
        }
        if notice.state != DeviceState::Running {
            self.device_notes.push(notice);
        }
    }
}

/// Who presents now that the presenter stopped (or our share ended): someone still sharing, the
/// last to arrive first; `None` goes back to the grid.
fn next_presenter(call: &super::app::Call) -> Option<ParticipantId> {
    call.order
        .iter()
        .rev()
        .find(|id| call.remotes.get(*id).is_some_and(|r| r.sharing))
        .cloned()
}
