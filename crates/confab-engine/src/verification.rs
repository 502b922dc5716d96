//! The short verification code both participants of a connection see.
//!
//! Each side's DTLS certificate fingerprint is in its SDP, and DTLS checks the certificate
//! against it, so both sides hold the same two fingerprints unless someone in the middle
//! substituted their own (they would then hold different pairs). The code is a hash of the two
//! fingerprints, sorted so both sides compute the same thing, shown as 8 digits. Reading it to
//! each other over the call detects a man in the middle (which needs to fake your voice too).

use sha2::{Digest, Sha256};

/// `"NNNN NNNN"` from the two fingerprints (e.g. `"sha-256 AB:CD:..."`), order-independent.
pub fn verification_code(local_fingerprint: &str, remote_fingerprint: &str) -> String {
    let mut pair = [normalize(local_fingerprint), normalize(remote_fingerprint)];
    pair.sort();
    let mut hasher = Sha256::new();
    hasher.update(b"confab-verification-v1\n");
    hasher.update(pair[0].as_bytes());
    hasher.update(b"\n");
    hasher.update(pair[1].as_bytes());
    let digest = hasher.finalize();
    let n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]) % 100_000_000;
    format!("{:04} {:04}", n / 10_000, n % 10_000)
}

/// Lower-case algorithm, upper-case hex, no surrounding space: SDPs and stats differ in case.
fn normalize(fingerprint: &str) -> String {
    let trimmed = fingerprint.trim();
    match trimmed.split_once(' ') {
        Some((alg, hex)) => format!(
            "{} {}",
            alg.to_ascii_lowercase(),
            hex.trim().to_ascii_uppercase()
        ),
        None => trimmed.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha-256 CA:B2:11:00:FF:EE:DD:CC:BB:AA:99:88:77:66:55:44:33:22:11:00:12:34:56:78:9A:BC:DE:F0:01:02:03:04";
    const B: &str = "sha-256 01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F:20";

    #[test]
    fn both_sides_compute_the_same_code() {
        assert_eq!(verification_code(A, B), verification_code(B, A));
        let code = verification_code(A, B);
        assert_eq!(code.len(), 9);
        assert!(code.chars().enumerate().all(|(i, c)| if i == 4 {
            c == ' '
        } else {
            c.is_ascii_digit()
        }));
    }

    #[test]
    fn case_and_spacing_do_not_matter() {
        assert_eq!(
            verification_code(A, B),
            verification_code(&format!("  SHA-256 {}", &A[8..].to_lowercase()), B)
        );
    }

    #[test]
    fn a_substituted_certificate_changes_the_code() {
        let mitm = A.replace("CA:B2", "CA:B3");
        assert_ne!(verification_code(A, B), verification_code(&mitm, B));
    }
}
