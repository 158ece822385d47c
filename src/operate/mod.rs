//! The operating features, as `Server::run` sets them up around the pool:
//! the figures (and the status and ping paths), the status socket, the
//! watchdog (slow-request log, request timeout), the access log, the
//! panic report, and the events of start-up and shutdown.

pub(crate) mod handover;
pub(crate) mod notify;
pub(crate) mod status_listen;
pub(crate) mod watchdog;

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::observe::access_log::AccessLog;
use crate::observe::log::{self, Field, Level};
use crate::observe::metrics::listen_queue::ListenProbe;
use crate::observe::metrics::{Pages, Registry, Setup};
use crate::runtime::listener::{self, Listener};
use crate::sys::EventFd;

/// What the builder was told about operating the server.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ops {
    pub(crate) status_path: Option<String>,
    pub(crate) ping_path: Option<String>,
    pub(crate) status_listen: Option<String>,
    pub(crate) slow: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) access_log: Option<PathBuf>,
}

/// What must be open before the server counts as started (a failure
/// stops `run` with an error naming it).
#[derive(Debug)]
pub(crate) struct Opened {
    side: Option<Listener>,
    access: Option<AccessLog>,
}

/// The operating threads of a running server.
#[derive(Debug)]
pub(crate) struct Started {
    registry: Arc<Registry>,
    threads: Vec<JoinHandle<()>>,
}

impl Ops {
    /// Binds the status socket and opens the access log.
    pub(crate) fn open(&self, socket_mode: u32) -> io::Result<Opened> {
        let side = match &self.status_listen {
            Some(addr) => Some(
                listener::bind(addr, socket_mode)
                    .map_err(|e| io::Error::new(e.kind(), format!("the status socket: {e}")))?,
            ),
            None => None,
        };
        let access = self
            .access_log
            .as_deref()
            .map(AccessLog::open)
            .transpose()?;
        Ok(Opened { side, access })
    }

    /// Whether each request's method and URI are kept while it runs.
    fn tracking(&self, registry: &Registry) -> bool {
        self.status_path.is_some()
            || self.status_listen.is_some()
            || self.slow.is_some()
            || self.timeout.is_some()
            || registry.handle_taken()
    }

    /// Sets the figures up for `workers` workers on `listener`, and starts
    /// the status thread and the watchdog. Before the pool starts.
    pub(crate) fn start(
        &self,
        opened: Opened,
        registry: &Arc<Registry>,
        (workers, listener): (usize, &Listener),
        stop: &Arc<EventFd>,
    ) -> io::Result<Started> {
        registry.start(Setup {
            workers,
            tracking: self.tracking(registry),
            cuts: self.timeout.is_some(),
            pages: Pages {
                status: self.status_path.clone(),
                ping: self.ping_path.clone(),
            },
            access: opened.access,
        });
        registry.set_listener(ListenProbe::new(listener.as_fd()).ok());
        let threads = self.start_threads(opened.side, registry, stop)?;
        Ok(Started {
            registry: Arc::clone(registry),
            threads,
        })
    }

    /// Starts the status thread (on `side`, when there is one) and the
    /// watchdog (when it has something to watch).
    fn start_threads(
        &self,
        side: Option<Listener>,
        registry: &Arc<Registry>,
        stop: &Arc<EventFd>,
    ) -> io::Result<Vec<JoinHandle<()>>> {
        let mut threads = Vec::new();
        if let Some(side) = side {
            let ping = self.ping_path.clone().unwrap_or_else(|| "/ping".to_owned());
            let (registry, stop) = (Arc::clone(registry), Arc::clone(stop));
            threads.push(status_listen::start(side, registry, ping, stop)?);
        }
        let limits = watchdog::Limits {
            slow: self.slow,
            timeout: self.timeout,
        };
        if limits.slow.is_some() || limits.timeout.is_some() {
            let (registry, stop) = (Arc::clone(registry), Arc::clone(stop));
            threads.push(watchdog::start(registry, limits, stop)?);
        }
        Ok(threads)
    }

    /// Logs the start-up: the socket, the pool's size, what is on.
    pub(crate) fn log_start(&self, at: &str, workers: usize, generation: u64) {
        let version = env!("CARGO_PKG_VERSION");
        let mut fields: Vec<Field<'_>> = vec![
            ("listen", &at),
            ("workers", &workers),
            ("version", &version),
            ("generation", &generation),
        ];
        let named = [
            ("status_path", &self.status_path),
            ("ping_path", &self.ping_path),
            ("status_listen", &self.status_listen),
        ];
        for (name, value) in &named {
            if let Some(v) = value {
                fields.push((name, v));
            }
        }
        let msg = format!("serving on {at} with up to {workers} workers");
        log::event(Level::Info, "start", &fields, &msg);
    }
}

impl Started {
    /// Stops measuring the listening socket (the pool is about to close
    /// it, and a duplicate must not keep it listening).
    pub(crate) fn release_listener(&self) {
        self.registry.set_listener(None);
    }

    /// Waits for the status thread and the watchdog to end (the stop
    /// event has fired).
    pub(crate) fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}
