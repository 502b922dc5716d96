//! Sharing a real X11 screen end to end: a private Xvfb (1920x1080) shows a known picture
//! (text-like glyph rows, a one-pixel checkerboard, coloured blocks) as its root window; one
//! `confab join --share-screen` on that display shares it through a real `confab serve` and
//! real UDP; another `confab join --snapshot DIR` receives it and writes the last decoded screen
//! as PNG. The received picture must match what was on the screen: PSNR of the luma at least
//! 30 dB over the whole screen and over the text region, the coloured blocks the right colour.
//!
//! The fixture: black glyph strokes one and two pixels wide on white (what text is to an
//! encoder: sharp edges on flat ground), a checkerboard of single pixels (the finest detail a
//! screen has; chroma subsampling and quantisation blur it first), and four saturated blocks
//! (colour must survive the BGRA → I420 → H.264 → RGBA round trip). Deterministic: no seed.
//!
//! The same for one window: part of the picture in an ImageMagick window, shared with
//! `--share-screen window:ID`, arrives at the window's size.
//!
//! And on Wayland: the same picture as the screen a ScreenCast portal grants (a private session
//! bus, PipeWire and a real PipeWire video source showing it; the portal is the test's own, see
//! `confab_test_support::portal_desktop`), shared with `--share-screen portal`: it arrives
//! alike, and the presenter closes its portal session when it leaves.
//!
//! Needs Xvfb, ImageMagick (`display -window root` puts the picture on the screen) and xdotool
//! (finds the window by title), and for the portal dbus-daemon, PipeWire, WirePlumber and
//! GStreamer's pipewiresink; `make deps` installs them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::browser::{Serve, native_join, native_join_with_env, report_participant};
use confab_test_support::portal_desktop::PortalDesktop;
use confab_test_support::xvfb::Xvfb;

const W: usize = 1920;
const H: usize = 1080;
/// The text region: glyph rows in the top-left quarter.
const TEXT: (usize, usize, usize, usize) = (80, 80, 1000, 560);
/// The checkerboard region.
const CHECKER: (usize, usize, usize, usize) = (1200, 80, 1600, 400);
/// The coloured blocks: left edge, top, size, and colour.
const BLOCKS: [(usize, [u8; 3]); 4] = [
    (200, [220, 30, 30]),
    (600, [30, 180, 60]),
    (1000, [40, 60, 220]),
    (1400, [240, 200, 20]),
];
const BLOCK_TOP: usize = 720;
const BLOCK_SIZE: usize = 200;

/// The known picture, RGB.
fn known_picture() -> Vec<u8> {
    let mut rgb = vec![255u8; W * H * 3];
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        let i = (y * W + x) * 3;
        rgb[i..i + 3].copy_from_slice(&c);
    };
    // Glyph rows: 8x14 cells, strokes chosen per cell from a small hash.
    let (x0, y0, x1, y1) = TEXT;
    for (row, y) in (y0..y1 - 14).step_by(20).enumerate() {
        for (col, x) in (x0..x1 - 8).step_by(8).enumerate() {
            let h = (row * 131 + col * 7919) as u32;
            let h = h.wrapping_mul(0x9E37_79B1) ^ (h >> 7);
            if h.is_multiple_of(7) {
                continue;
            }
            let stem = 1 + (h % 3) as usize * 2;
            for dy in 2..12 {
                put(x + stem, y + dy, [0, 0, 0]);
                if h & 0x10 != 0 {
                    put(x + stem + 1, y + dy, [0, 0, 0]);
                }
            }
            for (bit, dy) in [(0x20, 4), (0x40, 7), (0x80, 11)] {
                if h & bit != 0 {
                    for dx in 1..6 {
                        put(x + dx, y + dy, [0, 0, 0]);
                    }
                }
            }
        }
    }
    let (x0, y0, x1, y1) = CHECKER;
    for y in y0..y1 {
        for x in x0..x1 {
            if (x + y).is_multiple_of(2) {
                put(x, y, [0, 0, 0]);
            }
        }
    }
    for (left, colour) in BLOCKS {
        for y in BLOCK_TOP..BLOCK_TOP + BLOCK_SIZE {
            for x in left..left + BLOCK_SIZE {
                put(x, y, colour);
            }
        }
    }
    rgb
}

/// A full-screen RGB picture as PNG.
fn write_png(path: &Path, rgb: &[u8]) {
    write_png_sized(path, rgb, W, H);
}

/// A `width` x `height` RGB picture as PNG.
fn write_png_sized(path: &Path, rgb: &[u8], width: usize, height: usize) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(rgb).unwrap();
    writer.finish().unwrap();
}

/// An RGBA or RGB PNG as RGB, with its size.
fn read_png(path: &Path) -> (Vec<u8>, usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (rgb, info.width as usize, info.height as usize)
}

fn luma(p: &[u8]) -> f64 {
    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
}

/// PSNR (dB) of the luma of `a` against `b` (full-screen pictures) over the rectangle
/// `(x0, y0, x1, y1)`.
fn psnr(a: &[u8], b: &[u8], rect: (usize, usize, usize, usize)) -> f64 {
    psnr_sized(a, b, W, rect)
}

/// [`psnr`] for pictures `width` pixels wide.
fn psnr_sized(
    a: &[u8],
    b: &[u8],
    width: usize,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
) -> f64 {
    let mut sum = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            let i = (y * width + x) * 3;
            let d = luma(&a[i..i + 3]) - luma(&b[i..i + 3]);
            sum += d * d;
        }
    }
    let mse = sum / ((x1 - x0) * (y1 - y0)) as f64;
    if mse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// The mean colour of a square around `(x, y)`.
fn mean_colour(rgb: &[u8], x: usize, y: usize) -> [f64; 3] {
    let mut sum = [0.0; 3];
    let mut n = 0.0;
    for yy in y - 20..y + 20 {
        for xx in x - 20..x + 20 {
            let i = (yy * W + xx) * 3;
            for c in 0..3 {
                sum[c] += f64::from(rgb[i + c]);
            }
            n += 1.0;
        }
    }
    sum.map(|s| s / n)
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confab-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A real `confab serve`; in its `room`, a presenter (`confab join` with `env`, e.g. its
/// `DISPLAY`, and `share`, e.g. `["--share-screen"]`, for 11 s) and a viewer (`confab join
/// --snapshot` under `dir`, for 14 s). Checks that the presenter's share ran; returns the
/// viewer's report and the presenter's screen snapshot it wrote.
async fn share_through_a_server(
    env: &[(&str, &str)],
    dir: &Path,
    room: &str,
    share: &[&str],
) -> (serde_json::Value, PathBuf) {
    let serve = Serve::start(0, &[]);
    let shots_arg = dir.join("received").to_string_lossy().into_owned();
    let viewer = tokio::spawn({
        let url = serve.ws_url.clone();
        let room = room.to_owned();
        async move {
            native_join(
                &url,
                &room,
                "viewer",
                &["--seconds", "14", "--snapshot", &shots_arg],
            )
            .await
        }
    });
    let mut presenter_args = vec!["--seconds", "11"];
    presenter_args.extend_from_slice(share);
    let presenter =
        native_join_with_env(&serve.ws_url, room, "presenter", &presenter_args, env).await;
    let viewer = viewer.await.unwrap();
    assert_eq!(presenter["ok"], true, "{presenter:#}");
    assert_eq!(
        presenter["screen_share"]["state"], "sharing",
        "the presenter shared: {presenter:#}"
    );
    let snapshot = viewer["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .find(|f| f.contains("presenter") && f.ends_with("-screen.png"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("a screen snapshot of the presenter: {viewer:#}\nthe presenter: {presenter:#}")
        });
    (viewer, snapshot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_x11_screen_arrives_as_it_was_on_the_screen() {
    let x = Xvfb::start(W as u32, H as u32, 24);
    let dir = temp_dir("x11-share");
    let picture = known_picture();
    let fixture = dir.join("screen.png");
    write_png(&fixture, &picture);
    // ImageMagick sets the root window's background to the picture and exits.
    let shown = Command::new("display")
        .args(["-window", "root"])
        .arg(&fixture)
        .env("DISPLAY", &x.display)
        .status()
        .expect("ImageMagick's display runs (make deps installs imagemagick)");
    eprintln!("display -window root: {shown}");

    let (viewer, snapshot) =
        share_through_a_server(&[("DISPLAY", &x.display)], &dir, "x11", &["--share-screen"]).await;
    assert_received_screen(&viewer, &snapshot, &picture);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The presenter's screen as the viewer received it (`viewer`'s report, the `snapshot` it
/// wrote) matches `picture`: full size, PSNR at least 30 dB over the whole and the text, the
/// blocks' colours.
fn assert_received_screen(viewer: &serde_json::Value, snapshot: &Path, picture: &[u8]) {
    assert_eq!(viewer["ok"], true, "{viewer:#}");
    let p = report_participant(viewer, "presenter");
    assert_eq!(p["screen_resolution"], "1920x1080", "{viewer:#}");
    assert!(
        p["screen_frames_received"].as_u64().unwrap() > 0,
        "{viewer:#}"
    );
    eprintln!(
        "figures: screen {} fps, {} pictures, camera {} pictures",
        p["screen_fps"], p["screen_frames_received"], p["frames_received"]
    );

    let (received, w, h) = read_png(snapshot);
    assert_eq!((w, h), (W, H));
    let whole = psnr(&received, picture, (0, 0, W, H));
    let text = psnr(&received, picture, TEXT);
    let checker = psnr(&received, picture, CHECKER);
    eprintln!("figures: PSNR whole {whole:.1} dB, text {text:.1} dB, checkerboard {checker:.1} dB");
    assert!(whole >= 30.0, "whole screen PSNR {whole:.1} dB");
    assert!(text >= 30.0, "text region PSNR {text:.1} dB (legible)");
    for (left, colour) in BLOCKS {
        let got = mean_colour(&received, left + BLOCK_SIZE / 2, BLOCK_TOP + BLOCK_SIZE / 2);
        for c in 0..3 {
            assert!(
                (got[c] - f64::from(colour[c])).abs() < 20.0,
                "block at x={left}: got {got:?}, drawn {colour:?}"
            );
        }
    }
}

/// Wayland: the known picture is the screen a ScreenCast portal grants; `confab join
/// --share-screen portal` (on that desktop's session bus) shares it, the viewer's snapshot
/// matches it as the X11 one must, and the presenter closed its portal session on leaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_shared_through_the_portal_arrives_as_it_was_shown() {
    let mut desktop = PortalDesktop::start();
    let dir = temp_dir("portal-share");
    let picture = known_picture();
    let bgrx: Vec<u8> = picture
        .chunks(3)
        .flat_map(|p| [p[2], p[1], p[0], 0])
        .collect();
    desktop.show_picture(&bgrx, (W as u32, H as u32), 15);
    let env = desktop.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (viewer, snapshot) =
        share_through_a_server(&env, &dir, "portal", &["--share-screen", "portal"]).await;
    assert_received_screen(&viewer, &snapshot, &picture);
    assert_eq!(
        desktop.sessions(),
        (1, 1),
        "one portal session, closed by the presenter when it left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One window shared, not the screen: ImageMagick's `display` shows part of the known picture
/// in a window of its own (960x540, titled), over a desktop showing something else; `confab
/// join --share-screen window:ID` (the id as `xdotool` finds it by title) shares it, and the
/// viewer's snapshot is that window's picture at its size, text legible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_x11_window_arrives_as_it_was_in_the_window() {
    const CROP: (usize, usize, usize, usize) = (40, 40, 1000, 580);
    let (cw, ch) = (CROP.2 - CROP.0, CROP.3 - CROP.1);
    let x = Xvfb::start(W as u32, H as u32, 24);
    let dir = temp_dir("x11-window-share");
    let picture = known_picture();
    let window_picture: Vec<u8> = picture
        .chunks(W * 3)
        .skip(CROP.1)
        .take(ch)
        .flat_map(|row| row[CROP.0 * 3..CROP.2 * 3].to_vec())
        .collect();
    let fixture = dir.join("window.png");
    write_png_sized(&fixture, &window_picture, cw, ch);
    let mut shown = Command::new("display")
        .args(["-title", "Shared notes", "-geometry", "+300+200"])
        .arg(&fixture)
        .env("DISPLAY", &x.display)
        .spawn()
        .expect("ImageMagick's display runs (make deps installs imagemagick)");
    let found = Command::new("xdotool")
        .args([
            "search",
            "--sync",
            "--onlyvisible",
            "--name",
            "^Shared notes$",
        ])
        .env("DISPLAY", &x.display)
        .output()
        .expect("xdotool runs (make deps installs it)");
    let id = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("the window's id: {found:?}"));
    eprintln!("sharing window {id:#x}");

    let window_arg = format!("window:{id:#x}");
    let (viewer, snapshot) = share_through_a_server(
        &[("DISPLAY", &x.display)],
        &dir,
        "x11w",
        &["--share-screen", &window_arg],
    )
    .await;
    let _ = shown.kill();
    let _ = shown.wait();
    let p = report_participant(&viewer, "presenter");
    assert_eq!(p["screen_resolution"], format!("{cw}x{ch}"), "{viewer:#}");
    let (received, w, h) = read_png(&snapshot);
    assert_eq!((w, h), (cw, ch));
    let whole = psnr_sized(&received, &window_picture, cw, (0, 0, cw, ch));
    let text = psnr_sized(
        &received,
        &window_picture,
        cw,
        (
            TEXT.0 - CROP.0,
            TEXT.1 - CROP.1,
            TEXT.2 - CROP.0,
            TEXT.3 - CROP.1,
        ),
    );
    eprintln!("figures: window PSNR whole {whole:.1} dB, text {text:.1} dB");
    assert!(whole >= 30.0, "window PSNR {whole:.1} dB");
    assert!(text >= 30.0, "text region PSNR {text:.1} dB (legible)");
    let _ = std::fs::remove_dir_all(&dir);
}
