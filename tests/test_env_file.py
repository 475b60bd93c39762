"""read_env_file: the .env subset check reads."""

from __future__ import annotations

import pathlib
import tempfile
import unittest

from hanko_tornado.env_file import read_env_file


class EnvFileTest(unittest.TestCase):
    def test_the_common_subset(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = pathlib.Path(folder) / ".env"
            path.write_text(
                "# a comment\n\nHANKO_API_URL=https://x.hanko.io  # the tenant\nexport HANKO_AUDIENCE='a,b'\n"
                'HANKO_ISSUER="https://x.hanko.io #1"\nnot a line\n=no name\nEMPTY=\n'
            )
            self.assertEqual(
                read_env_file(path),
                {
                    "HANKO_API_URL": "https://x.hanko.io",
                    "HANKO_AUDIENCE": "a,b",
                    "HANKO_ISSUER": "https://x.hanko.io #1",
                    "EMPTY": "",
                },
            )
            path.write_bytes(b"\xff\xfe=x")
            self.assertEqual(read_env_file(path), {})
            self.assertEqual(read_env_file(pathlib.Path(folder) / "missing"), {})
            self.assertEqual(read_env_file(folder), {}, "a folder is no file")
