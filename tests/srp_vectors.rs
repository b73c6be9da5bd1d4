//! Known answers from pycognito (tests/vectors/srp_pycognito.json, made by
//! tests/vectors/gen_srp_vectors.py): every value of a Cognito SRP login, reproduced byte for
//! byte. Needs no Python to run.

// `srp::math` is public with the `testing` feature only.
#![cfg(feature = "testing")]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use en_core_auth::srp::math::{
    GENERATOR, SrpClient, cognito_timestamp, compute_x, modulus, multiplier, pad_hex, parse_hex,
    password_claim_signature, pool_name, pow_g, secret_hash, verifier,
};
use num_bigint::BigUint;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn vectors() -> Value {
    let text = include_str!("vectors/srp_pycognito.json");
    serde_json::from_str(text).unwrap()
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing"))
}

fn hex(value: &Value, field: &str) -> BigUint {
    parse_hex(text(value, field)).unwrap()
}

fn at(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// pycognito's padHex shape of a value, as the generator names it.
fn shape(name: &str, value: &BigUint) -> String {
    let hex = format!("{value:x}");
    let shape = if hex.len() % 2 == 1 {
        "odd"
    } else if hex.as_bytes()[0] >= b'8' {
        "sign"
    } else {
        "plain"
    };
    format!("{name}_{shape}")
}

#[test]
fn group_constants_match_pycognito() {
    let v = vectors();
    assert!(
        v["pycognito_version"].as_str().is_some(),
        "the generator records pycognito's version"
    );
    assert_eq!(&hex(&v, "N"), modulus());
    assert_eq!(BigUint::from(GENERATOR), hex(&v, "g"));
    assert_eq!(&hex(&v, "k"), multiplier());
}

#[test]
fn pad_hex_matches_pycognito() {
    let v = vectors();
    for case in v["pad_hex"].as_array().unwrap() {
        assert_eq!(
            pad_hex(&hex(case, "value")),
            decode_hex(text(case, "padded")),
            "{case}"
        );
    }
}

#[test]
fn timestamps_match_pycognito() {
    let v = vectors();
    let cases = v["timestamps"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let unix = case["unix"].as_i64().unwrap();
        assert_eq!(cognito_timestamp(at(unix)), text(case, "text"), "{case}");
    }
}

#[test]
fn every_login_value_matches_pycognito() {
    let v = vectors();
    let cases = v["cases"].as_array().unwrap();
    let n = modulus();
    let mut shapes = BTreeSet::new();
    let mut secret_hashes = 0;
    for case in cases {
        let seed = &case["seed"];
        let pool = pool_name(text(case, "pool_id")).unwrap();
        let user_id = text(case, "user_id_for_srp");
        let password = text(case, "password");
        let salt = hex(case, "salt");
        let b = hex(case, "B");

        let client = SrpClient::from_secret(hex(case, "a")).unwrap();
        assert_eq!(client.public_a_hex(), text(case, "A"), "A, seed {seed}");

        let u = BigUint::from_bytes_be(&Sha256::digest(
            [pad_hex(client.public_a()), pad_hex(&b)].concat(),
        ));
        assert_eq!(u, hex(case, "u"), "u, seed {seed}");

        let x = compute_x(&salt, pool, user_id, password);
        assert_eq!(x, hex(case, "x"), "x, seed {seed}");
        assert_eq!(
            verifier(&salt, pool, user_id, password),
            hex(case, "verifier"),
            "v, seed {seed}"
        );

        // S through the public pieces (the key below is the proof that the real code path
        // computes the same S).
        let base = (&b % n + n - multiplier() * pow_g(&x) % n) % n;
        let s = base.modpow(&(hex(case, "a") + &u * &x), n);
        assert_eq!(s, hex(case, "S"), "S, seed {seed}");

        let key = client
            .password_authentication_key(pool, user_id, password, &salt, &b)
            .unwrap();
        assert_eq!(
            key.to_vec(),
            decode_hex(text(case, "key")),
            "key, seed {seed}"
        );

        let timestamp = cognito_timestamp(at(case["time_unix"].as_i64().unwrap()));
        assert_eq!(timestamp, text(case, "timestamp"), "timestamp, seed {seed}");

        let signature =
            password_claim_signature(&key, pool, user_id, text(case, "secret_block"), &timestamp)
                .unwrap();
        assert_eq!(signature, text(case, "signature"), "signature, seed {seed}");

        if let Some(client_secret) = case["client_secret"].as_str() {
            let client_id = text(case, "client_id");
            let username = text(case, "username");
            let expected = secret_hash(client_secret, username, client_id);
            assert_eq!(
                expected,
                text(case, "secret_hash"),
                "SECRET_HASH, seed {seed}"
            );
            assert_eq!(expected, text(case, "secret_hash_on_initiate"));
            secret_hashes += 1;
        }

        for (name, value) in [
            ("A", client.public_a()),
            ("B", &b),
            ("salt", &salt),
            ("u", &u),
            ("S", &s),
        ] {
            shapes.insert(shape(name, value));
        }
    }
    assert!(secret_hashes > 0, "some case has a client secret");

    // The file must keep covering every padding shape of every hashed value: recomputed here
    // from the values, not trusted from the generator's notes.
    let expected: BTreeSet<String> = ["A", "B", "salt", "u", "S"]
        .iter()
        .flat_map(|name| ["sign", "odd", "plain"].map(|s| format!("{name}_{s}")))
        .collect();
    assert_eq!(shapes, expected);
    let recorded: BTreeSet<String> = v["edge_coverage"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(recorded, expected);
}

#[test]
fn one_digit_days_appear_in_the_vectors() {
    let v = vectors();
    let one_digit = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|case| {
            text(case, "timestamp")
                .split(' ')
                .nth(2)
                .is_some_and(|d| d.len() == 1)
        })
        .count();
    assert!(one_digit > 0);
}
