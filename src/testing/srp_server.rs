//! The server side of Cognito's SRP for the local identity provider, written apart from the
//! client's [`crate::srp::math`] on purpose: a bug the two shared (the `padHex` sign byte,
//! the order of what goes into `x`, the HKDF, the signature) would let a broken client log
//! in here and nowhere else. This side follows AWS's JavaScript SDK
//! (`AuthenticationHelper.js`) literally, on hex strings; the pycognito known-answer vectors
//! (`tests/vectors/srp_pycognito.json`) remain the oracle that both sides are checked against.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use num_bigint::BigUint;
use sha2::{Digest, Sha256};

/// RFC 3526's 3072-bit MODP prime, typed out again from the RFC (not shared with the client).
const N_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";

fn big(hex: &str) -> BigUint {
    BigUint::parse_bytes(hex.as_bytes(), 16).unwrap_or_default()
}

fn n() -> BigUint {
    big(N_HEX)
}

/// `padHex` of the JavaScript SDK: an even number of digits, and `00` in front when the
/// first digit has its top bit set (so the bytes read as a positive number).
fn pad_hex(value: &BigUint) -> String {
    let hex = value.to_str_radix(16);
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else if "89abcdef".contains(&hex[..1]) {
        format!("00{hex}")
    } else {
        hex
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// `hexHash`: SHA-256 of the bytes a hex string spells, as 64 hex digits.
fn hex_hash(hex: &str) -> String {
    format!(
        "{:064x}",
        BigUint::from_bytes_be(&Sha256::digest(unhex(hex)))
    )
}

/// `hash` of a UTF-8 string, as 64 hex digits.
fn string_hash(text: &str) -> String {
    format!("{:064x}", BigUint::from_bytes_be(&Sha256::digest(text)))
}

fn multiplier() -> BigUint {
    big(&hex_hash(&format!(
        "{}{}",
        pad_hex(&n()),
        pad_hex(&BigUint::from(2u32))
    )))
}

/// The verifier `g^x` for `pool` / `user` / `password` (for a device: its group key, its key
/// and the device password), as the SDK's `computeX` and `generateHashDevice` do it.
pub(crate) fn verifier(salt: &BigUint, pool: &str, user: &str, password: &str) -> BigUint {
    let inner = string_hash(&format!("{pool}{user}:{password}"));
    let x = big(&hex_hash(&format!("{}{inner}", pad_hex(salt))));
    BigUint::from(2u32).modpow(&x, &n())
}

/// One login's server half: `b`, `B = k·v + g^b`, and the key the client must prove.
pub(crate) struct Exchange {
    pub(crate) public_b: BigUint,
    pub(crate) key: [u8; 16],
}

/// Starts an exchange for the client's `A` and the stored verifier, with a random 576-bit
/// `b`. `None` when `A ≡ 0 (mod N)` or `u = 0`, which SRP-6a servers must refuse.
pub(crate) fn exchange(client_a: &BigUint, verifier: &BigUint, b_bytes: &[u8]) -> Option<Exchange> {
    let n = n();
    if (client_a % &n) == BigUint::ZERO {
        return None;
    }
    let b = BigUint::from_bytes_be(b_bytes);
    let public_b = (multiplier() * verifier + BigUint::from(2u32).modpow(&b, &n)) % &n;
    let u = scrambler(client_a, &public_b);
    if u == BigUint::ZERO {
        return None;
    }
    let s = (client_a * verifier.modpow(&u, &n) % &n).modpow(&b, &n);
    Some(Exchange {
        public_b,
        key: derive_key(&u, &s),
    })
}

/// `u = H(padHex(A) | padHex(B))`.
fn scrambler(client_a: &BigUint, server_b: &BigUint) -> BigUint {
    big(&hex_hash(&format!(
        "{}{}",
        pad_hex(client_a),
        pad_hex(server_b)
    )))
}

/// HKDF-SHA256, one block: PRK = HMAC(padHex(u), padHex(S)); key = HMAC(PRK, info | 1)[..16].
fn derive_key(u: &BigUint, s: &BigUint) -> [u8; 16] {
    let prk = hmac(&unhex(&pad_hex(u)), &[&unhex(&pad_hex(s))]);
    let okm = hmac(&prk, &[b"Caldera Derived Key", &[1]]);
    let mut key = [0u8; 16];
    key.copy_from_slice(&okm[..16]);
    key
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The `PASSWORD_CLAIM_SIGNATURE` the client must send, or `None` when the secret block is
/// not base64.
pub(crate) fn claim(
    key: &[u8; 16],
    pool: &str,
    user: &str,
    secret_block: &str,
    timestamp: &str,
) -> Option<String> {
    let block = STANDARD.decode(secret_block).ok()?;
    let mac = hmac(
        key,
        &[
            pool.as_bytes(),
            user.as_bytes(),
            &block,
            timestamp.as_bytes(),
        ],
    );
    Some(STANDARD.encode(mac))
}

/// `SECRET_HASH`: base64(HMAC-SHA256(client secret, user name | client id)).
pub(crate) fn secret_hash(client_secret: &str, username: &str, client_id: &str) -> String {
    STANDARD.encode(hmac(
        client_secret.as_bytes(),
        &[username.as_bytes(), client_id.as_bytes()],
    ))
}

/// How far a `TIMESTAMP` may be from the server's clock.
pub(crate) const TIMESTAMP_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a `TIMESTAMP` is refused, or `Ok` for `EEE MMM d HH:mm:ss 'UTC' yyyy` in English,
/// the day not zero-padded, the weekday right for the date, within [`TIMESTAMP_SKEW`] of
/// `now`.
pub(crate) fn check_timestamp(timestamp: &str, now: SystemTime) -> Result<(), &'static str> {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let shape = "TIMESTAMP is not like \"Thu Dec 3 09:05:07 UTC 2026\"";
    let parts: Vec<&str> = timestamp.split(' ').collect();
    let [weekday, month, day, time, zone, year] = parts[..] else {
        return Err(shape);
    };
    let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let clock: Vec<&str> = time.split(':').collect();
    let [hh, mm, ss] = clock[..] else {
        return Err(shape);
    };
    if zone != "UTC"
        || !digits(day, 1..=2)
        || day.starts_with('0')
        || !digits(year, 4..=4)
        || ![hh, mm, ss].iter().all(|f| digits(f, 2..=2))
    {
        return Err(shape);
    }
    let month_index = MONTHS.iter().position(|m| *m == month).ok_or(shape)?;
    let number = |s: &str| s.parse::<i64>().unwrap_or(-1);
    let (y, d) = (number(year), number(day));
    let (h, mi, s) = (number(hh), number(mm), number(ss));
    let m = month_index as i64 + 1;
    let month_days = match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=month_days).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return Err(shape);
    }
    // Days since 1970-01-01 (a Thursday), by counting: fine for the years Cognito sees.
    let mut days: i64 = (1970..y)
        .map(|year| {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                366
            } else {
                365
            }
        })
        .sum();
    for earlier in 1..m {
        days += match earlier {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
    }
    days += d - 1;
    if y < 1970 || WEEKDAYS[days.rem_euclid(7) as usize] != weekday {
        return Err("TIMESTAMP has the wrong day of the week for its date");
    }
    let at = UNIX_EPOCH + Duration::from_secs((days * 86_400 + h * 3600 + mi * 60 + s) as u64);
    let skew = match at.duration_since(now) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    };
    if skew > TIMESTAMP_SKEW {
        return Err("TIMESTAMP is too far from the server's clock");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn timestamps_need_the_shape_the_weekday_and_the_clock() {
        // 2026-12-03 09:05:07 UTC is a Thursday.
        let now = at(1_796_288_707);
        assert_eq!(check_timestamp("Thu Dec 3 09:05:07 UTC 2026", now), Ok(()));
        assert_eq!(check_timestamp("Thu Dec 3 09:09:07 UTC 2026", now), Ok(()));
        assert!(
            check_timestamp("Tue Dec 3 09:05:07 UTC 2026", now)
                .unwrap_err()
                .contains("day of the week")
        );
        assert!(
            check_timestamp("Thu Dec 3 09:15:07 UTC 2026", now)
                .unwrap_err()
                .contains("clock")
        );
        for bad in [
            "Thu Dec 03 09:05:07 UTC 2026",
            "Thu Dec 3 9:05:07 UTC 2026",
            "Thu Dec 3 09:05:07 GMT 2026",
            "Thu Dec  3 09:05:07 UTC 2026",
            "Thu Dec 32 09:05:07 UTC 2026",
            "Thu Feb 30 09:05:07 UTC 2026",
            "",
            "2026-12-03T09:05:07Z",
        ] {
            assert!(check_timestamp(bad, now).is_err(), "{bad}");
        }
        // The client's own formatting, now.
        let now = SystemTime::now();
        let sent = crate::srp::math::cognito_timestamp(now);
        assert_eq!(check_timestamp(&sent, now), Ok(()), "{sent}");
    }

    #[test]
    fn pad_hex_follows_the_sdk() {
        assert_eq!(pad_hex(&BigUint::from(0x7fu32)), "7f");
        assert_eq!(pad_hex(&BigUint::from(0x80u32)), "0080");
        assert_eq!(pad_hex(&BigUint::from(0xfffu32)), "0fff");
        assert_eq!(pad_hex(&n()).len(), 770);
    }

    /// The pycognito known-answer vectors: this side's verifier, `u`, key, signature and
    /// secret hash match them; and a login by the crate's client checks out against it.
    #[test]
    fn agrees_with_the_pycognito_vectors_and_the_client() {
        let text = include_str!("../../tests/vectors/srp_pycognito.json");
        let vectors: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            format!("{:x}", multiplier()),
            vectors["k"].as_str().unwrap()
        );
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 5);
        for case in cases {
            let hex = |name: &str| big(case[name].as_str().unwrap());
            let text = |name: &str| case[name].as_str().unwrap();
            let pool = text("pool_id").split_once('_').unwrap().1;
            let user = text("user_id_for_srp");
            let salt = hex("salt");
            assert_eq!(
                verifier(&salt, pool, user, text("password")),
                hex("verifier")
            );
            let u = scrambler(&hex("A"), &hex("B"));
            assert_eq!(u, hex("u"));
            let key = derive_key(&u, &hex("S"));
            assert_eq!(
                format!("{:032x}", BigUint::from_bytes_be(&key)),
                text("key")
            );
            let signature = claim(&key, pool, user, text("secret_block"), text("timestamp"));
            assert_eq!(signature.as_deref(), Some(text("signature")));
            if let Some(secret) = case["client_secret"].as_str() {
                let hash = secret_hash(secret, text("username"), text("client_id"));
                assert_eq!(Some(hash.as_str()), case["secret_hash"].as_str());
            }
        }

        let salt = BigUint::from(0x1234_5678_9abc_u64);
        let v = verifier(&salt, "Pool", "alice", "hunter2");
        let client = crate::srp::math::SrpClient::generate().unwrap();
        let server = exchange(client.public_a(), &v, &[7; 72]).unwrap();
        let key = client
            .password_authentication_key("Pool", "alice", "hunter2", &salt, &server.public_b)
            .unwrap();
        assert_eq!(key, server.key);
        assert!(exchange(&n(), &v, &[7; 72]).is_none());
    }
}
