//! A real, headless Chromium driven through chromedriver (WebDriver, via `fantoccini`), plus the
//! real `confab serve` and `confab join` binaries, for the browser interop tests. (Firefox:
//! `firefox.rs`, which opens its sessions through [`Browser::session`].)
//!
//! Chromium runs with fake camera/microphone devices (a moving test picture and a beep), grants
//! them without a prompt, gathers ICE candidates on loopback, and stays off the network: no
//! background networking, component updates, sync or QUIC, and a fresh profile per browser.
//! `CONFAB_CHROMIUM` and `CONFAB_CHROMEDRIVER` override the binaries (defaults: Debian's
//! `chromium` and `chromedriver`, which `make deps` installs).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The flags every test browser gets.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    // Off the network: nothing but the pages the test opens.
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    // Fake camera (15 fps: two cores run this browser's encoders and decoders next to the
    // native peers') and microphone, granted without a prompt.
    "--use-fake-device-for-media-stream=fps=15",
    "--use-fake-ui-for-media-stream",
    // Remote audio plays without a click (a real user clicks "Join").
    "--autoplay-policy=no-user-gesture-required",
    // Chromium skips loopback interfaces for ICE unless told; the tests only have loopback.
    "--allow-loopback-in-peer-connection",
    "--window-size=1280,800",
];

fn chromium_binary() -> String {
    if let Ok(b) = std::env::var("CONFAB_CHROMIUM") {
        return b;
    }
    // Debian's /usr/bin/chromium is a wrapper script; the real binary starts quicker.
    let real = "/usr/lib/chromium/chromium";
    if std::path::Path::new(real).exists() {
        real.into()
    } else {
        "chromium".into()
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh browser profile directory, removed when dropped.
pub struct Profile(pub PathBuf);

impl Profile {
    /// `$TMP/confab-{browser}-PID-N`, empty.
    pub fn new(browser: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "confab-{browser}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One headless Chromium with its own chromedriver and profile.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    _driver: Killed,
    _profile: Profile,
}

impl Browser {
    /// Starts chromedriver and a Chromium session.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts chromedriver and a Chromium session with `extra` flags after the usual ones (a
    /// repeated switch takes the last value, e.g. `--use-fake-ui-for-media-stream=deny`).
    ///
    /// Screen capture needs no extra flag: with the fake devices and fake UI above,
    /// `getDisplayMedia` (after a click, the user activation it requires) gets a moving fake
    /// "screen" (800×600, `displaySurface: "monitor"`) without a picker.
    pub async fn start_with(extra: &[&str]) -> Self {
        let port = free_port();
        let mut driver = Command::new(
            std::env::var("CONFAB_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()),
        );
        driver.arg(format!("--port={port}"));
        let profile = Profile::new("chromium");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| (*s).to_owned()).collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(format!("--user-data-dir={}", profile.0.display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium_binary(), "args": args }),
        );
        Self::session(
            "chromedriver (make deps installs chromium-driver)",
            driver,
            port,
            profile,
            caps,
        )
        .await
    }

    /// Starts the WebDriver server `driver` (listening on `port`) and opens a session with
    /// `caps` on a browser that runs on `profile`.
    pub async fn session(
        what: &str,
        mut driver: Command,
        port: u16,
        profile: Profile,
        caps: serde_json::Map<String, Value>,
    ) -> Self {
        let driver = driver
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} runs: {e}"));
        let driver = Killed(driver);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "{what} did not start");
            // Polled: the driver says nothing when it starts listening.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("a browser session through {what}: {e}"));
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Runs `script` (a function body; `return` a value, or a promise of one).
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// `window.confab.state()`: what the page shows.
    pub async fn state(&self) -> Value {
        self.eval("return window.confab ? window.confab.state() : null")
            .await
    }

    /// `window.confab.stats()`: getStats() summaries per remote participant id.
    pub async fn stats(&self) -> Value {
        self.eval("return window.confab.stats()").await
    }

    /// Polls `state()` until `ok` holds; panics with the last state after `timeout`.
    pub async fn wait_state(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let poll = Poll {
            what,
            timeout,
            every: Duration::from_millis(100),
            shows: "state",
        };
        poll.until(|| self.state(), ok).await
    }

    /// Polls `stats()` until `ok` holds; panics with the last stats after `timeout`.
    pub async fn wait_stats(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let poll = Poll {
            what,
            timeout,
            every: Duration::from_millis(200),
            shows: "stats",
        };
        poll.until(|| self.stats(), ok).await
    }

    /// Polls the value of `script` (a function body, as for [`eval`](Self::eval)) until `ok`
    /// holds; panics with the last value after `timeout`.
    pub async fn wait_eval(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let poll = Poll {
            what,
            timeout,
            every: Duration::from_millis(100),
            shows: "value",
        };
        poll.until(|| self.eval(script), ok).await
    }

    /// The text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Double-clicks the element matching `css` (real pointer input: down, up, down, up).
    pub async fn double_click(&self, css: &str) {
        use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"));
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(mouse).await.unwrap();
        self.client.release_actions().await.unwrap();
    }

    /// Picks the option with `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// Replaces the value of the input matching `css` by typing `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"));
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Saves a screenshot (PNG) to `path`, for looking at what a user would see.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the WebDriver session (the browser exits), then the WebDriver server.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// A test that panicked never closed its session, and killing the WebDriver server orphans
    /// the browser: end every process running on this browser's profile (only ours use that
    /// directory; Chromium names it in `--user-data-dir=DIR`, Firefox in `-profile DIR`).
    fn drop(&mut self) {
        let dir = self._profile.0.display().to_string();
        let flag = format!("={dir}");
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let pids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let pid = e.file_name().to_string_lossy().into_owned();
                pid.parse::<u32>().ok()?;
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                String::from_utf8_lossy(&cmdline)
                    .split('\0')
                    .any(|arg| arg == dir || arg.ends_with(&flag))
                    .then_some(pid)
            })
            .collect();
        if !pids.is_empty() {
            let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        }
    }
}

/// The real `confab serve` on 127.0.0.1 (port 0 unless `port` is given), with `extra` options.
pub struct Serve {
    _child: Killed,
    /// `ws://127.0.0.1:PORT/ws`.
    pub ws_url: String,
    /// `http://127.0.0.1:PORT`.
    pub http_url: String,
    /// The port it listens on.
    pub port: u16,
}

impl Serve {
    /// Starts `confab serve` and waits for it to print its URL.
    pub fn start(port: u16, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("confab starts");
        let stderr = child.stderr.take().unwrap();
        let child = Killed(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("server on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let ws_url = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("confab serve prints its URL");
        let http_url = ws_url
            .replacen("ws://", "http://", 1)
            .trim_end_matches("/ws")
            .to_owned();
        let port = http_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap();
        Self {
            _child: child,
            ws_url,
            http_url,
            port,
        }
    }

    /// Stops the server at once (SIGKILL: no goodbye to the clients, like a crash).
    pub fn kill(self) {
        drop(self);
    }
}

/// Runs `confab join URL ROOM --headless --fake-media --json ...extra` (ICE on 127.0.0.1 unless
/// `extra` has a `--bind`) and returns
/// its JSON report; panics (with its output) if it did not print one.
pub async fn native_join(ws_url: &str, room: &str, name: &str, extra: &[&str]) -> Value {
    native_join_with_env(ws_url, room, name, extra, &[]).await
}

/// [`native_join`] with these environment variables set for it (e.g. `DISPLAY` for a peer that
/// shares a screen).
pub async fn native_join_with_env(
    ws_url: &str,
    room: &str,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab"));
    cmd.envs(env.iter().copied());
    cmd.args([
        "join",
        ws_url,
        room,
        "--headless",
        "--fake-media",
        "--json",
        "--name",
        name,
    ])
    .args(extra);
    if !extra.contains(&"--bind") {
        cmd.args(["--bind", "127.0.0.1"]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    // CONFAB_TEST_NATIVE_LOG=DIR keeps each native peer's log (set RUST_LOG for more).
    if let Some(dir) = std::env::var_os("CONFAB_TEST_NATIVE_LOG") {
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}.log")),
            &out.stderr,
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "confab join ({name}) printed no report ({e}); status {}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The participant called `name` in a `confab join` report.
pub fn report_participant<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no participant {name} in the report: {report:#}"))
}

/// `GET path` over plain HTTP/1.0: the whole response (head and body), or empty on failure.
pub async fn http_get(http_url: &str, path: &str) -> String {
    let addr = http_url.trim_start_matches("http://").to_owned();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    })
    .await
    .unwrap()
    .unwrap_or_default()
}

/// Waits until the server's `/healthz` counts `n` participants.
pub async fn wait_for_participants(http_url: &str, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let body = http_get(http_url, "/healthz").await;
        let json = body.split("\r\n\r\n").nth(1).unwrap_or("{}");
        let health: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        if health["participants"].as_u64() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} participants: {body}");
        // Polled: `/healthz` is read on demand.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads a value from the page every `every` until a condition holds. Polled: WebDriver gives
/// the test no way to be told when the page changes.
struct Poll<'a> {
    what: &'a str,
    timeout: Duration,
    every: Duration,
    /// What the value is, for the failure message.
    shows: &'static str,
}

impl Poll<'_> {
    /// The first value `read` gives that satisfies `ok`; panics with the last one after the
    /// timeout.
    async fn until<F>(&self, read: impl Fn() -> F, ok: impl Fn(&Value) -> bool) -> Value
    where
        F: std::future::Future<Output = Value>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            let v = read().await;
            if ok(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "browser: {} did not happen within {:?}; {}: {v:#}",
                self.what,
                self.timeout,
                self.shows
            );
            tokio::time::sleep(self.every).await;
        }
    }
}
