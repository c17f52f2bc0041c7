//! The no-op echo baseline: the server (`loadgen echo-server`) and the child process the bench
//! spawns to run it.

use crate::pb::echo_server::{Echo, EchoServer};
use crate::pb::{EchoReply, EchoRequest};
use crate::target::loopback_addr;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// How long the bench waits for the child's `listening` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct NoOp;

#[tonic::async_trait]
impl Echo for NoOp {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        Ok(Response::new(EchoReply {
            payload: request.into_inner().payload,
        }))
    }
}

/// Binds `addr`, prints `listening <addr>` on stdout, and serves until killed (or, with
/// `exit_on_stdin_eof`, until stdin closes: the bench's guard against orphaned children).
pub async fn serve(addr: SocketAddr, exit_on_stdin_eof: bool) -> Result<()> {
    let addr = loopback_addr(addr)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {local}").context("writing to stdout")?;
        out.flush().context("flushing stdout")?;
    }
    let shutdown = async move {
        if exit_on_stdin_eof {
            let mut sink = Vec::new();
            // Returns at EOF (the parent closed the pipe or died) or on a read error.
            let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    serve_on(listener, shutdown).await
}

/// Serves the echo service on an already bound listener until `shutdown` completes.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(EchoServer::new(NoOp))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("echo server failed")
}

/// A running `loadgen echo-server` child. Killed on [`EchoChild::stop`] or when dropped.
pub struct EchoChild {
    child: Child,
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
}

impl EchoChild {
    /// Starts this executable as `echo-server` on a free loopback port and waits for its
    /// `listening` line.
    pub async fn spawn() -> Result<Self> {
        let exe = std::env::current_exe().context("locating the loadgen executable")?;
        let mut child = Command::new(&exe)
            .args([
                "echo-server",
                "--addr",
                "127.0.0.1:0",
                "--exit-on-stdin-eof",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} echo-server", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("the echo-server child has no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(STARTUP_TIMEOUT, lines.next_line())
            .await
            .context("the echo-server child did not report its address within 10 s")?
            .context("reading the echo-server child's stdout")?;
        let Some(line) = line else {
            let status = child
                .wait()
                .await
                .context("waiting for the echo-server child")?;
            bail!("the echo-server child exited ({status}) before it was listening");
        };
        let addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .with_context(|| format!("unexpected first line from echo-server: {line:?}"))?;
        Ok(Self { child, stdin, addr })
    }

    /// Stops the child and reaps it.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        if self
            .child
            .try_wait()
            .context("polling the echo-server child")?
            .is_none()
        {
            self.child
                .start_kill()
                .context("killing the echo-server child")?;
        }
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .context("the echo-server child did not exit within 5 s of being killed")?
            .context("waiting for the echo-server child")?;
        Ok(())
    }
}
