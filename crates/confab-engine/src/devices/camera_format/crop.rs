//! The centre crop that fits a camera picture to the call's aspect ratio before scaling.
//!
//! Contract: [`crop_rect`] keeps the centre of the picture with even offsets (and even sizes
//! unless a source side is odd and kept whole), so 4:2:0 chroma stays aligned; cropping never
//! letterboxes (black bars would cost bitrate) and never reads outside the source frame.

use crate::media::frame::{FrameError, I420Frame};

/// A rectangle inside a picture, with even offsets so 4:2:0 chroma stays aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl CropRect {
    pub(super) fn is_whole(&self, frame: &I420Frame) -> bool {
        (self.x, self.y, self.width, self.height) == (0, 0, frame.width(), frame.height())
    }
}

/// The centred part of a `src_w` x `src_h` picture with the aspect ratio of `dst_w` x `dst_h`
/// (the whole picture when the ratios match, or for a zero-sized input). Sizes and offsets are
/// even unless the source side itself is odd and kept whole.
#[must_use]
pub fn crop_rect(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> CropRect {
    let whole = CropRect {
        x: 0,
        y: 0,
        width: src_w,
        height: src_h,
    };
    if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 {
        return whole;
    }
    let (sw, sh, dw, dh) = (
        u64::from(src_w),
        u64::from(src_h),
        u64::from(dst_w),
        u64::from(dst_h),
    );
    let even = |n: u64, limit: u32| -> u32 {
        let n = u32::try_from(n).unwrap_or(limit).min(limit);
        (n & !1).max(2).min(limit)
    };
    match (sw * dh).cmp(&(dw * sh)) {
        std::cmp::Ordering::Greater => {
            // Source is wider: keep the height, cut the sides.
            let width = even((sh * dw + dh / 2) / dh, src_w);
            CropRect {
                x: ((src_w - width) / 2) & !1,
                width,
                ..whole
            }
        }
        std::cmp::Ordering::Less => {
            // Source is taller: keep the width, cut top and bottom.
            let height = even((sw * dh + dw / 2) / dw, src_h);
            CropRect {
                y: ((src_h - height) / 2) & !1,
                height,
                ..whole
            }
        }
        std::cmp::Ordering::Equal => whole,
    }
}

/// Copies the part of `frame` inside `rect` into a new frame.
pub(super) fn crop(frame: &I420Frame, rect: CropRect) -> Result<I420Frame, FrameError> {
    let (cw, _) = frame.chroma_size();
    let y_start = rect.y as usize * frame.width() as usize + rect.x as usize;
    let c_start = (rect.y / 2) as usize * cw + (rect.x / 2) as usize;
    fn tail(plane: &[u8], start: usize) -> &[u8] {
        plane.get(start..).unwrap_or_default()
    }
    I420Frame::from_strided(
        rect.width,
        rect.height,
        [
            (tail(frame.y(), y_start), frame.width() as usize),
            (tail(frame.u(), c_start), cw),
            (tail(frame.v(), c_start), cw),
        ],
        frame.capture_time,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_rect_keeps_the_centre_with_even_edges() {
        // 4:3 into 16:9: cut top and bottom.
        assert_eq!(
            crop_rect(640, 480, 1280, 720),
            CropRect {
                x: 0,
                y: 60,
                width: 640,
                height: 360
            }
        );
        // 16:9 into 4:3: cut the sides.
        assert_eq!(
            crop_rect(1280, 720, 640, 480),
            CropRect {
                x: 160,
                y: 0,
                width: 960,
                height: 720
            }
        );
        // Same aspect ratio: whole picture.
        assert_eq!(crop_rect(1920, 1080, 1280, 720).width, 1920);
        assert_eq!(crop_rect(1920, 1080, 1280, 720).height, 1080);
        // Odd results round to even.
        let r = crop_rect(1000, 750, 1280, 720);
        assert_eq!((r.width % 2, r.y % 2), (0, 0));
        assert!(crop_rect(0, 10, 10, 10).width == 0);
    }
}
