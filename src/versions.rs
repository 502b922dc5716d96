//! What `confab --version` reports: Confab's own version and the versions of the media libraries
//! linked into this binary (asked from the libraries by [`confab_engine::codec_versions`]).

use confab_engine::codec_versions;

/// Confab's version (from `Cargo.toml`).
pub const CONFAB: &str = env!("CARGO_PKG_VERSION");

/// The OpenH264 codec version, e.g. `2.6.0`.
pub fn openh264() -> String {
    codec_versions::openh264()
}

/// The libopus version string, e.g. `libopus 1.5.2`.
pub fn libopus() -> &'static str {
    codec_versions::libopus()
}

/// The multi-line report after `confab ` in `confab --version`.
pub fn long_version() -> String {
    format!("{CONFAB}\nOpenH264 {}\n{}", openh264(), libopus())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_confab_and_both_libraries() {
        let report = long_version();
        assert_eq!(report.lines().count(), 3, "{report}");
        assert!(report.starts_with(CONFAB));
        assert!(report.contains("OpenH264 2."), "{report}");
        assert!(report.contains("libopus 1."), "{report}");
    }
}
