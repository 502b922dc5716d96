//! The CLI's reference documentation beyond what clap derives from the arguments: `confab://`
//! links, the files Confab keeps, the environment it reads. Shown by `confab --help`, and written
//! with every subcommand's options into man pages by the hidden `confab manpages DIR`, which
//! `make package` runs on the binary it packages — so the pages always match the real CLI.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One documented item: a name (a path, a variable, a command line) and what it is.
type Entry = (&'static str, &'static str);

const LINKS: &[Entry] = &[(
    "confab confab://HOST:PORT/ROOM",
    "Opens the app and joins ROOM on the signaling server at HOST:PORT (what \"Copy link\" in a \
     call gives, and what the desktop entry passes when a confab:// link is clicked). A link \
     that is not complete opens the lobby with the reason.",
)];

const FILES: &[Entry] = &[
    (
        "~/.config/confab/config.toml",
        "Settings (name, rooms, devices, theme), created on first launch; $XDG_CONFIG_HOME \
         moves it. macOS: ~/Library/Application Support/org.confab.Confab/config.toml; \
         Windows: %APPDATA%\\confab\\Confab\\config\\config.toml.",
    ),
    (
        "~/.local/share/confab/app.ron",
        "Window size and position; $XDG_DATA_HOME moves it.",
    ),
    (
        "~/.local/state/confab/logs/confab.YYYY-MM-DD.log",
        "The desktop app's log, one file a day, the last 7 kept; $XDG_STATE_HOME moves it. \
         macOS: ~/Library/Logs/Confab/; Windows: %LOCALAPPDATA%\\confab\\Confab\\data\\logs\\. \
         The command-line tools log to stderr.",
    ),
];

const ENVIRONMENT: &[Entry] = &[
    (
        "RUST_LOG",
        "Log level or filter, e.g. debug or confab=debug (default info).",
    ),
    (
        "CONFAB_TURN_SECRET",
        "serve: the TURN server's shared secret (instead of --turn-secret).",
    ),
    (
        "CONFAB_TURN_CREDENTIAL",
        "join: the TURN password (instead of --turn-credential).",
    ),
    (
        "CONFAB_VIDEO_UPLOAD",
        "cpu or gpu: where the app converts video for the screen (default: the graphics card, or \
         the processor under a software renderer); for comparisons, or a graphics driver that \
         draws the video wrong.",
    ),
    (
        "DISPLAY, WAYLAND_DISPLAY",
        "Without either, confab with no subcommand runs the headless loopback call instead of \
         the app.",
    ),
];

/// The text after `confab --help`'s options.
pub fn help_epilogue() -> String {
    let mut text = String::new();
    for (title, entries) in sections() {
        let _ = writeln!(text, "{title}:");
        for (name, what) in entries {
            let _ = writeln!(text, "  {name}\n          {what}");
        }
        text.push('\n');
    }
    text.trim_end().to_owned()
}

fn sections() -> [(&'static str, &'static [Entry]); 3] {
    [
        ("Links", LINKS),
        ("Files", FILES),
        ("Environment", ENVIRONMENT),
    ]
}

/// Writes `confab.1` and one `confab-SUBCOMMAND.1` per visible subcommand into `dir`.
/// Returns the files written.
///
/// # Errors
/// `dir` cannot be created or a page cannot be written.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    let top = dir.join("confab.1");
    let page = top_page(&cmd).context("cannot render the confab(1) page")?;
    std::fs::write(&top, page).with_context(|| format!("cannot write {}", top.display()))?;
    written.push(top);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = labelled(clap_mangen::Man::new(sub.clone()));
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        man.render(&mut page)
            .with_context(|| format!("cannot render {}", path.display()))?;
        page.extend_from_slice(see_also(&["confab"]).as_bytes());
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// confab(1): clap_mangen's sections, then links, files, environment and the subcommand pages.
fn top_page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = labelled(clap_mangen::Man::new(cmd.clone()));
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    for (title, entries) in sections() {
        writeln!(page, ".SH {}", title.to_uppercase())?;
        for (name, what) in entries {
            writeln!(
                page,
                ".TP\n\\fB{}\\fR\n{}",
                roff_escape(name),
                roff_escape(what)
            )?;
        }
    }
    man.render_version_section(&mut page)?;
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("confab-{}", s.get_name()))
        .collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    page.extend_from_slice(see_also(&subs).as_bytes());
    Ok(page)
}

/// The footer every page shares: `Confab 0.1.0`, `Confab Manual`.
fn labelled(man: clap_mangen::Man) -> clap_mangen::Man {
    man.source(format!("Confab {}", confab::versions::CONFAB))
        .manual("Confab Manual")
}

fn see_also(pages: &[&str]) -> String {
    let refs: Vec<String> = pages.iter().map(|p| format!("\\fB{p}\\fR(1)")).collect();
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", "))
}

/// Makes plain text safe as roff: backslashes doubled, and a line never starts with a control
/// character.
fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_text_cannot_become_a_request() {
        assert_eq!(roff_escape(".config"), "\\&.config");
        assert_eq!(roff_escape("%APPDATA%\\confab"), "%APPDATA%\\econfab");
        assert_eq!(roff_escape("--turn-secret"), "\\-\\-turn\\-secret");
    }

    #[test]
    fn the_help_epilogue_names_links_files_and_environment() {
        let text = help_epilogue();
        for needle in [
            "confab://HOST:PORT/ROOM",
            "config.toml",
            "RUST_LOG",
            "Files:",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
