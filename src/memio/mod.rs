//! The whole connection loop fed from a byte string instead of a socket,
//! for the unit tests, the property test and the fuzz targets.
//!
//! The input is delivered in reads of chosen sizes, and the peer may
//! "stall" before every other read between records: the connection is
//! then parked with its partial request and resumed on a fresh worker's
//! buffers, exactly as the pool does with a real socket.

mod mux;

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};

use crate::connection::{Buffers, Config, Fault, NoControl, Resume, Roles, Transport, Wait};
use crate::handler::request::Request;
use crate::handler::response::Response;
use crate::protocol::Role;
use crate::runtime::serve::{Handler, Outcome, serve};

/// A peer made of bytes: reads cycle through `sizes`; output is kept.
pub(crate) struct Mem {
    input: Vec<u8>,
    pos: Cell<usize>,
    sizes: Vec<usize>,
    reads: Cell<usize>,
    stalls: bool,
    stalled: Cell<bool>,
    pub(crate) out: RefCell<Vec<u8>>,
}

impl Mem {
    /// `sizes`: the most each read returns, in turn (0 counts as 1).
    pub(crate) fn new(input: &[u8], sizes: &[usize], stalls: bool) -> Mem {
        let sizes = if sizes.is_empty() {
            vec![usize::MAX]
        } else {
            sizes.iter().map(|&s| s.max(1)).collect()
        };
        Mem {
            input: input.to_vec(),
            pos: Cell::new(0),
            sizes,
            reads: Cell::new(0),
            stalls,
            stalled: Cell::new(false),
            out: RefCell::new(Vec::new()),
        }
    }
}

impl Mem {
    fn take(&self, buf: &mut [u8]) -> usize {
        let i = self.reads.replace(self.reads.get() + 1);
        let rest = &self.input[self.pos.get()..];
        let n = rest
            .len()
            .min(buf.len())
            .min(self.sizes[i % self.sizes.len()]);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos.set(self.pos.get() + n);
        n
    }
}

impl Transport for Mem {
    /// Between requests or in one still arriving, the peer may stall:
    /// every other such read finds nothing.
    fn read(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
        if wait != Wait::Request && self.stalls {
            if !self.stalled.replace(true) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.stalled.set(false);
        }
        Ok(self.take(buf))
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut out = self.out.borrow_mut();
        bufs.iter().for_each(|b| out.extend_from_slice(b));
        Ok(bufs.iter().map(|b| b.len()).sum())
    }
}

/// How a connection ended, in a form that can be compared across runs.
fn describe(end: Result<Outcome, Fault>) -> String {
    match end {
        Ok(outcome) => format!("{outcome:?}"),
        Err(Fault::Io(e)) => format!("io error {:?}", e.kind()),
        Err(Fault::Protocol(msg)) => format!("protocol error: {msg}"),
        Err(Fault::Limit(msg)) => format!("limit: {msg}"),
    }
}

/// Serves `input` as one connection: reads of `sizes`, stalling or not,
/// with a parked connection resumed on the other of two workers' buffers.
/// Returns what was written back and how the connection ended.
pub(crate) fn serve_bytes(
    input: &[u8],
    sizes: &[usize],
    stalls: bool,
    cfg: &Config,
    handler: &Handler,
) -> (Vec<u8>, String) {
    thread_local! {
        // Two workers' buffers, reused from call to call as a pool's are.
        static WORKERS: RefCell<[Buffers; 2]> = RefCell::new([Buffers::new(), Buffers::new()]);
    }
    let io = Mem::new(input, sizes, stalls);
    let (end, _) = WORKERS.with_borrow_mut(|workers| serve_parking(workers, &io, cfg, handler));
    (io.out.into_inner(), describe(end))
}

/// Serves `io` as one connection until it ends; each time it is parked,
/// it is resumed on the other of the two workers' buffers. Returns how it
/// ended and how many times it was parked.
pub(crate) fn serve_parking(
    workers: &mut [Buffers; 2],
    io: &Mem,
    cfg: &Config,
    handler: &Handler,
) -> (Result<Outcome, Fault>, usize) {
    let (mut resume, mut parks) = (Resume::NEW, 0usize);
    loop {
        let bufs = &mut workers[parks % 2];
        let end = serve(io, bufs, cfg, handler, &NoControl, resume, None);
        bufs.trim();
        match end {
            Ok(Outcome::Park(r)) => {
                resume = r;
                parks += 1;
            }
            end => return (end, parks),
        }
    }
}

/// The length and a digest of what `input` gives, read in small pieces,
/// and whether it ended without an error.
fn drain(input: &mut impl Read) -> (u64, u64, bool) {
    let mut buf = [0u8; 4096];
    let (mut total, mut digest) = (0u64, 0u64);
    loop {
        match input.read(&mut buf) {
            Ok(0) => return (total, digest, true),
            Ok(n) => {
                total += n as u64;
                digest = buf[..n].iter().fold(digest, |d, &b| {
                    d.wrapping_mul(131).wrapping_add(u64::from(b))
                });
            }
            Err(_) => return (total, digest, false),
        }
    }
}

/// A handler that touches every part of the request API: params, the
/// body, a filter's data (read, or not: `SKIP_DATA`), an authorizer's
/// variable, status, headers, both output streams, and failure.
pub(crate) fn probe(req: &mut Request<'_>, res: &mut Response<'_>) -> io::Result<()> {
    let mut sum = 0u64;
    for (name, value) in req.params() {
        sum = sum
            .wrapping_mul(31)
            .wrapping_add((name.len() + 7 * value.len()) as u64);
    }
    let (total, digest, read) = drain(req);
    match req.role() {
        Role::Filter if req.param("SKIP_DATA").is_none() => {
            let (len, digest, ok) = drain(&mut req.data());
            res.header("X-Data", &format!("{len} {digest:x} {ok}"));
        }
        Role::Authorizer => {
            res.variable("PROBE", "granted");
        }
        _ => {}
    }
    if req.param("STATUS").is_some() {
        res.status(404);
    }
    res.header("X-Sum", &sum.to_string());
    if let Some(v) = req.header("X-Note") {
        writeln!(res.stderr(), "note: {v}")?;
    }
    write!(
        res,
        "{} {} {} {total} {digest:x} {read}",
        req.method(),
        req.script_name(),
        req.path_info(),
    )?;
    if req.param("FAIL").is_some() {
        return Err(io::Error::other("asked to fail"));
    }
    Ok(())
}

/// The settings of [`check_connection`]: small limits, every role played.
fn fuzz_config() -> Config {
    Config {
        workers: Some(2),
        max_params_bytes: 8192,
        max_params: 64,
        max_records: 256,
        roles: Roles::of(&[Role::Responder, Role::Authorizer, Role::Filter]),
        ..Config::default()
    }
}

/// For fuzzing: the connection loop on `data`, unsplit and then split and
/// stalled as the first bytes of `data` say; both must give the same
/// output and the same ending. Panics (the fuzzer's crash) if not.
// Public for the fuzz targets (through `crate::fuzzing`), crate-wide for tests.
#[allow(unreachable_pub)]
pub fn check_connection(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(shape & 7);
    let (sizes, input) = rest.split_at(n.min(rest.len()));
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b) * 3 + 1).collect();
    let cfg = fuzz_config();
    let whole = serve_bytes(input, &[], false, &cfg, &probe);
    let split = serve_bytes(input, &sizes, shape & 8 != 0, &cfg, &probe);
    assert!(whole == split, "split {sizes:?} changed the result");
    check_multiplexed(input, &sizes, shape & 8 != 0);
}

/// The same input on a multiplexed connection: well-formed output in any
/// case, and, where the unsplit run met no fault and neither refused a
/// request as overloaded, the same output for each request that is not
/// aborted, whatever the split.
fn check_multiplexed(input: &[u8], sizes: &[usize], stalls: bool) {
    let cfg = Config {
        multiplex: 4,
        ..fuzz_config()
    };
    let whole = mux::serve_multiplexed(input, &[], false, &cfg, &probe);
    let split = mux::serve_multiplexed(input, sizes, stalls, &cfg, &probe);
    let aborted = mux::aborted_ids(input);
    let whole_sorted = mux::sort(&whole.out).without(&aborted);
    let split_sorted = mux::sort(&split.out).without(&aborted);
    // How many requests are still running when another begins depends on
    // how fast the handlers ran, so a refusal as overloaded, and all that
    // follows from it, may differ between runs.
    if !whole.closed && !mux::overloaded(&whole.out) && !mux::overloaded(&split.out) {
        assert!(
            !split.closed,
            "split {sizes:?} met a fault where unsplit did not"
        );
        assert!(
            whole_sorted == split_sorted,
            "split {sizes:?} changed a multiplexed request's output"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{BeginRequest, Header, encode_pair, record_type::*};
    use std::collections::VecDeque;

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        /// Between `min` and `min + spread - 1` random bytes.
        fn some_bytes(&mut self, min: usize, spread: usize) -> Vec<u8> {
            let n = min + self.below(spread);
            self.bytes(n)
        }
    }

    fn rec(out: &mut Vec<u8>, t: u8, id: u16, content: &[u8], pad: u8) {
        let mut h = Header::new(t, id, content.len() as u16);
        h.padding_len = pad;
        out.extend_from_slice(&h.encode());
        out.extend_from_slice(content);
        out.extend(std::iter::repeat_n(0, usize::from(pad)));
    }

    /// A stream cut into records of random sizes, then its empty record:
    /// one `Vec` per record.
    fn records(rng: &mut Rng, t: u8, id: u16, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut recs = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (1 + rng.below(600)).min(rest.len());
            let mut one = Vec::new();
            rec(&mut one, t, id, &rest[..n], rng.below(9) as u8);
            recs.push(one);
            rest = &rest[n..];
        }
        let mut end = Vec::new();
        rec(&mut end, t, id, b"", 0);
        recs.push(end);
        recs
    }

    /// A stream cut into records of random sizes, then its empty record.
    fn stream(out: &mut Vec<u8>, rng: &mut Rng, t: u8, id: u16, bytes: &[u8]) {
        out.extend(records(rng, t, id, bytes).concat());
    }

    /// The records of `a` and `b` interleaved at random, each in its order.
    fn interleave(rng: &mut Rng, a: Vec<Vec<u8>>, b: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
        let mut out = Vec::new();
        loop {
            let from_a = match (a.peek(), b.peek()) {
                (None, None) => return out,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                _ => rng.below(2) == 0,
            };
            out.extend(if from_a { a.next() } else { b.next() });
        }
    }

    /// A request's params, body and data streams, in the spec's order or
    /// not: data records before the body or the params have ended, past
    /// the bound on early data (rarely), or none. Every role gets them;
    /// only a filter's are its own.
    fn inputs(rng: &mut Rng, id: u16, params: &[u8], body: &[u8]) -> Vec<u8> {
        let data = match rng.below(12) {
            0 => vec![b'd'; 70_000],
            _ => rng.some_bytes(0, 3000),
        };
        let p = records(rng, PARAMS, id, params);
        let s = records(rng, STDIN, id, body);
        let d = records(rng, DATA, id, &data);
        let recs = match rng.below(7) {
            0 => interleave(rng, [p, s].concat(), d),
            1 => [p, interleave(rng, s, d)].concat(),
            2 => [p, d, s].concat(),
            3 => [p, s].concat(),
            _ => [p, s, d].concat(),
        };
        recs.concat()
    }

    /// A plausible session: requests with random params, bodies, data
    /// streams, roles and flags, with management records, aborts and
    /// strays between.
    fn session(rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let id = 1 + rng.below(3) as u16;
            match rng.below(10) {
                0 => rec(&mut out, GET_VALUES, 0, b"\x0e\x00FCGI_MAX_CONNS", 0),
                1 => rec(&mut out, 42, 0, b"", 0),
                2 => rec(&mut out, STDIN, id + 5, b"stray", 3),
                _ => {}
            }
            let begin = BeginRequest {
                role: 1 + rng.below(3) as u16,
                flags: u8::from(rng.below(4) != 0),
            };
            rec(&mut out, BEGIN_REQUEST, id, &begin.encode(), 0);
            let mut params = Vec::new();
            for i in 0..rng.below(12) {
                let names = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "REQUEST_URI"];
                let name = match names.get(i) {
                    Some(n) => n.as_bytes().to_vec(),
                    None => rng.some_bytes(1, 140),
                };
                let value = rng.some_bytes(0, 200);
                encode_pair(&mut params, &name, &value);
            }
            for (name, odds) in [(&b"FAIL"[..], 5), (b"SKIP_DATA", 4)] {
                if rng.below(odds) == 0 {
                    encode_pair(&mut params, name, b"1");
                }
            }
            if rng.below(8) == 0 {
                rec(&mut out, ABORT_REQUEST, id, b"", 0);
            }
            let body = rng.some_bytes(0, 3000);
            if rng.below(8) == 0 {
                stream(&mut out, rng, PARAMS, id, &params);
                rec(&mut out, STDIN, id, &body[..body.len() / 2], 0);
                rec(&mut out, ABORT_REQUEST, id, b"", 0);
            } else {
                out.extend(inputs(rng, id, &params, &body));
            }
        }
        out
    }

    /// Damages `bytes` in one of several ways.
    fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next() as u8,
            2 => bytes.truncate(at),
            3 => {
                let junk = rng.some_bytes(1, 16);
                bytes.splice(at..at, junk);
            }
            _ => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }

    /// Any input, split at any points and stalled anywhere, gives the same
    /// output and ending as unsplit, and never panics. Cases: valid
    /// sessions, damaged ones, and random bytes.
    #[test]
    fn any_input_split_anywhere_gives_the_unsplit_result() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let (mut answered, mut faults) = (0, 0);
        let (mut data_read, mut early_over) = (0, 0);
        let text = |out: &[u8]| String::from_utf8_lossy(out).into_owned();
        for case in 0..5000 {
            let mut input = match case % 3 {
                2 => rng.some_bytes(0, 600),
                _ => session(&mut rng),
            };
            if case % 3 == 1 {
                for _ in 0..1 + rng.below(3) {
                    mutate(&mut rng, &mut input);
                }
            }
            let mut data = vec![rng.next() as u8];
            data.extend(rng.bytes(8));
            data.extend_from_slice(&input);
            check_connection(&data);
            let cfg = Config::default();
            let (out, end) = serve_bytes(&input, &[], false, &cfg, &probe);
            answered += usize::from(out.windows(5).any(|w| w == b"X-Sum"));
            faults += usize::from(end.contains("error"));
            // Every role played: filters read their data.
            let (out, end) = serve_bytes(&input, &[], false, &fuzz_config(), &probe);
            let out = text(&out);
            data_read += out.matches("X-Data: ").count() - out.matches("X-Data: 0 ").count();
            early_over += usize::from(end.contains("65536 bytes of FCGI_DATA"));
        }
        // Not vacuous: many requests were answered, many inputs refused,
        // many filters read data, and early data went over its bound.
        assert!(answered > 600 && faults > 1000, "{answered} {faults}");
        assert!(
            data_read > 300 && early_over > 3,
            "{data_read} {early_over}"
        );
    }

    /// Requests interleaved on one connection, as a multiplexing web
    /// server sends them: each request's records in order, the requests'
    /// records mixed at random, management records between.
    fn interleaved_session(rng: &mut Rng) -> (Vec<u8>, usize) {
        let n = 1 + rng.below(4);
        let mut requests: Vec<VecDeque<Vec<u8>>> = Vec::new();
        for id in 1..=n as u16 {
            let mut recs = VecDeque::new();
            let role = [1, 1, 3][rng.below(3)];
            let mut begin = Vec::new();
            rec(
                &mut begin,
                BEGIN_REQUEST,
                id,
                &BeginRequest { role, flags: 1 }.encode(),
                0,
            );
            recs.push_back(begin);
            let mut params = Vec::new();
            encode_pair(&mut params, b"REQUEST_METHOD", b"POST");
            encode_pair(&mut params, b"HTTP_X_NOTE", &rng.some_bytes(1, 40));
            if rng.below(5) == 0 {
                encode_pair(&mut params, b"FAIL", b"1");
            }
            recs.extend(records(rng, PARAMS, id, &params));
            let body = rng.some_bytes(0, 3000);
            recs.extend(records(rng, STDIN, id, &body));
            if role == 3 {
                let data = rng.some_bytes(0, 2000);
                recs.extend(records(rng, DATA, id, &data));
            }
            requests.push(recs);
        }
        let mut out = Vec::new();
        while requests.iter().any(|r| !r.is_empty()) {
            if rng.below(20) == 0 {
                rec(&mut out, GET_VALUES, 0, b"\x0f\x00FCGI_MPXS_CONNS", 0);
            }
            let pick = rng.below(requests.len());
            if let Some(one) = requests[pick].pop_front() {
                out.extend(one);
            }
        }
        (out, n)
    }

    /// On a multiplexed connection, interleaved requests split and stalled
    /// anywhere each get the output they get unsplit, and every one is
    /// answered; damaged and random input gives well-formed output.
    #[test]
    fn interleaved_requests_split_anywhere_give_each_the_unsplit_output() {
        let mut rng = Rng(0x5eed_1234_abcd_0003);
        let cfg = Config {
            multiplex: 4,
            ..fuzz_config()
        };
        let mut answered = 0;
        for case in 0..2000 {
            let (mut input, n) = interleaved_session(&mut rng);
            if case % 4 == 3 {
                mutate(&mut rng, &mut input);
            }
            let sizes: Vec<usize> = (0..1 + rng.below(4)).map(|_| 1 + rng.below(700)).collect();
            let stalls = rng.below(2) == 0;
            check_multiplexed(&input, &sizes, stalls);
            let whole = mux::serve_multiplexed(&input, &[], false, &cfg, &probe);
            if case % 4 != 3 {
                let ends = whole
                    .out
                    .windows(2)
                    .filter(|w| w == &[1, END_REQUEST])
                    .count();
                answered += usize::from(!whole.closed && ends >= n);
            }
        }
        assert!(answered > 1200, "{answered} sessions fully answered");
    }

    /// Every seed of the connection fuzz target holds; the filter seeds
    /// deliver their data (in order, early or not) and keep the
    /// connection in step when the handler leaves it unread.
    #[test]
    fn the_fuzz_seeds_hold_and_filters_get_their_data() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/connection");
        let seed = |name: &str| std::fs::read(format!("{dir}/{name}")).unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            check_connection(&std::fs::read(entry.unwrap().path()).unwrap());
        }
        let served = |name: &str, skip: usize| {
            let (out, end) = serve_bytes(&seed(name)[skip..], &[], false, &fuzz_config(), &probe);
            (String::from_utf8_lossy(&out).into_owned(), end)
        };
        let (out, _) = served("filter_data", 4);
        assert!(out.contains("X-Data: 11 ") && out.contains(" 6 "), "{out}");
        let (out, _) = served("filter_early_data", 1);
        assert!(out.contains("X-Data: 9 "), "{out}");
        let (out, end) = served("filter_skip_data", 2);
        assert_eq!(out.matches("X-Sum").count(), 3, "{out}");
        assert!(!out.contains("X-Data") && end.contains("Close"), "{end}");
        let (out, _) = served("authorizer", 1);
        assert!(out.contains("Variable-PROBE: granted"), "{out}");
    }

    /// Records up to the largest size, split anywhere and stalled, on
    /// workers whose read buffers start small each time: the buffer grows
    /// in the middle of a record, and a parked record larger than a small
    /// buffer is resumed on one. Each body arrives whole.
    #[test]
    fn records_of_any_size_fit_a_buffer_that_starts_small() {
        let mut rng = Rng(0x5eed_1234_abcd_0002);
        for _ in 0..60 {
            let mut input = Vec::new();
            let mut bodies = Vec::new();
            for id in 1..=2u16 {
                let begin = BeginRequest { role: 1, flags: 1 };
                rec(&mut input, BEGIN_REQUEST, id, &begin.encode(), 0);
                let mut params = Vec::new();
                encode_pair(&mut params, b"REQUEST_METHOD", b"POST");
                encode_pair(&mut params, b"HTTP_X_BIG", &rng.some_bytes(0, 60_000));
                rec(&mut input, PARAMS, id, &params, rng.below(256) as u8);
                rec(&mut input, PARAMS, id, b"", 0);
                let body = rng.some_bytes(0, 200_000);
                for chunk in body.chunks(1 + rng.below(65_535)) {
                    rec(&mut input, STDIN, id, chunk, rng.below(256) as u8);
                }
                rec(&mut input, STDIN, id, b"", 0);
                bodies.push(body.len());
            }
            let sizes: Vec<usize> = (0..1 + rng.below(5))
                .map(|_| 1 + rng.below(80_000))
                .collect();
            let serve_fresh = |sizes: &[usize], stalls: bool| {
                let io = Mem::new(&input, sizes, stalls);
                let mut fresh = [Buffers::new(), Buffers::new()];
                let (end, _) = serve_parking(&mut fresh, &io, &Config::default(), &probe);
                (io.out.into_inner(), describe(end))
            };
            let whole = serve_fresh(&[], false);
            let split = serve_fresh(&sizes, true);
            assert!(whole == split, "split {sizes:?} changed the result");
            let out = String::from_utf8_lossy(&whole.0);
            for len in bodies {
                assert!(
                    out.contains(&format!("POST   {len} ")),
                    "{len}: {}",
                    whole.1
                );
            }
        }
    }
}
