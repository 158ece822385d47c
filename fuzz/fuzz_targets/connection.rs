//! The whole connection loop on arbitrary bytes: no panic, and splitting
//! the input (or stalling the peer) never changes the result.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fcgi_server::fuzzing::check_connection(data);
});
