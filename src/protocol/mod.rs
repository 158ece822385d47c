//! The FastCGI wire format, as pure functions over byte slices.
//!
//! Nothing here does I/O. Decoders take `&[u8]` and return values that
//! borrow from it, together with the number of bytes consumed; "not enough
//! bytes yet" (`Ok(None)`) is kept apart from "invalid" (`Err`). Encoders
//! append to a `Vec<u8>` or fill a fixed array.
//!
//! The server uses this module internally; it is public so that tools
//! (the bundled client, fuzzers, tests) can speak the protocol too.

mod body;
mod header;
mod nv;

pub use body::{BeginRequest, EndRequest, UnknownType};
pub use header::{
    HEADER_LEN, Header, MAX_ALIGNED_CONTENT_LEN, MAX_CONTENT_LEN, MAX_RECORD_LEN, Record,
    decode_record, padding_for, push_record,
};
pub use nv::{Pairs, encode_pair, encoded_pair_len};

use std::fmt;

/// The only protocol version there is (`FCGI_VERSION_1`).
pub const VERSION_1: u8 = 1;

/// The request id reserved for management records (`FCGI_NULL_REQUEST_ID`).
pub const NULL_REQUEST_ID: u16 = 0;

/// The `FCGI_KEEP_CONN` bit of a begin-request record's flags.
pub const KEEP_CONN: u8 = 1;

/// Record types, the second byte of every record header.
#[allow(missing_docs)]
pub mod record_type {
    pub const BEGIN_REQUEST: u8 = 1;
    pub const ABORT_REQUEST: u8 = 2;
    pub const END_REQUEST: u8 = 3;
    pub const PARAMS: u8 = 4;
    pub const STDIN: u8 = 5;
    pub const STDOUT: u8 = 6;
    pub const STDERR: u8 = 7;
    pub const DATA: u8 = 8;
    pub const GET_VALUES: u8 = 9;
    pub const GET_VALUES_RESULT: u8 = 10;
    pub const UNKNOWN_TYPE: u8 = 11;
}

/// Names a web server may ask for with `FCGI_GET_VALUES`.
#[allow(missing_docs)]
pub mod value_name {
    pub const MAX_CONNS: &[u8] = b"FCGI_MAX_CONNS";
    pub const MAX_REQS: &[u8] = b"FCGI_MAX_REQS";
    pub const MPXS_CONNS: &[u8] = b"FCGI_MPXS_CONNS";
}

/// The role a web server asks the application to play for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `FCGI_RESPONDER`: the CGI/1.1 role, an HTTP request in, a response out.
    Responder,
    /// `FCGI_AUTHORIZER`: decides whether an HTTP request may proceed:
    /// status 200 grants access (its `Variable-NAME` headers pass
    /// `NAME=value` on to the requests that follow), any other denies it
    /// and goes to the client.
    Authorizer,
    /// `FCGI_FILTER`: a responder that also receives a data stream (a
    /// file, `FCGI_DATA`) after the body.
    Filter,
}

impl TryFrom<u16> for Role {
    /// The value, which the spec does not define as a role.
    type Error = u16;

    /// The role for a wire value.
    ///
    /// ```
    /// use fcgi_server::Role;
    /// assert_eq!(Role::try_from(2), Ok(Role::Authorizer));
    /// assert_eq!(Role::try_from(9), Err(9));
    /// ```
    fn try_from(value: u16) -> Result<Role, u16> {
        match value {
            1 => Ok(Role::Responder),
            2 => Ok(Role::Authorizer),
            3 => Ok(Role::Filter),
            _ => Err(value),
        }
    }
}

impl From<Role> for u16 {
    /// The wire value of a role.
    fn from(role: Role) -> u16 {
        match role {
            Role::Responder => 1,
            Role::Authorizer => 2,
            Role::Filter => 3,
        }
    }
}

/// The `protocolStatus` of an end-request record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolStatus {
    /// `FCGI_REQUEST_COMPLETE`: the normal end of a request.
    RequestComplete,
    /// `FCGI_CANT_MPX_CONN`: a second request on a connection that serves one at a time.
    CantMpxConn,
    /// `FCGI_OVERLOADED`: the application is out of some resource.
    Overloaded,
    /// `FCGI_UNKNOWN_ROLE`: the role is not one the application plays.
    UnknownRole,
}

impl TryFrom<u8> for ProtocolStatus {
    /// The value, which the spec does not define as a status.
    type Error = u8;

    /// The status for a wire value.
    fn try_from(value: u8) -> Result<ProtocolStatus, u8> {
        match value {
            0 => Ok(ProtocolStatus::RequestComplete),
            1 => Ok(ProtocolStatus::CantMpxConn),
            2 => Ok(ProtocolStatus::Overloaded),
            3 => Ok(ProtocolStatus::UnknownRole),
            _ => Err(value),
        }
    }
}

impl From<ProtocolStatus> for u8 {
    /// The wire value of a status.
    fn from(status: ProtocolStatus) -> u8 {
        match status {
            ProtocolStatus::RequestComplete => 0,
            ProtocolStatus::CantMpxConn => 1,
            ProtocolStatus::Overloaded => 2,
            ProtocolStatus::UnknownRole => 3,
        }
    }
}

/// A violation of the protocol by the peer. Any of these closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The version byte of a record header was not 1.
    Version(u8),
    /// A record's content had the wrong length for its type.
    BodyLength {
        /// The record type.
        record_type: u8,
        /// The content length received.
        len: usize,
    },
    /// A name-value pair claimed a length beyond the configured limit.
    PairTooLong {
        /// The length claimed.
        len: u32,
        /// The limit in force.
        limit: u32,
    },
    /// A name-value pair ran past the end of its stream.
    PairTruncated,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Version(v) => write!(f, "unsupported protocol version {v}"),
            Error::BodyLength { record_type, len } => {
                write!(f, "record type {record_type} with a body of {len} bytes")
            }
            Error::PairTooLong { len, limit } => {
                write!(f, "name-value length {len} exceeds the limit of {limit}")
            }
            Error::PairTruncated => f.write_str("name-value pair runs past the end of its stream"),
        }
    }
}

impl std::error::Error for Error {}
