"""Known-answer vectors for the CLI's QR encoder (src/bin/en-core-auth/qr.rs): Python's
`qrcode` package (8.2) draws the same data, in byte mode, error correction level L, at a
given version and mask; the rows are '#' for dark and '.' for light, no quiet zone.

    python3 -m venv /tmp/qr && /tmp/qr/bin/pip install qrcode==8.2
    /tmp/qr/bin/python tests/vectors/gen_qr_vectors.py > tests/vectors/qr_python_qrcode.json
"""

import json
from importlib.metadata import version as package_version

import qrcode
from qrcode.util import MODE_8BIT_BYTE, QRData

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
DATA = [
    "a",
    "hello, world",
    "otpauth://totp/AWSCognito:alice?secret=JBSWY3DPEHPK3PXP&issuer=AWSCognito",
    f"otpauth://totp/AWSCognito:carol%40example.com?secret={SECRET}&issuer=AWSCognito",
    "x" * 150,
    "y" * 230,
    "z" * 271,
]


def smallest_version(data):
    for v in range(1, 11):
        qr = qrcode.QRCode(version=v, error_correction=qrcode.constants.ERROR_CORRECT_L, border=0)
        qr.add_data(QRData(data.encode(), mode=MODE_8BIT_BYTE))
        try:
            qr.make(fit=False)
            return v
        except Exception:
            continue
    raise ValueError(data)


def draw(data, version, mask):
    qr = qrcode.QRCode(
        version=version,
        error_correction=qrcode.constants.ERROR_CORRECT_L,
        border=0,
        mask_pattern=mask,
    )
    qr.add_data(QRData(data.encode(), mode=MODE_8BIT_BYTE))
    qr.make(fit=False)
    return ["".join("#" if m else "." for m in row) for row in qr.get_matrix()]


cases = []
for i, data in enumerate(DATA):
    smallest = smallest_version(data)
    for v in sorted({smallest, min(smallest + 1, 10)}):
        for mask in (i % 8, (i + 3) % 8, (i + 5) % 8):
            cases.append({"data": data, "version": v, "mask": mask, "rows": draw(data, v, mask)})
# Every mask at one version with the version-information block (7+).
for mask in range(8):
    cases.append({"data": DATA[4], "version": 7, "mask": mask, "rows": draw(DATA[4], 7, mask)})

print(json.dumps({
    "generator": "tests/vectors/gen_qr_vectors.py",
    "qrcode_version": package_version("qrcode"),
    "cases": cases,
}, indent=0))
