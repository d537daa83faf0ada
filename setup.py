"""Builds the one compiled part, the chain extension (eventlog/ledger/chainext), if it can.

Everything else is in pyproject.toml. The extension is a SQLite loadable extension (C, SHA-256
from OpenSSL's libcrypto): it needs a C compiler and the OpenSSL and SQLite headers (Debian:
gcc, libssl-dev, libsqlite3-dev). Where it can't be built, the install still succeeds, with a
warning, and chledger checks the hash chain in Python instead (slower; `audit` says which ran).
It is named like a Python extension module so that setuptools builds it, and with `pip install
-e .` in place, next to its sources, where eventlog/native_chain.py looks for it; it is not
importable from Python (it is loaded into SQLite).
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_SOURCES = ["chledger_ext.c", "chledger_chain.c", "chledger_audit.c", "chledger_facts.c",
            "json_fields.c", "strmap.c", "chledger_windows.c"]


class OptionalBuildExt(build_ext):
    """Build the extension when possible; otherwise warn and let the install go on."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all, say
            self.warn(f"chledger: the chain extension was not built ({exc}); the hash chain "
                      "will be checked in Python")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # a missing header, a failed compile or link
            self.warn(f"chledger: the chain extension was not built ({exc}); the hash chain "
                      "will be checked in Python")


setup(
    ext_modules=[
        Extension(
            "eventlog.ledger.chainext._chledger",
            sources=[f"eventlog/ledger/chainext/{name}" for name in _SOURCES],
            depends=["eventlog/ledger/chainext/chledger.h", "eventlog/ledger/chainext/json_fields.h",
                     "eventlog/ledger/chainext/strmap.h"],
            libraries=["crypto"],
            # only the entry points are exported (sqlite3_chledger_init, chledger_window_counts)
            extra_compile_args=[] if sys.platform == "win32" else ["-fvisibility=hidden"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
