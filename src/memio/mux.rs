//! A multiplexed connection fed from a byte string, on one thread: the
//! connection is pumped as if the poller reported it readable, and the
//! requests it makes ready are run one after the other, as workers would.
//!
//! What must hold whatever the split of the input: no panic, no hang, and
//! well-formed output (whole records); and, when the connection met no
//! fault, each request's output and
//! the answers to management records are those of the unsplit input.
//! (Where a fault or an abort meets requests in flight, what they got to
//! write depends on timing, on one thread as on many.)

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::connection::{Buffers, Config, Transport, Wait};
use crate::mux::{Env, Job, Link, Mux};
use crate::protocol;
use crate::runtime::serve::{self, Handler};

/// The peer: reads cycle through `sizes`, stalling before every other
/// read when asked; the input never ends (the web server keeps the
/// connection open): past it, reads would block.
struct Peer {
    input: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    reads: usize,
    stalls: bool,
    stalled: bool,
    out: Vec<u8>,
    shut: bool,
}

/// A [`Link`] to a shared [`Peer`].
#[derive(Clone)]
struct MemLink(Arc<Mutex<Peer>>);

impl MemLink {
    fn peer(&self) -> std::sync::MutexGuard<'_, Peer> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Transport for MemLink {
    fn read(&self, buf: &mut [u8], _wait: Wait) -> io::Result<usize> {
        let mut guard = self.peer();
        let p = &mut *guard;
        if p.shut {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        // Every other read stalls, when asked.
        let stall = p.stalls && !p.stalled;
        p.stalled = stall;
        if stall || p.pos == p.input.len() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let i = p.reads;
        p.reads += 1;
        let n = (p.input.len() - p.pos)
            .min(buf.len())
            .min(p.sizes[i % p.sizes.len()]);
        buf[..n].copy_from_slice(&p.input[p.pos..p.pos + n]);
        p.pos += n;
        Ok(n)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut p = self.peer();
        if p.shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        bufs.iter().for_each(|b| p.out.extend_from_slice(b));
        Ok(bufs.iter().map(|b| b.len()).sum())
    }
}

impl Link for MemLink {
    /// More is readable while input is left (a stall lasts one read).
    fn wait_readable(&self, _limit: Option<Duration>) -> io::Result<bool> {
        let p = self.peer();
        Ok(p.pos < p.input.len())
    }

    fn shut_down(&self) {
        self.peer().shut = true;
    }

    fn fd(&self) -> std::os::fd::RawFd {
        -1
    }
}

/// The pool, as the connection sees it: a queue of jobs.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    closed: AtomicBool,
}

impl Env for Queue {
    fn run(&self, job: Job) {
        self.jobs.lock().unwrap().push_back(job);
    }

    fn closed(&self, _mux: &Mux) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// What one run gave: the output, and whether the connection met a fault.
pub(crate) struct Served {
    pub(crate) out: Vec<u8>,
    pub(crate) closed: bool,
}

/// Serves `input` as a multiplexed connection, read in pieces of `sizes`.
pub(crate) fn serve_multiplexed(
    input: &[u8],
    sizes: &[usize],
    stalls: bool,
    cfg: &Config,
    handler: &Handler,
) -> Served {
    let peer = Peer {
        input: input.to_vec(),
        pos: 0,
        sizes: if sizes.is_empty() {
            vec![usize::MAX]
        } else {
            sizes.iter().map(|&s| s.max(1)).collect()
        },
        reads: 0,
        stalls,
        stalled: false,
        out: Vec::new(),
        shut: false,
    };
    let link = MemLink(Arc::new(Mutex::new(peer)));
    let queue = Arc::new(Queue::default());
    let env: Weak<dyn Env> = Arc::downgrade(&queue) as Weak<Queue>;
    let mux = Mux::new(Box::new(link.clone()), cfg, env);
    let mut bufs = Buffers::new();
    let mut idle_rounds = 0;
    while idle_rounds < 2 && !queue.closed.load(Ordering::SeqCst) {
        let before = link.peer().pos;
        mux.pump();
        let mut ran = false;
        loop {
            let job = queue.jobs.lock().unwrap().pop_front();
            let Some(job) = job else { break };
            serve::run_job(job, &mut bufs, (cfg, handler), None);
            ran = true;
        }
        let moved = link.peer().pos != before;
        idle_rounds = if ran || moved { 0 } else { idle_rounds + 1 };
    }
    let closed = queue.closed.load(Ordering::SeqCst) || link.peer().shut;
    let out = std::mem::take(&mut link.peer().out);
    Served { out, closed }
}

/// The output of a connection, sorted: each request's records' contents
/// by type, and the management records in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sorted {
    requests: BTreeMap<u16, Vec<(u8, Vec<u8>)>>,
    management: Vec<Vec<u8>>,
}

impl Sorted {
    /// Leaves out the requests of `ids`.
    pub(crate) fn without(mut self, ids: &[u16]) -> Sorted {
        self.requests.retain(|id, _| !ids.contains(id));
        self
    }
}

/// The request ids that `input` aborts, as far as it is well-formed
/// records. What an abort does to a running request depends on how far
/// its handler got (that is what an abort is for), so no split can be
/// held to the unsplit output for them.
pub(crate) fn aborted_ids(input: &[u8]) -> Vec<u16> {
    let mut ids = Vec::new();
    let mut rest = input;
    while let Ok(Some((rec, used))) = protocol::decode_record(rest) {
        if rec.header.record_type == protocol::record_type::ABORT_REQUEST {
            ids.push(rec.header.request_id);
        }
        rest = &rest[used..];
    }
    ids
}

/// Whether `out` (well-formed records) refuses a request as overloaded.
pub(crate) fn overloaded(out: &[u8]) -> bool {
    let mut rest = out;
    while let Ok(Some((rec, used))) = protocol::decode_record(rest) {
        let end = protocol::record_type::END_REQUEST;
        if rec.header.record_type == end
            && protocol::EndRequest::decode(rec.content)
                .is_ok_and(|e| e.protocol_status == u8::from(protocol::ProtocolStatus::Overloaded))
        {
            return true;
        }
        rest = &rest[used..];
    }
    false
}

/// Sorts `out` by request (a request id used again after its request
/// ended keeps both requests' records, in order); panics if it is not
/// whole, well-formed records.
pub(crate) fn sort(out: &[u8]) -> Sorted {
    let mut sorted = Sorted {
        requests: BTreeMap::new(),
        management: Vec::new(),
    };
    let mut rest = out;
    while !rest.is_empty() {
        let (rec, used) = protocol::decode_record(rest)
            .expect("well-formed output")
            .expect("whole records");
        let (h, content) = (rec.header, rec.content.to_vec());
        if h.request_id == 0 {
            sorted.management.push(content);
        } else {
            let records = sorted.requests.entry(h.request_id).or_default();
            records.push((h.record_type, content));
        }
        rest = &rest[used..];
    }
    sorted
}
