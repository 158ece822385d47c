//! The fixed-size record bodies: begin-request, end-request, unknown-type.

use super::{Error, Header, ProtocolStatus, Role, record_type};

/// The body of `FCGI_BEGIN_REQUEST`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeginRequest {
    /// The raw role value; see [`Role::from_u16`].
    pub role: u16,
    /// The flags byte; bit [`KEEP_CONN`](super::KEEP_CONN) asks to keep the connection open.
    pub flags: u8,
}

impl BeginRequest {
    /// Bytes in the body.
    pub const LEN: usize = 8;

    /// Decodes a begin-request body, which must be exactly 8 bytes.
    pub fn decode(content: &[u8]) -> Result<BeginRequest, Error> {
        let b: &[u8; Self::LEN] = content.try_into().map_err(|_| Error::BodyLength {
            record_type: record_type::BEGIN_REQUEST,
            len: content.len(),
        })?;
        Ok(BeginRequest {
            role: u16::from_be_bytes([b[0], b[1]]),
            flags: b[2],
        })
    }

    /// The body as it goes on the wire.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let r = self.role.to_be_bytes();
        [r[0], r[1], self.flags, 0, 0, 0, 0, 0]
    }

    /// The role, if it is one the spec defines.
    pub fn role(&self) -> Option<Role> {
        Role::from_u16(self.role)
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
    /// The raw protocol status; see [`ProtocolStatus::from_u8`].
    pub protocol_status: u8,
}

impl EndRequest {
    /// Bytes in the body.
    pub const LEN: usize = 8;

    /// Decodes an end-request body, which must be exactly 8 bytes.
    pub fn decode(content: &[u8]) -> Result<EndRequest, Error> {
        let b: &[u8; Self::LEN] = content.try_into().map_err(|_| Error::BodyLength {
            record_type: record_type::END_REQUEST,
            len: content.len(),
        })?;
        Ok(EndRequest {
            app_status: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            protocol_status: b[4],
        })
    }
}

/// A whole `FCGI_END_REQUEST` record.
pub fn encode_end_request(request_id: u16, app_status: u32, status: ProtocolStatus) -> [u8; 16] {
    let header = Header::new(record_type::END_REQUEST, request_id, EndRequest::LEN as u16);
    let mut rec = [0; 16];
    rec[..8].copy_from_slice(&header.encode());
    rec[8..12].copy_from_slice(&app_status.to_be_bytes());
    rec[12] = status.to_u8();
    rec
}

/// A whole `FCGI_UNKNOWN_TYPE` record, the answer to a management record
/// of type `unknown`.
pub fn encode_unknown_type(unknown: u8) -> [u8; 16] {
    let header = Header::new(record_type::UNKNOWN_TYPE, 0, 8);
    let mut rec = [0; 16];
    rec[..8].copy_from_slice(&header.encode());
    rec[8] = unknown;
    rec
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
        assert!(b.keep_conn());
        assert_eq!(b.role(), Some(Role::Authorizer));
        assert_eq!(BeginRequest { role: 9, flags: 0 }.role(), None);
    }

    #[test]
    fn end_request_round_trips() {
        let out = encode_end_request(7, 0x01020304, ProtocolStatus::UnknownRole);
        let (rec, used) = decode_record(&out).unwrap().unwrap();
        assert_eq!(used, 16);
        assert_eq!(rec.header.record_type, record_type::END_REQUEST);
        assert_eq!(rec.header.request_id, 7);
        let body = EndRequest::decode(rec.content).unwrap();
        assert_eq!(body.app_status, 0x01020304);
        assert_eq!(
            ProtocolStatus::from_u8(body.protocol_status),
            Some(ProtocolStatus::UnknownRole)
        );
    }

    #[test]
    fn unknown_type_names_the_type() {
        let out = encode_unknown_type(42);
        let (rec, _) = decode_record(&out).unwrap().unwrap();
        assert_eq!(rec.header.record_type, record_type::UNKNOWN_TYPE);
        assert_eq!(rec.header.request_id, 0);
        assert_eq!(rec.content, &[42, 0, 0, 0, 0, 0, 0, 0]);
    }
}
