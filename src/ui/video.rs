//! Video tiles: decoded frames written into long-lived egui textures.
//!
//! Each source (a remote participant, or `None` for our own preview) owns one texture. A new
//! frame of the same size is uploaded into it in place (`set_partial` at the origin); only a size
//! change replaces it. Frame-to-screen time (decoded → texture updated) is recorded for the
//! figures.

use std::collections::HashMap;

use eframe::egui::{ColorImage, Context, TextureHandle, TextureOptions};

use confab_engine::VideoFrameEvent;
use confab_engine::media::CaptureTime;
use confab_engine::media::i420_to_rgba;
use signaling_client::ParticipantId;

/// Frame-to-screen samples kept (most recent).
const LATENCY_SAMPLES: usize = 1000;

/// One source's texture.
pub struct Tile {
    /// The texture.
    pub texture: TextureHandle,
    /// Its size in pixels.
    pub size: [usize; 2],
    /// Frames shown so far.
    pub frames: u64,
}

/// All video textures.
#[derive(Default)]
pub struct VideoTextures {
    tiles: HashMap<Option<ParticipantId>, Tile>,
    rgba: Vec<u8>,
    to_screen_ms: Vec<f64>,
}

impl VideoTextures {
    /// Uploads `ev`'s picture into its source's texture.
    pub fn update(&mut self, ctx: &Context, ev: &VideoFrameEvent) {
        if i420_to_rgba(&ev.frame, &mut self.rgba).is_err() {
            return;
        }
        let size = [ev.frame.width() as usize, ev.frame.height() as usize];
        let image = ColorImage::from_rgba_unmultiplied(size, &self.rgba);
        match self.tiles.get_mut(&ev.from) {
            Some(tile) if tile.size == size => {
                tile.texture
                    .set_partial([0, 0], image, TextureOptions::LINEAR);
                tile.frames += 1;
            }
            _ => {
                let name = format!("video-{}", ev.from.as_ref().map_or("self", |p| p.as_str()));
                let texture = ctx.load_texture(name, image, TextureOptions::LINEAR);
                self.tiles.insert(
                    ev.from.clone(),
                    Tile {
                        texture,
                        size,
                        frames: 1,
                    },
                );
            }
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

    /// The tile of `source`, if it has shown a frame.
    pub fn tile(&self, source: &Option<ParticipantId>) -> Option<&Tile> {
        self.tiles.get(source)
    }

    /// Forgets a source (participant left, camera off).
    pub fn remove(&mut self, source: &Option<ParticipantId>) {
        self.tiles.remove(source);
    }

    /// Forgets every remote source (call ended).
    pub fn clear_remote(&mut self) {
        self.tiles.retain(|k, _| k.is_none());
    }

    /// Median decoded→on-texture time over the recent remote frames, ms.
    pub fn frame_to_screen_p50_ms(&self) -> Option<f64> {
        let mut v = self.to_screen_ms.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}
