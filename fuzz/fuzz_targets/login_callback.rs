//! The query of a request to the browser login's loopback listener.
//! Any input: no panic, and a code only for this login's callback (see `src/fuzzing.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| en_core_auth::fuzzing::login_callback(data));
