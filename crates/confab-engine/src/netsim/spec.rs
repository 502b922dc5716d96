//! Parsing a network description: `loss=5%,burst=4,delay=40ms,jitter=15ms,rate=800kbit`, a named
//! profile (`wifi`, `lossy`, `3g`, `congested`), or a profile followed by changes (`3g,loss=5%`).
//!
//! Contract: [`NetworkSpec::parse`] accepts exactly the grammar in [`SPEC_HELP`] and refuses
//! everything else with a typed [`SpecError`] naming the item at fault; a parsed spec is
//! self-consistent (loss within 0..=100 %, burst ≥ 1, a queue bound only with a rate, …). Items
//! apply in order, so a later item overrides an earlier one (or the profile before it).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// What `--network` accepts, for `--help` and the docs.
pub const SPEC_HELP: &str = "\
A named profile, or comma-separated KEY=VALUE items (a profile may come first and be changed by \
the items after it, e.g. `3g,loss=5%`):
  loss=5%        random loss of datagrams (0-100 %)
  burst=4        mean length of a loss burst, in datagrams (Gilbert-Elliott model keeping the \
average loss rate); without it losses are independent
  delay=40ms     one-way delay (units: us, ms, s)
  jitter=15ms    random delay variation (normal, this standard deviation); datagrams are never \
reordered unless `reorder` is given
  reorder        let jitter reorder datagrams
  rate=800kbit   bottleneck rate (units: bit, kbit, mbit, gbit; kbps and mbps also mean \
kilobits/megabits per second); datagrams queue behind it and the tail is dropped when the queue \
is full
  queue=200ms    the rate's queue bound, as time at the rate (ms, s) or bytes (B, kB, KiB, MB); \
default 200 ms
  outage=3s@8s   every datagram both ways dropped for 3 s, from 8 s after the call started (may \
repeat)
  a_to_b.KEY=V, b_to_a.KEY=V   an item for one direction only (alice to bob, bob to alice)";

/// How the queue in front of a rate limit is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueLimit {
    /// At most this many bytes waiting.
    Bytes(u64),
    /// At most this much waiting, in time at the link's rate.
    Time(#[serde(serialize_with = "ser_ms")] Duration),
}

/// The default queue bound: 200 ms at the link's rate (a moderately buffered access link).
pub const DEFAULT_QUEUE: QueueLimit = QueueLimit::Time(Duration::from_millis(200));

/// The smallest queue a rate limit gets whatever the bound says: two full-size datagrams.
pub const MIN_QUEUE_BYTES: u64 = 3000;

/// The impairments of one direction of the link.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkParams {
    /// Share of datagrams lost, 0.0..=1.0 (after the rate limit, as on a lossy radio hop).
    #[serde(rename = "loss_percent", serialize_with = "ser_percent")]
    pub loss: f64,
    /// Mean loss-burst length in datagrams (≥ 1); `None`: independent losses.
    pub burst: Option<f64>,
    /// One-way delay.
    #[serde(rename = "delay_ms", serialize_with = "ser_ms")]
    pub delay: Duration,
    /// Standard deviation of the delay's random part.
    #[serde(rename = "jitter_ms", serialize_with = "ser_ms")]
    pub jitter: Duration,
    /// Whether jitter may reorder datagrams.
    pub reorder: bool,
    /// Bottleneck rate in bits per second; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Bound of the queue in front of the rate limit.
    pub queue: QueueLimit,
}

impl Default for LinkParams {
    fn default() -> Self {
        Self {
            loss: 0.0,
            burst: None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: false,
            rate_bps: None,
            queue: DEFAULT_QUEUE,
        }
    }
}

impl LinkParams {
    /// The queue bound in bytes at the link's rate (`None` without a rate: nothing queues).
    #[must_use]
    pub fn queue_bytes(&self) -> Option<u64> {
        let rate = self.rate_bps?;
        let bytes = match self.queue {
            QueueLimit::Bytes(b) => b,
            QueueLimit::Time(d) => (rate as f64 / 8.0 * d.as_secs_f64()) as u64,
        };
        Some(bytes.max(MIN_QUEUE_BYTES))
    }

    /// Whether this direction changes anything at all.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.loss == 0.0 && self.delay.is_zero() && self.jitter.is_zero() && self.rate_bps.is_none()
    }
}

/// All datagrams both ways dropped for `duration`, from `start` after the call started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outage {
    /// When it begins, after the call started.
    #[serde(rename = "start_ms", serialize_with = "ser_ms")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(rename = "duration_ms", serialize_with = "ser_ms")]
    pub duration: Duration,
}

impl Outage {
    /// When the path comes back, after the call started.
    #[must_use]
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }
}

/// A parsed `--network` value: both directions and the outages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSpec {
    /// The text as given.
    pub spec: String,
    /// The profile it started from, if any.
    pub profile: Option<&'static str>,
    /// Alice → bob (side A → side B).
    pub a_to_b: LinkParams,
    /// Bob → alice.
    pub b_to_a: LinkParams,
    /// Outages, in the order given.
    pub outages: Vec<Outage>,
}

/// Why a `--network` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Nothing given.
    #[error(
        "empty network description (give a profile such as `wifi`, or items such as `loss=5%`)"
    )]
    Empty,
    /// A word that is neither a profile nor a known flag.
    #[error("unknown network profile `{0}` (profiles: {profiles})", profiles = profile_names())]
    UnknownProfile(String),
    /// `KEY=VALUE` with a key we do not know.
    #[error(
        "unknown network setting `{0}` (settings: loss, burst, delay, jitter, reorder, rate, queue, outage; a_to_b. or b_to_a. before one applies it to one direction)"
    )]
    UnknownKey(String),
    /// `KEY=` with nothing after it.
    #[error("`{0}` needs a value")]
    MissingValue(String),
    /// The number part does not parse.
    #[error("`{key}={value}`: `{value}` is not a number")]
    BadNumber {
        /// The setting.
        key: String,
        /// What was given.
        value: String,
    },
    /// A unit was missing or is not one the setting takes.
    #[error("`{key}={value}`: unit needed, one of {expected}")]
    BadUnit {
        /// The setting.
        key: String,
        /// What was given.
        value: String,
        /// The units it takes.
        expected: &'static str,
    },
    /// A number outside what the setting allows.
    #[error("`{key}={value}`: {allowed}")]
    OutOfRange {
        /// The setting.
        key: String,
        /// What was given.
        value: String,
        /// What it may be.
        allowed: &'static str,
    },
    /// `outage=` not in the `DURATION@START` form.
    #[error("`outage={0}`: expected DURATION@START, e.g. outage=3s@8s")]
    BadOutage(String),
    /// Settings that contradict each other.
    #[error("{0}")]
    Inconsistent(String),
    /// A profile or an outage after a per-direction prefix.
    #[error("`{0}` cannot be given for one direction only")]
    NotPerDirection(String),
}

/// The named profiles: name, spec, what it models.
pub const PROFILES: [(&str, &str, &str); 4] = [
    (
        "wifi",
        "loss=1%,burst=2,delay=10ms,jitter=8ms,rate=20mbit,queue=100ms",
        "a busy home Wi-Fi hop: short loss bursts, some jitter, plenty of rate",
    ),
    (
        "lossy",
        "loss=5%,burst=2,delay=30ms,jitter=10ms",
        "a bad radio link: 5 % loss in short bursts, no rate limit",
    ),
    (
        "3g",
        "loss=1%,delay=75ms,jitter=20ms,rate=750kbit,queue=300ms",
        "a 3G/HSPA uplink: 750 kbit/s, 150 ms RTT, deep buffers",
    ),
    (
        "congested",
        "loss=2%,burst=3,delay=40ms,jitter=25ms,rate=1mbit,queue=150ms",
        "a shared, full bottleneck: 1 Mbit/s, jitter, loss bursts",
    ),
];

fn profile_names() -> String {
    PROFILES.map(|(n, _, _)| n).join(", ")
}

/// The profiles as `--help` lines.
#[must_use]
pub fn profiles_help() -> String {
    let mut out = String::from("Profiles:");
    for (name, spec, what) in PROFILES {
        let _ = write!(out, "\n  {name:<10} {what}: {spec}");
    }
    out
}

impl std::str::FromStr for NetworkSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl NetworkSpec {
    /// Parses a `--network` value; see [`SPEC_HELP`].
    ///
    /// # Errors
    /// A [`SpecError`] naming the first item at fault.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let mut spec = Self {
            spec: text.trim().to_owned(),
            profile: None,
            a_to_b: LinkParams::default(),
            b_to_a: LinkParams::default(),
            outages: Vec::new(),
        };
        let items: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        if items.is_empty() {
            return Err(SpecError::Empty);
        }
        for item in items {
            spec.apply(item)?;
        }
        for p in [&spec.a_to_b, &spec.b_to_a] {
            if let Some(burst) = p.burst
                && p.loss < 1.0
                && p.loss / (1.0 - p.loss) > burst + 1e-9
            {
                return Err(SpecError::Inconsistent(format!(
                    "loss={}% cannot be reached with bursts of {burst} datagrams on average \
                     (burst must be at least {:.1})",
                    p.loss * 100.0,
                    p.loss / (1.0 - p.loss)
                )));
            }
        }
        Ok(spec)
    }

    /// Whether neither direction nor any outage changes anything.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.a_to_b.is_clean() && self.b_to_a.is_clean() && self.outages.is_empty()
    }

    fn apply(&mut self, item: &str) -> Result<(), SpecError> {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (item, None),
        };
        let (directions, key) = if let Some(k) = key.strip_prefix("a_to_b.") {
            ([true, false], k)
        } else if let Some(k) = key.strip_prefix("b_to_a.") {
            ([false, true], k)
        } else {
            ([true, true], key)
        };
        let one_way = directions != [true, true];
        let Some(value) = value else {
            if key == "reorder" {
                self.each(directions, |p| p.reorder = true);
                return Ok(());
            }
            if one_way {
                return Err(SpecError::NotPerDirection(item.to_owned()));
            }
            return self.apply_profile(key);
        };
        if value.is_empty() {
            return Err(SpecError::MissingValue(key.to_owned()));
        }
        match key {
            "loss" => {
                let loss = parse_percent(key, value)?;
                self.each(directions, |p| p.loss = loss);
            }
            "burst" => {
                let burst = parse_number(key, value)?;
                if !(1.0..=1000.0).contains(&burst) {
                    return Err(out_of_range(
                        key,
                        value,
                        "a mean burst is 1 to 1000 datagrams",
                    ));
                }
                self.each(directions, |p| p.burst = Some(burst));
            }
            "delay" | "jitter" => {
                let d = parse_duration(key, value)?;
                if d > Duration::from_secs(10) {
                    return Err(out_of_range(key, value, "at most 10 s"));
                }
                self.each(directions, |p| {
                    if key == "delay" {
                        p.delay = d;
                    } else {
                        p.jitter = d;
                    }
                });
            }
            "reorder" => {
                let on = match value {
                    "on" | "yes" | "true" | "1" => true,
                    "off" | "no" | "false" | "0" => false,
                    _ => return Err(out_of_range(key, value, "on or off")),
                };
                self.each(directions, |p| p.reorder = on);
            }
            "rate" => {
                let rate = parse_rate(key, value)?;
                self.each(directions, |p| p.rate_bps = Some(rate));
            }
            "queue" => {
                let q = parse_queue(key, value)?;
                self.each(directions, |p| p.queue = q);
            }
            "outage" => {
                if one_way {
                    return Err(SpecError::NotPerDirection(item.to_owned()));
                }
                let outage = parse_outage(value)?;
                self.outages.push(outage);
            }
            other => return Err(SpecError::UnknownKey(other.to_owned())),
        }
        Ok(())
    }

    fn apply_profile(&mut self, name: &str) -> Result<(), SpecError> {
        let Some((profile, spec, _)) = PROFILES.iter().find(|(n, _, _)| *n == name) else {
            return Err(SpecError::UnknownProfile(name.to_owned()));
        };
        let parsed = Self::parse(spec)?;
        self.profile = Some(profile);
        self.a_to_b = parsed.a_to_b;
        self.b_to_a = parsed.b_to_a;
        Ok(())
    }

    fn each(&mut self, directions: [bool; 2], mut f: impl FnMut(&mut LinkParams)) {
        if directions[0] {
            f(&mut self.a_to_b);
        }
        if directions[1] {
            f(&mut self.b_to_a);
        }
    }
}

fn out_of_range(key: &str, value: &str, allowed: &'static str) -> SpecError {
    SpecError::OutOfRange {
        key: key.to_owned(),
        value: value.to_owned(),
        allowed,
    }
}

/// Splits `40ms` into `(40.0, "ms")`.
fn number_and_unit<'a>(key: &str, value: &'a str) -> Result<(f64, &'a str), SpecError> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(end);
    let n = number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| SpecError::BadNumber {
            key: key.to_owned(),
            value: value.to_owned(),
        })?;
    Ok((n, unit.trim()))
}

fn parse_number(key: &str, value: &str) -> Result<f64, SpecError> {
    match number_and_unit(key, value)? {
        (n, "") => Ok(n),
        _ => Err(SpecError::BadNumber {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

fn parse_percent(key: &str, value: &str) -> Result<f64, SpecError> {
    let (n, unit) = number_and_unit(key, value)?;
    if unit != "%" {
        return Err(SpecError::BadUnit {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: "% (e.g. loss=5%)",
        });
    }
    if n > 100.0 {
        return Err(out_of_range(key, value, "a share is 0 % to 100 %"));
    }
    Ok(n / 100.0)
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, SpecError> {
    let (n, unit) = number_and_unit(key, value)?;
    let seconds = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        _ => {
            return Err(SpecError::BadUnit {
                key: key.to_owned(),
                value: value.to_owned(),
                expected: "us, ms, s",
            });
        }
    };
    if seconds > 86_400.0 {
        return Err(out_of_range(key, value, "at most a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_rate(key: &str, value: &str) -> Result<u64, SpecError> {
    let (n, unit) = number_and_unit(key, value)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "bit" | "bps" => 1.0,
        "kbit" | "kbps" => 1e3,
        "mbit" | "mbps" => 1e6,
        "gbit" | "gbps" => 1e9,
        _ => {
            return Err(SpecError::BadUnit {
                key: key.to_owned(),
                value: value.to_owned(),
                expected: "bit, kbit, mbit, gbit (kbps, mbps: the same, in bits)",
            });
        }
    };
    let bps = n * scale;
    if !(8_000.0..=100e9).contains(&bps) {
        return Err(out_of_range(key, value, "a rate is 8 kbit to 100 gbit"));
    }
    Ok(bps as u64)
}

fn parse_queue(key: &str, value: &str) -> Result<QueueLimit, SpecError> {
    let (n, unit) = number_and_unit(key, value)?;
    let bytes = match unit {
        "B" => n,
        "kB" | "KB" => n * 1e3,
        "KiB" => n * 1024.0,
        "MB" => n * 1e6,
        "MiB" => n * 1024.0 * 1024.0,
        "ms" | "s" | "us" => return parse_duration(key, value).map(QueueLimit::Time),
        _ => {
            return Err(SpecError::BadUnit {
                key: key.to_owned(),
                value: value.to_owned(),
                expected: "ms, s (time at the rate) or B, kB, KiB, MB, MiB",
            });
        }
    };
    if bytes > 1e9 {
        return Err(out_of_range(key, value, "at most 1 GB"));
    }
    Ok(QueueLimit::Bytes(bytes as u64))
}

fn parse_outage(value: &str) -> Result<Outage, SpecError> {
    let Some((duration, start)) = value.split_once('@') else {
        return Err(SpecError::BadOutage(value.to_owned()));
    };
    let duration = parse_duration("outage", duration.trim())?;
    let start = parse_duration("outage", start.trim())?;
    if duration.is_zero() {
        return Err(out_of_range(
            "outage",
            value,
            "an outage lasts more than 0 s",
        ));
    }
    Ok(Outage { start, duration })
}

fn ser_percent<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(v * 100.0)
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
