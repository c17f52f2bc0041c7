//! A link between two processes on loopback that a test can cut: a TCP relay whose cut
//! drops the connections it carries and refuses new ones, until it heals, as a network cut
//! between two regions would.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

pub struct Link {
    /// Where to connect instead of the target.
    pub addr: String,
    cut: Arc<AtomicBool>,
}

impl Link {
    /// A relay to `target` (`host:port`) on a free loopback port.
    pub async fn to(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let (target, watched) = (target.to_string(), Arc::clone(&cut));
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if watched.load(Ordering::SeqCst) {
                    continue; // Dropped: the caller sees the connection reset.
                }
                let (target, watched) = (target.clone(), Arc::clone(&watched));
                tokio::spawn(relay(inbound, target, watched));
            }
        });
        Self { addr, cut }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Carries one connection both ways until either side closes it or the link is cut.
async fn relay(mut inbound: TcpStream, target: String, cut: Arc<AtomicBool>) {
    let Ok(mut outbound) = TcpStream::connect(&target).await else {
        return;
    };
    let carry = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
    let watch = async {
        while !cut.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = carry => {}
        _ = watch => {}
    }
}
