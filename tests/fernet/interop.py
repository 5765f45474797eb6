#!/usr/bin/env python3
"""Encrypt or decrypt one Fernet token with Python's `cryptography` package.

The credentials integration test runs this script to check that tokens made by the
platform decrypt in another Fernet implementation, and the other way round.

Usage:
    FERNET_KEY=<key> interop.py encrypt < plaintext > token
    FERNET_KEY=<key> interop.py decrypt < token > plaintext

The key comes from the environment so that it does not appear in the process list.
Output has no trailing newline. Exit status 2 means wrong usage; a token that does not
decrypt raises cryptography's InvalidToken and exits with status 1.
"""

import os
import sys

from cryptography.fernet import Fernet


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in ("encrypt", "decrypt"):
        print(__doc__, file=sys.stderr)
        return 2
    key = os.environ.get("FERNET_KEY")
    if not key:
        print("FERNET_KEY is not set", file=sys.stderr)
        return 2

    fernet = Fernet(key.encode("ascii"))
    data = sys.stdin.buffer.read()
    if sys.argv[1] == "encrypt":
        sys.stdout.buffer.write(fernet.encrypt(data))
    else:
        sys.stdout.buffer.write(fernet.decrypt(data.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
