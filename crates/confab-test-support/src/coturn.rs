//! A real TURN server for relay tests: coturn's `turnserver` on 127.0.0.1 with a free UDP port,
//! the `use-auth-secret` scheme (the credentials the signaling server hands out), loopback peers
//! allowed, no TLS/DTLS, no CLI, its relay ports in a small range of their own. It logs verbosely
//! into its own directory ([`Coturn::log`], shown when a test fails) and is killed when dropped.
//!
//! [`Coturn::start`] returns only once the server answers a STUN Binding request, so a test can
//! allocate at once. `turnserver` comes from the Debian package `coturn` (`make deps` installs
//! it); a machine without it fails the test with that hint rather than skipping it.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long coturn may take to answer its first Binding request.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// STUN magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// A running `turnserver`, killed on drop.
pub struct Coturn {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Coturn {
    /// Starts coturn with `static-auth-secret = secret` on a free port of 127.0.0.1 and waits
    /// until it answers STUN.
    ///
    /// # Panics
    /// If `turnserver` is not installed or does not answer within 10 s (three attempts, each
    /// on a fresh port, in case another process took the port between probe and bind).
    pub fn start(secret: &str) -> Self {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            match Self::try_start(secret) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("coturn did not start; its log:\n{last_log}");
    }

    fn try_start(secret: &str) -> Result<Self, String> {
        let port = free_udp_port();
        // Relay ports: a block of 64 of their own, so parallel servers do not collide.
        let relay_min = free_udp_port().clamp(10_000, 60_000);
        let dir = std::env::temp_dir().join(format!(
            "confab-coturn-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {dir:?}: {e}"))?;
        let log = dir.join("turnserver.log");
        let child = Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                &format!("--min-port={relay_min}"),
                &format!("--max-port={}", relay_min + 63),
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
                "--realm=confab.test",
                "--allow-loopback-peers",
                "--no-tls",
                "--no-dtls",
                "--no-tcp",
                "--no-cli",
                "--no-software-attribute",
                "-v",
                &format!("--log-file={}", log.display()),
                "--simple-log",
                &format!("--pidfile={}", dir.join("turnserver.pid").display()),
                &format!("--userdb={}", dir.join("turndb").display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => panic!(
                "cannot run turnserver ({e}): install the Debian package `coturn` (make deps)"
            ),
        };
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        if server.wait_until_listening() {
            Ok(server)
        } else {
            Err(server.log())
        }
    }

    /// Sends STUN Binding requests until one is answered: true once coturn listens, false if it
    /// exited or stayed silent for [`START_TIMEOUT`]. The socket's read timeout paces the
    /// retries (coturn has no readiness signal of its own).
    fn wait_until_listening(&mut self) -> bool {
        let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
            return false;
        };
        if socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .is_err()
        {
            return false;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let mut request = [0u8; 20];
        request[..2].copy_from_slice(&[0x00, 0x01]); // Binding request, no attributes
        request[4..8].copy_from_slice(&MAGIC_COOKIE);
        request[8..].copy_from_slice(&rand::random::<[u8; 12]>());
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            let _ = socket.send_to(&request, self.addr);
            if let Ok((n, from)) = socket.recv_from(&mut buf)
                && from == self.addr
                && n >= 20
                && buf[..2] == [0x01, 0x01]
                && buf[8..20] == request[8..20]
            {
                return true;
            }
        }
        false
    }

    /// Where it listens (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL for an ICE server entry: `turn:127.0.0.1:PORT?transport=udp`.
    pub fn url(&self) -> String {
        format!("turn:{}?transport=udp", self.addr)
    }

    /// Its log so far (verbose: allocations, permissions, channel binds, with timestamps).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where its log is.
    pub fn log_path(&self) -> PathBuf {
        // --simple-log keeps the name as given.
        self.dir.join("turnserver.log")
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind a UDP socket on 127.0.0.1")
}
