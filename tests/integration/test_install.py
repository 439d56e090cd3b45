#!/usr/bin/env python3
"""Installation: `DESTDIR=... cmake --install` lays out the binaries, the systemd units,
the configuration, the bash completion and the man pages in the usual places; the
units pass `systemd-analyze verify`; the man pages render without a warning; the
installed fdsupd accepts the installed configuration; and CPack builds a .deb with the
same files."""
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

BUILD = os.environ["FDSUP_BUILD_DIR"]
PREFIX = os.environ["FDSUP_INSTALL_PREFIX"]
SYSCONFDIR = os.environ["FDSUP_INSTALL_SYSCONFDIR"]

# Relative to the prefix (the configuration: to SYSCONFDIR, which is /etc for /usr).
EXPECTED = [
    "bin/fdsupctl",
    "sbin/fdsupd",
    "lib/systemd/system/fdsupd.service",
    "lib/systemd/system/fdsupd.socket",
    "share/bash-completion/completions/fdsupctl",
    "share/man/man8/fdsupd.8",
    "share/man/man8/fdsupctl.8",
    "share/man/man5/fdsup.toml.5",
    "include/fdsup_fds.h",
    "share/fdsup/demo_http.py",
    "share/doc/fdsup/examples/fd-store.toml",
]


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.destdir = tempfile.mkdtemp(prefix="fdsup-install-")
        subprocess.run(["cmake", "--install", BUILD], env=dict(os.environ, DESTDIR=cls.destdir), check=True,
                       capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.destdir, ignore_errors=True)

    def installed(self, path):
        return self.destdir + path

    def test_the_files_are_where_they_belong(self):
        for relative in EXPECTED:
            self.assertTrue(os.path.isfile(self.installed(os.path.join(PREFIX, relative))), relative)
        self.assertTrue(os.path.isfile(self.installed(os.path.join(SYSCONFDIR, "fdsup", "fdsup.toml"))))
        for program in ("bin/fdsupctl", "sbin/fdsupd"):
            mode = os.stat(self.installed(os.path.join(PREFIX, program))).st_mode
            self.assertTrue(mode & stat.S_IXOTH, program)
        # Nothing else outside the prefix and SYSCONFDIR (no stray absolute paths).
        for root, _, files in os.walk(self.destdir):
            for name in files:
                path = os.path.join(root, name)[len(self.destdir):]
                self.assertTrue(path.startswith(PREFIX + "/") or path.startswith(SYSCONFDIR + "/"), path)

    def test_the_installed_fdsupd_runs_and_accepts_the_installed_configuration(self):
        fdsupd = self.installed(os.path.join(PREFIX, "sbin/fdsupd"))
        version = subprocess.run([fdsupd, "--version"], capture_output=True, text=True, check=True).stdout
        self.assertRegex(version, r"^fdsupd \d+\.\d+\.\d+ \(state format \d+\)\n$")
        config = self.installed(os.path.join(SYSCONFDIR, "fdsup", "fdsup.toml"))
        r = subprocess.run([fdsupd, "--check-config", "-c", config], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # It runs the demo worker from where it was installed.
        with open(config) as f:
            self.assertIn(os.path.join(PREFIX, "share/fdsup/demo_http.py"), f.read())

    def test_the_units_pass_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        # The units name the installed paths; verify checks that ExecStart exists and
        # that the Documentation= man pages can be found: relocated to DESTDIR, with
        # MANPATH pointing at the installed man pages.
        units = tempfile.mkdtemp(prefix="fdsup-units-")
        self.addCleanup(shutil.rmtree, units, True)
        for unit in ("fdsupd.service", "fdsupd.socket"):
            with open(self.installed(os.path.join(PREFIX, "lib/systemd/system", unit))) as f:
                text = f.read()
            for directory in sorted({PREFIX, SYSCONFDIR}, key=len, reverse=True):
                text = text.replace(directory + "/", self.destdir + directory + "/")
            with open(os.path.join(units, unit), "w") as f:
                f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", os.path.join(units, "fdsupd.service"),
                            os.path.join(units, "fdsupd.socket")],
                           env=dict(os.environ, MANPATH=self.installed(os.path.join(PREFIX, "share/man"))),
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_the_man_pages_render_without_warnings(self):
        if shutil.which("groff") is None:
            self.skipTest("groff is not installed")
        for page in ("share/man/man8/fdsupd.8", "share/man/man8/fdsupctl.8", "share/man/man5/fdsup.toml.5"):
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", self.installed(os.path.join(PREFIX, page))],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)
        with open(self.installed(os.path.join(PREFIX, "share/man/man8/fdsupctl.8"))) as f:
            manual = f.read()
        for verb in ("status", "restart", "upgrade", "exec", "logs"):  # made from fdsupctl's own verb table
            self.assertIn(f".B {verb}", manual)

    def test_cpack_builds_a_deb_with_the_same_files(self):
        if shutil.which("dpkg-deb") is None:
            self.skipTest("dpkg-deb is not installed")
        out = tempfile.mkdtemp(prefix="fdsup-deb-")
        self.addCleanup(shutil.rmtree, out, True)
        subprocess.run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out],
                       cwd=out, check=True, capture_output=True)
        debs = [name for name in os.listdir(out) if name.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(out))
        deb = os.path.join(out, debs[0])
        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
        files = {line.split()[-1][1:] for line in listing.splitlines() if not line.endswith("/")}
        for relative in EXPECTED:
            self.assertIn(os.path.join(PREFIX, relative), files)
        config = os.path.join(SYSCONFDIR, "fdsup", "fdsup.toml")
        self.assertIn(config, files)
        control = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends"], capture_output=True, text=True,
                                 check=True).stdout
        self.assertIn("Package: fdsup", control)
        self.assertIn("libuv1", control)
        conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True).stdout
        self.assertIn(config.encode(), conffiles)  # kept across package upgrades


if __name__ == "__main__":
    unittest.main()
