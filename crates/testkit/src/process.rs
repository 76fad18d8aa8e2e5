//! Child processes and loopback ports for the tests that run programs:
//! every child is stopped by PID (never by name), every wait is bounded.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A child process killed (by PID) and reaped when dropped, unless it has
/// already exited.
pub struct Running {
    name: &'static str,
    child: Child,
}

impl Running {
    /// Spawns `command`; panics naming `name` and the program if it cannot.
    pub fn spawn(name: &'static str, command: &mut Command) -> Running {
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "start {name} ({}): {e}",
                command.get_program().to_string_lossy()
            )
        });
        Running { name, child }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for a child process")
    }

    /// Ctrl-C: SIGINT by PID, then a bounded wait for it to exit. `None`
    /// if it did not exit `within` (it is then killed by PID and reaped).
    pub fn interrupt(&mut self, within: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Some(status);
        }
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid");
        // SAFETY: kill(2) with a PID this process spawned and has not reaped.
        let sent = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(sent, 0, "SIGINT to {} (pid {pid})", self.name);
        let mut status = None;
        wait_until(within, Duration::from_millis(50), || {
            status = self.try_wait();
            status.is_some()
        });
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        status
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("stopped {} (pid {})", self.name, self.child.id());
    }
}

/// A loopback port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Polls `ready` every `every` until it is true (then `true`) or `within`
/// has passed (then `false`).
pub fn wait_until(within: Duration, every: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Waits (bounded) until `what` listens on 127.0.0.1:`port`; panics with
/// its `log` if it does not.
pub fn wait_for_port(port: u16, within: Duration, what: &str, log: &Path) {
    if !wait_until(within, Duration::from_millis(100), || port_open(port)) {
        panic!(
            "{what} did not listen on 127.0.0.1:{port} within {within:?}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}
