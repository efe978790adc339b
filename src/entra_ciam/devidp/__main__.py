"""``python -m entra_ciam.devidp``: the emulator without the ``entra-ciam`` wrapper."""

import sys

from entra_ciam.devidp.cli import main

sys.exit(main(["dev-idp", *sys.argv[1:]]))
