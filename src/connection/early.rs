//! `FCGI_DATA` that arrives before the filter's handler asks for it.
//!
//! The spec sends a filter its inputs one after the other: the params,
//! then `FCGI_STDIN`, then `FCGI_DATA` ("inputs are not interleaved with
//! each other", section 6.1). A web server that sends data records before
//! the body has ended does not follow it, but the bytes are the request's:
//! they are kept here, in the order they came, until the handler reads
//! the data stream, and bounded by [`MAX_EARLY_DATA`] so that such a peer
//! costs a fixed amount of memory.

/// The most `FCGI_DATA` bytes a request may send before its `FCGI_STDIN`
/// has ended. More closes the connection (the request is answered with
/// 400 when its handler has not run yet).
pub(crate) const MAX_EARLY_DATA: usize = 64 * 1024;

/// Data stream content received before the body ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EarlyData {
    bytes: Vec<u8>,
    /// How many of `bytes` the handler has read.
    read: usize,
    /// The empty record that ends the data stream has arrived.
    ended: bool,
}

impl EarlyData {
    /// Forgets everything: a new request.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.read = 0;
        self.ended = false;
    }

    /// Keeps the content of one data record; empty content ends the
    /// stream, and what comes after the end is ignored. Returns the
    /// reason when the bound is exceeded.
    pub(crate) fn keep(&mut self, content: &[u8]) -> Result<(), String> {
        if self.ended {
            return Ok(());
        }
        if content.is_empty() {
            self.ended = true;
            return Ok(());
        }
        if self.bytes.len() + content.len() > MAX_EARLY_DATA {
            return Err(format!(
                "more than {MAX_EARLY_DATA} bytes of FCGI_DATA before the end of FCGI_STDIN"
            ));
        }
        self.bytes.extend_from_slice(content);
        Ok(())
    }

    /// Copies unread bytes into `buf`; `None` once every kept byte is read.
    pub(crate) fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        let rest = &self.bytes[self.read..];
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.read += n;
        Some(n)
    }

    /// Drops the bytes not yet read.
    pub(crate) fn discard(&mut self) {
        self.read = self.bytes.len();
    }

    /// Whether the end of the data stream has arrived and every kept
    /// byte has been read: the data stream is over.
    pub(crate) fn is_exhausted_end(&self) -> bool {
        self.ended && self.read == self.bytes.len()
    }

    /// Gives back memory beyond `keep` bytes.
    pub(crate) fn trim(&mut self, keep: usize) {
        if self.bytes.capacity() > keep {
            self.bytes = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_in_order_up_to_the_bound_and_to_the_end() {
        let mut early = EarlyData::default();
        early.keep(b"ab").unwrap();
        early.keep(b"c").unwrap();
        early.keep(b"").unwrap();
        early.keep(b"after the end").unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(early.take(&mut buf), Some(2));
        assert!(!early.is_exhausted_end());
        assert_eq!(early.take(&mut buf), Some(1));
        assert_eq!(buf[0], b'c');
        assert_eq!(early.take(&mut buf), None);
        assert!(early.is_exhausted_end());

        early.clear();
        early.keep(&vec![b'x'; MAX_EARLY_DATA]).unwrap();
        assert!(early.keep(b"y").unwrap_err().contains("65536 bytes"));
        early.discard();
        assert_eq!(early.take(&mut buf), None);
        assert!(!early.is_exhausted_end());
    }
}
