//! The store's background threads (flushes and compactions) run at a lower CPU priority than
//! request handling, as RocksDB does for its compaction pool. At equal priority, on a small
//! machine, a burst of compaction delays requests by tens of milliseconds; at a lower one it
//! takes the idle time and yields to requests.

/// The nice value given to background threads (0 is normal, 19 the lowest priority).
const BACKGROUND_NICE: i32 = 10;

/// Lowers the priority of the `expected` threads of this process whose name starts with
/// `prefix`, waiting briefly for threads that are still starting. Best effort: a thread that
/// cannot be changed keeps running at normal priority.
#[cfg(target_os = "linux")]
pub fn lower_threads_named(prefix: &str, expected: usize) {
    for _ in 0..50 {
        if lower_once(prefix) >= expected {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    tracing::warn!(
        prefix,
        expected,
        "not every background thread is at lower priority"
    );
}

/// Lowers the matching threads' priority; returns how many are lowered.
#[cfg(target_os = "linux")]
fn lower_once(prefix: &str) -> usize {
    use rustix::process::{Pid, setpriority_process};
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut lowered = 0;
    for task in tasks.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        let tid = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok());
        let Some(pid) = tid.and_then(Pid::from_raw) else {
            continue;
        };
        // On Linux, PRIO_PROCESS with a thread id sets that one thread's nice value.
        match setpriority_process(Some(pid), BACKGROUND_NICE) {
            Ok(()) => lowered += 1,
            Err(err) => tracing::warn!(%err, thread = name.trim(), "cannot lower priority"),
        }
    }
    lowered
}

/// Lowers the calling thread's priority (on Linux, PRIO_PROCESS with id 0 is the calling thread).
#[cfg(target_os = "linux")]
pub fn lower_this_thread() {
    if let Err(err) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
        tracing::warn!(%err, "cannot lower this thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn lower_this_thread() {}

#[cfg(not(target_os = "linux"))]
pub fn lower_threads_named(_prefix: &str, _expected: usize) {}
