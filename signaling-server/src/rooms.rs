//! Rooms and their participants, in memory.
//!
//! One mutex guards every room. Every operation (join, relay, leave) is a short, non-blocking
//! critical section: outbound frames are handed to each connection's bounded queue with
//! `try_send`, never awaited, so one slow client cannot stall a room. A client whose queue is full
//! loses its queue sender, which its connection task sees as "too slow" and closes.
//!
//! Invariants:
//! - a participant id is unique on the server and belongs to exactly one room;
//! - a signal is delivered only to the addressed participant, only inside the sender's room;
//! - frames from one sender reach each recipient in the order the server received them;
//! - a participant whose connection dropped without a goodbye stays in its room (detached) for
//!   the reconnect grace period and can resume with its token; signals addressed to it meanwhile
//!   are kept (bounded) and delivered on resume.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use rand::Rng;
use rand::distr::Alphanumeric;
use signaling_client::protocol::{Frame, ServerMessage};
use signaling_client::{
    ErrorCode, IceServer, JoinRequest, LeaveReason, Participant, ParticipantId, RoomName, Signal,
    Welcome,
};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use crate::config::{Limits, TurnConfig};

/// What a connection task receives from the room: text frames to write.
pub(crate) type OutboundTx = mpsc::Sender<String>;

/// A refusal: the error code and a human explanation.
pub(crate) type Refusal = (ErrorCode, String);

const MAX_NAME_CHARS: usize = 64;
const MAX_PASSWORD_CHARS: usize = 128;
const ID_LEN: usize = 12;

struct Member {
    id: ParticipantId,
    name: String,
    token: String,
    /// The connection currently attached, or `None` while detached within the grace period.
    conn: Option<(u64, OutboundTx)>,
    /// The connection that was attached when it detached (so a stale grace timer is ignored).
    detached_from: Option<u64>,
    /// Frames addressed to it while detached.
    pending: VecDeque<String>,
}

struct Room {
    password: Option<String>,
    members: Vec<Member>,
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<String, Room>,
    /// Which room each participant id is in.
    room_of: HashMap<ParticipantId, String>,
}

/// All rooms of one server.
pub(crate) struct Rooms {
    inner: Mutex<Inner>,
    limits: Limits,
    turn: Option<TurnConfig>,
    stun_urls: Vec<String>,
}

/// Counts for `/healthz`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RoomStats {
    /// Rooms with at least one participant.
    pub rooms: usize,
    /// Participants in all rooms (attached or within their grace period).
    pub participants: usize,
}

impl Rooms {
    pub(crate) fn new(limits: Limits, turn: Option<TurnConfig>, stun_urls: Vec<String>) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            limits,
            turn,
            stun_urls,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug; the data stays consistent enough to
        // keep serving other rooms, so recover rather than take the whole server down.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> RoomStats {
        let inner = self.lock();
        RoomStats {
            rooms: inner.rooms.len(),
            participants: inner.room_of.len(),
        }
    }

    /// Joins (or resumes) on connection `conn`. Returns the welcome to send.
    pub(crate) fn join(
        &self,
        conn: u64,
        tx: OutboundTx,
        req: &JoinRequest,
    ) -> Result<Welcome, Refusal> {
        let room_name = validate_text("room", req.room.as_str(), MAX_NAME_CHARS)?;
        let name = validate_text("name", &req.name, MAX_NAME_CHARS)?;
        if let Some(p) = &req.password
            && p.chars().count() > MAX_PASSWORD_CHARS
        {
            return Err((
                ErrorCode::InvalidField,
                format!("password is longer than {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        let mut inner = self.lock();
        let mut requested_id = None;
        if let Some(resume) = &req.resume {
            if let Some(current_room) = inner.room_of.get(&resume.id).cloned() {
                return self.resume(&mut inner, &current_room, &room_name, conn, tx, resume);
            }
            // The server does not know the id (it restarted): let the client keep it, so the
            // others recognise it, as long as it looks like one of ours.
            if is_valid_id(resume.id.as_str()) {
                requested_id = Some(resume.id.clone());
            }
        }

        let room_count = inner.rooms.len();
        let room = match inner.rooms.get_mut(&room_name) {
            Some(room) => {
                check_password(room.password.as_deref(), req.password.as_deref())?;
                if room.members.len() >= self.limits.max_room_size {
                    return Err((
                        ErrorCode::RoomFull,
                        format!(
                            "room {room_name:?} is full ({} participants)",
                            self.limits.max_room_size
                        ),
                    ));
                }
                room
            }
            None => {
                if room_count >= self.limits.max_rooms {
                    return Err((
                        ErrorCode::TooManyRooms,
                        "the server cannot host more rooms right now".into(),
                    ));
                }
                inner.rooms.entry(room_name.clone()).or_insert(Room {
                    password: req.password.clone().filter(|p| !p.is_empty()),
                    members: Vec::new(),
                })
            }
        };
        let id = requested_id.unwrap_or_else(new_id);
        let participants: Vec<Participant> = room
            .members
            .iter()
            .map(|m| Participant {
                id: m.id.clone(),
                name: m.name.clone(),
            })
            .collect();
        let announce = Frame::new(ServerMessage::ParticipantJoined {
            participant: Participant {
                id: id.clone(),
                name: name.clone(),
            },
        })
        .to_json();
        for m in &mut room.members {
            deliver(m, &announce, self.limits.outbound_queue);
        }
        let token = new_token();
        room.members.push(Member {
            id: id.clone(),
            name,
            token: token.clone(),
            conn: Some((conn, tx)),
            detached_from: None,
            pending: VecDeque::new(),
        });
        inner.room_of.insert(id.clone(), room_name.clone());
        Ok(Welcome {
            ice_servers: self.ice_servers(&id),
            id,
            room: RoomName(room_name),
            resume_token: token,
            resumed: false,
            participants,
        })
    }

    fn resume(
        &self,
        inner: &mut Inner,
        current_room: &str,
        room_name: &str,
        conn: u64,
        tx: OutboundTx,
        resume: &signaling_client::protocol::Resume,
    ) -> Result<Welcome, Refusal> {
        let rejected = || {
            (
                ErrorCode::ResumeRejected,
                "that session cannot be resumed; join without resume".to_owned(),
            )
        };
        if current_room != room_name {
            return Err(rejected());
        }
        let room = inner.rooms.get_mut(current_room).ok_or_else(rejected)?;
        let participants: Vec<Participant> = room
            .members
            .iter()
            .filter(|m| m.id != resume.id)
            .map(|m| Participant {
                id: m.id.clone(),
                name: m.name.clone(),
            })
            .collect();
        let member = room
            .members
            .iter_mut()
            .find(|m| m.id == resume.id)
            .ok_or_else(rejected)?;
        if !bool::from(member.token.as_bytes().ct_eq(resume.token.as_bytes())) {
            return Err(rejected());
        }
        // Replacing an attached connection drops its sender: that (half-dead) connection's task
        // sees its queue close and ends without announcing a leave, because the member is no
        // longer attached to it.
        while let Some(frame) = member.pending.pop_front() {
            if tx.try_send(frame).is_err() {
                break;
            }
        }
        member.conn = Some((conn, tx));
        member.detached_from = None;
        let id = member.id.clone();
        let token = member.token.clone();
        Ok(Welcome {
            ice_servers: self.ice_servers(&id),
            id,
            room: RoomName(room_name.to_owned()),
            resume_token: token,
            resumed: true,
            participants,
        })
    }

    fn ice_servers(&self, id: &ParticipantId) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let Some(turn) = &self.turn {
            servers.push(crate::turn::ice_server(turn, id.as_str()));
        }
        servers
    }

    /// Relays `signal` from `from` to `to` within `from`'s room.
    pub(crate) fn relay(
        &self,
        from: &ParticipantId,
        to: &ParticipantId,
        signal: Signal,
    ) -> Result<(), Refusal> {
        let unknown = || {
            (
                ErrorCode::UnknownParticipant,
                format!("no participant {to} in your room"),
            )
        };
        if from == to {
            return Err((
                ErrorCode::UnknownParticipant,
                "cannot send a signal to yourself".into(),
            ));
        }
        let mut inner = self.lock();
        let Inner { rooms, room_of } = &mut *inner;
        let room_name = room_of.get(from).ok_or_else(unknown)?;
        if room_of.get(to) != Some(room_name) {
            return Err(unknown());
        }
        let room = rooms.get_mut(room_name).ok_or_else(unknown)?;
        let member = room
            .members
            .iter_mut()
            .find(|m| &m.id == to)
            .ok_or_else(unknown)?;
        let frame = Frame::new(ServerMessage::Signal {
            from: from.clone(),
            signal,
        })
        .to_json();
        deliver(member, &frame, self.limits.outbound_queue);
        Ok(())
    }

    /// Removes `id` if it is attached to `conn` (or detached from it) and tells the others.
    pub(crate) fn leave(&self, id: &ParticipantId, conn: u64, reason: LeaveReason) {
        let mut inner = self.lock();
        let Inner { rooms, room_of } = &mut *inner;
        let Some(room_name) = room_of.get(id).cloned() else {
            return;
        };
        let Some(room) = rooms.get_mut(&room_name) else {
            return;
        };
        let Some(pos) = room.members.iter().position(|m| &m.id == id) else {
            return;
        };
        let m = &room.members[pos];
        let owns = match &m.conn {
            Some((c, _)) => *c == conn,
            None => m.detached_from == Some(conn),
        };
        if !owns {
            return;
        }
        room.members.remove(pos);
        room_of.remove(id);
        let announce = Frame::new(ServerMessage::ParticipantLeft {
            id: id.clone(),
            reason,
        })
        .to_json();
        for m in &mut room.members {
            deliver(m, &announce, self.limits.outbound_queue);
        }
        if room.members.is_empty() {
            rooms.remove(&room_name);
        }
    }

    /// Marks `id` detached after its connection `conn` dropped without a goodbye, keeping the
    /// frames that connection never wrote (`unsent`, oldest first) for a resume. Returns whether
    /// it was attached to `conn` (so a grace timer should run).
    pub(crate) fn detach(&self, id: &ParticipantId, conn: u64, unsent: Vec<String>) -> bool {
        let mut inner = self.lock();
        let Inner { rooms, room_of } = &mut *inner;
        let Some(room) = room_of.get(id).and_then(|r| rooms.get_mut(r)) else {
            return false;
        };
        let Some(m) = room.members.iter_mut().find(|m| &m.id == id) else {
            return false;
        };
        if matches!(&m.conn, Some((c, _)) if *c == conn) {
            m.conn = None;
            m.detached_from = Some(conn);
            for frame in unsent.into_iter().rev() {
                m.pending.push_front(frame);
            }
            while m.pending.len() > self.limits.outbound_queue {
                m.pending.pop_front();
            }
            true
        } else {
            false
        }
    }

    /// Ends the grace period of `id` detached from `conn`: if it has not resumed, it leaves.
    pub(crate) fn expire(&self, id: &ParticipantId, conn: u64) {
        let still_detached = {
            let inner = self.lock();
            inner
                .room_of
                .get(id)
                .and_then(|r| inner.rooms.get(r))
                .and_then(|room| room.members.iter().find(|m| &m.id == id))
                .is_some_and(|m| m.conn.is_none() && m.detached_from == Some(conn))
        };
        if still_detached {
            self.leave(id, conn, LeaveReason::Disconnected);
        }
    }
}

/// Hands `frame` to `m`'s connection, or keeps it while `m` is detached. A connection whose queue
/// is full is cut loose (its sender dropped): it is too slow to keep up with its room.
fn deliver(m: &mut Member, frame: &str, pending_cap: usize) {
    match &m.conn {
        Some((_, tx)) => {
            if tx.try_send(frame.to_owned()).is_err() {
                tracing::warn!(id = %m.id, "participant's queue is full or closed; disconnecting it");
                if let Some((c, _)) = m.conn.take() {
                    m.detached_from = Some(c);
                }
            }
        }
        None => {
            if m.pending.len() >= pending_cap {
                m.pending.pop_front();
            }
            m.pending.push_back(frame.to_owned());
        }
    }
}

fn check_password(room: Option<&str>, given: Option<&str>) -> Result<(), Refusal> {
    let given = given.filter(|p| !p.is_empty());
    match (room, given) {
        (None, None) => Ok(()),
        (Some(expected), Some(given))
            if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) =>
        {
            Ok(())
        }
        (Some(_), None) => Err((
            ErrorCode::WrongPassword,
            "this room needs a password".into(),
        )),
        (Some(_), Some(_)) => Err((ErrorCode::WrongPassword, "wrong room password".into())),
        (None, Some(_)) => Err((
            ErrorCode::WrongPassword,
            "this room already exists without a password; pick another room name".into(),
        )),
    }
}

fn validate_text(field: &str, value: &str, max: usize) -> Result<String, Refusal> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err((
            ErrorCode::InvalidField,
            format!("{field} must not be empty"),
        ));
    }
    if chars > max {
        return Err((
            ErrorCode::InvalidField,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err((
            ErrorCode::InvalidField,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn is_valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.chars().all(|c| c.is_ascii_alphanumeric())
}

fn new_id() -> ParticipantId {
    ParticipantId(random_string(ID_LEN))
}

fn new_token() -> String {
    random_string(32)
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms() -> Rooms {
        Rooms::new(Limits::default(), None, vec![])
    }

    fn join(r: &Rooms, conn: u64, room: &str, name: &str) -> (Welcome, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(16);
        let w = r
            .join(
                conn,
                tx,
                &JoinRequest {
                    room: room.into(),
                    name: name.into(),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("join failed: {e:?}"));
        (w, rx)
    }

    #[test]
    fn detached_member_receives_pending_signals_on_resume() {
        let r = rooms();
        let (a, _arx) = join(&r, 1, "room", "a");
        let (b, _brx) = join(&r, 2, "room", "b");
        assert!(r.detach(&b.id, 2, vec![]));
        r.relay(&a.id, &b.id, Signal::EndOfCandidates)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let (tx, mut rx) = mpsc::channel(16);
        let w = r
            .join(
                3,
                tx,
                &JoinRequest {
                    room: "room".into(),
                    name: "b".into(),
                    password: None,
                    resume: Some(signaling_client::protocol::Resume {
                        id: b.id.clone(),
                        token: b.resume_token.clone(),
                    }),
                },
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(w.resumed);
        assert_eq!(w.id, b.id);
        let got = rx.try_recv().unwrap_or_default();
        assert!(got.contains("end_of_candidates"), "{got}");
        // The stale grace timer of connection 2 does nothing now.
        r.expire(&b.id, 2);
        assert_eq!(r.stats().participants, 2);
    }

    #[test]
    fn expiry_removes_detached_member_and_empty_room() {
        let r = rooms();
        let (a, _arx) = join(&r, 1, "room", "a");
        assert!(r.detach(&a.id, 1, vec![]));
        r.expire(&a.id, 1);
        assert_eq!(r.stats().rooms, 0);
        assert_eq!(r.stats().participants, 0);
    }

    #[test]
    fn validation() {
        assert!(validate_text("room", "  ", 64).is_err());
        assert!(validate_text("room", "a\u{7}b", 64).is_err());
        assert!(validate_text("room", &"x".repeat(65), 64).is_err());
        assert_eq!(validate_text("room", " ok ", 64), Ok("ok".into()));
    }
}
