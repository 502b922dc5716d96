//! Video tiles: decoded frames turned into long-lived egui textures.
//!
//! Each source (a remote participant, `None` for our own preview, or the "what the others see"
//! picture of a call check) owns one picture. Two ways to make it:
//!
//! - **GPU** (`gpu_i420`, when eframe paints with wgpu on a real graphics adapter): the three
//!   I420 planes are copied into single-channel textures and a shader converts them into an RGBA
//!   texture that egui draws. The UI thread copies 1.5 bytes a pixel and converts nothing.
//! - **CPU** (the glow renderer, a software rasterizer such as Mesa's lavapipe, after a GPU
//!   error): SIMD conversion to RGBA on the UI thread, uploaded into the texture in place
//!   (`set_partial`). On a software rasterizer the "GPU" is the processor too, and running the
//!   shader there costs far more than the SIMD conversion (`benches/video_upload.rs`: 22 ms
//!   against 1.1 ms for a 720p picture on lavapipe), so such adapters get the CPU path.
//!
//! `CONFAB_VIDEO_UPLOAD=cpu` or `=gpu` overrides the choice (comparisons, a driver that draws
//! the video wrong).
//!
//! Either way a new frame of the same size reuses the source's textures; only a size change
//! replaces them. Frame-to-screen time (decoded → texture updated) is recorded for the figures.

pub mod gpu_i420;

use std::collections::HashMap;

use eframe::egui::{ColorImage, Context, TextureHandle, TextureId, TextureOptions};
use eframe::egui_wgpu::{RenderState, wgpu};

use confab_engine::media::CaptureTime;
use confab_engine::media::i420_to_rgba;
use confab_engine::{VideoFrameEvent, VideoRole};
use gpu_i420::{GpuI420, GpuPicture};

/// Frame-to-screen samples kept (most recent).
const LATENCY_SAMPLES: usize = 1000;

/// `cpu` or `gpu` forces that path (for comparisons, or a driver that draws the GPU path
/// wrong); unset, the adapter decides ([`choose_upload`]).
pub const UPLOAD_ENV: &str = "CONFAB_VIDEO_UPLOAD";

/// Which path to use on an adapter of `device_type`, given `forced` (the value of
/// [`UPLOAD_ENV`], if set): the GPU on real graphics hardware, the CPU on a software
/// rasterizer, unless told otherwise.
pub fn choose_upload(device_type: wgpu::DeviceType, forced: Option<&str>) -> Upload {
    match forced.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("cpu") => Upload::Cpu,
        Some(v) if v.eq_ignore_ascii_case("gpu") => Upload::Gpu,
        _ if device_type == wgpu::DeviceType::Cpu => Upload::Cpu,
        _ => Upload::Gpu,
    }
}

/// Whose picture a tile shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Our own camera.
    Preview,
    /// A remote participant.
    Remote(signaling_client::ParticipantId),
    /// Our camera as the far end of a call check decoded it.
    CheckEcho,
    /// A remote participant's shared screen.
    RemoteScreen(signaling_client::ParticipantId),
    /// Our own shared screen (the small preview of what we share).
    MyScreen,
}

impl Source {
    /// The source of an engine frame (`None` is ours: the camera preview, or our screen).
    pub fn of(from: Option<&signaling_client::ParticipantId>, role: VideoRole) -> Self {
        match (from, role) {
            (None, VideoRole::Camera) => Self::Preview,
            (None, VideoRole::Screen) => Self::MyScreen,
            (Some(id), VideoRole::Camera) => Self::Remote(id.clone()),
            (Some(id), VideoRole::Screen) => Self::RemoteScreen(id.clone()),
        }
    }
}

/// How pictures reach the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// Planes to the GPU, converted by a shader.
    Gpu,
    /// Converted on the UI thread, RGBA uploaded.
    Cpu,
}

/// Where a tile's pixels live.
enum Store {
    Cpu(TextureHandle),
    Gpu(Box<GpuPicture>),
}

/// One source's picture.
pub struct Tile {
    store: Store,
    /// Its size in pixels.
    pub size: [usize; 2],
    /// Frames shown so far.
    pub frames: u64,
}

impl Tile {
    /// The texture egui draws.
    pub fn texture(&self) -> TextureId {
        match &self.store {
            Store::Cpu(handle) => handle.id(),
            Store::Gpu(picture) => picture.texture_id(),
        }
    }
}

/// The GPU converter's state: not tried yet, working, or given up on.
enum Gpu {
    Untried,
    Ready(GpuI420),
    Off,
}

/// All video textures.
pub struct VideoTextures {
    tiles: HashMap<Source, Tile>,
    gpu: Gpu,
    rgba: Vec<u8>,
    to_screen_ms: Vec<f64>,
}

impl Default for VideoTextures {
    fn default() -> Self {
        Self {
            tiles: HashMap::new(),
            gpu: Gpu::Untried,
            rgba: Vec::new(),
            to_screen_ms: Vec::new(),
        }
    }
}

impl VideoTextures {
    /// Shows `ev`'s picture as `source`'s. `render` is eframe's wgpu state (`None` with the glow
    /// renderer): with it the GPU converts the picture.
    pub fn update(
        &mut self,
        ctx: &Context,
        render: Option<&RenderState>,
        source: &Source,
        ev: &VideoFrameEvent,
    ) {
        if let (Gpu::Untried, Some(render)) = (&self.gpu, render) {
            let adapter = render.adapter.get_info();
            let forced = std::env::var(UPLOAD_ENV).ok();
            self.gpu = match choose_upload(adapter.device_type, forced.as_deref()) {
                Upload::Cpu => {
                    tracing::info!(
                        "converting video on the CPU (adapter {}, {:?})",
                        adapter.name,
                        adapter.device_type
                    );
                    Gpu::Off
                }
                Upload::Gpu => match GpuI420::new(render) {
                    Ok(gpu) => {
                        tracing::info!("converting video on the GPU (adapter {})", adapter.name);
                        Gpu::Ready(gpu)
                    }
                    Err(e) => {
                        tracing::warn!("{e}; converting video on the CPU");
                        Gpu::Off
                    }
                },
            };
        }
        let shown = render.is_some() && self.update_gpu(source, ev);
        if !shown && !self.update_cpu(ctx, source, ev) {
            return;
        }
        if self.to_screen_ms.len() == LATENCY_SAMPLES {
            self.to_screen_ms.remove(0);
        }
        self.to_screen_ms.push(
            CaptureTime::now()
                .saturating_since(ev.decoded_at)
                .as_secs_f64()
                * 1000.0,
        );
    }

    /// The GPU path; false when there is none, or it failed (and is given up on).
    fn update_gpu(&mut self, source: &Source, ev: &VideoFrameEvent) -> bool {
        let Gpu::Ready(gpu) = &self.gpu else {
            return false;
        };
        let existing = self.tiles.remove(source);
        let frames = existing.as_ref().map_or(0, |t| t.frames);
        let mut picture = match existing.map(|t| t.store) {
            Some(Store::Gpu(p)) => Some(*p),
            _ => None,
        };
        let uploaded = gpu.upload(&ev.frame, &mut picture);
        match uploaded {
            Ok(()) => {
                if let Some(picture) = picture {
                    let [w, h] = picture.size();
                    self.tiles.insert(
                        source.clone(),
                        Tile {
                            store: Store::Gpu(Box::new(picture)),
                            size: [w as usize, h as usize],
                            frames: frames + 1,
                        },
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!("{e}; converting video on the CPU from now on");
                self.gpu = Gpu::Off;
                false
            }
        }
    }

    /// The CPU path; false when the picture could not be converted.
    fn update_cpu(&mut self, ctx: &Context, source: &Source, ev: &VideoFrameEvent) -> bool {
        if i420_to_rgba(&ev.frame, &mut self.rgba).is_err() {
            return false;
        }
        let size = [ev.frame.width() as usize, ev.frame.height() as usize];
        let image = ColorImage::from_rgba_unmultiplied(size, &self.rgba);
        match self.tiles.get_mut(source) {
            Some(Tile {
                store: Store::Cpu(texture),
                size: tile_size,
                frames,
            }) if *tile_size == size => {
                texture.set_partial([0, 0], image, TextureOptions::LINEAR);
                *frames += 1;
            }
            other => {
                let frames = other.map_or(0, |t| t.frames);
                let name = format!("video-{source:?}");
                let texture = ctx.load_texture(name, image, TextureOptions::LINEAR);
                self.tiles.insert(
                    source.clone(),
                    Tile {
                        store: Store::Cpu(texture),
                        size,
                        frames: frames + 1,
                    },
                );
            }
        }
        true
    }

    /// How pictures reach the screen now (the GPU once it has converted one).
    pub fn upload(&self) -> Upload {
        match self.gpu {
            Gpu::Ready(_) => Upload::Gpu,
            Gpu::Untried | Gpu::Off => Upload::Cpu,
        }
    }

    /// The tile of `source`, if it has shown a frame.
    pub fn tile(&self, source: &Source) -> Option<&Tile> {
        self.tiles.get(source)
    }

    /// Forgets a source (participant left, camera off).
    pub fn remove(&mut self, source: &Source) {
        self.tiles.remove(source);
    }

    /// Forgets every remote source (call ended).
    pub fn clear_remote(&mut self) {
        self.tiles.retain(|k, _| {
            !matches!(
                k,
                Source::Remote(_) | Source::RemoteScreen(_) | Source::MyScreen
            )
        });
    }

    /// Median decoded→on-texture time over the recent frames, ms.
    pub fn frame_to_screen_p50_ms(&self) -> Option<f64> {
        let mut v = self.to_screen_ms.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_graphics_hardware_converts_on_the_gpu_and_a_software_rasterizer_on_the_cpu() {
        use wgpu::DeviceType::{Cpu, DiscreteGpu, IntegratedGpu, Other, VirtualGpu};
        for hardware in [DiscreteGpu, IntegratedGpu, VirtualGpu, Other] {
            assert_eq!(choose_upload(hardware, None), Upload::Gpu, "{hardware:?}");
            assert_eq!(choose_upload(hardware, Some("CPU")), Upload::Cpu);
        }
        assert_eq!(choose_upload(Cpu, None), Upload::Cpu);
        assert_eq!(choose_upload(Cpu, Some(" gpu ")), Upload::Gpu);
        assert_eq!(choose_upload(Cpu, Some("nonsense")), Upload::Cpu);
    }
}
