//! A `Retry-After` header value: delay-seconds or an HTTP date, as any server may send it.
//! Any input: no panic, and a date never means a wait past the year 9999 (see `src/fuzzing.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| en_core_auth::fuzzing::retry_after(data));
