//! What showing one 720p picture costs the desktop app, per path (`src/ui/video.rs`): the GPU
//! path (the three I420 planes copied into textures, converted by the shader) against the CPU
//! path (SIMD conversion to RGBA, then the RGBA upload egui makes of it). Each path is timed
//! twice: "ui thread", the work on the calling thread up to the submit (what the UI thread pays
//! per frame), and "finished", until the device has done the work too (on a machine without a
//! GPU, where wgpu runs on Mesa's lavapipe, that work is CPU time as well).
//!
//! Run: `cargo bench --bench video_upload -- --warm-up-time 1 --measurement-time 3`
//! It needs a wgpu adapter (a GPU, or Mesa's lavapipe: `mesa-vulkan-drivers`).

use std::hint::black_box;
use std::time::Duration;

use confab::ui::video::gpu_i420::GpuI420;
use confab_engine::media::synthetic_video::SyntheticVideo;
use confab_engine::media::{CaptureTime, i420_to_rgba};
use criterion::{Criterion, criterion_main};
use eframe::egui_wgpu::{self, wgpu};

fn wait(device: &wgpu::Device) {
    let _ = device.poll(wgpu::PollType::Wait {
        submission_index: None,
        timeout: Some(Duration::from_secs(10)),
    });
}

fn upload(c: &mut Criterion) {
    let render = egui_kittest::wgpu::create_render_state(
        egui_kittest::wgpu::default_wgpu_setup(),
        egui_wgpu::RendererOptions::default(),
    );
    let info = render.adapter.get_info();
    eprintln!(
        "adapter: {} ({:?}, {:?})",
        info.name, info.device_type, info.backend
    );
    let Ok(src) = SyntheticVideo::new(1280, 720, 30) else {
        return;
    };
    let frame = src.render(1, CaptureTime::from_micros(33_333));
    let Ok(gpu) = GpuI420::new(&render) else {
        eprintln!("no GPU conversion on this adapter");
        return;
    };
    let mut picture = None;
    let rgba_texture = render.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("bench-rgba"),
        size: wgpu::Extent3d {
            width: 1280,
            height: 720,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let mut rgba = Vec::new();
    let cpu_path = |rgba: &mut Vec<u8>| {
        if i420_to_rgba(&frame, rgba).is_ok() {
            render.queue.write_texture(
                rgba_texture.as_image_copy(),
                rgba,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(1280 * 4),
                    rows_per_image: Some(720),
                },
                rgba_texture.size(),
            );
            render.queue.submit(None);
        }
    };
    let mut g = c.benchmark_group("720p picture to the screen");
    g.bench_function("gpu path: ui thread", |b| {
        b.iter(|| black_box(gpu.upload(&frame, &mut picture).is_ok()));
        wait(&render.device);
    });
    g.bench_function("gpu path: finished", |b| {
        b.iter(|| {
            black_box(gpu.upload(&frame, &mut picture).is_ok());
            wait(&render.device);
        });
    });
    g.bench_function("cpu path: ui thread", |b| {
        b.iter(|| cpu_path(&mut rgba));
        wait(&render.device);
    });
    g.bench_function("cpu path: finished", |b| {
        b.iter(|| {
            cpu_path(&mut rgba);
            wait(&render.device);
        });
    });
    g.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    upload(&mut c);
}

criterion_main!(benches);
