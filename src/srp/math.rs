//! The SRP-6a arithmetic of Cognito's `USER_SRP_AUTH` flow, byte for byte as Cognito, AWS's
//! JavaScript SDK and pycognito compute it. Public with the `testing` feature only, and
//! outside the semver promise: its signatures carry num-bigint's types. Pure: no I/O, no clock (the caller passes the
//! time), randomness only in [`SrpClient::generate`] and [`SrpServer::generate`].
//!
//! The flow, from the client's side:
//!
//! 1. [`SrpClient::generate`] picks the secret `a` and computes `A = g^a mod N`; `SRP_A` is
//!    [`SrpClient::public_a_hex`].
//! 2. Cognito answers with the `PASSWORD_VERIFIER` challenge: `SALT`, `SRP_B` (hex, read them
//!    with [`parse_hex`]), `SECRET_BLOCK` and `USER_ID_FOR_SRP`.
//! 3. [`SrpClient::password_authentication_key`] derives the 16-byte key; the challenge answer
//!    is [`password_claim_signature`] over [`cognito_timestamp`], plus [`secret_hash`] when the
//!    app client has a secret.
//!
//! Cognito's conventions that differ from textbook SRP (each has broken a public port):
//!
//! * Values are hashed in *minimal two's-complement* big-endian form ([`pad_hex`]): a `0x00`
//!   byte is prepended when the top bit is set. `N` hashes as 385 bytes, `g = 2` as one byte.
//! * `x = H(pad_hex(salt) | H(poolName | userIdForSrp | ":" | password))`, where `poolName` is
//!   the part of the pool id after the underscore ([`pool_name`]).
//! * The key is HKDF-SHA256 with salt `pad_hex(u)`, input `pad_hex(S)` and info
//!   `"Caldera Derived Key"`, cut to 16 bytes.
//!
//! # Speed
//!
//! Two of the three exponentiations of a login have the fixed base `g = 2`. [`pow_g`] uses a
//! precomputed comb table (Lim–Lee, 8 teeth of 72 bits; 256 entries of 384 bytes, about
//! 100 KiB, built once per process) so that `g^e` for a 576-bit `e` costs 72 squarings and
//! at most 72 multiplications instead of the ~720 of a generic windowed exponentiation. A
//! whole client login is then one generic exponentiation with a 576-bit exponent plus two
//! table look-ups.
//!
//! The arithmetic is variable-time (num-bigint); [`SrpClient::generate`] explains why the
//! secret `a` has 576 bits: that is what keeps the password-derived part of the one
//! exponent that depends on it hidden.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use num_bigint::BigUint;
use sha2::{Digest, Sha256};

use crate::{Error, ErrorKind};

type HmacSha256 = Hmac<Sha256>;

/// The 3072-bit group of RFC 3526 (also RFC 5054's 3072-bit group), as Cognito and AWS's
/// SDKs use it.
const N_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64",
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B",
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31",
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// HKDF `info` of Cognito's key derivation.
const DERIVED_KEY_INFO: &[u8] = b"Caldera Derived Key";

/// Bits of the random secrets `a` and `b`; see [`SrpClient::generate`]. The top bit is
/// always set, so `a ≥ 2^575`: 64 bits more than `u·x` (two SHA-256 values) can have.
const SECRET_BITS: usize = 576;

/// Comb geometry for [`pow_g`]: `COMB_TEETH` rows of `COMB_SPACING` bits cover exponents of
/// up to `COMB_BITS` bits, the size of our secrets (and more than `x`, a SHA-256 value).
const COMB_TEETH: usize = 8;
const COMB_SPACING: usize = 72;
const COMB_BITS: u64 = (COMB_TEETH * COMB_SPACING) as u64;

/// Longest hex string [`parse_hex`] accepts: twice the size of any value in the protocol.
const MAX_HEX_DIGITS: usize = 2 * 768;

/// The group's prime modulus `N`: the 3072-bit MODP prime of RFC 3526, as used by Cognito.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::modulus;
/// assert_eq!(modulus().bits(), 3072);
/// # }
/// ```
pub fn modulus() -> &'static BigUint {
    static N: OnceLock<BigUint> = OnceLock::new();
    N.get_or_init(|| {
        let digits: Vec<u8> = N_HEX.bytes().map(nibble).collect();
        BigUint::from_radix_be(&digits, 16).unwrap_or_default()
    })
}

/// The group's generator `g`.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::GENERATOR;
/// assert_eq!(GENERATOR, 2);
/// # }
/// ```
pub const GENERATOR: u32 = 2;

/// The SRP-6a multiplier `k = H(pad_hex(N) | pad_hex(g))`.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::multiplier;
/// assert_eq!(multiplier().bits() <= 256, true);
/// # }
/// ```
pub fn multiplier() -> &'static BigUint {
    static K: OnceLock<BigUint> = OnceLock::new();
    K.get_or_init(|| hash_to_biguint(&[&pad_hex(modulus()), &pad_hex(&BigUint::from(GENERATOR))]))
}

/// The bytes Cognito hashes for a number: minimal two's-complement big-endian, that is the
/// big-endian magnitude with a `0x00` in front when its top bit is set (so it would not read
/// as negative). Zero is one `0x00` byte.
///
/// This is *not* padding to the modulus length: `N` becomes 385 bytes, `g = 2` one byte.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::{modulus, pad_hex};
/// use num_bigint::BigUint;
///
/// assert_eq!(pad_hex(&BigUint::from(0x7fu32)), [0x7f]);
/// assert_eq!(pad_hex(&BigUint::from(0x80u32)), [0x00, 0x80]);
/// assert_eq!(pad_hex(&BigUint::from(0u32)), [0x00]);
/// assert_eq!(pad_hex(modulus()).len(), 385);
/// # }
/// ```
pub fn pad_hex(value: &BigUint) -> Vec<u8> {
    let bytes = value.to_bytes_be();
    match bytes.first() {
        Some(&first) if first < 0x80 => bytes,
        _ => {
            let mut padded = Vec::with_capacity(bytes.len() + 1);
            padded.push(0);
            padded.extend_from_slice(&bytes);
            padded
        }
    }
}

/// `g^exponent mod N`, for any exponent.
///
/// Exponents of up to 576 bits (the secret `a`, the hash `x`) use a precomputed comb table
/// (about 100 KiB, kept for the life of the process): at most 144 modular multiplications
/// instead of a generic exponentiation's ~720. Building the table costs about two generic
/// exponentiations, which a process that logs in once (a CLI) would never earn back, so the
/// first two powers in a process use [`BigUint::modpow`] and the table is built at the
/// third. Longer exponents always use `modpow`.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::{modulus, pow_g};
/// use num_bigint::BigUint;
///
/// let e = BigUint::from(123_456_789u64);
/// assert_eq!(pow_g(&e), BigUint::from(2u32).modpow(&e, modulus()));
/// # }
/// ```
pub fn pow_g(exponent: &BigUint) -> BigUint {
    if exponent.bits() > COMB_BITS {
        return BigUint::from(GENERATOR).modpow(exponent, modulus());
    }
    let table = match COMB_TABLE.get() {
        Some(table) => table,
        None if GENERIC_POWERS.fetch_add(1, Ordering::Relaxed) < 2 => {
            return BigUint::from(GENERATOR).modpow(exponent, modulus());
        }
        None => comb_table(),
    };
    let n = modulus();
    let mut result = BigUint::from(1u32);
    for column in (0..COMB_SPACING).rev() {
        result = &result * &result % n;
        let mut index = 0usize;
        for tooth in 0..COMB_TEETH {
            if exponent.bit((tooth * COMB_SPACING + column) as u64) {
                index |= 1 << tooth;
            }
        }
        if let Some(entry) = table.get(index).filter(|_| index != 0) {
            result = &result * entry % n;
        }
    }
    result
}

/// `table[j] = g^(sum of 2^(i·COMB_SPACING) for each bit i set in j) mod N`.
static COMB_TABLE: OnceLock<Vec<BigUint>> = OnceLock::new();

/// Powers of g computed before the comb table was built (see [`pow_g`]).
static GENERIC_POWERS: AtomicUsize = AtomicUsize::new(0);

fn comb_table() -> &'static [BigUint] {
    COMB_TABLE.get_or_init(|| {
        let n = modulus();
        // g^(2^(i·COMB_SPACING)) for each tooth i, by repeated squaring.
        let mut teeth = Vec::with_capacity(COMB_TEETH);
        let mut power = BigUint::from(GENERATOR);
        for _ in 0..COMB_TEETH {
            teeth.push(power.clone());
            for _ in 0..COMB_SPACING {
                power = &power * &power % n;
            }
        }
        let mut table: Vec<BigUint> = Vec::with_capacity(1 << COMB_TEETH);
        table.push(BigUint::from(1u32));
        for j in 1usize..(1 << COMB_TEETH) {
            let top = usize::BITS - 1 - j.leading_zeros();
            let rest = j & !(1 << top);
            let entry = match (table.get(rest), teeth.get(top as usize)) {
                (Some(lower), Some(tooth)) => lower * tooth % n,
                // Unreachable: rest < j and top < COMB_TEETH.
                _ => BigUint::from(1u32),
            };
            table.push(entry);
        }
        table
    })
}

/// Cognito's private key `x = H(pad_hex(salt) | H(pool_name | user_id_for_srp | ":" |
/// password))`.
///
/// `pool_name` is the part of the user pool id after the underscore (see [`pool_name`]);
/// `user_id_for_srp` is the `USER_ID_FOR_SRP` of the challenge, not the alias the user typed.
///
/// The salt is hashed as the number it is (as AWS's JavaScript SDK does), so leading zero
/// digits in the `SALT` hex make no difference. pycognito hashes the hex string as received
/// and would differ for a salt sent with leading `00`s; Cognito sends none.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::compute_x;
/// use num_bigint::BigUint;
///
/// let salt = BigUint::from(0xfeedu32);
/// let x = compute_x(&salt, "AbCdEf123", "alice", "hunter2");
/// assert!(x.bits() <= 256);
/// assert_ne!(x, compute_x(&salt, "AbCdEf123", "alice", "hunter3"));
/// # }
/// ```
pub fn compute_x(
    salt: &BigUint,
    pool_name: &str,
    user_id_for_srp: &str,
    password: &str,
) -> BigUint {
    let identity = Sha256::new()
        .chain_update(pool_name.as_bytes())
        .chain_update(user_id_for_srp.as_bytes())
        .chain_update(b":")
        .chain_update(password.as_bytes())
        .finalize();
    hash_to_biguint(&[&pad_hex(salt), &identity])
}

/// The password verifier `v = g^x mod N` a server stores instead of the password.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::{compute_x, pow_g, verifier};
/// use num_bigint::BigUint;
///
/// let salt = BigUint::from(42u32);
/// let v = verifier(&salt, "pool", "alice", "hunter2");
/// assert_eq!(v, pow_g(&compute_x(&salt, "pool", "alice", "hunter2")));
/// # }
/// ```
pub fn verifier(salt: &BigUint, pool_name: &str, user_id_for_srp: &str, password: &str) -> BigUint {
    pow_g(&compute_x(salt, pool_name, user_id_for_srp, password))
}

/// The pool name Cognito mixes into `x` and the signature: the part of a user pool id
/// (`us-east-1_AbCdEf123`) after the underscore.
///
/// Fails with [`ErrorKind::Configuration`] when the id has no underscore or nothing after it.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::pool_name;
/// assert_eq!(pool_name("us-east-1_AbCdEf123").unwrap(), "AbCdEf123");
/// assert!(pool_name("AbCdEf123").is_err());
/// # }
/// ```
pub fn pool_name(user_pool_id: &str) -> Result<&str, Error> {
    // As AWS's SDKs: the second '_'-separated field.
    match user_pool_id.split('_').nth(1) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(Error::new(
            ErrorKind::Configuration,
            format!("user pool id {user_pool_id:?} is not of the form <region>_<pool name>"),
        )),
    }
}

/// The client's half of an SRP exchange: the secret `a` and the public `A = g^a mod N`.
///
/// `Debug` shows `A` only; `a` never leaves this value except as the key it helps derive.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::SrpClient;
///
/// let client = SrpClient::generate().unwrap();
/// assert!(!format!("{client:?}").contains("secret"));
/// # }
/// ```
pub struct SrpClient {
    secret: BigUint,
    public: BigUint,
}

impl SrpClient {
    /// A client with a fresh random secret `a` from the operating system's CSPRNG.
    ///
    /// `a` has 576 bits (the top one set). The arithmetic is not constant-time: num-bigint's
    /// `modpow` takes time that depends on its exponent, and the exponent of the one
    /// generic exponentiation, `S = (B − k·g^x)^(a + u·x)`, mixes the secret `a` with `u·x`,
    /// where `u` is public and `x` is derived from the password. `u·x` has up to 512 bits: a
    /// 256-bit `a` (RFC 5054's minimum) would leave the upper half of that exponent equal to
    /// the upper half of `u·x`, which a timing observer could then learn about and, with `u`
    /// known, narrow `x` and test password guesses offline. With `a ≥ 2^575`, every bit of
    /// `a + u·x` is masked by at least 64 random bits of `a`.
    ///
    /// The cost is about 10% more for that exponentiation; `g^a` goes through the fixed-base
    /// table of [`pow_g`], sized for 576-bit exponents.
    ///
    /// Fails with [`ErrorKind::Other`] only if the operating system has no randomness.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::SrpClient;
    ///
    /// let one = SrpClient::generate().unwrap();
    /// let two = SrpClient::generate().unwrap();
    /// assert_ne!(one.public_a(), two.public_a());
    /// # }
    /// ```
    pub fn generate() -> Result<SrpClient, Error> {
        SrpClient::from_secret(random_secret()?)
    }

    /// A client with the given secret `a`: for known-answer tests, never for real logins.
    ///
    /// Fails with [`ErrorKind::Configuration`] when `a` is zero or `A ≡ 0 (mod N)`.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::SrpClient;
    /// use num_bigint::BigUint;
    ///
    /// let client = SrpClient::from_secret(BigUint::from(10u32)).unwrap();
    /// assert_eq!(client.public_a_hex(), "400");
    /// assert!(SrpClient::from_secret(BigUint::from(0u32)).is_err());
    /// # }
    /// ```
    pub fn from_secret(a: BigUint) -> Result<SrpClient, Error> {
        let public = pow_g(&a);
        check_key_pair(&a, &public, "a", "A")?;
        Ok(SrpClient { secret: a, public })
    }

    /// `A = g^a mod N`.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::{pow_g, SrpClient};
    /// use num_bigint::BigUint;
    ///
    /// let client = SrpClient::from_secret(BigUint::from(77u32)).unwrap();
    /// assert_eq!(client.public_a(), &pow_g(&BigUint::from(77u32)));
    /// # }
    /// ```
    pub fn public_a(&self) -> &BigUint {
        &self.public
    }

    /// `A` as Cognito's `SRP_A` parameter wants it: lowercase hex without leading zeros.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::SrpClient;
    /// use num_bigint::BigUint;
    ///
    /// let client = SrpClient::from_secret(BigUint::from(12u32)).unwrap();
    /// assert_eq!(client.public_a_hex(), "1000");
    /// # }
    /// ```
    pub fn public_a_hex(&self) -> String {
        format!("{:x}", self.public)
    }

    /// The 16-byte key that signs the `PASSWORD_VERIFIER` answer:
    /// `S = (B - k·g^x)^(a + u·x) mod N`, `u = H(pad_hex(A) | pad_hex(B))`, then HKDF.
    ///
    /// `salt` and `server_b` are the challenge's `SALT` and `SRP_B` (see [`parse_hex`]).
    /// Fails with [`ErrorKind::MalformedResponse`] when `B ≡ 0 (mod N)`, when `u = 0`, or
    /// when `B ≡ k·g^x` (which would make `S = 0`): an honest server never sends these, and
    /// each would give a key that does not depend on the password or on `a`.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::{verifier, SrpClient, SrpServer};
    /// use num_bigint::BigUint;
    ///
    /// let salt = BigUint::from(0x1234_5678u32);
    /// let v = verifier(&salt, "AbCdEf123", "alice", "hunter2");
    /// let server = SrpServer::generate(&v).unwrap();
    /// let client = SrpClient::generate().unwrap();
    ///
    /// let key = client
    ///     .password_authentication_key("AbCdEf123", "alice", "hunter2", &salt, server.public_b())
    ///     .unwrap();
    /// assert_eq!(key, server.password_authentication_key(client.public_a(), &v).unwrap());
    /// # }
    /// ```
    pub fn password_authentication_key(
        &self,
        pool_name: &str,
        user_id_for_srp: &str,
        password: &str,
        salt: &BigUint,
        server_b: &BigUint,
    ) -> Result<[u8; 16], Error> {
        let n = modulus();
        if is_zero_mod_n(server_b) {
            return Err(malformed("SRP_B is 0 mod N"));
        }
        let u = scrambler(&self.public, server_b, ErrorKind::MalformedResponse)?;
        let x = compute_x(salt, pool_name, user_id_for_srp, password);
        let k_v = multiplier() * pow_g(&x) % n;
        // B - k·v may be negative; Python's pow() and JavaScript's BigInteger mod() both
        // reduce it into [0, N), which is what adding N before the subtraction does here.
        let base = (server_b % n + n - k_v) % n;
        if base.bits() == 0 {
            return Err(malformed("SRP_B equals k·v"));
        }
        let exponent = &self.secret + &u * &x;
        let s = base.modpow(&exponent, n);
        Ok(derive_key(&u, &s))
    }
}

impl fmt::Debug for SrpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrpClient")
            .field("public_a_bits", &self.public.bits())
            .finish_non_exhaustive()
    }
}

/// The server's half of an SRP exchange, for the local identity provider: the secret `b` and
/// the public `B = k·v + g^b mod N`.
///
/// `Debug` never shows `b`.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::{verifier, SrpServer};
/// use num_bigint::BigUint;
///
/// let v = verifier(&BigUint::from(7u32), "pool", "alice", "hunter2");
/// let server = SrpServer::generate(&v).unwrap();
/// assert!(format!("{server:?}").starts_with("SrpServer"));
/// # }
/// ```
pub struct SrpServer {
    secret: BigUint,
    public: BigUint,
}

impl SrpServer {
    /// A server for the user whose verifier is `verifier`, with a fresh random 576-bit `b`
    /// (see [`SrpClient::generate`] for the size).
    ///
    /// Fails with [`ErrorKind::Other`] only if the operating system has no randomness.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::{verifier, SrpServer};
    /// use num_bigint::BigUint;
    ///
    /// let v = verifier(&BigUint::from(7u32), "pool", "alice", "hunter2");
    /// assert_ne!(SrpServer::generate(&v).unwrap().public_b(), SrpServer::generate(&v).unwrap().public_b());
    /// # }
    /// ```
    pub fn generate(verifier: &BigUint) -> Result<SrpServer, Error> {
        SrpServer::from_secret(random_secret()?, verifier)
    }

    /// A server with the given secret `b`: for known-answer tests.
    ///
    /// Fails with [`ErrorKind::Configuration`] when `b` is zero or `B ≡ 0 (mod N)`.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::{multiplier, modulus, pow_g, SrpServer};
    /// use num_bigint::BigUint;
    ///
    /// let v = BigUint::from(5u32);
    /// let server = SrpServer::from_secret(BigUint::from(3u32), &v).unwrap();
    /// assert_eq!(server.public_b(), &((multiplier() * &v + pow_g(&BigUint::from(3u32))) % modulus()));
    /// assert!(SrpServer::from_secret(BigUint::from(0u32), &v).is_err());
    /// # }
    /// ```
    pub fn from_secret(b: BigUint, verifier: &BigUint) -> Result<SrpServer, Error> {
        let public = (multiplier() * verifier + pow_g(&b)) % modulus();
        check_key_pair(&b, &public, "b", "B")?;
        Ok(SrpServer { secret: b, public })
    }

    /// `B = k·v + g^b mod N`, sent as `SRP_B` (lowercase hex: `format!("{:x}", b)`).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::{modulus, SrpServer};
    /// use num_bigint::BigUint;
    ///
    /// let server = SrpServer::generate(&BigUint::from(5u32)).unwrap();
    /// assert!(server.public_b() < modulus());
    /// # }
    /// ```
    pub fn public_b(&self) -> &BigUint {
        &self.public
    }

    /// The same 16-byte key as [`SrpClient::password_authentication_key`], from the server's
    /// side: `S = (A · v^u)^b mod N`.
    ///
    /// Fails with [`ErrorKind::CredentialsRejected`] when `A ≡ 0 (mod N)` or `u = 0`: those are
    /// a client's attempt to force a key that needs no password, and a server answers them as
    /// a failed login (Cognito's `NotAuthorizedException`), not as a fault of its own.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use en_core_auth::srp::math::{modulus, verifier, SrpServer};
    /// use en_core_auth::ErrorKind;
    /// use num_bigint::BigUint;
    ///
    /// let v = verifier(&BigUint::from(7u32), "pool", "alice", "hunter2");
    /// let server = SrpServer::generate(&v).unwrap();
    /// let err = server.password_authentication_key(modulus(), &v).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
    /// # }
    /// ```
    pub fn password_authentication_key(
        &self,
        client_a: &BigUint,
        verifier: &BigUint,
    ) -> Result<[u8; 16], Error> {
        let n = modulus();
        if is_zero_mod_n(client_a) {
            return Err(Error::new(
                ErrorKind::CredentialsRejected,
                "SRP_A is 0 mod N",
            ));
        }
        let u = scrambler(client_a, &self.public, ErrorKind::CredentialsRejected)?;
        let base = client_a % n * verifier.modpow(&u, n) % n;
        let s = base.modpow(&self.secret, n);
        Ok(derive_key(&u, &s))
    }
}

impl fmt::Debug for SrpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrpServer")
            .field("public_b_bits", &self.public.bits())
            .finish_non_exhaustive()
    }
}

/// `PASSWORD_CLAIM_SIGNATURE`: base64 of HMAC-SHA256 keyed with the password authentication
/// key over `pool_name | user_id_for_srp | secret block (decoded) | timestamp`.
///
/// `secret_block_b64` is the challenge's `SECRET_BLOCK` as received; `timestamp` is the
/// [`cognito_timestamp`] sent alongside. Fails with [`ErrorKind::MalformedResponse`] when the
/// secret block is not base64.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::password_claim_signature;
///
/// let sig = password_claim_signature(&[7; 16], "AbCdEf123", "alice", "c2VjcmV0", "Thu Dec 3 09:05:07 UTC 2026")
///     .unwrap();
/// assert_eq!(sig.len(), 44);
/// assert!(password_claim_signature(&[7; 16], "AbCdEf123", "alice", "not base64!", "x").is_err());
/// # }
/// ```
pub fn password_claim_signature(
    key: &[u8; 16],
    pool_name: &str,
    user_id_for_srp: &str,
    secret_block_b64: &str,
    timestamp: &str,
) -> Result<String, Error> {
    let secret_block = BASE64
        .decode(secret_block_b64)
        .map_err(|err| malformed(format!("SECRET_BLOCK is not base64: {err}")))?;
    let mut mac = hmac_sha256(key);
    mac.update(pool_name.as_bytes());
    mac.update(user_id_for_srp.as_bytes());
    mac.update(&secret_block);
    mac.update(timestamp.as_bytes());
    Ok(BASE64.encode(mac.finalize().into_bytes()))
}

/// The `TIMESTAMP` of a `PASSWORD_VERIFIER` answer, in UTC: `Thu Dec 3 09:05:07 UTC 2026`.
///
/// English day and month names, the day of the month *not* zero-padded, the time
/// zero-padded. Cognito rejects any other shape.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::cognito_timestamp;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let t = UNIX_EPOCH + Duration::from_secs(1_796_288_707);
/// assert_eq!(cognito_timestamp(t), "Thu Dec 3 09:05:07 UTC 2026");
/// # }
/// ```
pub fn cognito_timestamp(time: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = unix_seconds(time);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday, WEEKDAYS[0].
    let weekday = WEEKDAYS
        .get(days.rem_euclid(7) as usize)
        .copied()
        .unwrap_or_default();
    let month_name = MONTHS.get(month as usize - 1).copied().unwrap_or_default();
    format!(
        "{weekday} {month_name} {day} {:02}:{:02}:{:02} UTC {year}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Whole seconds since the Unix epoch, rounded down (negative before 1970).
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(before.subsec_nanos() > 0)
        }
    }
}

/// Proleptic Gregorian (year, month 1–12, day 1–31) of a day count since 1970-01-01.
/// Howard Hinnant's `civil_from_days`: eras of 400 years, years starting on 1 March so the
/// leap day is the last of the year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `SECRET_HASH` for an app client with a secret: base64 of HMAC-SHA256 keyed with the client
/// secret over `username | client_id`.
///
/// After `InitiateAuth`, `username` must be the user name Cognito returned (the challenge's
/// `USERNAME`), not an alias such as an e-mail address.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::secret_hash;
///
/// let hash = secret_hash("client-secret", "alice", "client-id");
/// assert_eq!(hash.len(), 44);
/// assert_ne!(hash, secret_hash("client-secret", "bob", "client-id"));
/// # }
/// ```
pub fn secret_hash(client_secret: &str, username: &str, client_id: &str) -> String {
    let mut mac = hmac_sha256(client_secret.as_bytes());
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// A number from Cognito's hex (`SALT`, `SRP_B`): upper or lower case, any length, leading
/// zeros allowed.
///
/// Fails with [`ErrorKind::MalformedResponse`] on an empty string, a non-hex character
/// (including signs, spaces and `0x`) or more than 1536 digits (twice the size of `N`).
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use en_core_auth::srp::math::parse_hex;
/// use num_bigint::BigUint;
///
/// assert_eq!(parse_hex("0aBc").unwrap(), BigUint::from(0xabcu32));
/// assert_eq!(parse_hex("abc").unwrap(), BigUint::from(0xabcu32));
/// assert!(parse_hex("12 34").is_err());
/// assert!(parse_hex("").is_err());
/// # }
/// ```
pub fn parse_hex(hex: &str) -> Result<BigUint, Error> {
    if hex.is_empty() {
        return Err(malformed("empty hex number"));
    }
    if hex.len() > MAX_HEX_DIGITS {
        return Err(malformed(format!(
            "hex number of {} digits is too long",
            hex.len()
        )));
    }
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(malformed("not a hex number"));
    }
    let digits: Vec<u8> = hex.bytes().map(nibble).collect();
    BigUint::from_radix_be(&digits, 16).ok_or_else(|| malformed("not a hex number"))
}

/// The value of one hex digit (callers check `is_ascii_hexdigit` first).
fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// `u = H(pad_hex(A) | pad_hex(B))`, over the values as sent (not reduced mod N); an error
/// of kind `kind` when it is zero (SRP-6a's abort condition: the key would not depend on `x`).
fn scrambler(a: &BigUint, b: &BigUint, kind: ErrorKind) -> Result<BigUint, Error> {
    nonzero_scrambler(hash_to_biguint(&[&pad_hex(a), &pad_hex(b)]), kind)
}

fn nonzero_scrambler(u: BigUint, kind: ErrorKind) -> Result<BigUint, Error> {
    if u.bits() == 0 {
        return Err(Error::new(kind, "the SRP scrambler u = H(A | B) is zero"));
    }
    Ok(u)
}

/// HKDF-SHA256 (RFC 5869) with salt `pad_hex(u)`, input `pad_hex(S)`, Cognito's info, and a
/// single 16-byte output block.
fn derive_key(u: &BigUint, s: &BigUint) -> [u8; 16] {
    let mut extract = hmac_sha256(&pad_hex(u));
    extract.update(&pad_hex(s));
    let prk = extract.finalize().into_bytes();
    let mut expand = hmac_sha256(&prk);
    expand.update(DERIVED_KEY_INFO);
    expand.update(&[1]);
    let okm = expand.finalize().into_bytes();
    let mut key = [0u8; 16];
    key.copy_from_slice(&okm[..16]);
    key
}

fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()))
}

fn hash_to_biguint(parts: &[&[u8]]) -> BigUint {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    BigUint::from_bytes_be(&hasher.finalize())
}

/// A secret given to `from_secret` must be non-zero and its public value non-zero mod N.
fn check_key_pair(
    secret: &BigUint,
    public: &BigUint,
    secret_name: &str,
    public_name: &str,
) -> Result<(), Error> {
    if secret.bits() == 0 {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!("the SRP secret {secret_name} is zero"),
        ));
    }
    if is_zero_mod_n(public) {
        return Err(Error::new(
            ErrorKind::Configuration,
            format!("the SRP public value {public_name} is 0 mod N"),
        ));
    }
    Ok(())
}

fn is_zero_mod_n(value: &BigUint) -> bool {
    (value % modulus()).bits() == 0
}

/// A random secret of exactly [`SECRET_BITS`] bits (the top one set) from the OS CSPRNG.
fn random_secret() -> Result<BigUint, Error> {
    let mut bytes = [0u8; SECRET_BITS / 8];
    getrandom::fill(&mut bytes).map_err(|err| {
        Error::other(format!(
            "the operating system's random generator failed: {err}"
        ))
    })?;
    // The top bit set: `a` must outweigh `u·x` (see SrpClient::generate).
    bytes[0] |= 0x80;
    Ok(BigUint::from_bytes_be(&bytes))
}

fn malformed(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::MalformedResponse, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn big(hex: &str) -> BigUint {
        parse_hex(hex).unwrap()
    }

    fn at(seconds: i64) -> SystemTime {
        if seconds >= 0 {
            UNIX_EPOCH + Duration::from_secs(seconds as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
        }
    }

    #[test]
    fn modulus_is_the_rfc3526_prime() {
        let n = modulus();
        assert_eq!(n.bits(), 3072);
        assert_eq!(format!("{n:X}"), N_HEX);
        // N = 2q + 1 is a safe prime; at least check it is odd and 2^(N-1) ≡ 1 (Fermat).
        assert!(n.bit(0));
        assert_eq!(
            BigUint::from(2u32).modpow(&(n - 1u32), n),
            BigUint::from(1u32)
        );
    }

    #[test]
    fn multiplier_hashes_n_as_385_bytes_and_g_as_one() {
        let mut input = vec![0u8];
        input.extend_from_slice(&modulus().to_bytes_be());
        input.push(2);
        assert_eq!(input.len(), 386);
        assert_eq!(
            multiplier(),
            &BigUint::from_bytes_be(&Sha256::digest(&input))
        );
    }

    #[test]
    fn pad_hex_adds_a_sign_byte_only_when_the_top_bit_is_set() {
        let cases: &[(&str, &[u8])] = &[
            ("0", &[0x00]),
            ("1", &[0x01]),
            ("7f", &[0x7f]),
            ("80", &[0x00, 0x80]),
            ("ff", &[0x00, 0xff]),
            ("100", &[0x01, 0x00]),
            ("7fff", &[0x7f, 0xff]),
            ("8000", &[0x00, 0x80, 0x00]),
            ("00ff", &[0x00, 0xff]),
        ];
        for (hex, expected) in cases {
            assert_eq!(pad_hex(&big(hex)), *expected, "pad_hex({hex})");
        }
        assert_eq!(pad_hex(&BigUint::from(GENERATOR)), [2]);
        let padded_n = pad_hex(modulus());
        assert_eq!(padded_n.len(), 385);
        assert_eq!(padded_n.first(), Some(&0));
    }

    #[test]
    fn pow_g_matches_modpow_around_the_comb_boundary() {
        let n = modulus();
        let two = BigUint::from(2u32);
        let one = BigUint::from(1u32);
        let mut exponents = vec![
            BigUint::from(0u32),
            one.clone(),
            BigUint::from(2u32),
            BigUint::from(31u32),
            BigUint::from(32u32),
            (&one << 32u32) - 1u32,
            &one << 255u32,
            (&one << 575u32) + 12345u32,
            (&one << 576u32) - 1u32, // the last exponent the comb takes
            &one << 576u32,          // the first that falls back to modpow
            (&one << 1024u32) - 3u32,
            n - 1u32,
        ];
        for i in 0..20u32 {
            let mut bytes = [0u8; 72];
            getrandom::fill(&mut bytes).unwrap();
            exponents.push(BigUint::from_bytes_be(&bytes) >> (i * 28));
        }
        for e in &exponents {
            assert_eq!(pow_g(e), two.modpow(e, n), "exponent {e:x}");
        }
    }

    #[test]
    fn timestamps_do_not_pad_the_day_and_follow_the_gregorian_calendar() {
        let cases = [
            (0, "Thu Jan 1 00:00:00 UTC 1970"),
            (-1, "Wed Dec 31 23:59:59 UTC 1969"),
            (1_796_288_707, "Thu Dec 3 09:05:07 UTC 2026"),
            (1_709_251_199, "Thu Feb 29 23:59:59 UTC 2024"),
            (1_709_251_200, "Fri Mar 1 00:00:00 UTC 2024"),
            (1_767_225_599, "Wed Dec 31 23:59:59 UTC 2025"),
            (1_767_225_600, "Thu Jan 1 00:00:00 UTC 2026"),
            (-2_203_891_200, "Thu Mar 1 00:00:00 UTC 1900"), // 1900 is no leap year
            (-11_670_955_200, "Tue Feb 29 12:00:00 UTC 1600"), // 1600 is one
        ];
        for (seconds, expected) in cases {
            assert_eq!(cognito_timestamp(at(seconds)), expected, "at {seconds}");
        }
        // Sub-second parts round down, also before the epoch.
        assert_eq!(
            cognito_timestamp(UNIX_EPOCH - Duration::from_millis(1)),
            "Wed Dec 31 23:59:59 UTC 1969"
        );
        assert_eq!(
            cognito_timestamp(UNIX_EPOCH + Duration::from_millis(1999)),
            "Thu Jan 1 00:00:01 UTC 1970"
        );
    }

    #[test]
    fn civil_dates_round_trip_over_four_centuries() {
        // Every day from 1900 to 2300 follows the previous one.
        let start = -25_567; // 1900-01-01
        let mut previous = civil_from_days(start - 1);
        assert_eq!(previous, (1899, 12, 31));
        for days in start..start + 146_097 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = y == py && m == pm && d == pd + 1;
            let next_month = y == py && m == pm + 1 && d == 1;
            let next_year = y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31;
            assert!(
                next_day || next_month || next_year,
                "{previous:?} -> {:?}",
                (y, m, d)
            );
            if next_month {
                let leap = (py % 4 == 0 && py % 100 != 0) || py % 400 == 0;
                let length = match pm {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(pd, length, "month {py}-{pm}");
            }
            previous = (y, m, d);
        }
        assert_eq!(previous, (2299, 12, 31));
    }

    #[test]
    fn parse_hex_is_tolerant_of_shape_and_strict_about_content() {
        assert_eq!(big("abc"), BigUint::from(0xabcu32));
        assert_eq!(big("000ABC"), BigUint::from(0xabcu32));
        assert_eq!(big("0"), BigUint::from(0u32));
        for junk in [
            "", " ", "0x12", "-12", "+12", "12 ", "1_2", "g", "ａ", "12\n",
        ] {
            let err = parse_hex(junk).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{junk:?}");
        }
        assert!(parse_hex(&"f".repeat(MAX_HEX_DIGITS)).is_ok());
        assert_eq!(
            parse_hex(&"f".repeat(MAX_HEX_DIGITS + 1))
                .unwrap_err()
                .kind(),
            ErrorKind::MalformedResponse
        );
    }

    #[test]
    fn pool_name_is_the_part_after_the_underscore() {
        assert_eq!(pool_name("eu-west-2_x9YqZ").unwrap(), "x9YqZ");
        for bad in ["", "nounderscore", "us-east-1_"] {
            assert_eq!(pool_name(bad).unwrap_err().kind(), ErrorKind::Configuration);
        }
    }

    fn login(password_at_server: &str, password_at_client: &str) -> ([u8; 16], [u8; 16]) {
        let salt = BigUint::from(0x9abc_def0_1234_5678u64);
        let v = verifier(&salt, "Pool", "user-id", password_at_server);
        let server = SrpServer::generate(&v).unwrap();
        let client = SrpClient::generate().unwrap();
        let client_key = client
            .password_authentication_key(
                "Pool",
                "user-id",
                password_at_client,
                &salt,
                server.public_b(),
            )
            .unwrap();
        let server_key = server
            .password_authentication_key(client.public_a(), &v)
            .unwrap();
        (client_key, server_key)
    }

    #[test]
    fn client_and_server_agree_on_the_key_with_the_right_password() {
        for _ in 0..4 {
            let (client, server) = login("hunter2", "hunter2");
            assert_eq!(client, server);
        }
    }

    #[test]
    fn a_wrong_password_gives_a_different_key() {
        let (client, server) = login("hunter2", "hunter3");
        assert_ne!(client, server);
    }

    #[test]
    fn client_and_server_agree_for_edge_case_secrets() {
        // Small and large secrets, salts with and without a sign byte, and a 1024-bit `a`
        // (pycognito's size, through the modpow fallback of pow_g).
        let n = modulus();
        let one = BigUint::from(1u32);
        let secrets = [
            one.clone(),
            BigUint::from(2u32),
            (&one << 256u32) - 1u32,
            (&one << 1024u32) - 1u32,
            n - 2u32,
        ];
        let salts = [
            BigUint::from(0u32),
            BigUint::from(0x80u32),
            (&one << 128u32) - 1u32,
        ];
        for (i, a) in secrets.iter().enumerate() {
            let salt = &salts[i % salts.len()];
            let b = &secrets[(i + 1) % secrets.len()];
            let v = verifier(salt, "P", "u", "pw");
            let server = SrpServer::from_secret(b.clone(), &v).unwrap();
            let client = SrpClient::from_secret(a.clone()).unwrap();
            let key = client
                .password_authentication_key("P", "u", "pw", salt, server.public_b())
                .unwrap();
            assert_eq!(
                key,
                server
                    .password_authentication_key(client.public_a(), &v)
                    .unwrap(),
                "case {i}"
            );
        }
    }

    #[test]
    fn client_rejects_b_that_is_zero_mod_n() {
        let client = SrpClient::from_secret(BigUint::from(12345u32)).unwrap();
        let n = modulus();
        for b in [BigUint::from(0u32), n.clone(), n * 2u32] {
            let err = client
                .password_authentication_key("P", "u", "pw", &BigUint::from(1u32), &b)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        }
        // B ≡ k·v would make S = 0 whatever a is.
        let salt = BigUint::from(5u32);
        let kv = multiplier() * verifier(&salt, "P", "u", "pw") % n;
        let err = client
            .password_authentication_key("P", "u", "pw", &salt, &kv)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        // The same B with another password is only a wrong key, not an error.
        assert!(
            client
                .password_authentication_key("P", "u", "other", &salt, &kv)
                .is_ok()
        );
    }

    #[test]
    fn a_zero_scrambler_is_rejected() {
        // Forcing u = H(A | B) = 0 through A and B would need a SHA-256 preimage, so the guard
        // both sides call is tested directly.
        for kind in [ErrorKind::MalformedResponse, ErrorKind::CredentialsRejected] {
            let err = nonzero_scrambler(BigUint::from(0u32), kind).unwrap_err();
            assert_eq!(err.kind(), kind);
        }
        let a = BigUint::from(0x80u32);
        let u = scrambler(&a, &BigUint::from(9u32), ErrorKind::MalformedResponse).unwrap();
        assert_eq!(u, hash_to_biguint(&[&[0, 0x80], &[9]]));
    }

    #[test]
    fn server_rejects_a_that_is_zero_mod_n() {
        let v = verifier(&BigUint::from(1u32), "P", "u", "pw");
        let server = SrpServer::from_secret(BigUint::from(99u32), &v).unwrap();
        for a in [BigUint::from(0u32), modulus().clone(), modulus() * 3u32] {
            let err = server.password_authentication_key(&a, &v).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::CredentialsRejected);
        }
    }

    #[test]
    fn zero_secrets_are_refused() {
        assert_eq!(
            SrpClient::from_secret(BigUint::from(0u32))
                .unwrap_err()
                .kind(),
            ErrorKind::Configuration
        );
        let v = BigUint::from(4u32);
        assert_eq!(
            SrpServer::from_secret(BigUint::from(0u32), &v)
                .unwrap_err()
                .kind(),
            ErrorKind::Configuration
        );
    }

    #[test]
    fn debug_never_shows_the_secrets() {
        let a = BigUint::from(0xdead_beef_cafe_f00du64);
        let client = SrpClient::from_secret(a.clone()).unwrap();
        let shown = format!("{client:?}");
        assert!(shown.starts_with("SrpClient"), "{shown}");
        for form in [
            format!("{a}"),
            format!("{a:x}"),
            format!("{a:X}"),
            format!("{a:?}"),
        ] {
            assert!(!shown.contains(&form), "{shown}");
        }
        let server = SrpServer::from_secret(a.clone(), &BigUint::from(4u32)).unwrap();
        let shown = format!("{server:?}");
        assert!(shown.starts_with("SrpServer"), "{shown}");
        for form in [
            format!("{a}"),
            format!("{a:x}"),
            format!("{a:X}"),
            format!("{a:?}"),
        ] {
            assert!(!shown.contains(&form), "{shown}");
        }
    }

    #[test]
    fn generated_secrets_have_exactly_576_bits_and_differ() {
        let one = random_secret().unwrap();
        let two = random_secret().unwrap();
        assert_eq!((one.bits(), two.bits()), (576, 576));
        assert_ne!(one, two);
    }

    #[test]
    fn signature_rejects_a_secret_block_that_is_not_base64() {
        for bad in ["!!!!", "abc", "YWJj\n"] {
            let err = password_claim_signature(&[0; 16], "P", "u", bad, "t").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MalformedResponse, "{bad:?}");
        }
    }

    #[test]
    fn secret_hash_matches_rfc4231_style_hmac() {
        // HMAC-SHA256(key = "key", "The quick brown fox jumps over the lazy dog"), split as
        // username + client id.
        assert_eq!(
            secret_hash("key", "The quick brown fox ", "jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }
}
