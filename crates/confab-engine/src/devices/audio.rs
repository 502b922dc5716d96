//! Audio devices on cpal: listing microphones and speakers, finding one by id, choosing a stream
//! configuration, and mapping cpal's errors to [`DeviceError`]s a user can read.
//!
//! The [`Microphone`](super::microphone::Microphone) and [`Speaker`](super::speaker::Speaker)
//! build on these. Contract: ids are cpal `DeviceId` strings (stable across runs where the
//! platform allows); `None` or [`DEFAULT_DEVICE`] means "the system default". Configurations are
//! chosen for 48 kHz (no resampling) and a ~10 ms device buffer when the device allows; other
//! rates are resampled by the caller, never refused.

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{
    BufferSize, ErrorKind, SampleFormat, StreamConfig, SupportedBufferSize, SupportedStreamConfig,
    SupportedStreamConfigRange,
};

use super::{DeviceError, DeviceInfo, DeviceKind};
use crate::media::AUDIO_SAMPLE_RATE;
use crate::worker::Worker;

/// The id that stands for the system's default device.
pub const DEFAULT_DEVICE: &str = "default";

/// Device buffer we ask for: 10 ms at 48 kHz. Smaller costs CPU wake-ups, larger adds latency.
pub const PREFERRED_BUFFER_FRAMES: u32 = 480;

/// The cpal host used for every device: PulseAudio (PipeWire through pipewire-pulse) on Linux
/// when its server runs, else ALSA; WASAPI on Windows; CoreAudio on macOS.
///
/// Chosen once per process: `cpal::default_host()` opens a new server connection on every call
/// and quietly falls back to ALSA when one handshake fails, which made one process list some
/// devices under PulseAudio ids and others under ALSA ids.
///
/// A PulseAudio server that is there but slow to answer (cpal gives its handshake 2 s; a
/// machine busy starting the app can take longer) is asked again before settling for ALSA,
/// which would list none of the server's devices. The choice is logged.
pub(crate) fn host() -> &'static cpal::Host {
    static HOST: std::sync::OnceLock<cpal::Host> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let host = preferred_host().unwrap_or_else(cpal::default_host);
        tracing::info!(audio_system = ?host.id(), "audio host chosen");
        host
    })
}

/// Creates `~/.config/pulse/cookie` (256 random bytes, private) when the user has no PulseAudio
/// cookie yet, as libpulse does on first use.
///
/// cpal's PulseAudio client sends an *empty* cookie when it finds none, and the server drops
/// the connection as a protocol error (it parses exactly 256 bytes) even where it would let the
/// user in without one, as it does on a same-user socket. On a fresh account, or a machine that
/// never ran a libpulse program, Confab would then quietly fall back to ALSA.
#[cfg(target_os = "linux")]
fn ensure_pulse_cookie() {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    use std::path::PathBuf;

    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        return;
    };
    let candidates = std::env::var_os("PULSE_COOKIE")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            home.join(".config/pulse/cookie"),
            home.join(".pulse-cookie"),
        ]);
    if candidates.into_iter().any(|p| p.exists()) {
        return;
    }
    let dir = home.join(".config/pulse");
    let mut cookie = [0u8; 256];
    let written = std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut cookie))
        .and_then(|()| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
        })
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.join("cookie"))
        })
        .and_then(|mut f| f.write_all(&cookie));
    match written {
        Ok(()) => {
            tracing::info!(path = %dir.join("cookie").display(), "created a PulseAudio cookie")
        }
        Err(e) => tracing::debug!(error = %e, "cannot create a PulseAudio cookie"),
    }
}

/// PulseAudio when its socket exists and it answers within three tries; `None` otherwise.
fn preferred_host() -> Option<cpal::Host> {
    #[cfg(target_os = "linux")]
    {
        if !cpal::available_hosts().contains(&cpal::HostId::PulseAudio) {
            return None;
        }
        ensure_pulse_cookie();
        for attempt in 1..=3 {
            match cpal::host_from_id(cpal::HostId::PulseAudio) {
                Ok(host) => return Some(host),
                Err(e) => tracing::warn!(error = %e, attempt, "PulseAudio did not answer"),
            }
        }
    }
    None
}

/// Microphones, default first.
///
/// # Errors
/// [`DeviceError::Backend`] if the audio system cannot be queried at all.
pub fn list_microphones() -> Result<Vec<DeviceInfo>, DeviceError> {
    list(DeviceKind::Microphone)
}

/// Speakers and headphones, default first.
///
/// # Errors
/// [`DeviceError::Backend`] if the audio system cannot be queried at all.
pub fn list_speakers() -> Result<Vec<DeviceInfo>, DeviceError> {
    list(DeviceKind::Speaker)
}

fn list(kind: DeviceKind) -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = host();
    let (devices, default) = if kind == DeviceKind::Microphone {
        let devices = host
            .input_devices()
            .map_err(|e| map_error(kind, "the audio system", &e))?;
        (devices.collect::<Vec<_>>(), host.default_input_device())
    } else {
        let devices = host
            .output_devices()
            .map_err(|e| map_error(kind, "the audio system", &e))?;
        (devices.collect::<Vec<_>>(), host.default_output_device())
    };
    let default_id = default
        .as_ref()
        .and_then(|d| d.id().ok())
        .map(|id| id.to_string());
    let mut out: Vec<DeviceInfo> = devices
        .iter()
        .filter_map(|d| {
            let id = d.id().ok()?.to_string();
            if is_alsa_plugin(&id) {
                return None;
            }
            Some(DeviceInfo {
                name: display_name(d),
                is_default: default_id.as_deref() == Some(id.as_str()),
                id,
            })
        })
        .collect();
    out.sort_by_key(|d| !d.is_default);
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

/// ALSA lists its converter and routing plugins as devices; nobody picks "Rate Converter
/// Plugin Using Libav" as a microphone. Nor `pulse`: Confab talks to PulseAudio directly and
/// only uses ALSA when no PulseAudio server answers, so ALSA's route to it leads nowhere.
/// Sound cards, `default` and `pipewire` stay.
fn is_alsa_plugin(id: &str) -> bool {
    const PLUGINS: &[&str] = &[
        "pulse",
        "null",
        "lavrate",
        "samplerate",
        "speexrate",
        "jack",
        "oss",
        "speex",
        "upmix",
        "vdownmix",
        "a52",
        "usbstream",
    ];
    const PREFIXES: &[&str] = &[
        "surround",
        "front:",
        "rear:",
        "center_lfe:",
        "side:",
        "iec958:",
        "dmix:",
        "dsnoop:",
        "usbstream:",
    ];
    let Some(name) = id.strip_prefix("alsa:") else {
        return false;
    };
    PLUGINS.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The human-readable name of a device.
pub(crate) fn display_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| device.to_string())
}

/// Finds the device `id` (or the default when `id` is `None` / [`DEFAULT_DEVICE`]).
///
/// # Errors
/// [`DeviceError::NotFound`] if there is no such device (or no default one).
pub(crate) fn find(kind: DeviceKind, id: Option<&str>) -> Result<cpal::Device, DeviceError> {
    let host = host();
    let what = kind.noun();
    match id.filter(|id| *id != DEFAULT_DEVICE) {
        None => {
            let device = if kind == DeviceKind::Microphone {
                host.default_input_device()
            } else {
                host.default_output_device()
            };
            // ALSA always names a "default" device, even with no sound card behind it.
            let nothing_listed = list(kind).is_ok_and(|l| l.is_empty());
            match device {
                Some(device) if !nothing_listed => Ok(device),
                _ => Err(DeviceError::NotFound(format!(
                    "This computer has no {} (no sound card found, and no audio system such as \
                     PulseAudio or PipeWire is running).",
                    what.to_lowercase()
                ))),
            }
        }
        Some(id) => {
            let parsed = id
                .parse::<cpal::DeviceId>()
                .map_err(|_| DeviceError::NotFound(format!("{what} \"{id}\" is not connected.")))?;
            host.device_by_id(&parsed)
                .ok_or_else(|| DeviceError::NotFound(format!("{what} \"{id}\" is not connected.")))
        }
    }
}

/// The device to open a speaker stream on, reached through a PulseAudio connection of its own.
///
/// PulseAudio puts a client's playback streams with the same sync id into one group that must
/// play on one sink, and cpal 0.18 gives every stream sync id 0: a second speaker stream on
/// another device in the same connection is refused ("Invalid argument"), which broke
/// switching speakers mid-call (the new one opens before the old one closes) and playing a
/// sound check next to a call. A connection per speaker stream keeps them apart. Other hosts
/// and microphones use the shared connection.
fn own_connection(kind: DeviceKind, device: cpal::Device) -> Result<cpal::Device, DeviceError> {
    #[cfg(target_os = "linux")]
    if kind == DeviceKind::Speaker && host().id() == cpal::HostId::PulseAudio {
        let name = display_name(&device);
        let id = device.id().map_err(|e| map_error(kind, &name, &e))?;
        let own =
            cpal::host_from_id(cpal::HostId::PulseAudio).map_err(|e| map_error(kind, &name, &e))?;
        return own.device_by_id(&id).ok_or_else(|| {
            DeviceError::NotFound(format!("{} \"{name}\" is not connected.", kind.noun()))
        });
    }
    let _ = kind;
    Ok(device)
}

/// Opens device `id` of `kind` (default when `None`): picks its configuration
/// ([`choose_config`], [`buffer_size_for`]) and hands it to `build`, which creates and starts the
/// stream. A device that refuses the ~10 ms buffer it listed is retried with its default buffer.
///
/// # Errors
/// The [`DeviceError`] of finding, configuring or building.
pub(crate) fn open_stream<T>(
    kind: DeviceKind,
    id: Option<&str>,
    build: impl Fn(&cpal::Device, &str, &StreamConfig, SampleFormat) -> Result<T, DeviceError>,
) -> Result<T, DeviceError> {
    let device = own_connection(kind, find(kind, id)?)?;
    let name = display_name(&device);
    let input = kind == DeviceKind::Microphone;
    let (ranges, default): (Vec<SupportedStreamConfigRange>, _) = if input {
        let ranges = device
            .supported_input_configs()
            .map_err(|e| map_error(kind, &name, &e))?;
        (ranges.collect(), device.default_input_config().ok())
    } else {
        let ranges = device
            .supported_output_configs()
            .map_err(|e| map_error(kind, &name, &e))?;
        (ranges.collect(), device.default_output_config().ok())
    };
    let config = choose_config(&ranges, default, input).ok_or_else(|| {
        DeviceError::Unsupported(format!(
            "{} \"{name}\" offers no usable format.",
            kind.noun()
        ))
    })?;
    let stream_config = StreamConfig {
        channels: config.channels(),
        sample_rate: config.sample_rate(),
        buffer_size: buffer_size_for(&config),
    };
    let format = config.sample_format();
    let stream = build(&device, &name, &stream_config, format).or_else(|e| {
        if stream_config.buffer_size == BufferSize::Default {
            return Err(e);
        }
        let fallback = StreamConfig {
            buffer_size: BufferSize::Default,
            ..stream_config
        };
        build(&device, &name, &fallback, format)
    })?;
    tracing::info!(
        kind = kind.noun(),
        device = %name,
        rate = stream_config.sample_rate,
        channels = stream_config.channels,
        format = ?format,
        "audio device open"
    );
    Ok(stream)
}

/// Turns a cpal error into a sentence for the user.
pub(crate) fn map_error(kind: DeviceKind, name: &str, err: &cpal::Error) -> DeviceError {
    let what = kind.noun();
    match err.kind() {
        ErrorKind::DeviceNotAvailable => {
            DeviceError::Unavailable(format!("{what} \"{name}\" is not available ({err})."))
        }
        ErrorKind::DeviceBusy => {
            DeviceError::Unavailable(format!("{what} \"{name}\" is in use by another program."))
        }
        ErrorKind::PermissionDenied => DeviceError::Unavailable(format!(
            "Confab may not use {what} \"{name}\": allow it in the system's privacy settings."
        )),
        ErrorKind::HostUnavailable => DeviceError::NotFound(format!(
            "No audio system is running, so there is no {}.",
            what.to_lowercase()
        )),
        ErrorKind::UnsupportedConfig | ErrorKind::UnsupportedOperation => DeviceError::Unsupported(
            format!("{what} \"{name}\" offers no usable format ({err})."),
        ),
        _ => DeviceError::Backend(format!("{what} \"{name}\": {err}")),
    }
}

/// Drops a stream whose device failed, on a thread of its own.
///
/// Closing a dead stream can block: cpal's PulseAudio backend waits for the end of a playback
/// stream the server has already killed, forever (cpal 0.18.2 with pulseaudio 0.3.2). The capture
/// and playout threads must never wait on that, so the stream is dropped elsewhere; if that
/// drop hangs, only this short-lived thread is stuck.
pub(crate) fn retire<T: Send + 'static>(dead: T, what: &'static str) {
    match Worker::spawn("confab-audio-retire", move |_stop| drop(dead)) {
        // Nobody waits for a drop that may never end.
        Ok(worker) => worker.detach(),
        Err(e) => {
            tracing::warn!(error = %e, what, "cannot start a thread to close a dead stream; leaking it");
        }
    }
}

/// True for errors after which a running stream will not deliver any more audio.
pub(crate) fn is_fatal_stream_error(err: &cpal::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::DeviceNotAvailable
            | ErrorKind::StreamInvalidated
            | ErrorKind::HostUnavailable
            | ErrorKind::BackendError
            | ErrorKind::Other
    )
}

/// Sample formats we convert, best first.
fn format_rank(format: SampleFormat) -> Option<u8> {
    match format {
        SampleFormat::F32 => Some(0),
        SampleFormat::I16 => Some(1),
        SampleFormat::I32 => Some(2),
        SampleFormat::U16 => Some(3),
        _ => None,
    }
}

/// Whether a configuration's sample format is one [`Microphone`](super::microphone::Microphone)
/// and [`Speaker`](super::speaker::Speaker) can convert.
pub(crate) fn is_supported_format(format: SampleFormat) -> bool {
    format_rank(format).is_some()
}

/// Picks the configuration to open: 48 kHz if any range allows it (mono preferred for input,
/// stereo or fewer for output, float preferred), otherwise the device default (resampled later).
pub(crate) fn choose_config(
    ranges: &[SupportedStreamConfigRange],
    default: Option<SupportedStreamConfig>,
    input: bool,
) -> Option<SupportedStreamConfig> {
    let wanted_channels = if input { 1 } else { 2 };
    let at_48k = ranges
        .iter()
        .filter(|r| r.contains_rate(AUDIO_SAMPLE_RATE))
        .filter_map(|r| format_rank(r.sample_format()).map(|rank| (rank, r)))
        .min_by_key(|(rank, r)| (r.channels().abs_diff(wanted_channels), *rank))
        .map(|(_, r)| r.with_sample_rate(AUDIO_SAMPLE_RATE));
    at_48k
        .or_else(|| default.filter(|d| is_supported_format(d.sample_format())))
        .or_else(|| {
            ranges
                .iter()
                .filter(|r| is_supported_format(r.sample_format()))
                .min_by_key(|r| r.channels().abs_diff(wanted_channels))
                .map(|r| r.with_max_sample_rate())
        })
}

/// The buffer size to ask for: ~10 ms if the device's range allows it, else its default.
pub(crate) fn buffer_size_for(config: &SupportedStreamConfig) -> BufferSize {
    let want = PREFERRED_BUFFER_FRAMES * config.sample_rate() / AUDIO_SAMPLE_RATE;
    match config.buffer_size() {
        SupportedBufferSize::Range { min, max } if *min <= want && want <= *max => {
            BufferSize::Fixed(want)
        }
        _ => BufferSize::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(
        channels: u16,
        min: u32,
        max: u32,
        format: SampleFormat,
    ) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            channels,
            min,
            max,
            SupportedBufferSize::Range { min: 64, max: 8192 },
            format,
        )
    }

    #[test]
    fn prefers_48k_float_mono_for_input() {
        let ranges = [
            range(2, 8_000, 96_000, SampleFormat::I16),
            range(1, 8_000, 96_000, SampleFormat::F32),
            range(2, 8_000, 96_000, SampleFormat::F32),
        ];
        let c = choose_config(&ranges, None, true).unwrap();
        assert_eq!(
            (c.channels(), c.sample_rate(), c.sample_format()),
            (1, 48_000, SampleFormat::F32)
        );
        let c = choose_config(&ranges, None, false).unwrap();
        assert_eq!(c.channels(), 2);
    }

    #[test]
    fn falls_back_to_the_default_when_48k_is_impossible() {
        let ranges = [range(2, 44_100, 44_100, SampleFormat::I16)];
        let default = ranges[0].with_sample_rate(44_100);
        let c = choose_config(&ranges, Some(default), true).unwrap();
        assert_eq!(c.sample_rate(), 44_100);
        assert_eq!(buffer_size_for(&c), BufferSize::Fixed(441));
    }

    #[test]
    fn unconvertible_formats_are_skipped() {
        let ranges = [range(1, 48_000, 48_000, SampleFormat::U8)];
        assert!(choose_config(&ranges, None, true).is_none());
    }

    #[test]
    fn alsa_plugins_are_not_offered_as_devices() {
        assert!(is_alsa_plugin("alsa:lavrate"));
        assert!(is_alsa_plugin("alsa:surround51:CARD=PCH,DEV=0"));
        assert!(!is_alsa_plugin("alsa:default"));
        assert!(is_alsa_plugin("alsa:pulse"));
        assert!(!is_alsa_plugin("alsa:pipewire"));
        assert!(!is_alsa_plugin("alsa:plughw:CARD=PCH,DEV=0"));
        assert!(!is_alsa_plugin("wasapi:{0.0.1.00000000}"));
    }

    #[test]
    fn buffer_size_is_default_when_the_range_is_unknown() {
        let c =
            SupportedStreamConfig::new(1, 48_000, SupportedBufferSize::Unknown, SampleFormat::F32);
        assert_eq!(buffer_size_for(&c), BufferSize::Default);
    }
}
