// I420 -> RGBA on the GPU: three single-channel textures in, one RGBA picture out.
//
// One triangle covers the target; each fragment reads its luma sample and the chroma sample of
// its 2x2 block (nearest, as the CPU conversion `i420_to_rgba` does) and applies BT.601
// limited-range coefficients, the same matrix as the CPU path, so both draw the same picture.
// The target is Rgba8Unorm holding gamma-encoded values, which is what egui's textures hold.

@group(0) @binding(0) var y_plane: texture_2d<f32>;
@group(0) @binding(1) var u_plane: texture_2d<f32>;
@group(0) @binding(2) var v_plane: texture_2d<f32>;

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    // (-1,-1), (3,-1), (-1,3): one triangle over the whole clip space.
    let x = f32((index << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(index & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let pixel = vec2<i32>(position.xy);
    let chroma = pixel / 2;
    let y = textureLoad(y_plane, pixel, 0).r * 255.0;
    let u = textureLoad(u_plane, chroma, 0).r * 255.0 - 128.0;
    let v = textureLoad(v_plane, chroma, 0).r * 255.0 - 128.0;
    // Luma under 16 (footroom) is black, as in the CPU conversion.
    let luma = max(y - 16.0, 0.0) * 1.164383;
    let rgb = vec3<f32>(
        luma + 1.596027 * v,
        luma - 0.391762 * u - 0.812968 * v,
        luma + 2.017232 * u,
    ) / 255.0;
    return vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0);
}
