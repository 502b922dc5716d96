//! The versions of the media libraries linked into this binary, asked from the libraries
//! themselves at run time (so a build against a different OpenH264 or libopus reports what it
//! really contains). `confab --version` prints them.

/// The OpenH264 codec version, e.g. `2.6.0`, from `WelsGetCodecVersion`.
#[allow(
    unsafe_code,
    reason = "the codec version is only reachable through OpenH264's C API"
)]
pub fn openh264() -> String {
    use openh264_sys2::API as _;
    let api = openh264::OpenH264API::from_source();
    // SAFETY: `WelsGetCodecVersion` takes no arguments, touches no global state and returns a
    // plain struct of four integers; the built-in (source) API is always present.
    let v = unsafe { api.WelsGetCodecVersion() };
    format!("{}.{}.{}", v.uMajor, v.uMinor, v.uRevision)
}

/// The libopus version string, e.g. `libopus 1.5.2`, from `opus_get_version_string`.
pub fn libopus() -> &'static str {
    opus::version()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_versions_look_like_versions() {
        let h264 = openh264();
        let parts: Vec<u32> = h264.split('.').filter_map(|p| p.parse().ok()).collect();
        assert_eq!(parts.len(), 3, "{h264}");
        assert!(
            parts[0] >= 2,
            "OpenH264 {h264} is older than the 2.x the crate builds"
        );
        let opus = libopus();
        assert!(opus.starts_with("libopus 1."), "{opus}");
    }
}
