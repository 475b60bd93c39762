"""The bare RSA check, run on command for callgrind to count (see ``instructions.rsa_check``).

Reads a JSON file with a PEM public key and signed messages, checks every
signature once to warm up, prints ``ready``, then for each line on stdin
checks them all again and prints ``done``.
"""

from __future__ import annotations

import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def main() -> None:
    with open(sys.argv[1]) as file:
        data = json.load(file)
    key = serialization.load_pem_public_key(data["key"].encode())
    signed = [(message.encode(), base64.b64decode(signature)) for message, signature in data["signed"]]

    def check_all() -> None:
        for message, signature in signed:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

    check_all()
    print("ready", flush=True)
    for _ in sys.stdin:
        check_all()
        print("done", flush=True)


if __name__ == "__main__":
    main()
