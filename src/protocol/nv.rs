//! Name-value pairs, the content of `FCGI_PARAMS`, `FCGI_GET_VALUES` and
//! `FCGI_GET_VALUES_RESULT` streams.
//!
//! Each length is one byte when below 128, otherwise four bytes, big-endian,
//! with the top bit set (and ignored). Lengths are checked against a limit
//! before anything is done with them, so a claim of 2 GiB costs nothing.

use super::Error;

/// An iterator over the name-value pairs of a complete stream.
///
/// Yields `Err` once, at the first malformed pair, and then ends.
#[derive(Clone, Debug)]
pub struct Pairs<'a> {
    rest: &'a [u8],
    limit: u32,
}

impl<'a> Pairs<'a> {
    /// Pairs in `stream`, refusing any name or value longer than `limit`.
    pub fn new(stream: &'a [u8], limit: u32) -> Pairs<'a> {
        Pairs {
            rest: stream,
            limit,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    fn length(&mut self) -> Result<usize, Error> {
        let first = *self.rest.first().ok_or(Error::PairTruncated)?;
        let len = if first < 0x80 {
            self.rest = &self.rest[1..];
            u32::from(first)
        } else {
            let b = self.take(4).ok_or(Error::PairTruncated)?;
            u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])
        };
        if len > self.limit {
            return Err(Error::PairTooLong {
                len,
                limit: self.limit,
            });
        }
        Ok(len as usize)
    }

    fn pair(&mut self) -> Result<(&'a [u8], &'a [u8]), Error> {
        let name_len = self.length()?;
        let value_len = self.length()?;
        let name = self.take(name_len).ok_or(Error::PairTruncated)?;
        let value = self.take(value_len).ok_or(Error::PairTruncated)?;
        Ok((name, value))
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.pair();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

fn encode_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let len = u32::try_from(len).expect("name-value length fits in 31 bits");
        out.extend_from_slice(&(len | 0x8000_0000).to_be_bytes());
    }
}

/// Bytes that [`encode_pair`] appends for this name and value.
pub fn encoded_pair_len(name: &[u8], value: &[u8]) -> usize {
    let len_of = |n: usize| if n < 0x80 { 1 } else { 4 };
    len_of(name.len()) + len_of(value.len()) + name.len() + value.len()
}

/// Appends one encoded pair to `out`.
///
/// # Panics
///
/// If a length does not fit in 31 bits.
pub fn encode_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    encode_len(out, name.len());
    encode_len(out, value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pair<'a> = (&'a [u8], &'a [u8]);

    fn decode(input: &[u8], limit: u32) -> Result<Vec<Pair<'_>>, Error> {
        Pairs::new(input, limit).collect()
    }

    #[test]
    fn decode_cases() {
        let long = [b'v'; 200];
        let mut long_pair = vec![1, 0x80, 0, 0, 200, b'N'];
        long_pair.extend_from_slice(&long);
        type Case<'a> = (&'a [u8], u32, Result<Vec<Pair<'a>>, Error>);
        let cases: &[Case<'_>] = &[
            (b"", 100, Ok(vec![])),
            (b"\x01\x01ab", 100, Ok(vec![(b"a", b"b")])),
            (b"\x01\x00a", 100, Ok(vec![(b"a", b"")])),
            (
                b"\x01\x01ab\x02\x00cd",
                100,
                Ok(vec![(b"a", b"b"), (b"cd", b"")]),
            ),
            (&long_pair, 1000, Ok(vec![(b"N", &long)])),
            (
                &long_pair,
                199,
                Err(Error::PairTooLong {
                    len: 200,
                    limit: 199,
                }),
            ),
            (b"\x01", 100, Err(Error::PairTruncated)),
            (b"\x01\x05ab", 100, Err(Error::PairTruncated)),
            (b"\x80\x00\x01", 100, Err(Error::PairTruncated)),
            (
                b"\xff\xff\xff\xff\x00",
                1 << 20,
                Err(Error::PairTooLong {
                    len: 0x7fff_ffff,
                    limit: 1 << 20,
                }),
            ),
            (b"\x01\x80\x00\x00\x05abc", 100, Err(Error::PairTruncated)),
        ];
        for (input, limit, want) in cases {
            assert_eq!(&decode(input, *limit), want, "input {input:?}");
        }
    }

    #[test]
    fn error_ends_iteration() {
        let mut it = Pairs::new(b"\x01\x01ab\x09", 100);
        assert_eq!(it.next(), Some(Ok((&b"a"[..], &b"b"[..]))));
        assert_eq!(it.next(), Some(Err(Error::PairTruncated)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn encode_round_trips_at_the_length_boundaries() {
        for len in [0usize, 1, 127, 128, 129, 1000, 70_000] {
            let name = vec![b'n'; len];
            let value = vec![b'v'; len / 2 + 1];
            let mut out = Vec::new();
            encode_pair(&mut out, &name, &value);
            assert_eq!(out.len(), encoded_pair_len(&name, &value));
            let pairs = decode(&out, u32::MAX).unwrap();
            assert_eq!(pairs, vec![(&name[..], &value[..])], "len {len}");
        }
    }
}
