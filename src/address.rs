//! What a person pastes to join a call, turned into a signaling URL (and maybe a room).
//!
//! Accepted: `HOST:PORT` (what "Host a call" shows), `ws://…` / `wss://…` (a path of `/ws` is
//! added when missing), `confab://HOST:PORT/ROOM` (a link that names the room too), and the
//! browser link `http(s)://HOST:PORT/r/ROOM`.
//!
//! A link handed over on the command line (the desktop entry's `%u`, a browser, the OS URL
//! handler) goes through the stricter [`parse_confab_link`]: it must name host, port and room.

/// A parsed join target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTarget {
    /// The signaling WebSocket URL.
    pub url: String,
    /// The room, when the address carried one.
    pub room: Option<String>,
}

/// Parses `input`; the error says what is wrong in words a person understands.
pub fn parse_join_address(input: &str) -> Result<JoinTarget, String> {
    let input = input.trim();
    if input.is_empty() {
        return Err("Enter the address the host shared, e.g. 192.168.1.20:8787".into());
    }
    let (scheme, rest) = match input.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("ws".to_owned(), input),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("\"{input}\" has no host"));
    }
    if !authority.contains(':') && scheme == "ws" && !input.contains("://") {
        return Err(format!(
            "\"{input}\" needs a port, like {authority}:8787 (the host's screen shows it)"
        ));
    }
    let room_from = |p: &str| {
        let r = p.trim_matches('/');
        (!r.is_empty()).then(|| decode_room(r))
    };
    match scheme.as_str() {
        "ws" | "wss" => {
            let path = if path.is_empty() { "ws" } else { path };
            Ok(JoinTarget {
                url: format!("{scheme}://{authority}/{path}"),
                room: None,
            })
        }
        "confab" => Ok(JoinTarget {
            url: format!("ws://{authority}/ws"),
            room: room_from(path),
        }),
        "http" | "https" => {
            let ws = if scheme == "https" { "wss" } else { "ws" };
            Ok(JoinTarget {
                url: format!("{ws}://{authority}/ws"),
                room: path.strip_prefix("r/").and_then(room_from),
            })
        }
        other => Err(format!(
            "\"{other}://\" addresses are not supported; paste HOST:PORT or a confab:// link"
        )),
    }
}

/// A complete `confab://HOST:PORT/ROOM` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLink {
    /// The signaling WebSocket URL.
    pub url: String,
    /// The room.
    pub room: String,
}

/// The form a link must have, for error messages.
const LINK_FORM: &str = "confab://HOST:PORT/ROOM";

/// Parses a `confab://HOST:PORT/ROOM` link; host, port and room are all required (there is no
/// one to ask for the missing part when a link is clicked). The error names what is wrong.
pub fn parse_confab_link(input: &str) -> Result<RoomLink, String> {
    let input = input.trim();
    let link = url::Url::parse(input)
        .map_err(|e| format!("\"{input}\" is not a valid link ({e}); expected {LINK_FORM}"))?;
    if link.scheme() != "confab" {
        return Err(format!(
            "\"{input}\" is not a confab:// link; expected {LINK_FORM}"
        ));
    }
    let host = link
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("the link \"{input}\" names no host; expected {LINK_FORM}"))?;
    let port = link
        .port()
        .ok_or_else(|| format!("the link \"{input}\" names no port; expected {LINK_FORM}"))?;
    let room = decode_room(link.path().trim_matches('/'));
    if room.is_empty() {
        return Err(format!(
            "the link \"{input}\" names no room; expected {LINK_FORM}"
        ));
    }
    if room.contains('/') {
        return Err(format!(
            "the link \"{input}\" has a room with a '/' in it; expected {LINK_FORM}"
        ));
    }
    Ok(RoomLink {
        url: format!("ws://{host}:{port}/ws"),
        room,
    })
}

/// Undoes `%XX` escapes in a room taken from a link.
fn decode_room(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(v) = escaped {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, room: Option<&str>) -> JoinTarget {
        JoinTarget {
            url: url.into(),
            room: room.map(str::to_owned),
        }
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(
            parse_join_address(" 192.168.1.20:8787 "),
            Ok(target("ws://192.168.1.20:8787/ws", None))
        );
        assert_eq!(
            parse_join_address("wss://calls.example.org"),
            Ok(target("wss://calls.example.org/ws", None))
        );
        assert_eq!(
            parse_join_address("ws://10.0.0.2:9000/ws"),
            Ok(target("ws://10.0.0.2:9000/ws", None))
        );
        assert_eq!(
            parse_join_address("confab://10.0.0.2:8787/team%20standup"),
            Ok(target("ws://10.0.0.2:8787/ws", Some("team standup")))
        );
        assert_eq!(
            parse_join_address("https://calls.example.org/r/standup"),
            Ok(target("wss://calls.example.org/ws", Some("standup")))
        );
    }

    #[test]
    fn complete_links_open_their_room() {
        let link = |url: &str, room: &str| RoomLink {
            url: url.into(),
            room: room.into(),
        };
        assert_eq!(
            parse_confab_link("confab://192.168.1.20:8787/standup"),
            Ok(link("ws://192.168.1.20:8787/ws", "standup"))
        );
        assert_eq!(
            parse_confab_link(" CONFAB://calls.example.org:9000/team%20standup/ "),
            Ok(link("ws://calls.example.org:9000/ws", "team standup"))
        );
        assert_eq!(
            parse_confab_link("confab://[::1]:8787/r1"),
            Ok(link("ws://[::1]:8787/ws", "r1"))
        );
        // What the lobby makes of the same link agrees.
        assert_eq!(
            parse_join_address("confab://192.168.1.20:8787/standup"),
            Ok(target("ws://192.168.1.20:8787/ws", Some("standup")))
        );
    }

    #[test]
    fn broken_links_say_what_is_missing() {
        let why = |s: &str| parse_confab_link(s).unwrap_err();
        assert!(why("confab://10.0.0.2/standup").contains("no port"));
        assert!(why("confab://10.0.0.2:8787").contains("no room"));
        assert!(why("confab://10.0.0.2:8787/").contains("no room"));
        assert!(why("confab://:8787/standup").contains("not a valid link"));
        assert!(why("confab:///standup").contains("no host"));
        assert!(why("confab://10.0.0.2:99999/standup").contains("not a valid link"));
        assert!(why("confab://10.0.0.2:port/standup").contains("not a valid link"));
        assert!(why("confab://10.0.0.2:8787/a/b").contains("'/'"));
        assert!(why("https://10.0.0.2:8787/r/standup").contains("not a confab:// link"));
        assert!(why("standup").contains("not a valid link"));
        assert!(why("").contains(LINK_FORM));
    }

    #[test]
    fn refused_forms_say_why() {
        assert!(parse_join_address("").unwrap_err().contains("address"));
        assert!(
            parse_join_address("192.168.1.20")
                .unwrap_err()
                .contains("port")
        );
        assert!(
            parse_join_address("ftp://x:1")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(parse_join_address("ws://").unwrap_err().contains("no host"));
    }
}
