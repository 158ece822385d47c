//! Reading a request until its params are complete: the `Gathering`
//! state of a connection's life (drawn in the `serve` module).
//!
//! A worker gathers only what has arrived. When the peer pauses between
//! requests, or stalls in the middle of one, the connection is handed back
//! with a [`Resume`] that carries what it sent so far, and waits in epoll
//! holding memory (bounded by the limits), never a worker.

use std::io;
use std::time::{Duration, Instant};

use super::dispatch::{Event, Stream, dispatch, refuse};
use super::early::EarlyData;
use super::{Active, Buffers, Config, Fault, Wait, output, params};
use crate::protocol::{self, ProtocolStatus, Record};

/// A request begun but not yet complete, set aside with the bytes of it
/// already read while its connection waits in epoll.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Partial {
    pub(crate) active: Option<Active>,
    pub(crate) params: Vec<u8>,
    /// A filter's data stream bytes that came with the params.
    pub(crate) early: EarlyData,
    /// Bytes read but not yet decoded: less than one record.
    pub(crate) pending: Vec<u8>,
    pub(crate) records: u32,
    /// When the peer first kept the request waiting.
    pub(crate) since: Instant,
}

impl Partial {
    /// Whether the request has taken longer than `limit` to arrive.
    pub(crate) fn expired(&self, limit: Option<Duration>) -> bool {
        limit.is_some_and(|t| self.since.elapsed() >= t)
    }
}

/// Where gathering takes up a connection again.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Between requests, `records` records since the last one (management
    /// records, strays): carried so that the limit on them does not
    /// depend on where the peer paused. Costs no allocation.
    Idle { records: u32 },
    /// In the middle of a request.
    Stalled(Box<Partial>),
}

impl Resume {
    /// A connection just accepted.
    pub(crate) const NEW: Resume = Resume::Idle { records: 0 };
}

/// What [`gather`] found.
#[derive(Debug)]
pub(crate) enum Gathered {
    /// A request whose params are complete, indexed in the worker's buffers.
    Request(Active),
    /// Nothing more to read yet, between requests or in one.
    Paused(Resume),
    /// The peer closed between requests, or a request ended early on a
    /// connection that is not kept open.
    Close,
}

/// What one record did to the request being gathered.
enum Step {
    More,
    Close,
    Complete(Active),
}

/// The request being gathered: which one (none before its begin-request),
/// the records since the last request ended, and since when the peer has
/// kept it waiting.
struct Gathering {
    active: Option<Active>,
    records: u32,
    since: Option<Instant>,
}

/// Reads records until a request's params are complete, starting from
/// what `resume` carries.
pub(crate) fn gather(
    io: &dyn super::Transport,
    bufs: &mut Buffers,
    cfg: &Config,
    resume: Resume,
) -> Result<Gathered, Fault> {
    let mut g = Gathering::resume(bufs, cfg, resume)?;
    loop {
        let Some((rec, used)) = protocol::decode_record(bufs.rbuf.data())? else {
            match g.read_more(io, bufs, cfg)? {
                Some(paused_or_closed) => return Ok(paused_or_closed),
                None => continue,
            }
        };
        g.count_record(io, cfg)?;
        let step = g.on_record(io, cfg, (&mut bufs.params, &mut bufs.early), rec)?;
        bufs.rbuf.consume(used);
        match step {
            Step::More => {}
            Step::Close => return Ok(Gathered::Close),
            Step::Complete(active) => return complete(io, bufs, cfg, active),
        }
    }
}

impl Gathering {
    /// Restores what a parked connection carried into the worker's buffers.
    fn resume(bufs: &mut Buffers, cfg: &Config, resume: Resume) -> Result<Gathering, Fault> {
        bufs.params.clear();
        // The early data store is cleared when a request begins.
        match resume {
            Resume::Idle { records } => Ok(Gathering {
                active: None,
                records,
                since: None,
            }),
            Resume::Stalled(p) => {
                if p.expired(cfg.read_timeout) {
                    return Err(read_timed_out());
                }
                bufs.params.extend_from_slice(&p.params);
                bufs.early = p.early;
                bufs.rbuf.restore(&p.pending);
                Ok(Gathering {
                    active: p.active,
                    records: p.records,
                    since: Some(p.since),
                })
            }
        }
    }

    /// Reads more bytes; returns how gathering ends when nothing came.
    ///
    /// The worker does not wait: a peer that has sent nothing more is set
    /// aside with what it sent, and the connection waits in epoll, holding
    /// no worker (the worker looks for another ready connection; see
    /// `runtime::rota`).
    fn read_more(
        &self,
        io: &dyn super::Transport,
        bufs: &mut Buffers,
        cfg: &Config,
    ) -> Result<Option<Gathered>, Fault> {
        let idle = self.active.is_none() && bufs.rbuf.data().is_empty();
        match bufs.rbuf.fill(io, Wait::Never) {
            Ok(0) if idle => Ok(Some(Gathered::Close)),
            Ok(0) => Err(Fault::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the web server closed the connection in the middle of a record",
            ))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.pause(bufs, cfg, idle).map(Some)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The connection, set aside with what it has sent.
    fn pause(&self, bufs: &Buffers, cfg: &Config, idle: bool) -> Result<Gathered, Fault> {
        if idle {
            return Ok(Gathered::Paused(Resume::Idle {
                records: self.records,
            }));
        }
        let p = Partial {
            active: self.active,
            params: bufs.params.clone(),
            early: match self.active {
                Some(_) => bufs.early.clone(),
                None => EarlyData::default(),
            },
            pending: bufs.rbuf.data().to_vec(),
            records: self.records,
            since: self.since.unwrap_or_else(Instant::now),
        };
        if p.expired(cfg.read_timeout) {
            return Err(read_timed_out());
        }
        Ok(Gathered::Paused(Resume::Stalled(Box::new(p))))
    }

    /// Counts a record against the limit on records before a request is
    /// complete.
    fn count_record(&mut self, io: &dyn super::Transport, cfg: &Config) -> Result<(), Fault> {
        self.records += 1;
        if self.records <= cfg.max_records {
            return Ok(());
        }
        let msg = format!(
            "more than {} records before a request was complete",
            cfg.max_records
        );
        Err(over_limit(io, self.active, "400 Bad Request", msg))
    }

    fn on_record(
        &mut self,
        io: &dyn super::Transport,
        cfg: &Config,
        (params, early): (&mut Vec<u8>, &mut EarlyData),
        rec: Record<'_>,
    ) -> Result<Step, Fault> {
        match dispatch(io, cfg, rec, self.active.as_ref())? {
            Event::Begin(active) => {
                // Params of a request aborted before they ended are dropped.
                params.clear();
                early.clear();
                self.active = Some(active);
            }
            Event::Refused { keep_conn } => {
                params.clear();
                if !keep_conn {
                    return Ok(Step::Close);
                }
            }
            Event::Stream(Stream::Params, []) => {
                return Ok(Step::Complete(self.active.expect("params imply a request")));
            }
            Event::Stream(Stream::Params, content) => {
                self.add_params(io, cfg, params, content)?;
            }
            Event::Abort => {
                let aborted = self.active.take().expect("an abort implies a request");
                refuse(io, aborted.id, ProtocolStatus::RequestComplete)?;
                if !aborted.keep_conn {
                    return Ok(Step::Close);
                }
            }
            // A filter's data, sent before its params ended: kept for
            // its handler (the dispatch passes data to filters only).
            Event::Stream(Stream::Data, content) => {
                let kept = early.keep(content);
                kept.map_err(|msg| over_limit(io, self.active, "400 Bad Request", msg))?;
            }
            // Body records before the params are complete, and records
            // handled by the dispatch, concern nothing here.
            Event::Stream(_, _) | Event::Nothing => {}
        }
        Ok(Step::More)
    }

    /// Appends params content, within the limit on their bytes.
    fn add_params(
        &self,
        io: &dyn super::Transport,
        cfg: &Config,
        params: &mut Vec<u8>,
        content: &[u8],
    ) -> Result<(), Fault> {
        if params.len() + content.len() > cfg.max_params_bytes {
            let msg = format!(
                "the request's params exceed the limit of {} bytes",
                cfg.max_params_bytes
            );
            return Err(over_limit(io, self.active, TOO_LARGE, msg));
        }
        params.extend_from_slice(content);
        Ok(())
    }
}

/// Indexes the complete params and checks their count.
pub(crate) fn complete(
    io: &dyn super::Transport,
    bufs: &mut Buffers,
    cfg: &Config,
    active: Active,
) -> Result<Gathered, Fault> {
    bufs.found = params::index(&bufs.params, &mut bufs.index, cfg.max_params_bytes)?;
    if bufs.index.len() > cfg.max_params {
        let msg = format!(
            "the request has {} params, over the limit of {}",
            bufs.index.len(),
            cfg.max_params
        );
        return Err(over_limit(io, Some(active), TOO_LARGE, msg));
    }
    params::fix_paths(
        &mut bufs.params,
        &mut bufs.index,
        &mut bufs.found,
        cfg.root_mount,
    );
    Ok(Gathered::Request(active))
}

fn read_timed_out() -> Fault {
    Fault::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "the request did not arrive whole within the read timeout",
    ))
}

const TOO_LARGE: &str = "431 Request Header Fields Too Large";

/// Answers a request that went over a limit with an error response (and
/// `msg` on its error stream); returns the fault that closes the connection.
fn over_limit(
    io: &dyn super::Transport,
    active: Option<Active>,
    status: &str,
    msg: String,
) -> Fault {
    if let Some(a) = active {
        if let Err(e) = output::error_reply(io, a.id, status, &msg) {
            return Fault::Io(e);
        }
    }
    Fault::Limit(msg)
}
