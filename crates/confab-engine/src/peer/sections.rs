//! What an SDP says about its media sections, for the decisions webrtc-rs 0.21.1 does not make
//! by itself.
//!
//! The library cannot answer an offer whose video (or audio) section shares no codec with us
//! while our track for that kind exists: `create_answer` fails with "RTPSender created with no
//! codecs" instead of rejecting the section (RFC 8829 §5.3.1, RFC 3264 §6: port 0). Firefox
//! without its OpenH264 plugin offers only VP8/VP9/AV1, so that broke every such call.
//! [`PeerLink::accept_offer`](super::PeerLink::accept_offer) therefore reads the offer with
//! [`MediaSections`] first and removes the track of a kind we cannot negotiate; the library then
//! rejects that section on its own and still accepts audio and the data channel.
//!
//! After each negotiation the answer (ours or theirs) tells which kinds are live
//! ([`MediaSections::is_live`]): a section is rejected when its port is 0 and it is neither
//! `a=bundle-only` nor in the `a=group:BUNDLE` list (RFC 8843 §7.3.3: a rejected section leaves
//! the group), and it carries no media when it is `a=inactive`.
//!
//! Parsing is line-based and total: any text gives some answer, never a panic.

/// The value of the first `prefix` line in `sdp` (e.g. `a=mid:`, `a=fingerprint:`), trimmed.
pub(crate) fn sdp_value<'a>(sdp: &'a str, prefix: &str) -> Option<&'a str> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(str::trim)
}

/// One `m=` section, as far as we need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaSection {
    /// `audio`, `video`, `application`, ...
    pub(crate) kind: String,
    /// The `m=` line's port (0 means rejected or bundle-only).
    pub(crate) port: u16,
    /// `a=mid:`, if any.
    pub(crate) mid: Option<String>,
    /// Encoding names from `a=rtpmap:` (e.g. `H264`, `VP8`, `opus`).
    pub(crate) codecs: Vec<String>,
    /// `a=bundle-only` is present.
    pub(crate) bundle_only: bool,
    /// `a=inactive` is present.
    pub(crate) inactive: bool,
}

/// The media sections of one SDP, in order, and its BUNDLE group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MediaSections {
    pub(crate) sections: Vec<MediaSection>,
    /// Mids listed in `a=group:BUNDLE`.
    pub(crate) bundle: Vec<String>,
}

impl MediaSections {
    /// Reads `sdp`.
    pub(crate) fn parse(sdp: &str) -> Self {
        let mut out = Self::default();
        for line in sdp.lines().map(str::trim) {
            if let Some(m) = line.strip_prefix("m=") {
                let mut fields = m.split_ascii_whitespace();
                let kind = fields.next().unwrap_or_default().to_ascii_lowercase();
                // "9" or "9/2" (a port range); unparsable counts as a live port.
                let port = fields
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(9);
                out.sections.push(MediaSection {
                    kind,
                    port,
                    mid: None,
                    codecs: Vec::new(),
                    bundle_only: false,
                    inactive: false,
                });
                continue;
            }
            if let Some(group) = line.strip_prefix("a=group:BUNDLE") {
                out.bundle
                    .extend(group.split_ascii_whitespace().map(str::to_owned));
                continue;
            }
            let Some(section) = out.sections.last_mut() else {
                continue;
            };
            if let Some(mid) = line.strip_prefix("a=mid:") {
                section.mid = Some(mid.trim().to_owned());
            } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
                // "96 VP8/90000"
                if let Some(name) = map
                    .split_ascii_whitespace()
                    .nth(1)
                    .and_then(|e| e.split('/').next())
                {
                    section.codecs.push(name.to_owned());
                }
            } else if line == "a=bundle-only" {
                section.bundle_only = true;
            } else if line == "a=inactive" {
                section.inactive = true;
            }
        }
        out
    }

    /// The first section of `kind`: the one the library matches our single track of that kind
    /// with.
    pub(crate) fn first(&self, kind: &str) -> Option<(usize, &MediaSection)> {
        self.sections
            .iter()
            .enumerate()
            .find(|(_, s)| s.kind == kind)
    }

    /// Whether the section at `index` was rejected (port 0 and not bundled).
    pub(crate) fn is_rejected(&self, index: usize) -> bool {
        self.sections.get(index).is_some_and(|s| {
            s.port == 0
                && !s.bundle_only
                && !s
                    .mid
                    .as_ref()
                    .is_some_and(|mid| self.bundle.iter().any(|b| b == mid))
        })
    }

    /// For an offer: the first section of `kind` exists but we cannot accept it, because it is
    /// rejected already or lists no codec named `codec` (case-insensitive, as the library
    /// matches names). `false` when the offer has no section of that kind (then our track is
    /// simply not matched).
    pub(crate) fn offers_kind_without(&self, kind: &str, codec: &str) -> bool {
        self.first(kind).is_some_and(|(i, s)| {
            self.is_rejected(i) || !s.codecs.iter().any(|c| c.eq_ignore_ascii_case(codec))
        })
    }

    /// For an answer: media of `kind` flows (its first section is present, not rejected and not
    /// inactive).
    pub(crate) fn is_live(&self, kind: &str) -> bool {
        self.first(kind)
            .is_some_and(|(i, s)| !self.is_rejected(i) && !s.inactive)
    }

    /// Mid and index of the first section that is not rejected: where trickled candidates
    /// belong (the library puts its transport on it).
    pub(crate) fn first_live(&self) -> Option<(Option<String>, u16)> {
        (0..self.sections.len())
            .find(|i| !self.is_rejected(*i))
            .and_then(|i| Some((self.sections[i].mid.clone(), u16::try_from(i).ok()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Firefox-like offer without H.264: VP8/VP9 video first, then Opus, then the data channel.
    const VP8_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0 1 2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n\
        a=rtpmap:120 VP8/90000\r\na=rtpmap:124 rtx/90000\r\na=fmtp:124 apt=120\r\n\
        a=rtpmap:121 VP9/90000\r\na=rtpmap:125 rtx/90000\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:109 opus/48000/2\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";

    /// An answer that rejected video (mid 0 left the BUNDLE group).
    const REJECTING_ANSWER: &str = "v=0\r\ns=-\r\na=group:BUNDLE 1 2\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=rtpmap:111 opus/48000/2\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";

    #[test]
    fn an_offer_without_h264_is_seen_as_such() {
        let s = MediaSections::parse(VP8_OFFER);
        assert_eq!(s.sections.len(), 3);
        assert_eq!(s.bundle, ["0", "1", "2"]);
        assert_eq!(s.sections[0].codecs, ["VP8", "rtx", "VP9", "rtx"]);
        assert!(s.offers_kind_without("video", "H264"));
        assert!(!s.offers_kind_without("video", "vp8"));
        assert!(!s.offers_kind_without("audio", "OPUS"));
        assert!(!s.offers_kind_without("text", "T140"), "no such section");
        assert!(s.is_live("video") && s.is_live("audio"));
        assert_eq!(s.first_live(), Some((Some("0".to_owned()), 0)));
    }

    #[test]
    fn a_rejected_section_is_not_live_and_candidates_go_to_the_next() {
        let s = MediaSections::parse(REJECTING_ANSWER);
        assert!(s.is_rejected(0));
        assert!(!s.is_live("video"));
        assert!(s.is_live("audio"));
        assert!(s.offers_kind_without("video", "H264"));
        assert_eq!(s.first_live(), Some((Some("1".to_owned()), 1)));
    }

    #[test]
    fn bundle_only_and_bundled_port_zero_sections_are_live_but_inactive_ones_are_not() {
        let bundle_only = "a=group:BUNDLE 0\r\nm=audio 9 RTP 111\r\na=mid:0\r\n\
            m=video 0 RTP 102\r\na=mid:1\r\na=bundle-only\r\na=rtpmap:102 H264/90000\r\n";
        let s = MediaSections::parse(bundle_only);
        assert!(s.is_live("video"));
        assert!(!s.offers_kind_without("video", "H264"));
        let bundled = "a=group:BUNDLE 0 1\r\nm=audio 9 RTP 111\r\na=mid:0\r\n\
            m=video 0 RTP 102\r\na=mid:1\r\n";
        assert!(MediaSections::parse(bundled).is_live("video"));
        let inactive = "m=audio 9 RTP 111\r\na=mid:0\r\nm=video 9 RTP 102\r\na=inactive\r\n";
        assert!(!MediaSections::parse(inactive).is_live("video"));
    }

    #[test]
    fn garbage_gives_an_answer_not_a_panic() {
        for text in [
            "",
            "m=",
            "m=video",
            "m=video x/y",
            "a=rtpmap:\r\nm=audio 0",
            "\u{0}m=\u{1}",
        ] {
            let s = MediaSections::parse(text);
            let _ = (
                s.is_live("video"),
                s.first_live(),
                s.offers_kind_without("audio", "opus"),
            );
        }
        assert!(MediaSections::parse("m=video 0 RTP 0\r\n").is_rejected(0));
        assert!(!MediaSections::parse("m=video x RTP 0\r\n").is_rejected(0));
    }
}
