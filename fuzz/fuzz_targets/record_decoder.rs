//! The record decoder and the name-value pair parser on arbitrary bytes:
//! no panic, every decoded record and pair consistent with its bytes, and
//! what is re-encoded decodes to the same thing.
#![no_main]

use fcgi_server::protocol::{
    BeginRequest, EndRequest, HEADER_LEN, Header, Pairs, decode_record, encode_pair,
    encoded_pair_len, record_type,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limit = u32::from(data.first().copied().unwrap_or(0)) * 64;
    let mut rest = data;
    while let Ok(Some((rec, used))) = decode_record(rest) {
        let h = rec.header;
        assert_eq!(
            used,
            HEADER_LEN + h.content_len as usize + h.padding_len as usize
        );
        assert_eq!(rec.content.len(), h.content_len as usize);
        assert_eq!(
            &rest[HEADER_LEN..HEADER_LEN + rec.content.len()],
            rec.content
        );
        assert_eq!(Header::decode(&h.encode()), Ok(Some(h)));
        // All but the reserved byte, which the decoder ignores.
        assert_eq!(h.encode()[..7], rest[..7]);
        match h.record_type {
            record_type::BEGIN_REQUEST => {
                if let Ok(b) = BeginRequest::decode(rec.content) {
                    assert_eq!(BeginRequest::decode(&b.encode()), Ok(b));
                }
            }
            record_type::END_REQUEST => {
                let _ = EndRequest::decode(rec.content);
            }
            _ => {}
        }
        let mut again = Vec::new();
        let mut pairs = Vec::new();
        for pair in Pairs::new(rec.content, limit) {
            let Ok((name, value)) = pair else { break };
            assert!(name.len() <= limit as usize && value.len() <= limit as usize);
            encode_pair(&mut again, name, value);
            pairs.push((name, value));
        }
        let total: usize = pairs.iter().map(|(n, v)| encoded_pair_len(n, v)).sum();
        assert_eq!(total, again.len());
        let decoded: Vec<_> = Pairs::new(&again, limit).map(|p| p.unwrap()).collect();
        assert_eq!(decoded, pairs);
        rest = &rest[used..];
    }
});
