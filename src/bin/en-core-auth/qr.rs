//! A QR code of the authenticator set-up URI, drawn in the terminal, so that a phone can
//! scan it. Encoded by the `qrcode` crate (byte mode, error correction level L), checked
//! module for module against Python's `qrcode` package
//! (`tests/vectors/qr_python_qrcode.json`, made by `tests/vectors/gen_qr_vectors.py`).

use qrcode::bits::Bits;
use qrcode::canvas::Canvas;
use qrcode::{Color, EcLevel, Version};

/// The largest version drawn: a terminal shows 57 modules across; an `otpauth://` URI is
/// about 100 bytes, version 10 holds 271.
const MAX_VERSION: i16 = 10;

/// A QR code: `size × size` modules.
pub(crate) struct QrCode {
    size: usize,
    modules: Vec<Color>,
}

impl QrCode {
    /// The smallest code (level L, byte mode) that holds `data`, with the mask of lowest
    /// penalty; `None` when `data` is longer than version 10 holds.
    pub(crate) fn encode(data: &[u8]) -> Option<QrCode> {
        (1..=MAX_VERSION).find_map(|version| {
            let canvas = QrCode::canvas(data, version)?;
            Some(QrCode::of(canvas.apply_best_mask(), version))
        })
    }

    /// `data` in the given version and mask (0 to 7, both fixed): for the known-answer tests.
    #[cfg(test)]
    pub(crate) fn with_mask(data: &[u8], version: i16, mask: u8) -> Option<QrCode> {
        use qrcode::canvas::MaskPattern;
        let pattern = [
            MaskPattern::Checkerboard,
            MaskPattern::HorizontalLines,
            MaskPattern::VerticalLines,
            MaskPattern::DiagonalLines,
            MaskPattern::LargeCheckerboard,
            MaskPattern::Fields,
            MaskPattern::Diamonds,
            MaskPattern::Meadow,
        ]
        .get(usize::from(mask))
        .copied()?;
        let mut canvas = QrCode::canvas(data, version)?;
        canvas.apply_mask(pattern);
        Some(QrCode::of(canvas, version))
    }

    /// The unmasked canvas of `data` in byte mode at `version`, level L (as Python's
    /// `qrcode` encodes bytes); `None` when it does not fit.
    fn canvas(data: &[u8], version: i16) -> Option<Canvas> {
        if !(1..=MAX_VERSION).contains(&version) {
            return None;
        }
        let version = Version::Normal(version);
        let mut bits = Bits::new(version);
        bits.push_byte_data(data).ok()?;
        bits.push_terminator(EcLevel::L).ok()?;
        let (codewords, ec) =
            qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::L).ok()?;
        let mut canvas = Canvas::new(version, EcLevel::L);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&codewords, &ec);
        Some(canvas)
    }

    fn of(canvas: Canvas, version: i16) -> QrCode {
        QrCode {
            size: usize::from(version.unsigned_abs()) * 4 + 17,
            modules: canvas.into_colors(),
        }
    }

    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether the module in column `x`, row `y` is dark.
    pub(crate) fn dark(&self, x: usize, y: usize) -> bool {
        self.modules.get(y * self.size + x) == Some(&Color::Dark)
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
            let version = case["version"].as_i64().unwrap() as i16;
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
