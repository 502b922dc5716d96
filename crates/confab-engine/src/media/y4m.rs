//! Looping Y4M (YUV4MPEG2) video source and writer.
//!
//! [`Y4mSource`] streams 8-bit 4:2:0 frames from a Y4M file (`C420jpeg`, `C420`, `C420mpeg2`,
//! `C420paldv`, or no `C` tag, which means 4:2:0) and seeks back to the first frame at the end,
//! so the same clip can feed Confab and other systems in side-by-side benchmarks. The chroma
//! siting variants differ only in where chroma samples sit, not in layout, so they are read the
//! same way. Other colour spaces (4:2:2, 4:4:4, mono, high bit depth) are rejected with
//! [`Y4mError::UnsupportedColorspace`]; malformed headers and truncated frames give typed errors.
//! [`Y4mWriter`] writes `C420jpeg` files (fixtures, recordings of decoded video).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use super::frame::{CaptureTime, I420Frame, chroma_size};
use super::source::{Pacing, SourceError, VideoSource};

const MAGIC: &str = "YUV4MPEG2";
/// Longest header line accepted; real headers are well under 100 bytes.
const MAX_LINE: u64 = 4096;

/// Errors reading or writing Y4M.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// Reading or writing failed.
    #[error("I/O error on Y4M {what}: {source}")]
    Io {
        /// The file (or "stream").
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with `YUV4MPEG2`.
    #[error("{0} is not a Y4M file (missing YUV4MPEG2 signature)")]
    NotY4m(String),
    /// The stream header is malformed.
    #[error("malformed Y4M header in {what}: {reason}")]
    BadHeader {
        /// The file (or "stream").
        what: String,
        /// Why.
        reason: String,
    },
    /// The colour space is not 8-bit 4:2:0.
    #[error(
        "unsupported Y4M colour space {colorspace} in {what} (only 8-bit 4:2:0: C420jpeg, C420, C420mpeg2, C420paldv)"
    )]
    UnsupportedColorspace {
        /// The file (or "stream").
        what: String,
        /// The `C` tag found.
        colorspace: String,
    },
    /// A frame header is not `FRAME`.
    #[error("malformed frame header at frame {frame} in {what}")]
    BadFrameHeader {
        /// The file (or "stream").
        what: String,
        /// Frame index.
        frame: u64,
    },
    /// The file ends inside a frame.
    #[error("Y4M {what} is truncated inside frame {frame}")]
    Truncated {
        /// The file (or "stream").
        what: String,
        /// Frame index.
        frame: u64,
    },
    /// The file has a header but no frames.
    #[error("Y4M {0} contains no frames")]
    Empty(String),
    /// A frame written does not match the stream's size.
    #[error("frame is {0}x{1} but the Y4M stream is {2}x{3}")]
    SizeMismatch(u32, u32, u32, u32),
}

impl From<Y4mError> for SourceError {
    fn from(e: Y4mError) -> Self {
        match e {
            Y4mError::Io { what, source } => Self::Io { what, source },
            other => Self::Format(other.to_string()),
        }
    }
}

/// Parsed stream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Y4mHeader {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
}

/// A looping Y4M file source; see the module docs.
#[derive(Debug)]
pub struct Y4mSource<R: Read + Seek = File> {
    what: String,
    reader: BufReader<R>,
    header: Y4mHeader,
    data_start: u64,
    frame_len: usize,
    frames_read: u64,
    loops: u64,
}

impl Y4mSource<File> {
    /// Opens a Y4M file.
    ///
    /// # Errors
    /// [`Y4mError`] if the file cannot be opened or its header is malformed or unsupported.
    pub fn open(path: &Path) -> Result<Self, Y4mError> {
        let what = path.display().to_string();
        let file = File::open(path).map_err(|source| Y4mError::Io {
            what: what.clone(),
            source,
        })?;
        Self::new(file, what)
    }
}

impl<R: Read + Seek> Y4mSource<R> {
    /// Reads the header from `reader`; `what` names it in errors.
    ///
    /// # Errors
    /// [`Y4mError`] if the header is malformed or unsupported.
    pub fn new(reader: R, what: String) -> Result<Self, Y4mError> {
        let mut reader = BufReader::new(reader);
        let mut magic = [0u8; MAGIC.len()];
        let got = reader.fill_buf().map_err(|source| Y4mError::Io {
            what: what.clone(),
            source,
        })?;
        let n = got.len().min(magic.len());
        magic[..n].copy_from_slice(&got[..n]);
        if magic != MAGIC.as_bytes() {
            return Err(Y4mError::NotY4m(what));
        }
        let line = read_line(&mut reader, &what)?.ok_or_else(|| Y4mError::NotY4m(what.clone()))?;
        let header = parse_header(&line, &what)?;
        let data_start = reader.stream_position().map_err(|source| Y4mError::Io {
            what: what.clone(),
            source,
        })?;
        let (cw, ch) = chroma_size(header.width, header.height);
        let frame_len = header.width as usize * header.height as usize + 2 * cw * ch;
        Ok(Self {
            what,
            reader,
            header,
            data_start,
            frame_len,
            frames_read: 0,
            loops: 0,
        })
    }

    /// The stream header.
    #[must_use]
    pub const fn header(&self) -> &Y4mHeader {
        &self.header
    }

    /// How many times the source has wrapped back to the first frame.
    #[must_use]
    pub const fn loops(&self) -> u64 {
        self.loops
    }

    /// The next frame stamped with `capture_time`, wrapping to the first frame at the end.
    ///
    /// # Errors
    /// [`Y4mError`] for I/O errors, malformed or truncated frames, or a file with no frames.
    pub fn next_frame_at(&mut self, capture_time: CaptureTime) -> Result<I420Frame, Y4mError> {
        let line = match read_line(&mut self.reader, &self.what)? {
            Some(line) => line,
            None if self.frames_read == 0 => return Err(Y4mError::Empty(self.what.clone())),
            None => {
                self.reader
                    .seek(SeekFrom::Start(self.data_start))
                    .map_err(|source| Y4mError::Io {
                        what: self.what.clone(),
                        source,
                    })?;
                self.loops += 1;
                self.frames_read = 0;
                read_line(&mut self.reader, &self.what)?
                    .ok_or_else(|| Y4mError::Empty(self.what.clone()))?
            }
        };
        if line != "FRAME" && !line.starts_with("FRAME ") {
            return Err(Y4mError::BadFrameHeader {
                what: self.what.clone(),
                frame: self.frames_read,
            });
        }
        let mut data = vec![0u8; self.frame_len];
        self.reader.read_exact(&mut data).map_err(|source| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                Y4mError::Truncated {
                    what: self.what.clone(),
                    frame: self.frames_read,
                }
            } else {
                Y4mError::Io {
                    what: self.what.clone(),
                    source,
                }
            }
        })?;
        self.frames_read += 1;
        let (w, h) = (self.header.width, self.header.height);
        let luma = w as usize * h as usize;
        let (cw, ch) = chroma_size(w, h);
        let v = data.split_off(luma + cw * ch);
        let u = data.split_off(luma);
        Ok(I420Frame::from_planes_unchecked(
            w,
            h,
            data,
            u,
            v,
            capture_time,
        ))
    }
}

impl<R: Read + Seek + Send> VideoSource for Y4mSource<R> {
    fn name(&self) -> String {
        let stem = Path::new(&self.what)
            .file_stem()
            .map_or_else(|| "y4m".into(), |s| s.to_string_lossy().into_owned());
        format!("y4m-{stem}")
    }

    fn pacing(&self) -> Pacing {
        let num = u64::from(self.header.fps_num.max(1));
        let den = u64::from(self.header.fps_den.max(1));
        Pacing::Interval(Duration::from_micros(den * 1_000_000 / num))
    }

    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        Ok(self.next_frame_at(CaptureTime::now())?)
    }
}

/// Reads one `\n`-terminated line (without the newline); `None` at a clean end of file.
fn read_line<R: BufRead>(reader: &mut R, what: &str) -> Result<Option<String>, Y4mError> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .map_err(|source| Y4mError::Io {
            what: what.to_string(),
            source,
        })?;
    if n == 0 {
        return Ok(None);
    }
    if buf.pop() != Some(b'\n') {
        return Err(Y4mError::BadHeader {
            what: what.to_string(),
            reason: "header line not terminated (truncated file or binary data)".into(),
        });
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| Y4mError::BadHeader {
            what: what.to_string(),
            reason: "header is not ASCII".into(),
        })
}

fn parse_header(line: &str, what: &str) -> Result<Y4mHeader, Y4mError> {
    let mut parts = line.split(' ');
    if parts.next() != Some(MAGIC) {
        return Err(Y4mError::NotY4m(what.to_string()));
    }
    let bad = |reason: String| Y4mError::BadHeader {
        what: what.to_string(),
        reason,
    };
    let (mut width, mut height, mut fps) = (None, None, (30, 1));
    for token in parts.filter(|t| !t.is_empty()) {
        // Split after the first character (not byte): a non-ASCII tag must not panic.
        let tag_len = token.chars().next().map_or(0, char::len_utf8);
        let (tag, value) = token.split_at(tag_len);
        match tag {
            "W" => {
                width = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| bad(format!("width {value:?}")))?,
                )
            }
            "H" => {
                height = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| bad(format!("height {value:?}")))?,
                );
            }
            "F" => {
                let (n, d) = value
                    .split_once(':')
                    .ok_or_else(|| bad(format!("frame rate {value:?}")))?;
                let n: u32 = n
                    .parse()
                    .map_err(|_| bad(format!("frame rate {value:?}")))?;
                let d: u32 = d
                    .parse()
                    .map_err(|_| bad(format!("frame rate {value:?}")))?;
                if n == 0 || d == 0 {
                    return Err(bad(format!("frame rate {value:?}")));
                }
                fps = (n, d);
            }
            "C" if !matches!(value, "420jpeg" | "420" | "420mpeg2" | "420paldv") => {
                return Err(Y4mError::UnsupportedColorspace {
                    what: what.to_string(),
                    colorspace: format!("C{value}"),
                });
            }
            // Interlacing, aspect ratio and comments/extensions do not change the layout.
            _ => {}
        }
    }
    let width = width.ok_or_else(|| bad("missing W (width)".into()))?;
    let height = height.ok_or_else(|| bad("missing H (height)".into()))?;
    // Up to 8K UHD: larger headers are more likely corrupt than real, and each frame is allocated.
    if width == 0 || height == 0 || width > 7_680 || height > 7_680 {
        return Err(bad(format!("frame size {width}x{height}")));
    }
    Ok(Y4mHeader {
        width,
        height,
        fps_num: fps.0,
        fps_den: fps.1,
    })
}

/// Writes I420 frames as a `C420jpeg` Y4M stream.
#[derive(Debug)]
pub struct Y4mWriter<W: Write> {
    out: W,
    width: u32,
    height: u32,
}

impl Y4mWriter<BufWriter<File>> {
    /// Creates `path` and writes the stream header.
    ///
    /// # Errors
    /// [`Y4mError::Io`] if the file cannot be created.
    pub fn create(path: &Path, width: u32, height: u32, fps: u32) -> Result<Self, Y4mError> {
        let file = File::create(path).map_err(|source| Y4mError::Io {
            what: path.display().to_string(),
            source,
        })?;
        Self::new(BufWriter::new(file), width, height, fps)
    }
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the stream header to `out`.
    ///
    /// # Errors
    /// [`Y4mError::Io`] if writing fails.
    pub fn new(mut out: W, width: u32, height: u32, fps: u32) -> Result<Self, Y4mError> {
        writeln!(out, "{MAGIC} W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg").map_err(io_err)?;
        Ok(Self { out, width, height })
    }

    /// Appends a frame.
    ///
    /// # Errors
    /// [`Y4mError::SizeMismatch`] for a frame of another size, [`Y4mError::Io`] on write errors.
    pub fn write_frame(&mut self, frame: &I420Frame) -> Result<(), Y4mError> {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            return Err(Y4mError::SizeMismatch(
                frame.width(),
                frame.height(),
                self.width,
                self.height,
            ));
        }
        self.out.write_all(b"FRAME\n").map_err(io_err)?;
        for plane in [frame.y(), frame.u(), frame.v()] {
            self.out.write_all(plane).map_err(io_err)?;
        }
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    ///
    /// # Errors
    /// [`Y4mError::Io`] if flushing fails.
    pub fn finish(mut self) -> Result<W, Y4mError> {
        self.out.flush().map_err(io_err)?;
        Ok(self.out)
    }
}

fn io_err(source: std::io::Error) -> Y4mError {
    Y4mError::Io {
        what: "output".into(),
        source,
    }
}
