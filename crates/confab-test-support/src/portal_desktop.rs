//! A private desktop for Wayland screen-share tests: a session bus, a PipeWire daemon with its
//! session manager, a real PipeWire video source showing a known picture, and the ScreenCast
//! portal that hands it out.
//!
//! The picture comes from a real producer, GStreamer's `pipewiresink` (a PNG, frozen, at a fixed
//! frame rate, as `BGRx`), exactly as a compositor's screen-cast node does; the app reads it
//! through its own PipeWire stream. The portal is ours ([`PortalDesktop::answer`]): the
//! compositor's side of a screen share is the device boundary of these tests, as the camera is
//! for video. The real backends cannot run here: `xdg-desktop-portal-wlr` 0.7 (Debian 12) starts
//! a share only when the compositor offers DMA-BUF screen copies, which needs a GPU render node
//! this machine lacks, and the GNOME and KDE backends need their whole shell. Ours implements the
//! D-Bus interface the real ones do (`org.freedesktop.portal.ScreenCast` version 4 and
//! `org.freedesktop.portal.Session` on `org.freedesktop.portal.Desktop`), with the same request
//! objects and `Response` signals, and `OpenPipeWireRemote` returns a real connection to the
//! daemon. It records what the client did (sessions closed by it), and can close a session
//! the way a desktop's "stop sharing" indicator does.
//!
//! Everything runs in a directory of its own (the bus socket, PipeWire's socket, the session
//! manager's state), with `XDG_RUNTIME_DIR` pointed there, so nothing touches the user's
//! desktop; all of it is stopped on drop. The programs come from Debian's `dbus-daemon`,
//! `pipewire`, `wireplumber`, `pipewire-bin` (pw-dump) and `gstreamer1.0-pipewire` with
//! `gstreamer1.0-tools` and the base and good plugins (`make deps` installs them).

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

/// How long each program may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// The portal's object path.
const DESKTOP_PATH: &str = "/org/freedesktop/portal/desktop";

/// What the portal answers to the next `Start` (the user's choice in the dialog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalAnswer {
    /// The user picks the picture being shown: a monitor (`window: false`) or a window.
    Share {
        /// Report the source as a window rather than a monitor.
        window: bool,
    },
    /// The user closes the dialog.
    Cancel,
}

/// What the fake portal saw and will do.
#[derive(Debug)]
struct PortalState {
    answer: PortalAnswer,
    /// The node being shown and its size.
    node: Option<(u32, u32, u32)>,
    runtime_dir: PathBuf,
    /// Sessions created, by path.
    sessions: Vec<OwnedObjectPath>,
    /// Sessions the client closed (`Session.Close`).
    closed_by_client: Vec<OwnedObjectPath>,
    /// Options of the last `SelectSources`.
    select_options: HashMap<String, String>,
}

/// A private session bus + PipeWire + a picture + the ScreenCast portal; all stopped on drop.
pub struct PortalDesktop {
    dir: PathBuf,
    bus_address: String,
    processes: Vec<(&'static str, Child)>,
    producer: Option<Child>,
    /// Serves the portal's connection; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    connection: Option<zbus::Connection>,
    state: Arc<Mutex<PortalState>>,
}

impl PortalDesktop {
    /// Starts the bus, PipeWire and WirePlumber in a new directory, and serves the portal on
    /// the bus (answering [`PortalAnswer::Share`] until told otherwise).
    ///
    /// # Panics
    /// When a program is missing or does not come up in time (with its log).
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// [`PortalDesktop::start`], calling `before_threads` with the desktop's [`env`] first,
    /// before this starts any thread or process: a test that must put it into its own
    /// environment (`set_var`) does it there.
    ///
    /// [`env`]: PortalDesktop::env
    ///
    /// # Panics
    /// As [`PortalDesktop::start`].
    pub fn start_with(before_threads: impl FnOnce(&[(&'static str, String)])) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "confab-portal-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        set_private(&dir);
        let bus = dir.join("bus");
        let bus_address = format!("unix:path={}", bus.display());
        before_threads(&env_of(&dir, &bus_address));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(PortalState {
            answer: PortalAnswer::Share { window: false },
            node: None,
            runtime_dir: dir.clone(),
            sessions: Vec::new(),
            closed_by_client: Vec::new(),
            select_options: HashMap::new(),
        }));
        let mut desktop = Self {
            dir,
            bus_address,
            processes: Vec::new(),
            producer: None,
            runtime: Some(runtime),
            connection: None,
            state,
        };
        desktop.spawn(
            "dbus-daemon",
            Command::new("dbus-daemon").args([
                "--session",
                "--nofork",
                "--nopidfile",
                &format!("--address={}", desktop.bus_address),
            ]),
        );
        desktop.wait_for("the session bus", |_| bus.exists());
        desktop.spawn("pipewire", &mut Command::new("pipewire"));
        let socket = desktop.dir.join("pipewire-0");
        desktop.wait_for("PipeWire's socket", |_| {
            UnixStream::connect(&socket).is_ok()
        });
        desktop.spawn("wireplumber", &mut Command::new("wireplumber"));
        // WirePlumber's second connection ("[export]") is made once its scripts have loaded,
        // the policy that links a stream to its target among them.
        desktop.wait_for("WirePlumber's policy", |d| {
            d.pw_dump().iter().any(|o| {
                o["type"] == "PipeWire:Interface:Client"
                    && prop(o, "application.name") == Some("WirePlumber [export]")
            })
        });
        desktop.serve_portal();
        desktop
    }

    /// The environment a client of this desktop needs: its session bus and runtime directory.
    #[must_use]
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_of(&self.dir, &self.bus_address)
    }

    /// Shows the `width` x `height` picture `bgrx` (4 bytes a pixel: blue, green, red, unused)
    /// as the screen: a PipeWire video source at `fps`, replacing the one shown before.
    /// Returns its node id once the daemon lists it.
    ///
    /// # Panics
    /// When the producer does not come up.
    pub fn show_picture(&mut self, bgrx: &[u8], (width, height): (u32, u32), fps: u32) -> u32 {
        self.stop_picture();
        let name = format!("confab-test-screen-{}", rand::random::<u32>());
        let png = self.dir.join(format!("{name}.png"));
        write_png(&png, bgrx, width, height);
        let child = self
            .command("gst-launch-1.0")
            .args([
                "-q",
                "filesrc",
                &format!("location={}", png.display()),
                "!",
                "pngdec",
                "!",
                "imagefreeze",
                "is-live=true",
                "!",
                "videoconvert",
                "!",
                &format!("video/x-raw,format=BGRx,width={width},height={height},framerate={fps}/1"),
                "!",
                // pipewiresink 0.3.65 offers its buffer pool upstream, and videoconvert fails on
                // its buffers ("gst_buffer_peek_memory: assertion failed", then nothing sent):
                // converting into ordinary buffers avoids it.
                "identity",
                "drop-allocation=true",
                "!",
                "pipewiresink",
                "mode=provide",
                &format!("stream-properties=p,node.name={name},media.class=Video/Source"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file(&self.dir, "gst-launch")))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run gst-launch-1.0 ({e}); `make deps` installs it"));
        self.producer = Some(child);
        let mut node = None;
        self.wait_for("the picture's PipeWire node", |d| {
            node = d.pw_dump().iter().find_map(|o| {
                (prop(o, "node.name") == Some(name.as_str())).then(|| o["id"].as_u64())?
            });
            node.is_some()
        });
        let node = u32::try_from(node.unwrap()).unwrap();
        self.state.lock().unwrap().node = Some((node, width, height));
        node
    }

    /// Stops the picture's producer (its node goes away, as when a shared window closes).
    pub fn stop_picture(&mut self) {
        if let Some(mut child) = self.producer.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the portal answers to the next `Start`.
    pub fn answer(&self, answer: PortalAnswer) {
        self.state.lock().unwrap().answer = answer;
    }

    /// Closes every open session from the desktop's side (its "stop sharing" indicator): the
    /// `Closed` signal on each.
    pub fn close_sessions(&self) {
        let (sessions, closed) = {
            let state = self.state.lock().unwrap();
            (state.sessions.clone(), state.closed_by_client.clone())
        };
        let connection = self.connection.clone().unwrap();
        self.block_on(async {
            for path in sessions.iter().filter(|p| !closed.contains(p)) {
                let results: HashMap<&str, Value<'_>> = HashMap::new();
                connection
                    .emit_signal(
                        None::<()>,
                        path.as_ref(),
                        "org.freedesktop.portal.Session",
                        "Closed",
                        &(results,),
                    )
                    .await
                    .unwrap();
            }
        });
    }

    /// How many sessions the client opened, and how many of them it closed itself.
    #[must_use]
    pub fn sessions(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.sessions.len(), state.closed_by_client.len())
    }

    /// The options of the last `SelectSources`, as text (e.g. `types`, `cursor_mode`).
    #[must_use]
    pub fn select_options(&self) -> HashMap<String, String> {
        self.state.lock().unwrap().select_options.clone()
    }

    /// Takes the portal off the bus (nothing answers for it any more).
    pub fn stop_portal(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.block_on(async move {
                let _ = connection
                    .release_name("org.freedesktop.portal.Desktop")
                    .await;
                drop(connection);
            });
        }
    }

    fn serve_portal(&mut self) {
        let screen_cast = ScreenCast {
            state: Arc::clone(&self.state),
        };
        let address = self.bus_address.clone();
        let connection = self.block_on(async move {
            zbus::connection::Builder::address(address.as_str())?
                .name("org.freedesktop.portal.Desktop")?
                .serve_at(DESKTOP_PATH, screen_cast)?
                .build()
                .await
        });
        self.connection = Some(connection.unwrap_or_else(|e| panic!("serving the portal: {e}")));
    }

    /// Runs `future` to completion on the portal's runtime, from a thread of its own (so that a
    /// test running on a runtime of its own may call this).
    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        let runtime = self.runtime.as_ref().unwrap();
        std::thread::scope(|s| s.spawn(|| runtime.block_on(future)).join().unwrap())
    }

    /// Every object PipeWire lists (`pw-dump`), as JSON.
    fn pw_dump(&self) -> Vec<serde_json::Value> {
        let out = self
            .command("pw-dump")
            .stderr(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run pw-dump ({e}); `make deps` installs pipewire-bin")
            });
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_default()
    }

    /// A command run in this desktop's environment.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .envs(self.env());
        command
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) {
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        let child = self
            .command(&program.to_string_lossy())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file(&self.dir, name)))
            .stderr(Stdio::from(log_file(&self.dir, &format!("{name}.err"))))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name} ({e}); `make deps` installs it"));
        self.processes.push((name, child));
    }

    /// Waits until `ready` holds, or panics with the logs.
    fn wait_for(&self, what: &str, mut ready: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + START_TIMEOUT;
        while !ready(self) {
            if Instant::now() > deadline {
                panic!(
                    "{what} did not come up in {START_TIMEOUT:?}; logs:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every log of the desktop's programs.
    #[must_use]
    pub fn logs(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    all.push_str(&format!("--- {}\n", path.display()));
                    for line in tail.into_iter().rev() {
                        all.push_str(line);
                        all.push('\n');
                    }
                }
            }
        }
        all
    }
}

impl Drop for PortalDesktop {
    fn drop(&mut self) {
        self.stop_picture();
        self.stop_portal();
        for (_, child) in self.processes.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(runtime) = self.runtime.take() {
            // Allowed from inside another runtime, unlike dropping it.
            runtime.shutdown_background();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the BGRx picture as an RGB PNG.
fn write_png(path: &Path, bgrx: &[u8], width: u32, height: u32) {
    assert_eq!(
        bgrx.len(),
        width as usize * height as usize * 4,
        "a {width}x{height} BGRx picture"
    );
    let rgb: Vec<u8> = bgrx
        .chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect();
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&rgb).unwrap();
    writer.finish().unwrap();
}

/// The environment of a desktop in `dir` with its bus at `bus_address`.
fn env_of(dir: &Path, bus_address: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DBUS_SESSION_BUS_ADDRESS", bus_address.to_owned()),
        ("XDG_RUNTIME_DIR", dir.display().to_string()),
        ("PIPEWIRE_RUNTIME_DIR", dir.display().to_string()),
    ]
}

/// `object["info"]["props"][key]` as text.
fn prop<'a>(object: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    object["info"]["props"][key].as_str()
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(format!("{name}.log"))).unwrap()
}

/// The runtime directory must be the owner's alone (PipeWire and the bus check it).
fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// The object path of a request or session of `sender` named by `token`.
fn handle_path(
    kind: &str,
    sender: Option<&zbus::names::UniqueName<'_>>,
    token: &str,
) -> OwnedObjectPath {
    let sender = sender.map_or_else(String::new, |s| s.trim_start_matches(':').replace('.', "_"));
    ObjectPath::try_from(format!("{DESKTOP_PATH}/{kind}/{sender}/{token}"))
        .unwrap()
        .into()
}

/// The path of the request object a portal call with `options` from `header`'s sender answers
/// on.
fn request_path(
    header: &zbus::message::Header<'_>,
    options: &HashMap<String, OwnedValue>,
) -> OwnedObjectPath {
    handle_path("request", header.sender(), &option(options, "handle_token"))
}

/// The string option `key` of a portal call.
fn option(options: &HashMap<String, OwnedValue>, key: &str) -> String {
    options
        .get(key)
        .and_then(|v| v.downcast_ref::<String>().ok())
        .unwrap_or_else(|| "t".to_owned())
}

/// Sends the `Response` of the request at `path` (`0`: success, `1`: cancelled).
async fn respond(
    connection: &zbus::Connection,
    path: &OwnedObjectPath,
    code: u32,
    results: HashMap<&str, Value<'_>>,
) {
    let _ = connection
        .emit_signal(
            None::<()>,
            path.as_ref(),
            "org.freedesktop.portal.Request",
            "Response",
            &(code, results),
        )
        .await;
}

/// `org.freedesktop.portal.ScreenCast`, answering as [`PortalState`] says.
struct ScreenCast {
    state: Arc<Mutex<PortalState>>,
}

#[zbus::interface(name = "org.freedesktop.portal.ScreenCast")]
impl ScreenCast {
    async fn create_session(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] connection: &zbus::Connection,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let request = request_path(&header, &options);
        let session = handle_path(
            "session",
            header.sender(),
            &option(&options, "session_handle_token"),
        );
        server
            .at(
                session.as_ref(),
                Session {
                    path: session.clone(),
                    state: Arc::clone(&self.state),
                },
            )
            .await?;
        self.state.lock().unwrap().sessions.push(session.clone());
        let mut results = HashMap::new();
        results.insert("session_handle", Value::from(session.as_str().to_owned()));
        respond(connection, &request, 0, results).await;
        Ok(request)
    }

    async fn select_sources(
        &self,
        _session_handle: ObjectPath<'_>,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] connection: &zbus::Connection,
    ) -> OwnedObjectPath {
        let request = request_path(&header, &options);
        self.state.lock().unwrap().select_options = options
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:?}")))
            .collect();
        respond(connection, &request, 0, HashMap::new()).await;
        request
    }

    async fn start(
        &self,
        _session_handle: ObjectPath<'_>,
        _parent_window: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] connection: &zbus::Connection,
    ) -> OwnedObjectPath {
        let request = request_path(&header, &options);
        let (answer, node) = {
            let state = self.state.lock().unwrap();
            (state.answer, state.node)
        };
        match (answer, node) {
            (PortalAnswer::Share { window }, Some((node, width, height))) => {
                let mut stream: HashMap<&str, Value<'_>> = HashMap::new();
                stream.insert("size", Value::from((width as i32, height as i32)));
                stream.insert("position", Value::from((0i32, 0i32)));
                stream.insert("source_type", Value::from(if window { 2u32 } else { 1u32 }));
                let mut results = HashMap::new();
                results.insert("streams", Value::from(vec![(node, stream)]));
                respond(connection, &request, 0, results).await;
            }
            // Cancelled, or nothing to show: the user closed the dialog.
            _ => respond(connection, &request, 1, HashMap::new()).await,
        }
        request
    }

    async fn open_pipe_wire_remote(
        &self,
        _session_handle: ObjectPath<'_>,
        _options: HashMap<String, OwnedValue>,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedFd> {
        let socket = self.state.lock().unwrap().runtime_dir.join("pipewire-0");
        let stream = UnixStream::connect(&socket)
            .map_err(|e| zbus::fdo::Error::Failed(format!("connecting to PipeWire: {e}")))?;
        Ok(std::os::fd::OwnedFd::from(stream).into())
    }

    #[zbus(property, name = "AvailableSourceTypes")]
    fn available_source_types(&self) -> u32 {
        1 | 2
    }

    #[zbus(property, name = "AvailableCursorModes")]
    fn available_cursor_modes(&self) -> u32 {
        1 | 2
    }

    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        4
    }
}

/// `org.freedesktop.portal.Session` of one session.
struct Session {
    path: OwnedObjectPath,
    state: Arc<Mutex<PortalState>>,
}

#[zbus::interface(name = "org.freedesktop.portal.Session")]
impl Session {
    async fn close(
        &self,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> zbus::fdo::Result<()> {
        self.state
            .lock()
            .unwrap()
            .closed_by_client
            .push(self.path.clone());
        server.remove::<Self, _>(self.path.as_ref()).await?;
        Ok(())
    }

    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        1
    }
}
