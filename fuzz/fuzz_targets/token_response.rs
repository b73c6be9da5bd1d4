//! The OAuth2 token endpoint's answer: success and error bodies.
//! Any input: no panic, and what is accepted is safe to use (see `src/fuzzing.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| en_core_auth::fuzzing::token_response(data));
