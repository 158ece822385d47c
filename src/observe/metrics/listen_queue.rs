//! How many connections wait in the kernel's accept queue of the
//! listening socket: what the pool has not accepted yet.
//!
//! - TCP: `getsockopt(TCP_INFO)` on the listener; for a socket in the
//!   LISTEN state, Linux reports the accept queue's length as
//!   `tcpi_unacked`.
//! - Unix: no socket option tells it, and `/proc/net/unix` does not show
//!   it. The socket-diagnostics netlink service does (what `ss -xl` shows
//!   as Recv-Q): asked for one socket by its inode with
//!   `UDIAG_SHOW_RQLEN`, it answers `UNIX_DIAG_RQLEN`, whose first number
//!   is, for a listener, the connections queued.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::sys;

/// A listening socket to measure: a duplicate of the pool's, given back
/// (closed) when the server stops, so that it never keeps the socket open
/// beyond the server.
#[derive(Debug)]
pub(crate) struct ListenProbe {
    fd: OwnedFd,
    /// The socket's inode, for a unix socket.
    unix_inode: Option<u32>,
}

impl ListenProbe {
    pub(crate) fn new(listener: std::os::fd::BorrowedFd<'_>) -> io::Result<ListenProbe> {
        let fd = sys::dup(listener)?;
        let unix_inode = match sys::socket_family(fd.as_fd())? {
            libc::AF_UNIX => Some(sys::inode(fd.as_fd())? as u32),
            _ => None,
        };
        Ok(ListenProbe { fd, unix_inode })
    }

    /// The connections waiting to be accepted, if the kernel tells.
    pub(crate) fn queued(&self) -> Option<u64> {
        match self.unix_inode {
            Some(inode) => {
                let mut reply = [0u8; 512];
                let n = sys::sock_diag(&unix_request(inode), &mut reply).ok()?;
                unix_queue(&reply[..n]).map(u64::from)
            }
            None => sys::tcp_accept_queue(self.fd.as_fd()).ok().map(u64::from),
        }
    }
}

/// `SOCK_DIAG_BY_FAMILY`, `UDIAG_SHOW_RQLEN`, `UNIX_DIAG_RQLEN`
/// (linux/sock_diag.h, linux/unix_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_RQLEN: u16 = 4;
const TCP_LISTEN: u32 = 10;
/// The lengths of `struct nlmsghdr` and `struct unix_diag_msg`.
const NLMSG_HDR: usize = 16;
const UNIX_DIAG_MSG: usize = 16;

/// A netlink request for the unix listening socket with inode `inode`:
/// `struct nlmsghdr` then `struct unix_diag_req`, in the machine's byte order.
fn unix_request(inode: u32) -> [u8; 40] {
    let mut req = [0u8; 40];
    let put32 = |req: &mut [u8; 40], at: usize, v: u32| {
        req[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    };
    put32(&mut req, 0, 40); // nlmsg_len
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    put32(&mut req, 8, 1); // nlmsg_seq; nlmsg_pid 0: the kernel
    req[16] = libc::AF_UNIX as u8; // sdiag_family; protocol and pad 0
    put32(&mut req, 20, 1 << TCP_LISTEN); // udiag_states
    put32(&mut req, 24, inode); // udiag_ino
    put32(&mut req, 28, UDIAG_SHOW_RQLEN); // udiag_show
    put32(&mut req, 32, u32::MAX); // udiag_cookie: none
    put32(&mut req, 36, u32::MAX);
    req
}

/// The queue length in a reply to [`unix_request`]; `None` for an error
/// reply or one without `UNIX_DIAG_RQLEN`.
fn unix_queue(reply: &[u8]) -> Option<u32> {
    let u16_at = |at: usize| Some(u16::from_ne_bytes(reply.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_ne_bytes(reply.get(at..at + 4)?.try_into().ok()?));
    let len = (u32_at(0)? as usize).min(reply.len());
    // An error reply (NLMSG_ERROR) has another type.
    if u16_at(4)? != SOCK_DIAG_BY_FAMILY {
        return None;
    }
    let mut at = NLMSG_HDR + UNIX_DIAG_MSG;
    while at + 4 <= len {
        let (attr_len, attr_type) = (usize::from(u16_at(at)?), u16_at(at + 2)?);
        if attr_len < 4 {
            return None;
        }
        if attr_type == UNIX_DIAG_RQLEN {
            return u32_at(at + 4);
        }
        at += (attr_len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_reply_cases() {
        let mut reply = vec![0u8; 32];
        reply[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        // An attribute of another type (5 bytes, padded to 8), then RQLEN.
        reply.extend_from_slice(&5u16.to_ne_bytes());
        reply.extend_from_slice(&0u16.to_ne_bytes());
        reply.extend_from_slice(&[7, 0, 0, 0]);
        reply.extend_from_slice(&12u16.to_ne_bytes());
        reply.extend_from_slice(&UNIX_DIAG_RQLEN.to_ne_bytes());
        reply.extend_from_slice(&3u32.to_ne_bytes());
        reply.extend_from_slice(&1024u32.to_ne_bytes());
        let len = reply.len() as u32;
        reply[..4].copy_from_slice(&len.to_ne_bytes());
        assert_eq!(unix_queue(&reply), Some(3));
        assert_eq!(unix_queue(&reply[..40]), None, "cut short");
        let mut error = reply.clone();
        error[4..6].copy_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
        assert_eq!(unix_queue(&error), None);
        assert_eq!(unix_queue(&[]), None);
    }

    #[test]
    fn request_layout() {
        let req = unix_request(0x0102_0304);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 40);
        assert_eq!(req[16], libc::AF_UNIX as u8);
        assert_eq!(
            u32::from_ne_bytes(req[24..28].try_into().unwrap()),
            0x0102_0304
        );
    }
}
