//! The watchdog: one thread that looks at the requests in flight a few
//! times a second. A request running past the slow-request threshold is
//! logged once, while it runs, with where its thread waits; a request
//! running past the request timeout has its connection shut down, so that
//! the web server answers its client at once (nginx: 502), and its
//! handler sees the request aborted.
//!
//! Where a thread waits is read from `/proc/self/task/TID/wchan` (the
//! kernel function it sleeps in) and `/proc/self/task/TID/syscall` (the
//! system call and its arguments): both readable by the process itself,
//! without ptrace.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::observe::log::{self, Field, Level};
use crate::observe::metrics::Registry;
use crate::observe::metrics::slot::Slot;
use crate::sys::{self, EventFd};

/// What the watchdog watches for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Limits {
    pub(crate) slow: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
}

impl Limits {
    /// How often to look: often enough that a request is reported or cut
    /// within a quarter of its threshold (and a quarter second) of it.
    fn every(self) -> Duration {
        let shortest = match (self.slow, self.timeout) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(Duration::from_secs(1)),
        };
        (shortest / 4).clamp(Duration::from_millis(5), Duration::from_millis(250))
    }
}

/// Which of a slot's requests were already reported slow, and cut off.
#[derive(Clone, Copy, Debug, Default)]
struct Done {
    slow: u64,
    cut: u64,
}

/// Starts the watchdog; it ends when `stop` fires.
pub(crate) fn start(
    registry: Arc<Registry>,
    limits: Limits,
    stop: Arc<EventFd>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("fcgi-watchdog".into())
        .spawn(move || {
            let slots = registry.run().map_or(0, |run| run.slots.len());
            let mut done = vec![Done::default(); slots];
            while !matches!(
                sys::poll_readable(&[stop.as_fd()], Some(limits.every())),
                Ok([true, _])
            ) {
                look(&registry, limits, &mut done);
            }
        })
}

/// Looks at every worker's request once.
fn look(registry: &Registry, limits: Limits, done: &mut [Done]) {
    let Some(run) = registry.run() else {
        return;
    };
    let now = sys::monotonic_ns();
    for (worker, (slot, done)) in run.slots.iter().zip(done).enumerate() {
        if let Some(seen) = check(slot, now, limits, done) {
            seen.report(registry, worker, slot, limits);
        }
    }
}

/// A request the watchdog acted on.
#[derive(Debug)]
struct Seen {
    method: String,
    uri: String,
    elapsed: Duration,
    slow: bool,
    cut: bool,
}

/// Checks a slot's request against the limits; cuts it off (under the
/// slot's lock, which keeps its connection from closing meanwhile) when
/// past the timeout.
fn check(slot: &Slot, now: u64, limits: Limits, done: &mut Done) -> Option<Seen> {
    let current = slot.current();
    if !current.in_flight {
        return None;
    }
    let elapsed = Duration::from_nanos(now.saturating_sub(current.started_ns));
    let generation = current.generation;
    let past = |limit: Option<Duration>| limit.is_some_and(|l| elapsed >= l);
    let slow = past(limits.slow) && done.slow != generation;
    let cut = past(limits.timeout) && done.cut != generation;
    if !slow && !cut {
        return None;
    }
    if slow {
        done.slow = generation;
    }
    if cut {
        done.cut = generation;
        slot.cut(generation);
        let _ = sys::shutdown_both(current.fd);
    }
    Some(Seen {
        method: current.method(),
        uri: current.uri(),
        elapsed,
        slow,
        cut,
    })
}

impl Seen {
    /// Logs and counts what was seen.
    fn report(&self, registry: &Registry, worker: usize, slot: &Slot, limits: Limits) {
        let elapsed = format!("{:.3}s", self.elapsed.as_secs_f64());
        let base: [Field<'_>; 4] = [
            ("worker", &worker),
            ("method", &self.method),
            ("uri", &self.uri),
            ("elapsed", &elapsed),
        ];
        if self.slow {
            registry.slow_requests.fetch_add(1, Relaxed);
            let waits = Waiting::read(slot.tid.load(Relaxed));
            let mut fields = base.to_vec();
            waits.fields(&mut fields);
            let limit = limits.slow.unwrap_or_default();
            let msg = format!(
                "request still running after {elapsed}, past the slow-request threshold of {limit:?}"
            );
            log::event(Level::Warn, "slow_request", &fields, &msg);
        }
        if self.cut {
            registry.timeouts_request.fetch_add(1, Relaxed);
            let limit = limits.timeout.unwrap_or_default();
            let msg = format!(
                "request cut off at the request timeout of {limit:?}: its connection was shut down"
            );
            log::event(Level::Warn, "request_timeout", &base, &msg);
        }
    }
}

/// Where a thread waits, as `/proc` tells.
#[derive(Debug, Default)]
struct Waiting {
    tid: i32,
    wchan: String,
    syscall: String,
    /// What the system call's descriptor is, when it takes one.
    fd: Option<String>,
}

impl Waiting {
    fn read(tid: i32) -> Waiting {
        let task = format!("/proc/self/task/{tid}");
        let read =
            |name: &str| std::fs::read_to_string(format!("{task}/{name}")).unwrap_or_default();
        let wchan = read("wchan").trim().to_owned();
        let syscall = read("syscall");
        let mut words = syscall.split_whitespace();
        let number = words.next().unwrap_or("unknown");
        let first_arg = words.next();
        let (name, takes_fd) = syscall_name(number);
        let fd = takes_fd
            .then(|| i64::from_str_radix(first_arg?.trim_start_matches("0x"), 16).ok())
            .flatten()
            .map(|fd| {
                let target = std::fs::read_link(format!("/proc/self/fd/{fd}"));
                format!(
                    "{fd}:{}",
                    target.map_or("?".into(), |p| p.display().to_string())
                )
            });
        Waiting {
            tid,
            wchan,
            syscall: name,
            fd,
        }
    }

    fn fields<'a>(&'a self, fields: &mut Vec<Field<'a>>) {
        fields.push(("tid", &self.tid));
        fields.push(("wchan", &self.wchan));
        fields.push(("syscall", &self.syscall));
        if let Some(fd) = &self.fd {
            fields.push(("fd", fd));
        }
    }
}

/// A system call's name, from its number in `/proc/.../syscall` (the
/// number itself when not among the usual blocking ones; `running` when
/// the thread is not in one), and whether its first argument is a
/// descriptor.
fn syscall_name(number: &str) -> (String, bool) {
    let Ok(n) = number.parse::<libc::c_long>() else {
        return (number.to_owned(), false);
    };
    match SYSCALLS.iter().find(|(nr, _, _)| *nr == n) {
        Some(&(_, name, takes_fd)) => (name.to_owned(), takes_fd),
        None => (number.to_owned(), false),
    }
}

/// The system calls a request usually waits in: number, name, whether the
/// first argument is a descriptor.
const SYSCALLS: &[(libc::c_long, &str, bool)] = &[
    (libc::SYS_read, "read", true),
    (libc::SYS_write, "write", true),
    (libc::SYS_readv, "readv", true),
    (libc::SYS_writev, "writev", true),
    (libc::SYS_pread64, "pread64", true),
    (libc::SYS_pwrite64, "pwrite64", true),
    (libc::SYS_recvfrom, "recvfrom", true),
    (libc::SYS_sendto, "sendto", true),
    (libc::SYS_recvmsg, "recvmsg", true),
    (libc::SYS_sendmsg, "sendmsg", true),
    (libc::SYS_connect, "connect", true),
    (libc::SYS_accept4, "accept4", true),
    (libc::SYS_flock, "flock", true),
    (libc::SYS_fsync, "fsync", true),
    (libc::SYS_epoll_pwait, "epoll_pwait", true),
    (libc::SYS_ppoll, "ppoll", false),
    (libc::SYS_pselect6, "pselect6", false),
    (libc::SYS_nanosleep, "nanosleep", false),
    (libc::SYS_clock_nanosleep, "clock_nanosleep", false),
    (libc::SYS_futex, "futex", false),
    (libc::SYS_wait4, "wait4", false),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_poll, "poll", false),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_select, "select", false),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_epoll_wait, "epoll_wait", true),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_accept, "accept", true),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_names() {
        let nr = |n: libc::c_long| n.to_string();
        assert_eq!(
            syscall_name(&nr(libc::SYS_clock_nanosleep)),
            ("clock_nanosleep".into(), false)
        );
        assert_eq!(syscall_name(&nr(libc::SYS_read)), ("read".into(), true));
        assert_eq!(syscall_name("running"), ("running".into(), false));
        assert_eq!(syscall_name("99999"), ("99999".into(), false));
    }

    #[test]
    fn looks_often_enough() {
        let ms = Duration::from_millis;
        let every = |slow, timeout| Limits { slow, timeout }.every();
        assert_eq!(every(Some(ms(200)), None), ms(50));
        assert_eq!(every(Some(ms(10_000)), Some(ms(400))), ms(100));
        assert_eq!(every(None, Some(ms(60_000))), ms(250));
        assert_eq!(every(Some(ms(1)), None), ms(5));
    }

    #[test]
    fn reads_where_a_sleeping_thread_waits() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            tx.send(sys::thread_id()).unwrap();
            std::thread::sleep(Duration::from_millis(600));
        });
        let tid = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let waits = Waiting::read(tid);
        sleeper.join().unwrap();
        assert!(waits.syscall.contains("nanosleep"), "{waits:?}");
    }
}
