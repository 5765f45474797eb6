//! A TCP proxy in front of a server the tests share, such as Redis, that a test can cut
//! and restore to see its own app through an outage without stopping the server for the
//! tests running beside it.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinHandle},
};

#[derive(Default)]
struct ProxyState {
    down: AtomicBool,
    connections: Mutex<Vec<AbortHandle>>,
}

pub struct TcpProxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ProxyState::default());
        let accepting = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accepting.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let forward = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                accepting
                    .connections
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(forward.abort_handle());
            }
        });
        Ok(Self {
            addr,
            state,
            accept,
        })
    }

    /// Starts a proxy in front of the Redis server the tests share, and returns it with the
    /// `REDIS_URL` that reaches Redis through it.
    pub async fn for_redis() -> anyhow::Result<(Self, String)> {
        let target: SocketAddr = crate::redis_url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .parse()?;
        let proxy = Self::start(target).await?;
        let url = format!("redis://{}", proxy.addr);
        Ok((proxy, url))
    }

    /// Closes every open connection and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        for connection in self
            .state
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
