//! The platform as the Helm chart runs it, one process per target: starting one of them.

#![allow(dead_code)] // Each test binary compiles this module; not every one uses every helper.

use super::{Addrs, start_with};
use tokio::process::Child;

/// One process of the platform, with its data directory (both go when it is dropped).
pub struct Process {
    child: Child,
    pub addrs: Addrs,
    _dir: tempfile::TempDir,
}

/// `memberd --target <target>` with the environment every process shares and its own.
pub async fn start(target: &str, shared: &[(&str, &str)], own: &[(&str, &str)]) -> Process {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("MEMBERD_TARGET", target)];
    env.extend_from_slice(shared);
    env.extend_from_slice(own);
    let (child, addrs) = start_with(dir.path(), &env).await;
    Process {
        child,
        addrs,
        _dir: dir,
    }
}

impl Process {
    /// Kills the process at once (SIGKILL), as a node failure would, and waits for it to go.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Stops the process as Kubernetes stops a pod (SIGTERM), and waits for it to go.
    pub async fn terminate(&mut self) {
        let pid = self.child.id().expect("the process runs").to_string();
        let sent = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let _ = self.child.wait().await;
    }
}
