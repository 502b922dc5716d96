//! A real, headless Firefox (Debian's `firefox-esr`) driven through geckodriver, for the Firefox
//! interop tests; the session and page helpers are [`Browser`]'s, shared with Chromium.
//!
//! Firefox runs on a fresh profile with fake camera and microphone streams granted without a
//! prompt, gathers plain (not mDNS) host candidates, and stays off the network: no updates, telemetry,
//! Safe Browsing, captive-portal or connectivity checks, and no download of the OpenH264 plugin
//! (so, like an offline Debian install, it has no H.264). `CONFAB_FIREFOX` and
//! `CONFAB_GECKODRIVER` override the binaries (defaults: `/usr/bin/firefox-esr`, and
//! `geckodriver` on the PATH or in `~/.cargo/bin`, where `cargo install geckodriver` puts it).

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use super::browser::{Browser, Profile, free_port};

/// The preferences every test Firefox gets.
fn prefs() -> Value {
    let prefs: &[(&str, Value)] = &[
        // Fake camera and microphone, no permission prompt, remote audio plays without a click.
        ("media.navigator.streams.fake", json!(true)),
        ("media.navigator.permission.disabled", json!(true)),
        ("media.autoplay.default", json!(0)),
        ("media.autoplay.blocking_policy", json!(0)),
        // Plain host candidates, not mDNS names: the native peer does not resolve `.local`
        // names. (Loopback is allowed too, but Firefox still gathers on the default route's
        // interface only, see `ice_address`.)
        ("media.peerconnection.ice.loopback", json!(true)),
        (
            "media.peerconnection.ice.obfuscate_host_addresses",
            json!(false),
        ),
        (
            "media.peerconnection.ice.default_address_only",
            json!(false),
        ),
        // Off the network.
        ("app.update.enabled", json!(false)),
        ("app.update.auto", json!(false)),
        ("browser.shell.checkDefaultBrowser", json!(false)),
        ("browser.startup.homepage_override.mstone", json!("ignore")),
        ("browser.aboutwelcome.enabled", json!(false)),
        ("datareporting.policy.dataSubmissionEnabled", json!(false)),
        ("datareporting.healthreport.uploadEnabled", json!(false)),
        ("toolkit.telemetry.enabled", json!(false)),
        ("toolkit.telemetry.unified", json!(false)),
        ("toolkit.telemetry.server", json!("")),
        ("network.captive-portal-service.enabled", json!(false)),
        ("network.connectivity-service.enabled", json!(false)),
        ("network.dns.disablePrefetch", json!(true)),
        ("network.prefetch-next", json!(false)),
        ("network.http.speculative-parallel-limit", json!(0)),
        ("browser.safebrowsing.malware.enabled", json!(false)),
        ("browser.safebrowsing.phishing.enabled", json!(false)),
        ("browser.safebrowsing.downloads.enabled", json!(false)),
        (
            "browser.safebrowsing.downloads.remote.enabled",
            json!(false),
        ),
        ("browser.safebrowsing.blockedURIs.enabled", json!(false)),
        ("browser.safebrowsing.provider.google4.updateURL", json!("")),
        ("browser.safebrowsing.provider.mozilla.updateURL", json!("")),
        ("extensions.update.enabled", json!(false)),
        ("extensions.getAddons.cache.enabled", json!(false)),
        ("extensions.blocklist.enabled", json!(false)),
        ("media.gmp-manager.updateEnabled", json!(false)),
        ("media.gmp-manager.url", json!("")),
        ("media.gmp-gmpopenh264.enabled", json!(false)),
        ("media.gmp-gmpopenh264.autoupdate", json!(false)),
        ("browser.newtabpage.enabled", json!(false)),
        (
            "browser.newtabpage.activity-stream.feeds.system.topstories",
            json!(false),
        ),
        ("browser.topsites.contile.enabled", json!(false)),
        ("services.settings.server", json!("")),
        ("browser.region.network.url", json!("")),
        ("browser.region.update.enabled", json!(false)),
        ("geo.provider.network.url", json!("")),
        ("browser.ping-centre.telemetry", json!(false)),
        ("network.trr.mode", json!(5)),
    ];
    Value::Object(
        prefs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// `CONFAB_FIREFOX`, else Debian's Firefox ESR.
fn firefox_binary() -> PathBuf {
    std::env::var_os("CONFAB_FIREFOX").map_or_else(|| "/usr/bin/firefox-esr".into(), Into::into)
}

/// `CONFAB_GECKODRIVER`, else `geckodriver` on the PATH, else in `~/.cargo/bin`.
fn geckodriver_binary() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("CONFAB_GECKODRIVER") {
        let b = PathBuf::from(b);
        return b.is_file().then_some(b);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("geckodriver"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = PathBuf::from(home).join(".cargo/bin/geckodriver");
        p.is_file().then_some(p)
    })
}

/// What a Firefox test needs from this machine.
pub struct Setup {
    firefox: PathBuf,
    geckodriver: PathBuf,
    /// The address Firefox gathers its ICE candidates on (see [`ice_address`]).
    pub ice_address: IpAddr,
}

/// The IPv4 address of this machine's default route, where Firefox gathers its ICE candidates.
///
/// Firefox (checked with ESR 153) gathers host candidates only on the interface of the default
/// route, whatever `media.peerconnection.ice.loopback` or `default_address_only` say: with only
/// loopback, or with interfaces but no default route, it gathers none and the call fails. Found
/// by "connecting" a UDP socket, which sends nothing.
pub fn ice_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // TEST-NET-2: no packet goes anywhere; the kernel only picks the route and source address.
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Firefox, geckodriver and an address to call on, or why a test cannot run (then it skips,
/// saying why).
pub fn available() -> Result<Setup, String> {
    let firefox = firefox_binary();
    if !firefox.is_file() {
        return Err(format!(
            "no Firefox at {} (apt install firefox-esr, or set CONFAB_FIREFOX)",
            firefox.display()
        ));
    }
    let geckodriver = geckodriver_binary().ok_or(
        "no geckodriver on the PATH or in ~/.cargo/bin (cargo install geckodriver --locked, \
         or set CONFAB_GECKODRIVER)",
    )?;
    let ice_address = ice_address().ok_or(
        "no IPv4 default route: Firefox gathers ICE candidates only on the default route's \
         interface, never on loopback (in a network namespace, give a veth its address and a \
         default route, see tests/browser_firefox.rs)",
    )?;
    Ok(Setup {
        firefox,
        geckodriver,
        ice_address,
    })
}

/// Starts geckodriver and a headless Firefox session on a fresh profile.
pub async fn start(setup: &Setup) -> Browser {
    let port = free_port();
    let mut driver = Command::new(&setup.geckodriver);
    driver.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--marionette-port",
        &free_port().to_string(),
        "--websocket-port",
        &free_port().to_string(),
    ]);
    let profile = Profile::new("firefox");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "moz:firefoxOptions".into(),
        json!({
            "binary": setup.firefox,
            "args": ["-headless", "-profile", profile.0],
            "prefs": prefs(),
        }),
    );
    Browser::session("geckodriver", driver, port, profile, caps).await
}
