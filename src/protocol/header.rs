//! Record headers and whole-record framing.

use super::{Error, VERSION_1};

/// Bytes in a record header (`FCGI_HEADER_LEN`).
pub const HEADER_LEN: usize = 8;

/// The largest content a single record can carry.
pub const MAX_CONTENT_LEN: usize = 0xffff;

/// The largest a record can be on the wire: header, content and padding.
pub const MAX_RECORD_LEN: usize = HEADER_LEN + MAX_CONTENT_LEN + 0xff;

/// The largest content that keeps a record a multiple of 8 bytes long
/// without padding.
///
/// The spec recommends that records be "placed on boundaries that are
/// multiples of eight bytes", and some peers depend on it: libfcgi's
/// `cgi-fcgi` misreads a record header that straddles two of its reads.
pub const MAX_ALIGNED_CONTENT_LEN: usize = MAX_CONTENT_LEN & !7;

/// The padding that brings `content_len` bytes of content to a multiple of 8.
pub fn padding_for(content_len: usize) -> u8 {
    (content_len.wrapping_neg() & 7) as u8
}

/// Appends one record carrying `content` (at most [`MAX_CONTENT_LEN`]
/// bytes), padded to a multiple of 8 bytes.
///
/// # Panics
///
/// If `content` is longer than a record can carry.
pub fn push_record(out: &mut Vec<u8>, record_type: u8, request_id: u16, content: &[u8]) {
    let len = u16::try_from(content.len()).expect("record content fits in 65535 bytes");
    let h = Header::aligned(record_type, request_id, len);
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(content);
    out.extend_from_slice(&[0; 8][..h.padding_len as usize]);
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The record type (see [`record_type`](super::record_type)).
    pub record_type: u8,
    /// The request this record belongs to; 0 for management records.
    pub request_id: u16,
    /// Bytes of content following the header.
    pub content_len: u16,
    /// Bytes of padding following the content.
    pub padding_len: u8,
}

impl Header {
    /// A header for `content_len` bytes of content and no padding.
    pub fn new(record_type: u8, request_id: u16, content_len: u16) -> Header {
        Header {
            record_type,
            request_id,
            content_len,
            padding_len: 0,
        }
    }

    /// Decodes the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` is shorter than a header. "Future
    /// versions of the protocol will not reduce" the header length, so a
    /// version other than 1 is refused rather than guessed at.
    pub fn decode(buf: &[u8]) -> Result<Option<Header>, Error> {
        let Some(b) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        if b[0] != VERSION_1 {
            return Err(Error::Version(b[0]));
        }
        Ok(Some(Header {
            record_type: b[1],
            request_id: u16::from_be_bytes([b[2], b[3]]),
            content_len: u16::from_be_bytes([b[4], b[5]]),
            padding_len: b[6],
        }))
    }

    /// A header for `content_len` bytes of content, padded to a multiple of 8.
    pub fn aligned(record_type: u8, request_id: u16, content_len: u16) -> Header {
        Header {
            padding_len: padding_for(content_len as usize),
            ..Header::new(record_type, request_id, content_len)
        }
    }

    /// The header as it goes on the wire.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let id = self.request_id.to_be_bytes();
        let len = self.content_len.to_be_bytes();
        [
            VERSION_1,
            self.record_type,
            id[0],
            id[1],
            len[0],
            len[1],
            self.padding_len,
            0,
        ]
    }

    /// The whole record's length on the wire.
    pub fn record_len(&self) -> usize {
        HEADER_LEN + self.content_len as usize + self.padding_len as usize
    }
}

/// One complete record, its content borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's header.
    pub header: Header,
    /// The content, without padding.
    pub content: &'a [u8],
}

/// Decodes the first complete record in `buf`.
///
/// Returns the record and the bytes it occupies (padding included), or
/// `Ok(None)` when `buf` holds only part of a record.
pub fn decode_record(buf: &[u8]) -> Result<Option<(Record<'_>, usize)>, Error> {
    let Some(header) = Header::decode(buf)? else {
        return Ok(None);
    };
    let total = header.record_len();
    let Some(record) = buf.get(..total) else {
        return Ok(None);
    };
    let content = &record[HEADER_LEN..HEADER_LEN + header.content_len as usize];
    Ok(Some((Record { header, content }, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_records_are_aligned_and_decode_back() {
        for len in [0usize, 1, 7, 8, 9, 65535] {
            let content: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = vec![0xAA];
            push_record(&mut out, 6, 3, &content);
            assert_eq!((out.len() - 1) % 8, 0, "{len}");
            let (rec, used) = decode_record(&out[1..]).unwrap().unwrap();
            assert_eq!(used, out.len() - 1);
            assert_eq!((rec.header.record_type, rec.header.request_id), (6, 3));
            assert_eq!(rec.content, &content[..]);
        }
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            record_type: 5,
            request_id: 0x1234,
            content_len: 0xfedc,
            padding_len: 7,
        };
        let bytes = h.encode();
        assert_eq!(bytes, [1, 5, 0x12, 0x34, 0xfe, 0xdc, 7, 0]);
        assert_eq!(Header::decode(&bytes), Ok(Some(h)));
    }

    #[test]
    fn header_cases() {
        type Case<'a> = (&'a [u8], Result<Option<Header>, Error>);
        let cases: &[Case<'_>] = &[
            (b"", Ok(None)),
            (&[1, 1, 0, 1, 0, 8, 0], Ok(None)),
            (&[2, 1, 0, 1, 0, 8, 0, 0], Err(Error::Version(2))),
            (&[0, 1, 0, 1, 0, 8, 0, 0], Err(Error::Version(0))),
            (&[1, 1, 0, 1, 0, 8, 0, 0xff], Ok(Some(Header::new(1, 1, 8)))),
        ];
        for (input, want) in cases {
            assert_eq!(&Header::decode(input), want, "input {input:?}");
        }
    }

    #[test]
    fn record_needs_content_and_padding() {
        let mut wire = Header {
            record_type: 5,
            request_id: 1,
            content_len: 3,
            padding_len: 2,
        }
        .encode()
        .to_vec();
        wire.extend_from_slice(b"abcXY");
        for cut in 0..wire.len() {
            assert_eq!(decode_record(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        let (rec, used) = decode_record(&wire).unwrap().unwrap();
        assert_eq!(used, 13);
        assert_eq!(rec.content, b"abc");
        wire.extend_from_slice(b"trailing");
        assert_eq!(decode_record(&wire).unwrap().unwrap().1, 13);
    }

    #[test]
    fn padding_aligns_to_eight() {
        for len in 0..100usize {
            let pad = padding_for(len) as usize;
            assert!(pad < 8 && (len + pad) % 8 == 0, "len {len} pad {pad}");
        }
        assert_eq!(MAX_ALIGNED_CONTENT_LEN % 8, 0);
        assert_eq!(Header::aligned(6, 1, 13).record_len(), 24);
    }

    #[test]
    fn max_record_fits() {
        let mut wire = Header {
            record_type: 5,
            request_id: 1,
            content_len: u16::MAX,
            padding_len: u8::MAX,
        }
        .encode()
        .to_vec();
        wire.resize(MAX_RECORD_LEN, 0);
        let (rec, used) = decode_record(&wire).unwrap().unwrap();
        assert_eq!(used, MAX_RECORD_LEN);
        assert_eq!(rec.content.len(), MAX_CONTENT_LEN);
    }
}
