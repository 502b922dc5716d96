//! Engine test helpers: a signaling server on its own small runtime (for tests that drive
//! engines from plain threads) and a small, quick engine configuration.

use std::sync::Arc;

use confab::engine::incoming::NullSink;
use confab::engine::{Engine, EngineConfig, VideoSettings};
use signaling_server::{ServerConfig, ServerHandle, SignalingServer};

/// A signaling server on 127.0.0.1:0 and the runtime it runs on (keep both alive).
pub fn start_server_runtime() -> (tokio::runtime::Runtime, ServerHandle) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(SignalingServer::start(ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
        )))
        .unwrap();
    (rt, server)
}

/// 320x240 at 15 fps, synthetic media, ICE on 127.0.0.1, no preview: quick to run.
pub fn small_engine_config(name: &str) -> EngineConfig {
    let mut config = EngineConfig::new(name);
    config.video = VideoSettings {
        width: 320,
        height: 240,
        fps: 15,
        start_kbps: 300,
        min_kbps: 100,
        max_kbps: 400,
    };
    config.bind_addrs = vec![([127, 0, 0, 1], 0).into()];
    config.preview = false;
    config
}

/// Starts an engine with `config`, no speaker and no repaint.
pub fn start_engine(config: EngineConfig) -> Engine {
    Engine::start(config, Box::new(NullSink), Arc::new(|| {})).unwrap()
}
