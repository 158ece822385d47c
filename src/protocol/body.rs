//! The fixed-size record bodies: begin-request, end-request, unknown-type.
//!
//! Each is 8 bytes on the wire and has the same pair of methods: `decode`
//! from a record's content, `encode` to its 8 bytes; `record` gives the
//! whole 16-byte record (header and body) for the fixed bodies that an
//! application sends.

use super::{Error, Header, ProtocolStatus, Role, record_type};

/// Bytes in every fixed-size record body.
const LEN: usize = 8;

/// The content of a fixed-size body, or the error that names its record type.
fn fixed(content: &[u8], record_type: u8) -> Result<&[u8; LEN], Error> {
    content.try_into().map_err(|_| Error::BodyLength {
        record_type,
        len: content.len(),
    })
}

/// A whole record: the header for an 8-byte body, then the body.
fn whole(record_type: u8, request_id: u16, body: [u8; LEN]) -> [u8; 2 * LEN] {
    let mut rec = [0; 2 * LEN];
    rec[..LEN].copy_from_slice(&Header::new(record_type, request_id, LEN as u16).encode());
    rec[LEN..].copy_from_slice(&body);
    rec
}

/// The body of `FCGI_BEGIN_REQUEST`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeginRequest {
    /// The raw role value; see [`Role`]'s `TryFrom<u16>`.
    pub role: u16,
    /// The flags byte; bit [`KEEP_CONN`](super::KEEP_CONN) asks to keep the connection open.
    pub flags: u8,
}

impl BeginRequest {
    /// Bytes in the body.
    pub const LEN: usize = LEN;

    /// Decodes a begin-request body, which must be exactly 8 bytes.
    pub fn decode(content: &[u8]) -> Result<BeginRequest, Error> {
        let b = fixed(content, record_type::BEGIN_REQUEST)?;
        Ok(BeginRequest {
            role: u16::from_be_bytes([b[0], b[1]]),
            flags: b[2],
        })
    }

    /// The body as it goes on the wire.
    pub fn encode(&self) -> [u8; LEN] {
        let r = self.role.to_be_bytes();
        [r[0], r[1], self.flags, 0, 0, 0, 0, 0]
    }

    /// The whole record for request `request_id`.
    pub fn record(&self, request_id: u16) -> [u8; 2 * LEN] {
        whole(record_type::BEGIN_REQUEST, request_id, self.encode())
    }

    /// The role, if it is one the spec defines.
    pub fn role(&self) -> Option<Role> {
        Role::try_from(self.role).ok()
    }

    /// Whether the web server asked to keep the connection open.
    pub fn keep_conn(&self) -> bool {
        self.flags & super::KEEP_CONN != 0
    }
}

/// The body of `FCGI_END_REQUEST`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndRequest {
    /// The application's exit status for the request.
    pub app_status: u32,
    /// The raw protocol status; see [`ProtocolStatus`]'s `TryFrom<u8>`.
    pub protocol_status: u8,
}

impl EndRequest {
    /// Bytes in the body.
    pub const LEN: usize = LEN;

    /// An end-request body with a known protocol status.
    pub fn new(app_status: u32, status: ProtocolStatus) -> EndRequest {
        EndRequest {
            app_status,
            protocol_status: status.into(),
        }
    }

    /// Decodes an end-request body, which must be exactly 8 bytes.
    pub fn decode(content: &[u8]) -> Result<EndRequest, Error> {
        let b = fixed(content, record_type::END_REQUEST)?;
        Ok(EndRequest {
            app_status: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            protocol_status: b[4],
        })
    }

    /// The body as it goes on the wire.
    pub fn encode(&self) -> [u8; LEN] {
        let s = self.app_status.to_be_bytes();
        [s[0], s[1], s[2], s[3], self.protocol_status, 0, 0, 0]
    }

    /// The whole record for request `request_id`.
    pub fn record(&self, request_id: u16) -> [u8; 2 * LEN] {
        whole(record_type::END_REQUEST, request_id, self.encode())
    }
}

/// The body of `FCGI_UNKNOWN_TYPE`: the answer to a management record of a
/// type the application does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownType {
    /// The type that was not understood.
    pub record_type: u8,
}

impl UnknownType {
    /// Bytes in the body.
    pub const LEN: usize = LEN;

    /// Decodes an unknown-type body, which must be exactly 8 bytes.
    pub fn decode(content: &[u8]) -> Result<UnknownType, Error> {
        let b = fixed(content, record_type::UNKNOWN_TYPE)?;
        Ok(UnknownType { record_type: b[0] })
    }

    /// The body as it goes on the wire.
    pub fn encode(&self) -> [u8; LEN] {
        [self.record_type, 0, 0, 0, 0, 0, 0, 0]
    }

    /// The whole record (a management record: request id 0).
    pub fn record(&self) -> [u8; 2 * LEN] {
        whole(record_type::UNKNOWN_TYPE, 0, self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_record;

    #[test]
    fn begin_request_cases() {
        let cases: &[(&[u8], Result<BeginRequest, Error>)] = &[
            (
                &[0, 1, 1, 0, 0, 0, 0, 0],
                Ok(BeginRequest { role: 1, flags: 1 }),
            ),
            (
                &[0, 3, 0, 9, 9, 9, 9, 9],
                Ok(BeginRequest { role: 3, flags: 0 }),
            ),
            (
                &[0, 1, 1],
                Err(Error::BodyLength {
                    record_type: 1,
                    len: 3,
                }),
            ),
            (
                &[0; 9],
                Err(Error::BodyLength {
                    record_type: 1,
                    len: 9,
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&BeginRequest::decode(input), want, "input {input:?}");
        }
        let b = BeginRequest { role: 2, flags: 1 };
        assert_eq!(BeginRequest::decode(&b.encode()), Ok(b));
        let wire = b.record(5);
        let (rec, _) = decode_record(&wire).unwrap().unwrap();
        assert_eq!((rec.header.record_type, rec.header.request_id), (1, 5));
        assert_eq!(BeginRequest::decode(rec.content), Ok(b));
        assert!(b.keep_conn());
        assert_eq!(b.role(), Some(Role::Authorizer));
        assert_eq!(BeginRequest { role: 9, flags: 0 }.role(), None);
    }

    #[test]
    fn end_request_round_trips() {
        let out = EndRequest::new(0x01020304, ProtocolStatus::UnknownRole).record(7);
        let (rec, used) = decode_record(&out).unwrap().unwrap();
        assert_eq!(used, 16);
        assert_eq!(rec.header.record_type, record_type::END_REQUEST);
        assert_eq!(rec.header.request_id, 7);
        let body = EndRequest::decode(rec.content).unwrap();
        assert_eq!(body.app_status, 0x01020304);
        assert_eq!(
            ProtocolStatus::try_from(body.protocol_status),
            Ok(ProtocolStatus::UnknownRole)
        );
        assert_eq!(EndRequest::decode(&body.encode()), Ok(body));
    }

    #[test]
    fn unknown_type_names_the_type() {
        let out = UnknownType { record_type: 42 }.record();
        let (rec, _) = decode_record(&out).unwrap().unwrap();
        assert_eq!(rec.header.record_type, record_type::UNKNOWN_TYPE);
        assert_eq!(rec.header.request_id, 0);
        assert_eq!(rec.content, &[42, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            UnknownType::decode(rec.content),
            Ok(UnknownType { record_type: 42 })
        );
    }
}
