//! A QR code of the authenticator set-up URI, drawn in the terminal (issue 11), so that a
//! phone can scan it. Byte mode, error correction level L, versions 1 to 10 (up to 271
//! bytes; an `otpauth://` URI is about 100): ISO/IEC 18004 as Project Nayuki's reference
//! encoder implements it, checked module for module against Python's `qrcode` package
//! (`tests/vectors/qr_python_qrcode.json`, made by `tests/vectors/gen_qr_vectors.py`).

/// Error-correction codewords per block and number of blocks, level L, versions 1–10.
const EC_PER_BLOCK: [usize; 11] = [0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18];
const BLOCKS: [usize; 11] = [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4];
const MAX_VERSION: usize = 10;

/// A QR code: `size × size` modules, `true` is dark.
pub(crate) struct QrCode {
    size: usize,
    modules: Vec<Vec<bool>>,
    function: Vec<Vec<bool>>,
}

impl QrCode {
    /// The smallest code (level L) that holds `data`, with the mask of lowest penalty; `None`
    /// when `data` is longer than version 10 holds.
    pub(crate) fn encode(data: &[u8]) -> Option<QrCode> {
        let version = (1..=MAX_VERSION).find(|&v| data.len() <= capacity(v))?;
        let best = (0..8)
            .filter_map(|mask| QrCode::with_mask(data, version, mask))
            .min_by_key(QrCode::penalty)?;
        Some(best)
    }

    /// `data` in the given version and mask (both fixed): for the known-answer tests.
    pub(crate) fn with_mask(data: &[u8], version: usize, mask: u8) -> Option<QrCode> {
        if !(1..=MAX_VERSION).contains(&version) || data.len() > capacity(version) || mask > 7 {
            return None;
        }
        let size = version * 4 + 17;
        let mut qr = QrCode {
            size,
            modules: vec![vec![false; size]; size],
            function: vec![vec![false; size]; size],
        };
        qr.draw_function_patterns(version);
        let codewords = add_error_correction(&data_codewords(data, version), version);
        qr.draw_codewords(&codewords);
        qr.apply_mask(mask);
        qr.draw_format_bits(mask);
        Some(qr)
    }

    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn dark(&self, x: usize, y: usize) -> bool {
        self.modules[y][x]
    }

    fn set_function(&mut self, x: usize, y: usize, dark: bool) {
        self.modules[y][x] = dark;
        self.function[y][x] = true;
    }

    fn draw_function_patterns(&mut self, version: usize) {
        let size = self.size;
        for i in 0..size {
            self.set_function(6, i, i % 2 == 0);
            self.set_function(i, 6, i % 2 == 0);
        }
        for (x, y) in [(3, 3), (size - 4, 3), (3, size - 4)] {
            self.draw_finder(x, y);
        }
        let positions = alignment_positions(version, size);
        let last = positions.len().saturating_sub(1);
        for (i, &x) in positions.iter().enumerate() {
            for (j, &y) in positions.iter().enumerate() {
                // The three corners hold finder patterns.
                let corner = (i == 0 && (j == 0 || j == last)) || (i == last && j == 0);
                if !corner {
                    for dy in -2i32..=2 {
                        for dx in -2i32..=2 {
                            let (xx, yy) = ((x as i32 + dx) as usize, (y as i32 + dy) as usize);
                            self.set_function(xx, yy, dx.abs().max(dy.abs()) != 1);
                        }
                    }
                }
            }
        }
        // Reserve the format areas (drawn for real after masking).
        self.draw_format_bits(0);
        if version >= 7 {
            let mut rem = version as u32;
            for _ in 0..12 {
                rem = (rem << 1) ^ ((rem >> 11) * 0x1F25);
            }
            let bits = (version as u32) << 12 | rem;
            for i in 0..18 {
                let dark = (bits >> i) & 1 != 0;
                let (a, b) = (size - 11 + i % 3, i / 3);
                self.set_function(a, b, dark);
                self.set_function(b, a, dark);
            }
        }
    }

    fn draw_finder(&mut self, x: usize, y: usize) {
        for dy in -4i32..=4 {
            for dx in -4i32..=4 {
                let (xx, yy) = (x as i32 + dx, y as i32 + dy);
                if (0..self.size as i32).contains(&xx) && (0..self.size as i32).contains(&yy) {
                    let distance = dx.abs().max(dy.abs());
                    self.set_function(xx as usize, yy as usize, distance != 2 && distance != 4);
                }
            }
        }
    }

    fn draw_format_bits(&mut self, mask: u8) {
        // Level L is 01; then the mask; BCH(15,5) and the fixed XOR.
        let data = (1u32 << 3) | u32::from(mask);
        let mut rem = data;
        for _ in 0..10 {
            rem = (rem << 1) ^ ((rem >> 9) * 0x537);
        }
        let bits = ((data << 10) | rem) ^ 0x5412;
        let bit = |i: usize| (bits >> i) & 1 != 0;
        let size = self.size;
        for i in 0..=5 {
            self.set_function(8, i, bit(i));
        }
        self.set_function(8, 7, bit(6));
        self.set_function(8, 8, bit(7));
        self.set_function(7, 8, bit(8));
        for i in 9..15 {
            self.set_function(14 - i, 8, bit(i));
        }
        for i in 0..8 {
            self.set_function(size - 1 - i, 8, bit(i));
        }
        for i in 8..15 {
            self.set_function(8, size - 15 + i, bit(i));
        }
        self.set_function(8, size - 8, true);
    }

    fn draw_codewords(&mut self, codewords: &[u8]) {
        let size = self.size;
        let total_bits = codewords.len() * 8;
        let mut i = 0;
        let mut right = size - 1;
        loop {
            if right == 6 {
                right = 5;
            }
            for vert in 0..size {
                for j in 0..2 {
                    let x = right - j;
                    let upward = (right + 1) & 2 == 0;
                    let y = if upward { size - 1 - vert } else { vert };
                    if !self.function[y][x] && i < total_bits {
                        self.modules[y][x] = (codewords[i >> 3] >> (7 - (i & 7))) & 1 != 0;
                        i += 1;
                    }
                }
            }
            if right < 2 {
                break;
            }
            right -= 2;
        }
    }

    fn apply_mask(&mut self, mask: u8) {
        for y in 0..self.size {
            for x in 0..self.size {
                let flip = match mask {
                    0 => (x + y) % 2 == 0,
                    1 => y % 2 == 0,
                    2 => x % 3 == 0,
                    3 => (x + y) % 3 == 0,
                    4 => (x / 3 + y / 2) % 2 == 0,
                    5 => x * y % 2 + x * y % 3 == 0,
                    6 => (x * y % 2 + x * y % 3) % 2 == 0,
                    _ => ((x + y) % 2 + x * y % 3) % 2 == 0,
                };
                if flip && !self.function[y][x] {
                    self.modules[y][x] ^= true;
                }
            }
        }
    }

    /// The spec's penalty rules 1 (runs), 2 (2×2 blocks) and 4 (balance). Rule 3
    /// (finder-like patterns) is left out: any mask decodes; the penalty only helps
    /// readers, and these three carry most of it.
    fn penalty(&self) -> usize {
        let n = self.size;
        let mut score = 0;
        for line in 0..n {
            for horizontal in [true, false] {
                let mut run = 0;
                let mut last = None;
                for k in 0..n {
                    let dark = if horizontal {
                        self.modules[line][k]
                    } else {
                        self.modules[k][line]
                    };
                    if Some(dark) == last {
                        run += 1;
                    } else {
                        if run >= 5 {
                            score += run - 2;
                        }
                        run = 1;
                        last = Some(dark);
                    }
                }
                if run >= 5 {
                    score += run - 2;
                }
            }
        }
        for y in 0..n - 1 {
            for x in 0..n - 1 {
                let c = self.modules[y][x];
                if c == self.modules[y][x + 1]
                    && c == self.modules[y + 1][x]
                    && c == self.modules[y + 1][x + 1]
                {
                    score += 3;
                }
            }
        }
        let dark = self.modules.iter().flatten().filter(|&&d| d).count();
        let total = n * n;
        let k = (dark * 20)
            .abs_diff(total * 10)
            .div_ceil(total)
            .saturating_sub(1);
        score + k * 10
    }

    /// The code as text for a terminal: two rows of modules per line in half blocks, with a
    /// quiet zone of four modules. Light modules are drawn (as the terminal's foreground) and
    /// dark ones left blank, which reads right on the usual dark-background terminal.
    pub(crate) fn to_terminal(&self) -> String {
        const QUIET: usize = 4;
        let span = self.size + 2 * QUIET;
        let light = |x: usize, y: usize| {
            let inside =
                (QUIET..QUIET + self.size).contains(&x) && (QUIET..QUIET + self.size).contains(&y);
            !(inside && self.dark(x - QUIET, y - QUIET))
        };
        let mut out = String::new();
        for y in (0..span).step_by(2) {
            for x in 0..span {
                let top = light(x, y);
                let bottom = y + 1 < span && light(x, y + 1);
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }
}

/// Bytes of data a level-L code of `version` holds in byte mode.
fn capacity(version: usize) -> usize {
    let data_bits = data_codewords_count(version) * 8;
    let count_bits = if version <= 9 { 8 } else { 16 };
    (data_bits - 4 - count_bits) / 8
}

fn raw_modules(version: usize) -> usize {
    let mut result = (16 * version + 128) * version + 64;
    if version >= 2 {
        let aligns = version / 7 + 2;
        result -= (25 * aligns - 10) * aligns - 55;
        if version >= 7 {
            result -= 36;
        }
    }
    result
}

fn data_codewords_count(version: usize) -> usize {
    raw_modules(version) / 8 - EC_PER_BLOCK[version] * BLOCKS[version]
}

fn alignment_positions(version: usize, size: usize) -> Vec<usize> {
    if version == 1 {
        return Vec::new();
    }
    let aligns = version / 7 + 2;
    let step = (version * 4 + 4).div_ceil(aligns * 2 - 2) * 2;
    let mut positions = vec![6];
    let mut pos = size - 7;
    while positions.len() < aligns {
        positions.insert(1, pos);
        pos -= step;
    }
    positions
}

/// Mode, count, data, terminator and padding, as codewords.
fn data_codewords(data: &[u8], version: usize) -> Vec<u8> {
    let capacity_bits = data_codewords_count(version) * 8;
    let mut bits: Vec<bool> = Vec::with_capacity(capacity_bits);
    let mut push = |value: usize, len: usize| {
        for i in (0..len).rev() {
            bits.push((value >> i) & 1 != 0);
        }
    };
    push(0b0100, 4);
    push(data.len(), if version <= 9 { 8 } else { 16 });
    for &byte in data {
        push(usize::from(byte), 8);
    }
    let terminator = (capacity_bits - bits.len()).min(4);
    bits.extend(std::iter::repeat_n(false, terminator));
    while !bits.len().is_multiple_of(8) {
        bits.push(false);
    }
    let mut codewords: Vec<u8> = bits
        .chunks(8)
        .map(|byte| byte.iter().fold(0u8, |acc, &b| (acc << 1) | u8::from(b)))
        .collect();
    for pad in [0xEC, 0x11].into_iter().cycle() {
        if codewords.len() * 8 >= capacity_bits {
            break;
        }
        codewords.push(pad);
    }
    codewords
}

/// Splits into blocks, appends each block's Reed–Solomon codewords, interleaves.
fn add_error_correction(data: &[u8], version: usize) -> Vec<u8> {
    let blocks = BLOCKS[version];
    let ec_len = EC_PER_BLOCK[version];
    let raw = raw_modules(version) / 8;
    let short_blocks = blocks - raw % blocks;
    let short_len = raw / blocks;
    let divisor = rs_divisor(ec_len);
    let mut all: Vec<Vec<u8>> = Vec::with_capacity(blocks);
    let mut k = 0;
    for i in 0..blocks {
        let take = short_len - ec_len + usize::from(i >= short_blocks);
        let mut block = data[k..k + take].to_vec();
        k += take;
        let ec = rs_remainder(&block, &divisor);
        if i < short_blocks {
            block.push(0); // a place holder, skipped when interleaving
        }
        block.extend(ec);
        all.push(block);
    }
    let mut out = Vec::with_capacity(raw);
    for i in 0..=short_len {
        for (j, block) in all.iter().enumerate() {
            if i != short_len - ec_len || j >= short_blocks {
                out.push(block[i]);
            }
        }
    }
    out
}

fn gf_mul(x: u8, y: u8) -> u8 {
    let mut z: u16 = 0;
    for i in (0..8).rev() {
        z = (z << 1) ^ ((z >> 7) * 0x11D);
        z ^= u16::from((y >> i) & 1) * u16::from(x);
    }
    z as u8
}

fn rs_divisor(degree: usize) -> Vec<u8> {
    let mut result = vec![0u8; degree];
    result[degree - 1] = 1;
    let mut root = 1u8;
    for _ in 0..degree {
        for j in 0..degree {
            result[j] = gf_mul(result[j], root);
            if j + 1 < degree {
                result[j] ^= result[j + 1];
            }
        }
        root = gf_mul(root, 0x02);
    }
    result
}

fn rs_remainder(data: &[u8], divisor: &[u8]) -> Vec<u8> {
    let mut result = vec![0u8; divisor.len()];
    for &b in data {
        let factor = b ^ result.remove(0);
        result.push(0);
        for (r, &d) in result.iter_mut().zip(divisor) {
            *r ^= gf_mul(d, factor);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers from Python's `qrcode` 8.2: same data, version and mask give the same
    /// modules.
    #[test]
    fn matches_python_qrcode_module_for_module() {
        let text = include_str!("../../../tests/vectors/qr_python_qrcode.json");
        let vectors: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 16);
        for case in cases {
            let data = case["data"].as_str().unwrap();
            let version = case["version"].as_u64().unwrap() as usize;
            let mask = case["mask"].as_u64().unwrap() as u8;
            let rows: Vec<&str> = case["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let qr = QrCode::with_mask(data.as_bytes(), version, mask).unwrap();
            assert_eq!(qr.size(), rows.len(), "v{version}");
            for (y, row) in rows.iter().enumerate() {
                let ours: String = (0..qr.size())
                    .map(|x| if qr.dark(x, y) { '#' } else { '.' })
                    .collect();
                assert_eq!(&ours, row, "v{version} mask {mask} row {y} of {data:?}");
            }
        }
    }

    #[test]
    fn an_otpauth_uri_fits_and_too_much_data_does_not() {
        let uri = format!(
            "otpauth://totp/AWSCognito:alice%40example.com?secret={}&issuer=AWSCognito",
            "A".repeat(32)
        );
        let qr = QrCode::encode(uri.as_bytes()).unwrap();
        assert!(qr.size() <= 10 * 4 + 17);
        let drawn = qr.to_terminal();
        assert_eq!(drawn.lines().count(), (qr.size() + 8).div_ceil(2));
        assert!(QrCode::encode(&[b'x'; 272]).is_none());
        assert!(QrCode::encode(&[b'x'; 271]).is_some());
    }
}
