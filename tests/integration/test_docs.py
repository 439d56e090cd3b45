#!/usr/bin/env python3
"""The documents readers get (the READMEs, the man pages, the configurations, the
examples, the units, the client header) send them only to files that exist in the
repository: a relative path like `conf/examples/scm-rights.toml` or
`../../supervisord/fdserver/fd_server.h` must name a file or directory of this
checkout, not one outside it (such as a `../shared/...` of the developers' own
machines)."""
import glob
import os
import re
import unittest

SOURCE = os.environ.get("FDSUP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

DOCUMENTS = ["README.md", "SECURITY.md", "tests/helpers/README.md", "supervisord/fdsupd.8",
             "supervisord/include/fdsup_fds.h", "conf/*", "conf/examples/*", "systemd/*"]
TOP_LEVEL = ("conf", "ctl", "supervisord", "systemd", "tests", "cmake", ".ci")
# A path relative to the document ("../x", "../../x") or to the repository ("conf/x").
PATH = re.compile(r"(?<![\w/.$@~-])((?:\.\./)+[\w.*/-]+|(?:" + "|".join(re.escape(t) for t in TOP_LEVEL) +
                  r")/[\w.*/-]*)")


class Documents(unittest.TestCase):
    def test_the_paths_documents_name_exist_in_the_repository(self):
        documents = sorted({path for pattern in DOCUMENTS for path in glob.glob(os.path.join(SOURCE, pattern))
                            if os.path.isfile(path)})
        self.assertIn(os.path.join(SOURCE, "README.md"), documents)
        checked = 0
        for document in documents:
            with open(document, errors="replace") as f:
                text = f.read()
            for match in PATH.finditer(text):
                named = match.group(1).rstrip(".")
                base = os.path.dirname(document) if named.startswith("../") else SOURCE
                path = os.path.normpath(os.path.join(base, named))
                where = f"{os.path.relpath(document, SOURCE)} names {named}"
                self.assertFalse(os.path.relpath(path, SOURCE).startswith(".."), where + ": outside the repository")
                self.assertTrue(glob.glob(path), where + ": no such file")
                checked += 1
        self.assertGreater(checked, 20)


if __name__ == "__main__":
    unittest.main()
