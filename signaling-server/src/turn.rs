//! Ephemeral TURN credentials in the scheme coturn calls `use-auth-secret`:
//! `username = "<expiry unix seconds>:<user>"`, `password = base64(HMAC-SHA1(secret, username))`.
//! coturn recomputes the HMAC with its `static-auth-secret` and rejects expired usernames.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use signaling_client::IceServer;

use crate::TurnConfig;

/// The `(username, password)` pair for `user`, valid until `now + ttl`.
pub fn turn_credentials(
    secret: &str,
    user: &str,
    ttl: Duration,
    now: SystemTime,
) -> (String, String) {
    let expiry = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(ttl)
        .as_secs();
    let username = format!("{expiry}:{user}");
    (username.clone(), turn_password(secret, &username))
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn turn_password(secret: &str, username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The ICE server entry for `user` under `config`.
pub(crate) fn ice_server(config: &TurnConfig, user: &str) -> IceServer {
    let (username, credential) =
        turn_credentials(&config.secret, user, config.ttl, SystemTime::now());
    IceServer {
        urls: config.urls.clone(),
        username: Some(username),
        credential: Some(credential),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog") is
        // de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9 (RFC 2104 test vector family).
        assert_eq!(
            turn_password("key", "The quick brown fox jumps over the lazy dog"),
            "3nybhbi3iqa8ino29wqQcBydtNk="
        );
    }

    #[test]
    fn username_carries_expiry_and_user() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let (user, pass) = turn_credentials("s3cret", "alice", Duration::from_secs(60), now);
        assert_eq!(user, "1060:alice");
        assert_eq!(pass, turn_password("s3cret", "1060:alice"));
    }
}
