//! A private Xvfb for screen-capture tests (the shared one from `confab-test-support`), and a
//! second X client that draws on it.
//!
//! [`Painter`] is an ordinary X client (x11rb, like the code under test,
//! but none of the engine's code): it puts BGRX images on the root window, opens, moves, hides
//! and closes top-level windows, moves the pointer and resizes the screen through RandR the way
//! `xrandr` would.
#![allow(dead_code, reason = "each includer uses a part")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test fixture: a panic is the test failing, with its message"
)]

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ImageFormat};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

pub use confab_test_support::xvfb::Xvfb;

/// An X client drawing on the root window of a display.
pub struct Painter {
    conn: RustConnection,
    root: xproto::Window,
    depth: u8,
    gc: xproto::Gcontext,
}

impl Painter {
    /// Connects to `display`.
    pub fn connect(display: &str) -> Self {
        let (conn, screen) = x11rb::connect(Some(display)).expect("the painter connects");
        let (root, depth) = {
            let s = &conn.setup().roots[screen];
            (s.root, s.root_depth)
        };
        let gc = conn.generate_id().unwrap();
        conn.create_gc(gc, root, &xproto::CreateGCAux::new())
            .unwrap();
        conn.prefetch_maximum_request_bytes();
        Self {
            conn,
            root,
            depth,
            gc,
        }
    }

    /// Puts a packed BGRX image (`width * 4` bytes a row) at (`x`, `y`) on the root window,
    /// in strips that fit the server's request size, and waits until the server has drawn it.
    pub fn put_bgrx(&self, x: i16, y: i16, width: u16, height: u16, bgrx: &[u8]) {
        self.put_bgrx_on(self.root, x, y, width, height, bgrx);
    }

    /// [`Painter::put_bgrx`] onto any window or the root.
    pub fn put_bgrx_on(
        &self,
        target: xproto::Window,
        x: i16,
        y: i16,
        width: u16,
        height: u16,
        bgrx: &[u8],
    ) {
        let row = usize::from(width) * 4;
        assert_eq!(bgrx.len(), row * usize::from(height));
        let rows_per_strip = ((self.conn.maximum_request_bytes() - 64) / row).clamp(1, 256);
        for (i, strip) in bgrx.chunks(row * rows_per_strip).enumerate() {
            let top = y + i16::try_from(i * rows_per_strip).unwrap();
            let rows = u16::try_from(strip.len() / row).unwrap();
            self.conn
                .put_image(
                    ImageFormat::Z_PIXMAP,
                    target,
                    self.gc,
                    width,
                    rows,
                    x,
                    top,
                    0,
                    self.depth,
                    strip,
                )
                .unwrap();
        }
        self.sync();
    }

    /// Moves the pointer to (`x`, `y`) on the root window.
    pub fn warp_pointer(&self, x: i16, y: i16) {
        self.conn
            .warp_pointer(x11rb::NONE, self.root, 0, 0, 0, 0, x, y)
            .unwrap();
        self.sync();
    }

    /// Resizes the screen to `width` x `height` (at most the size Xvfb started with) as
    /// `xrandr --output … --mode WxH` does: the output's mode of that size (made if missing), the
    /// screen grown first if needed so the CRTC fits, the CRTC switched, the screen set.
    pub fn randr_resize(&self, width: u16, height: u16) {
        let v = self
            .conn
            .randr_query_version(1, 5)
            .unwrap()
            .reply()
            .unwrap();
        assert!(
            (v.major_version, v.minor_version) >= (1, 2),
            "RandR 1.2 on Xvfb"
        );
        let res = self
            .conn
            .randr_get_screen_resources(self.root)
            .unwrap()
            .reply()
            .unwrap();
        let (&crtc, &output) = (res.crtcs.first().unwrap(), res.outputs.first().unwrap());
        let mode = match res
            .modes
            .iter()
            .find(|m| (m.width, m.height) == (width, height))
        {
            Some(m) => m.id,
            None => self.new_mode(output, width, height),
        };
        let now = self.conn.get_geometry(self.root).unwrap().reply().unwrap();
        if width > now.width || height > now.height {
            self.set_screen_size(width.max(now.width), height.max(now.height));
        }
        let set = self
            .conn
            .randr_set_crtc_config(
                crtc,
                x11rb::CURRENT_TIME,
                res.config_timestamp,
                0,
                0,
                mode,
                randr::Rotation::ROTATE0,
                &[output],
            )
            .unwrap()
            .reply()
            .expect("RandR SetCrtcConfig");
        assert_eq!(
            set.status,
            randr::SetConfig::SUCCESS,
            "the CRTC takes the mode"
        );
        self.set_screen_size(width, height);
    }

    /// A new RandR mode of `width` x `height`, added to `output`.
    fn new_mode(&self, output: randr::Output, width: u16, height: u16) -> randr::Mode {
        let name = format!("{width}x{height}");
        let info = randr::ModeInfo {
            id: 0,
            width,
            height,
            dot_clock: u32::from(width) * u32::from(height) * 60,
            hsync_start: width,
            hsync_end: width,
            htotal: width,
            hskew: 0,
            vsync_start: height,
            vsync_end: height,
            vtotal: height,
            name_len: u16::try_from(name.len()).unwrap(),
            mode_flags: randr::ModeFlag::default(),
        };
        let mode = self
            .conn
            .randr_create_mode(self.root, info, name.as_bytes())
            .unwrap()
            .reply()
            .expect("RandR CreateMode")
            .mode;
        self.conn
            .randr_add_output_mode(output, mode)
            .unwrap()
            .check()
            .expect("RandR AddOutputMode");
        mode
    }

    fn set_screen_size(&self, width: u16, height: u16) {
        let (mm_w, mm_h) = (u32::from(width) / 4, u32::from(height) / 4);
        self.conn
            .randr_set_screen_size(self.root, width, height, mm_w, mm_h)
            .unwrap()
            .check()
            .expect("RandR SetScreenSize");
    }

    /// A new top-level window titled `title` at (`x`, `y`), `width` x `height`, mapped, with
    /// `bgrx` (packed, `width * 4` bytes a row) drawn in it. There is no window manager: the
    /// window stays where it is put and is a child of the root.
    pub fn open_window(
        &self,
        title: &str,
        (x, y): (i16, i16),
        (width, height): (u16, u16),
        bgrx: &[u8],
    ) -> xproto::Window {
        let window = self.conn.generate_id().unwrap();
        self.conn
            .create_window(
                self.depth,
                window,
                self.root,
                x,
                y,
                width,
                height,
                0,
                xproto::WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &xproto::CreateWindowAux::new().background_pixel(0),
            )
            .unwrap()
            .check()
            .expect("CreateWindow");
        self.conn
            .change_property8(
                xproto::PropMode::REPLACE,
                window,
                xproto::AtomEnum::WM_NAME,
                xproto::AtomEnum::STRING,
                title.as_bytes(),
            )
            .unwrap();
        self.conn.map_window(window).unwrap();
        self.sync();
        self.put_bgrx_on(window, 0, 0, width, height, bgrx);
        window
    }

    /// Moves `window` to (`x`, `y`) and redraws `bgrx` in it (without a backing store, X drops
    /// a moved window's contents).
    pub fn move_window(
        &self,
        window: xproto::Window,
        (x, y): (i16, i16),
        (width, height): (u16, u16),
        bgrx: &[u8],
    ) {
        self.conn
            .configure_window(
                window,
                &xproto::ConfigureWindowAux::new()
                    .x(i32::from(x))
                    .y(i32::from(y)),
            )
            .unwrap();
        self.sync();
        self.put_bgrx_on(window, 0, 0, width, height, bgrx);
    }

    /// Unmaps (hides) `window`.
    pub fn hide_window(&self, window: xproto::Window) {
        self.conn.unmap_window(window).unwrap();
        self.sync();
    }

    /// Maps (shows) `window` again and redraws `bgrx` in it.
    pub fn show_window(&self, window: xproto::Window, (width, height): (u16, u16), bgrx: &[u8]) {
        self.conn.map_window(window).unwrap();
        self.sync();
        self.put_bgrx_on(window, 0, 0, width, height, bgrx);
    }

    /// Destroys (closes) `window`.
    pub fn close_window(&self, window: xproto::Window) {
        self.conn.destroy_window(window).unwrap();
        self.sync();
    }

    /// Waits until the server has carried out every request sent so far.
    pub fn sync(&self) {
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }
}
