//! MJPEG camera frames: finding where the JPEG ends ([`jpeg_extent`]) and decoding it with
//! zune-jpeg to RGB, then to I420 like an RGB24 frame.
//!
//! Contract: a frame with no start-of-image marker is [`DecodeError::NotJpeg`], one cut short
//! before its end-of-image marker (a frame truncated on the USB bus) [`DecodeError::Truncated`],
//! one the decoder rejects (or panics on) [`DecodeError::Jpeg`]; bytes after the end-of-image
//! marker are ignored. Pictures larger than 8K a side are refused, so a corrupt header cannot
//! make us allocate more.

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::PixelFormat;
use super::decode::{DecodeError, packed_rgb_to_i420};
use crate::media::frame::{CaptureTime, I420Frame};

/// Largest JPEG side we decode (8K). A corrupt header cannot make us allocate more.
const MAX_JPEG_SIDE: usize = 7680;

pub(super) fn decode_mjpeg(
    data: &[u8],
    capture_time: CaptureTime,
    rgb: &mut Vec<u8>,
) -> Result<I420Frame, DecodeError> {
    let jpeg = &data[..jpeg_extent(data)?];
    // zune-jpeg is fuzzed, but a panic in a third-party decoder must not end capture: a bad
    // frame is dropped like any other corrupt frame.
    let (width, height) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_jpeg_rgb(jpeg, rgb)))
            .map_err(|_| DecodeError::Jpeg("the JPEG decoder panicked".into()))??;
    packed_rgb_to_i420(
        &rgb[..width as usize * height as usize * 3],
        width,
        height,
        PixelFormat::Rgb24,
        capture_time,
    )
}

/// Decodes a JPEG into packed RGB in `rgb` (resized as needed); returns its size.
fn decode_jpeg_rgb(jpeg: &[u8], rgb: &mut Vec<u8>) -> Result<(u32, u32), DecodeError> {
    let jpeg_error = |e: zune_jpeg::errors::DecodeErrors| DecodeError::Jpeg(e.to_string());
    // Lenient ("fast") mode: webcams bend the JPEG rules (junk between segments, missing
    // Huffman tables); cut-short frames were already refused by `jpeg_extent`.
    let options = DecoderOptions::new_fast()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_JPEG_SIDE)
        .set_max_height(MAX_JPEG_SIDE);
    let mut decoder = JpegDecoder::new_with_options(jpeg, options);
    decoder.decode_headers().map_err(jpeg_error)?;
    let (Some((width, height)), Some(size)) = (decoder.dimensions(), decoder.output_buffer_size())
    else {
        return Err(DecodeError::Jpeg("no frame header".into()));
    };
    if width == 0 || height == 0 || size != width * height * 3 {
        return Err(DecodeError::Jpeg(format!(
            "unexpected {width}x{height} output of {size} bytes"
        )));
    }
    rgb.resize(size, 0);
    decoder.decode_into(rgb).map_err(jpeg_error)?;
    // Both sides are at most MAX_JPEG_SIDE, checked by the decoder.
    Ok((width as u32, height as u32))
}

/// Length of the JPEG at the start of `data`, through its end-of-image marker, found by walking
/// the marker segments and the entropy-coded scans (where `FF` is always followed by a stuffed
/// `00` or a restart marker). What follows is ignored: V4L2 hands out whole driver buffers.
///
/// # Errors
/// [`DecodeError::NotJpeg`] without a start-of-image marker, [`DecodeError::Truncated`] if the
/// data ends before the end-of-image marker.
pub fn jpeg_extent(data: &[u8]) -> Result<usize, DecodeError> {
    if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(DecodeError::NotJpeg);
    }
    let mut i = 2;
    loop {
        // Find the next marker: FF (any number of fill FFs) then a non-FF code. Junk between
        // segments is skipped, as lenient decoders do.
        let ff = data
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .ok_or(DecodeError::Truncated)?;
        i += ff;
        while data.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *data.get(i).ok_or(DecodeError::Truncated)?;
        i += 1;
        match marker {
            0xD9 => return Ok(i),
            // Standalone markers (TEM, RSTn) carry no length; a stuffed 00 here is junk.
            0x00 | 0x01 | 0xD0..=0xD7 => {}
            _ => {
                let len = data
                    .get(i..i + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or(DecodeError::Truncated)?;
                if len < 2 {
                    return Err(DecodeError::Jpeg(format!(
                        "marker FF{marker:02X} has length {len}"
                    )));
                }
                i += len;
                if marker == 0xDA {
                    i = end_of_scan(data, i)?;
                }
            }
        }
    }
}

/// Index of the marker that ends the entropy-coded data starting at `start`.
fn end_of_scan(data: &[u8], start: usize) -> Result<usize, DecodeError> {
    let mut j = start;
    loop {
        let ff = data
            .get(j..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .ok_or(DecodeError::Truncated)?;
        j += ff;
        match data.get(j + 1) {
            None => return Err(DecodeError::Truncated),
            // A stuffed zero byte or a restart marker: still inside the scan.
            Some(0x00 | 0xD0..=0xD7) => j += 2,
            // A fill byte before a marker.
            Some(0xFF) => j += 1,
            Some(_) => return Ok(j),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_extent_walks_segments_and_scans() {
        // SOI, APP0 (len 4), SOS (len 3), scan data with stuffing and a restart, EOI, junk.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD9, // an APP0 whose payload is FF D9
            0xFF, 0xDA, 0x00, 0x03, 0x00, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF,
            0xD9, 0xAA, 0xFF, 0xD9,
        ];
        assert_eq!(jpeg_extent(&jpeg).ok(), Some(23));
        assert!(matches!(
            jpeg_extent(&jpeg[..20]),
            Err(DecodeError::Truncated)
        ));
        assert!(matches!(
            jpeg_extent(&jpeg[..7]),
            Err(DecodeError::Truncated)
        ));
        assert!(matches!(jpeg_extent(&[0xFF]), Err(DecodeError::NotJpeg)));
        assert!(matches!(jpeg_extent(&[]), Err(DecodeError::NotJpeg)));
        assert!(jpeg_extent(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]).is_err());
    }
}
