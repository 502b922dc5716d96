//! I420 pictures converted to RGBA by the GPU (wgpu), so the UI thread only copies the three
//! planes (1.5 bytes a pixel) instead of converting every pixel and uploading 4 bytes of each.
//!
//! # What it owns
//!
//! [`GpuI420`] owns the render pipeline (`i420.wgsl`): three `R8Unorm` plane textures in, one
//! `Rgba8Unorm` texture out, drawn with one triangle. Each source keeps a [`GpuPicture`]: its
//! plane textures, its output texture, and the id under which egui's renderer knows the output
//! (a native texture), so the tile draws it like any other egui image.
//!
//! # Contract
//!
//! - Runs on the UI thread, on the device and queue egui paints with: the conversion is queued
//!   before egui's own frame, so the picture drawn is the one just uploaded.
//! - Same colours as the CPU path ([`confab_engine::media::i420_to_rgba`]): BT.601 limited range,
//!   chroma taken nearest per 2x2 block (a test compares both, pixel by pixel).
//! - Every wgpu call runs inside an error scope. A validation or out-of-memory error is returned
//!   as [`GpuError`], never a panic; the caller then goes back to the CPU path for good.
//! - Dropping a [`GpuPicture`] frees its egui texture id.

use std::borrow::Cow;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use eframe::egui;
use eframe::egui_wgpu::{self, RenderState, wgpu};

use confab_engine::media::I420Frame;

/// Why the GPU could not convert a picture.
#[derive(Debug, thiserror::Error)]
#[error("GPU video conversion failed: {0}")]
pub struct GpuError(String);

/// The conversion pipeline, built once per renderer.
pub struct GpuI420 {
    device: wgpu::Device,
    queue: wgpu::Queue,
    renderer: Arc<egui::mutex::RwLock<egui_wgpu::Renderer>>,
    pipeline: wgpu::RenderPipeline,
}

/// One source's textures on the GPU.
pub struct GpuPicture {
    planes: [wgpu::Texture; 3],
    /// Kept alive for as long as egui may draw it.
    _output: wgpu::Texture,
    bind_group: wgpu::BindGroup,
    view: wgpu::TextureView,
    id: egui::TextureId,
    size: [u32; 2],
    renderer: Arc<egui::mutex::RwLock<egui_wgpu::Renderer>>,
}

impl GpuPicture {
    /// The id egui draws the converted picture with.
    pub fn texture_id(&self) -> egui::TextureId {
        self.id
    }

    /// Width and height in pixels.
    pub fn size(&self) -> [u32; 2] {
        self.size
    }
}

impl Drop for GpuPicture {
    fn drop(&mut self) {
        self.renderer.write().free_texture(&self.id);
    }
}

impl GpuI420 {
    /// Builds the pipeline on `render`'s device.
    ///
    /// # Errors
    /// [`GpuError`] when the device rejects the shader or the pipeline.
    pub fn new(render: &RenderState) -> Result<Self, GpuError> {
        let device = render.device.clone();
        let scope = ErrorScope::push(&device);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("confab-i420"),
            source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(include_str!("i420.wgsl"))),
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("confab-i420"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(wgpu::TextureFormat::Rgba8Unorm.into())],
            }),
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleList,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        scope.finish("building the I420 pipeline")?;
        Ok(Self {
            device,
            queue: render.queue.clone(),
            renderer: Arc::clone(&render.renderer),
            pipeline,
        })
    }

    /// Converts `frame` into `picture` (reused when it has the frame's size, else replaced) and
    /// queues the conversion ahead of egui's next paint.
    ///
    /// # Errors
    /// [`GpuError`] when the device rejects a call; `picture` is then left as it was.
    pub fn upload(
        &self,
        frame: &I420Frame,
        picture: &mut Option<GpuPicture>,
    ) -> Result<(), GpuError> {
        let size = [frame.width(), frame.height()];
        let scope = ErrorScope::push(&self.device);
        let fresh = match picture {
            Some(p) if p.size == size => None,
            _ => Some(self.picture(size)),
        };
        let target = fresh.as_ref().or(picture.as_ref());
        let Some(target) = target else {
            return Err(GpuError("no picture to convert into".into()));
        };
        let (cw, ch) = frame.chroma_size();
        let plane_sizes = [
            (size[0], size[1]),
            (cw as u32, ch as u32),
            (cw as u32, ch as u32),
        ];
        for ((texture, data), (w, h)) in target
            .planes
            .iter()
            .zip([frame.y(), frame.u(), frame.v()])
            .zip(plane_sizes)
        {
            self.queue.write_texture(
                texture.as_image_copy(),
                data,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(w),
                    rows_per_image: Some(h),
                },
                extent(w, h),
            );
        }
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("confab-i420"),
            });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("confab-i420"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &target.view,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                    depth_slice: None,
                })],
                depth_stencil_attachment: None,
                occlusion_query_set: None,
                timestamp_writes: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &target.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        self.queue.submit(Some(encoder.finish()));
        scope.finish("converting a picture")?;
        if let Some(fresh) = fresh {
            *picture = Some(fresh);
        }
        Ok(())
    }

    /// New textures for pictures of `size`, the output registered with egui.
    fn picture(&self, size: [u32; 2]) -> GpuPicture {
        let [w, h] = size;
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let plane = |label: &str, w: u32, h: u32| {
            self.device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: extent(w, h),
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        let planes = [
            plane("confab-i420-y", w, h),
            plane("confab-i420-u", cw, ch),
            plane("confab-i420-v", cw, ch),
        ];
        let output = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("confab-i420-rgba"),
            size: extent(w, h),
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let views: Vec<wgpu::TextureView> = planes
            .iter()
            .map(|t| t.create_view(&wgpu::TextureViewDescriptor::default()))
            .collect();
        let entries: Vec<wgpu::BindGroupEntry<'_>> = views
            .iter()
            .enumerate()
            .map(|(binding, view)| wgpu::BindGroupEntry {
                binding: binding as u32,
                resource: wgpu::BindingResource::TextureView(view),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("confab-i420"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let view = output.create_view(&wgpu::TextureViewDescriptor::default());
        let id = self.renderer.write().register_native_texture(
            &self.device,
            &view,
            wgpu::FilterMode::Linear,
        );
        GpuPicture {
            planes,
            _output: output,
            bind_group,
            view,
            id,
            size,
            renderer: Arc::clone(&self.renderer),
        }
    }

    /// Reads `picture` back as packed RGBA (tests compare it with the CPU conversion).
    ///
    /// # Errors
    /// [`GpuError`] when the copy or the mapping fails.
    #[cfg(test)]
    pub fn read_back(&self, picture: &GpuPicture) -> Result<Vec<u8>, GpuError> {
        let [w, h] = picture.size;
        let row = w * 4;
        let padded =
            row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("confab-i420-read-back"),
            size: u64::from(padded) * u64::from(h),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_texture_to_buffer(
            picture._output.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded),
                    rows_per_image: None,
                },
            },
            extent(w, h),
        );
        self.queue.submit(Some(encoder.finish()));
        let slice = buffer.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(std::time::Duration::from_secs(10)),
            })
            .map_err(|e| GpuError(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError(e.to_string()))?
            .map_err(|e| GpuError(e.to_string()))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| GpuError(e.to_string()))?;
        let mut rgba = Vec::with_capacity((row * h) as usize);
        for line in data.chunks(padded as usize).take(h as usize) {
            rgba.extend_from_slice(&line[..row as usize]);
        }
        Ok(rgba)
    }
}

fn extent(width: u32, height: u32) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width,
        height,
        depth_or_array_layers: 1,
    }
}

/// Validation, internal and out-of-memory errors of the calls made while it is open (an
/// uncaptured error would reach wgpu's default handler, which panics).
///
/// Scopes must be popped in the reverse order of their pushes, also when the scope is dropped
/// without [`ErrorScope::finish`] (an early return): fields drop in declaration order, so the
/// last pushed is declared first.
struct ErrorScope {
    validation: wgpu::ErrorScopeGuard,
    internal: wgpu::ErrorScopeGuard,
    oom: wgpu::ErrorScopeGuard,
}

impl ErrorScope {
    fn push(device: &wgpu::Device) -> Self {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        Self {
            validation,
            internal,
            oom,
        }
    }

    /// The first error caught, as [`GpuError`] saying what was being done. Native wgpu reports
    /// errors when the call is made, so the scope's future is ready at once; one still pending
    /// counts as no error.
    fn finish(self, doing: &str) -> Result<(), GpuError> {
        // In reverse order of the pushes.
        let validation = ready(self.validation.pop());
        let internal = ready(self.internal.pop());
        let oom = ready(self.oom.pop());
        match validation.or(internal).or(oom) {
            Some(e) => Err(GpuError(format!("{doing}: {e}"))),
            None => Ok(()),
        }
    }
}

/// The value of a future that is already complete, or `None`.
fn ready<T>(future: impl Future<Output = Option<T>>) -> Option<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is the test failing")]

    use super::*;
    use confab_engine::media::i420_to_rgba;

    /// A picture with every kind of content the conversion must get right: a luma ramp across
    /// the full range (including below 16 and above 235, which clamp), and chroma that changes
    /// per 2x2 block over both axes (so a chroma sample read from the wrong block shows). Odd
    /// width and height check the half-size rounding of the chroma planes.
    fn test_frame() -> I420Frame {
        let (w, h) = (67u32, 37u32);
        let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
        let y = (0..w * h)
            .map(|i| ((i % w) * 255 / (w - 1)) as u8)
            .collect();
        let u = (0..cw * ch).map(|i| ((i % cw) * 7 % 256) as u8).collect();
        let v = (0..cw * ch).map(|i| ((i / cw) * 13 % 256) as u8).collect();
        I420Frame::from_planes(
            w,
            h,
            y,
            u,
            v,
            confab_engine::media::CaptureTime::from_micros(0),
        )
        .unwrap()
    }

    #[test]
    fn the_gpu_draws_the_same_picture_as_the_cpu_conversion() {
        let render = egui_kittest::wgpu::create_render_state(
            egui_kittest::wgpu::default_wgpu_setup(),
            egui_wgpu::RendererOptions::default(),
        );
        let gpu = GpuI420::new(&render).unwrap();
        let frame = test_frame();
        let mut picture = None;
        gpu.upload(&frame, &mut picture).unwrap();
        let picture = picture.unwrap();
        assert_eq!(picture.size(), [67, 37]);
        let on_gpu = gpu.read_back(&picture).unwrap();
        let mut on_cpu = Vec::new();
        i420_to_rgba(&frame, &mut on_cpu).unwrap();
        assert_eq!(on_gpu.len(), on_cpu.len());
        let worst = on_gpu
            .iter()
            .zip(&on_cpu)
            .enumerate()
            .max_by_key(|(_, (g, c))| g.abs_diff(**c))
            .map(|(i, (g, c))| (i, *g, *c))
            .unwrap();
        // Both apply the same matrix, one in float and one in fixed point: their roundings
        // differ by up to two levels.
        assert!(
            worst.1.abs_diff(worst.2) <= 2,
            "byte {} (pixel {}, channel {}): GPU {} vs CPU {}",
            worst.0,
            worst.0 / 4,
            worst.0 % 4,
            worst.1,
            worst.2
        );
    }

    #[test]
    fn a_new_size_replaces_the_picture_and_the_same_size_reuses_it() {
        let render = egui_kittest::wgpu::create_render_state(
            egui_kittest::wgpu::default_wgpu_setup(),
            egui_wgpu::RendererOptions::default(),
        );
        let gpu = GpuI420::new(&render).unwrap();
        let mut picture = None;
        gpu.upload(&test_frame(), &mut picture).unwrap();
        let first = picture.as_ref().unwrap().texture_id();
        gpu.upload(&test_frame(), &mut picture).unwrap();
        assert_eq!(picture.as_ref().unwrap().texture_id(), first);
        let bigger = I420Frame::black(96, 64).unwrap();
        gpu.upload(&bigger, &mut picture).unwrap();
        let p = picture.unwrap();
        assert_ne!(p.texture_id(), first);
        assert_eq!(p.size(), [96, 64]);
        // Black in limited range is Y=16, U=V=128: RGB 0.
        let rgba = gpu.read_back(&p).unwrap();
        assert!(rgba.chunks(4).all(|px| px == [0, 0, 0, 255]));
    }
}
