//! `confab devices` (what cameras, microphones and speakers Confab sees) and
//! `confab sound-check` (play a tone, record it, say whether sound works end to end).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use confab_engine::devices::sound_check::{self, SoundCheckOptions};
use confab_engine::devices::{DeviceInfo, DeviceStatus, enumerate};

/// Arguments of `confab devices`.
#[derive(Debug, clap::Args)]
pub struct DevicesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `confab sound-check`.
#[derive(Debug, clap::Args)]
pub struct SoundCheckArgs {
    /// Speaker id from `confab devices` (default: the system default).
    #[arg(long)]
    speaker: Option<String>,
    /// Microphone id from `confab devices` (default: the system default).
    #[arg(long)]
    microphone: Option<String>,
    /// Tone frequency, Hz.
    #[arg(long, default_value_t = 440.0)]
    frequency: f64,
    /// Tone level, dBFS (peak).
    #[arg(long, default_value_t = -12.0, allow_negative_numbers = true)]
    level: f64,
    /// Seconds to play.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Lists devices.
pub fn devices(args: &DevicesArgs) -> Result<()> {
    let list = enumerate();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let section = |title: &str, items: &[DeviceInfo]| {
        println!("{title}:");
        if items.is_empty() {
            println!("  (none)");
        }
        for d in items {
            let default = if d.is_default { "  [default]" } else { "" };
            println!("  {}{default}\n      id: {}", d.name, d.id);
        }
    };
    section("Cameras", &list.cameras);
    section("Microphones", &list.microphones);
    section("Speakers", &list.speakers);
    for p in &list.problems {
        println!("note: {p}");
    }
    screens();
    Ok(())
}

/// The monitors and windows `confab join --share-screen N|window:ID` can share (X11,
/// `$DISPLAY`), named as it takes them, and the portal (Wayland) when this build has it.
#[cfg(target_os = "linux")]
fn screens() {
    if confab_engine::devices::screen::PORTAL_BUILT {
        println!(
            "Screen sharing through the desktop's dialog (Wayland; --share-screen portal): {}",
            if confab_engine::devices::screen::wayland_session() {
                "this is a Wayland session, use it"
            } else {
                "available where xdg-desktop-portal runs"
            }
        );
    }
    println!("Screens (to share; --share-screen N):");
    match confab_engine::devices::screen::list_monitors(None) {
        Ok(monitors) => {
            for (n, m) in monitors.iter().enumerate() {
                let main = if m.primary { "  [main]" } else { "" };
                println!(
                    "  {n}: {} {}x{} at {},{}{main}",
                    m.name, m.width, m.height, m.x, m.y
                );
            }
        }
        Err(e) => {
            println!("  (none: {e})");
            return;
        }
    }
    println!("Windows (to share; --share-screen window:ID):");
    match confab_engine::devices::screen::list_windows(None) {
        Ok(windows) if windows.is_empty() => println!("  (none shown)"),
        Ok(windows) => {
            for w in windows {
                println!(
                    "  window:{:#x}: {} {}x{} at {},{}",
                    w.id, w.title, w.width, w.height, w.x, w.y
                );
            }
        }
        Err(e) => println!("  (none: {e})"),
    }
}

#[cfg(not(target_os = "linux"))]
fn screens() {
    println!("Screens: sharing a screen from this system is not built yet (Linux with X11 only)");
}

/// Plays a tone through the speaker, records it with the microphone, and reports.
pub fn sound_check(args: &SoundCheckArgs) -> Result<()> {
    if !(20.0..=20_000.0).contains(&args.frequency) {
        bail!("--frequency must be between 20 and 20000 Hz");
    }
    if !(0.2..=30.0).contains(&args.seconds) {
        bail!("--seconds must be between 0.2 and 30");
    }
    if !(-60.0..=0.0).contains(&args.level) {
        bail!("--level must be between -60 and 0 dBFS");
    }
    let options = SoundCheckOptions {
        speaker: args.speaker.clone(),
        microphone: args.microphone.clone(),
        frequency_hz: args.frequency,
        level_dbfs: args.level,
        duration: Duration::from_secs_f64(args.seconds),
    };
    let status: DeviceStatus = Arc::new(|notice| eprintln!("{}", notice.message));
    let report = sound_check::run(&options, &status)?;
    let heard = report
        .heard_hz
        .is_some_and(|f| (f - report.played_hz).abs() < report.played_hz * 0.02)
        && report.tone_purity > 0.5;
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["ok"] = serde_json::Value::Bool(heard);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "Played {:.0} Hz on \"{}\"",
            report.played_hz, report.speaker
        );
        println!("Recorded from \"{}\"", report.microphone);
        match report.heard_hz {
            Some(f) => println!(
                "Heard {f:.1} Hz at {:.1} dBFS (tone purity {:.0}%, {:.2} s of {:.2} s unbroken)",
                report.level_dbfs,
                report.tone_purity * 100.0,
                report.tone_heard_seconds,
                args.seconds
            ),
            None => println!("Heard nothing but silence."),
        }
        if let Some(ms) = report.round_trip_ms {
            println!("Speaker-to-microphone delay: {ms:.0} ms");
        }
        println!(
            "{}",
            if heard {
                "Sound works end to end."
            } else {
                "The microphone did not hear the tone: check volumes, mute switches and that the microphone can hear the speaker."
            }
        );
    }
    if !heard {
        std::process::exit(1);
    }
    Ok(())
}
