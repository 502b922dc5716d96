//! The real `confab` binary's command line for the installed app: `--version` names the media
//! libraries, a `confab://HOST:PORT/ROOM` argument (what the desktop entry's `Exec=confab %u`
//! passes) is taken apart or refused with the reason, a mistyped subcommand is not taken for a
//! link, and the man pages the packages ship describe the real options. No display here: a link
//! that would open the app says so instead (the Xvfb smoke test opens one for real).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::process::{Command, Output};

/// `confab ARGS` without a display, so nothing opens a window.
fn confab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("confab runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_names_confab_openh264_and_libopus() {
    let out = confab(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("confab {}", env!("CARGO_PKG_VERSION")));
    let h264 = lines[1]
        .strip_prefix("OpenH264 ")
        .expect("an OpenH264 line");
    assert_eq!(
        h264.split('.').filter(|p| p.parse::<u32>().is_ok()).count(),
        3,
        "{h264}"
    );
    assert!(lines[2].starts_with("libopus 1."), "{}", lines[2]);
    // -V stays one line.
    let short = confab(&["-V"]);
    assert_eq!(
        String::from_utf8_lossy(&short.stdout).trim(),
        format!("confab {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_complete_link_is_understood() {
    let out = confab(&["confab://192.168.1.20:8787/team%20standup"]);
    assert!(!out.status.success(), "there is no display to open");
    let err = stderr(&out);
    assert!(err.contains("no display"), "{err}");
    assert!(
        err.contains(r#"confab join ws://192.168.1.20:8787/ws "team standup" --headless"#),
        "{err}"
    );
}

#[test]
fn a_broken_link_says_what_is_wrong() {
    for (link, why) in [
        ("confab://192.168.1.20/standup", "names no port"),
        ("confab://192.168.1.20:8787", "names no room"),
        ("confab://192.168.1.20:99999/standup", "not a valid link"),
        ("confab:standup", "names no host"),
    ] {
        let out = confab(&[link]);
        assert_eq!(out.status.code(), Some(1), "{link}");
        let err = stderr(&out);
        assert!(err.contains(why), "{link}: {err}");
        assert!(!err.contains("panicked"), "{link}: {err}");
    }
}

#[test]
fn a_mistyped_subcommand_is_not_taken_for_a_link() {
    let out = confab(&["lopback"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        stderr(&out).contains("neither a subcommand nor a confab://"),
        "{}",
        stderr(&out)
    );
    let out = confab(&["confab://h:1/r", "serve"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_links_and_files() {
    let out = confab(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "[LINK]",
        "confab://HOST:PORT/ROOM",
        "config.toml",
        "logs",
        "sound-check",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from --help:\n{text}"
        );
    }
    assert!(
        !text.contains("manpages"),
        "the packaging helper stays hidden"
    );
}

#[test]
fn man_pages_describe_every_subcommand() {
    let dir = std::env::temp_dir().join(format!("confab-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = confab(&["manpages", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let top = page("confab.1");
    for section in [
        ".SH SYNOPSIS",
        ".SH SUBCOMMANDS",
        ".SH FILES",
        ".SH ENVIRONMENT",
    ] {
        assert!(top.contains(section), "confab.1 lacks {section}");
    }
    for sub in ["gui", "serve", "loopback", "join", "devices", "sound-check"] {
        assert!(
            top.contains(&format!("confab\\-{}", sub.replace('-', "\\-"))),
            "confab.1 omits {sub}"
        );
        assert!(page(&format!("confab-{sub}.1")).contains(".SH OPTIONS"));
    }
    // Options come from the real CLI definition.
    assert!(page("confab-serve.1").contains("\\-\\-turn\\-secret"));
    assert!(!dir.join("confab-manpages.1").exists());
    std::fs::remove_dir_all(dir).unwrap();
}
