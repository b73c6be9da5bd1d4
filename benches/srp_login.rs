//! Client-side CPU cost of one Cognito SRP login: ours, a plain num-bigint baseline, and the
//! `aws-cognito-srp` crate, in the same run. `benches/run_srp.sh` adds pycognito and prints
//! the ratios.
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the
//! machines this runs on share their cores, and pycognito's figure is `time.process_time()`.
//!
//! A "login" is everything the client computes between `InitiateAuth` and
//! `RespondToAuthChallenge`: a fresh secret and `SRP_A`, then, from the challenge's `SALT`,
//! `SRP_B` and `SECRET_BLOCK`, the key, the timestamp and the claim signature. No network.

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, SamplingMode, criterion_group};
use en_core_auth::srp::math::{
    SrpClient, cognito_timestamp, modulus, parse_hex, password_claim_signature, pool_name, pow_g,
};
use num_bigint::BigUint;

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpuTime;

fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanos()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_nanos() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, like wall time: reuse its formatting.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// One challenge as Cognito would send it (case 0 of the pycognito vectors).
struct Challenge {
    pool_id: String,
    user_id_for_srp: String,
    password: String,
    client_id: String,
    salt_hex: String,
    b_hex: String,
    secret_block: String,
}

fn challenge() -> Challenge {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../tests/vectors/srp_pycognito.json")).unwrap();
    let case = &vectors["cases"][0];
    let field = |name: &str| case[name].as_str().unwrap().to_owned();
    Challenge {
        pool_id: field("pool_id"),
        user_id_for_srp: field("user_id_for_srp"),
        password: field("password"),
        client_id: field("client_id"),
        salt_hex: field("salt"),
        b_hex: field("B"),
        secret_block: field("secret_block"),
    }
}

fn our_login(c: &Challenge) -> (String, String, String) {
    let client = SrpClient::generate().unwrap();
    let srp_a = client.public_a_hex();
    let pool = pool_name(&c.pool_id).unwrap();
    let salt = parse_hex(&c.salt_hex).unwrap();
    let b = parse_hex(&c.b_hex).unwrap();
    let key = client
        .password_authentication_key(pool, &c.user_id_for_srp, &c.password, &salt, &b)
        .unwrap();
    let timestamp = cognito_timestamp(SystemTime::now());
    let signature =
        password_claim_signature(&key, pool, &c.user_id_for_srp, &c.secret_block, &timestamp)
            .unwrap();
    (srp_a, timestamp, signature)
}

fn their_login(c: &Challenge) -> (String, String) {
    use aws_cognito_srp::{SrpClient, User};
    let client = SrpClient::new(
        User::new(&c.pool_id, &c.user_id_for_srp, &c.password),
        &c.client_id,
        None,
    );
    let srp_a = client.get_auth_parameters().a;
    let answer = client
        .verify(&c.secret_block, &c.user_id_for_srp, &c.salt_hex, &c.b_hex)
        .unwrap();
    (srp_a, answer.password_claim_signature)
}

/// A secret the size `SrpClient::generate` draws: 576 bits, the top one set.
fn random_576() -> BigUint {
    let mut bytes = [0u8; 72];
    getrandom::fill(&mut bytes).unwrap();
    bytes[0] |= 0x80;
    BigUint::from_bytes_be(&bytes)
}

fn logins(c: &mut Criterion<ThreadCpuTime>) {
    let challenge = challenge();
    let mut group = c.benchmark_group("srp_login");
    // Each iteration takes milliseconds: flat sampling keeps the run to a few seconds each.
    group.sampling_mode(SamplingMode::Flat).sample_size(30);
    group.bench_function("en-core-auth", |b| {
        b.iter(|| black_box(our_login(&challenge)))
    });
    group.bench_function("aws-cognito-srp", |b| {
        b.iter(|| black_box(their_login(&challenge)))
    });
    group.finish();

    let mut group = c.benchmark_group("srp_g_pow_a");
    group.sampling_mode(SamplingMode::Flat).sample_size(30);
    let two = BigUint::from(2u32);
    group.bench_function("num-bigint-modpow-576-bit", |b| {
        b.iter_batched(
            random_576,
            |a| two.modpow(&a, modulus()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("en-core-auth-pow_g-576-bit", |b| {
        b.iter_batched(random_576, |a| pow_g(&a), criterion::BatchSize::SmallInput)
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = logins
}

fn main() {
    // Criterion's warm-up hides what a fresh process pays once: the first login (which uses
    // plain modpow for its powers of g) and the second (which builds pow_g's comb table).
    // Report them apart; a CLI that logs in once per run pays the first.
    let challenge = challenge();
    for which in ["first", "second"] {
        let wall = Instant::now();
        let cpu = thread_cpu_nanos();
        black_box(our_login(&challenge));
        println!(
            "srp {which} login in a fresh process: {:.3} ms CPU, {:.3} ms wall",
            (thread_cpu_nanos() - cpu) as f64 / 1e6,
            wall.elapsed().as_secs_f64() * 1e3
        );
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
