//! The requests of one multiplexed connection, and what each record does
//! to them: the multiplexed counterpart of `connection::gather`, through
//! the same record dispatch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::connection::dispatch::{Event, Stream, dispatch, refuse, refuse_request};
use crate::connection::pipe::{Pipe, Pushed};
use crate::connection::{Active, Config, Fault, Transport, output};
use crate::protocol::{ProtocolStatus, Record, Role, record_type};

/// A request whose params are complete, to be run by a worker.
#[derive(Debug)]
pub(crate) struct Ready {
    pub(crate) active: Active,
    pub(crate) params: Vec<u8>,
    pub(crate) pipe: Arc<Pipe>,
}

/// What one record did.
#[derive(Debug)]
pub(crate) enum Fed {
    /// Taken; nothing more to do.
    Taken,
    /// Taken, and it completed a request's params.
    Ready(Ready),
    /// Not taken: its request's pipe is full (the handler has not read
    /// what came before); the record waits.
    Full,
}

/// One request on the connection.
#[derive(Debug)]
struct Entry {
    active: Active,
    /// The params so far, while they arrive; `None` once the request runs.
    params: Option<Vec<u8>>,
    /// When it began, for the read timeout of a request that does not
    /// arrive whole.
    since: Instant,
    pipe: Arc<Pipe>,
}

/// The requests of one connection.
#[derive(Debug)]
pub(crate) struct Demux {
    /// The most requests at once.
    limit: usize,
    entries: Vec<Entry>,
    /// Records since a request's params were last complete.
    records: u32,
    /// A request without `FCGI_KEEP_CONN` came: close once none is left.
    close_when_idle: bool,
}

impl Demux {
    pub(crate) fn new(limit: usize) -> Demux {
        Demux {
            limit,
            entries: Vec::new(),
            records: 0,
            close_when_idle: false,
        }
    }

    fn find(&self, id: u16) -> Option<usize> {
        self.entries.iter().position(|e| e.active.id == id)
    }

    /// Whether no request is on the connection.
    pub(crate) fn is_idle(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the connection is to be closed once it is idle.
    pub(crate) fn closes_when_idle(&self) -> bool {
        self.close_when_idle
    }

    /// A request has ended: it leaves the table.
    pub(crate) fn finish(&mut self, id: u16) {
        self.entries.retain(|e| e.active.id != id);
    }

    /// Whether a request has waited for the rest of its params longer than
    /// `limit`.
    pub(crate) fn stalled(&self, limit: Option<Duration>) -> bool {
        limit.is_some_and(|t| {
            self.entries
                .iter()
                .any(|e| e.params.is_some() && e.since.elapsed() >= t)
        })
    }

    /// The connection is gone: requests still arriving are dropped, and
    /// the running ones' readers learn that no more will come.
    pub(crate) fn close(&mut self, kind: std::io::ErrorKind, why: &str) {
        self.entries.retain(|e| e.params.is_none());
        for e in &self.entries {
            e.pipe.close(kind, why);
        }
    }

    /// Every running request's pipe, to wake their readers.
    pub(crate) fn pipes(&self) -> impl Iterator<Item = &Arc<Pipe>> {
        self.entries.iter().map(|e| &e.pipe)
    }

    /// Handles one record; `io` takes the answers the protocol asks for.
    pub(crate) fn feed(
        &mut self,
        io: &dyn Transport,
        cfg: &Config,
        rec: Record<'_>,
    ) -> Result<Fed, Fault> {
        let h = rec.header;
        let at = self.find(h.request_id);
        // A running request's body and data count towards no limit on
        // records (as on any connection, once its params are complete).
        let running = at.is_some_and(|i| self.entries[i].params.is_none());
        if !(running && matches!(h.record_type, record_type::STDIN | record_type::DATA)) {
            self.count(cfg)?;
        }
        if h.record_type == record_type::BEGIN_REQUEST && h.request_id != 0 {
            if at.is_some() {
                return Err(Fault::Protocol(format!(
                    "a begin-request for request id {}, which is active",
                    h.request_id
                )));
            }
            // A request without FCGI_KEEP_CONN said that the connection
            // closes after it: one begun after that would be served or
            // not by how fast the first ran. Refused alike, and retried
            // on another connection.
            // A role not played is refused as such, below, whatever the
            // load.
            let role = crate::protocol::BeginRequest::decode(rec.content)?.role();
            let played = role.is_some_and(|r| cfg.roles.plays(r));
            if played && (self.entries.len() >= self.limit || self.close_when_idle) {
                refuse_request(io, h.request_id, role, ProtocolStatus::Overloaded)?;
                return Ok(Fed::Taken);
            }
        }
        let active = at.map(|i| self.entries[i].active);
        match dispatch(io, cfg, rec, active.as_ref())? {
            Event::Begin(a) => self.begin(a),
            Event::Stream(Stream::Params, content) => {
                return self.params(io, cfg, at.expect("ours"), content);
            }
            Event::Stream(stream, content) => {
                let pipe = &self.entries[at.expect("ours")].pipe;
                if pipe.push(stream, content) == Pushed::Full {
                    return Ok(Fed::Full);
                }
            }
            Event::Abort => self.abort(io, at.expect("ours"))?,
            Event::Refused { .. } | Event::Nothing => {}
        }
        Ok(Fed::Taken)
    }

    /// Counts a record against the limit on records between two requests'
    /// params being complete.
    fn count(&mut self, cfg: &Config) -> Result<(), Fault> {
        self.records += 1;
        if self.records > cfg.max_records {
            return Err(Fault::Limit(format!(
                "more than {} records on a multiplexed connection before a request was complete",
                cfg.max_records
            )));
        }
        Ok(())
    }

    fn begin(&mut self, active: Active) {
        self.close_when_idle |= !active.keep_conn;
        self.entries.push(Entry {
            active,
            params: Some(Vec::new()),
            since: Instant::now(),
            pipe: Arc::new(Pipe::new(active.role == Role::Filter)),
        });
    }

    /// Params for request `at`: kept, or, at their end, the request is
    /// ready to run.
    fn params(
        &mut self,
        io: &dyn Transport,
        cfg: &Config,
        at: usize,
        content: &[u8],
    ) -> Result<Fed, Fault> {
        let e = &mut self.entries[at];
        let Some(params) = e.params.as_mut() else {
            return Ok(Fed::Taken); // late params of a running request
        };
        if params.len() + content.len() > cfg.max_params_bytes {
            let msg = format!(
                "the request's params exceed the limit of {} bytes",
                cfg.max_params_bytes
            );
            output::error_reply(io, e.active.id, "431 Request Header Fields Too Large", &msg)?;
            return Err(Fault::Limit(msg));
        }
        if !content.is_empty() {
            params.extend_from_slice(content);
            return Ok(Fed::Taken);
        }
        self.records = 0;
        let ready = Ready {
            active: e.active,
            params: e.params.take().expect("gathering"),
            pipe: Arc::clone(&e.pipe),
        };
        Ok(Fed::Ready(ready))
    }

    /// The web server aborted request `at`: one still arriving ends at
    /// once; a running one's handler sees it.
    fn abort(&mut self, io: &dyn Transport, at: usize) -> Result<(), Fault> {
        let e = &self.entries[at];
        if e.params.is_none() {
            e.pipe.abort();
            return Ok(());
        }
        refuse(io, e.active.id, ProtocolStatus::RequestComplete)?;
        self.entries.remove(at);
        Ok(())
    }
}
