//! A TCP proxy on 127.0.0.1:0 whose live connections can be cut on demand, to simulate a
//! network drop between a client and a server that both stay up.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards every accepted connection to `upstream`.
pub struct TcpProxy {
    addr: SocketAddr,
    live: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let live: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let live2 = Arc::clone(&live);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                live2.lock().unwrap().push(task);
            }
        });
        Self { addr, live, accept }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every live connection at once (both directions); new connections still work.
    pub fn cut_all(&self) {
        for task in self.live.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut_all();
        self.accept.abort();
    }
}
