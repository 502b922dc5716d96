//! "Host a call": the embedded signaling server and the addresses to share: `LAN-IP:PORT` and a
//! `confab://` link for the desktop app, and an `http://LAN-IP:PORT/r/ROOM` link for a browser
//! (the server serves the web client, `assets/web`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use signaling_server::{ServerConfig, ServerHandle, SignalingServer};

/// The port tried first, so the shared address stays the same from call to call.
pub const DEFAULT_PORT: u16 = 8787;

/// A signaling server running inside the app, on its own small runtime.
pub struct HostedServer {
    /// `None` once handed to [`HostedServer::end_in_background`].
    runtime: Option<tokio::runtime::Runtime>,
    handle: Option<ServerHandle>,
    lan_ip: IpAddr,
    port: u16,
}

impl std::fmt::Debug for HostedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedServer")
            .field("lan_ip", &self.lan_ip)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl HostedServer {
    /// Listens on `bind` at [`DEFAULT_PORT`], or any free port if that one is taken.
    pub fn start(bind: IpAddr) -> Result<Self, String> {
        Self::start_on(bind, DEFAULT_PORT)
    }

    /// Listens on `bind` at `port` (0: any free port), or any free port if that one is taken.
    pub fn start_on(bind: IpAddr, port: u16) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("confab-host")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the server runtime: {e}"))?;
        let handle = runtime
            .block_on(SignalingServer::start(ServerConfig::new(SocketAddr::new(
                bind, port,
            ))))
            .or_else(|_| {
                runtime.block_on(SignalingServer::start(ServerConfig::new(SocketAddr::new(
                    bind, 0,
                ))))
            })
            .map_err(|e| format!("cannot host a call: {e}"))?;
        let port = handle.local_addr().port();
        let lan_ip = if bind.is_unspecified() {
            lan_ipv4().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4)
        } else {
            bind
        };
        Ok(Self {
            runtime: Some(runtime),
            handle: Some(handle),
            lan_ip,
            port,
        })
    }

    /// The URL this computer's own engine joins with.
    pub fn local_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// What the other person pastes: `LAN-IP:PORT`.
    pub fn share_address(&self) -> String {
        SocketAddr::new(self.lan_ip, self.port).to_string()
    }

    /// A link that names the room too.
    pub fn share_link(&self, room: &str) -> String {
        format!(
            "confab://{}/{}",
            self.share_address(),
            room.replace(' ', "%20")
        )
    }

    /// Ends the calls on this server (as dropping it does) without making the caller wait: the
    /// server is stopped on a thread of its own, so the window keeps drawing meanwhile.
    pub fn end_in_background(mut self) {
        let (Some(runtime), Some(handle)) = (self.runtime.take(), self.handle.take()) else {
            return;
        };
        let stop = std::thread::Builder::new()
            .name("confab-host-stop".into())
            .spawn(move || runtime.block_on(handle.end_calls(Duration::from_secs(1))));
        if let Err(e) = stop {
            // The closure (runtime and server) is dropped with the error: the server stops
            // without the goodbye frame, and the others reconnect until they give up.
            tracing::warn!("cannot end the hosted call in the background: {e}");
        }
    }

    /// How many clients are connected (ourselves included while we are in the call).
    pub fn connections(&self) -> usize {
        self.handle
            .as_ref()
            .map_or(0, ServerHandle::connection_count)
    }

    /// The link a browser opens to join `room` with the web client.
    pub fn browser_link(&self, room: &str) -> String {
        format!(
            "http://{}/r/{}",
            self.share_address(),
            encode_path_segment(room)
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so any room name survives as
/// one path segment (the web client decodes it with `decodeURIComponent`).
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Stopping the embedded server ends the call for everyone on it (the app closes, waiting up to
/// a second for the goodbyes; "End for everyone" and joining another call use
/// [`HostedServer::end_in_background`]): it is not coming back, so the others are told the call
/// is over instead of reconnecting to nothing.
impl Drop for HostedServer {
    fn drop(&mut self) {
        if let (Some(runtime), Some(h)) = (&self.runtime, self.handle.take()) {
            runtime.block_on(h.end_calls(Duration::from_secs(1)));
        }
    }
}

/// The first non-loopback IPv4 address of this computer, if any.
pub fn lan_ipv4() -> Option<Ipv4Addr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find_map(|i| match i.ip() {
            IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() => Some(v4),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_become_one_path_segment() {
        assert_eq!(encode_path_segment("standup"), "standup");
        assert_eq!(encode_path_segment("team sync/1"), "team%20sync%2F1");
        assert_eq!(encode_path_segment("café"), "caf%C3%A9");
    }
}
