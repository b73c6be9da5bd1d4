//! The exp/iat claims of a JWT access token, read to schedule renewal.
//! Any input: no panic, and what is accepted is safe to use (see `src/fuzzing.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| en_core_auth::fuzzing::jwt_claims(data));
