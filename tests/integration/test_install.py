#!/usr/bin/env python3
"""Installation: `cmake --install` lays out the binaries, the systemd units, the
configuration, the bash completion and the man pages below the prefix given at install
time (`--prefix`, else the configured one), staged under DESTDIR when it is set, and the
unit's ExecStart=/ExecReload= and the configuration's demo worker name the paths of that
installation; an existing configuration is never overwritten; the units pass
`systemd-analyze verify`; the man pages render without a warning and keep their quotes;
the installed fdsupd accepts the installed configuration; and CPack builds a .deb for
/usr with the same files."""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

BUILD = os.environ["FDSUP_BUILD_DIR"]
# The prefix the build was configured with, and its configuration directory
# (GNUInstallDirs' CMAKE_INSTALL_FULL_SYSCONFDIR): where an install without --prefix goes.
PREFIX = os.environ["FDSUP_INSTALL_PREFIX"]
SYSCONFDIR = os.environ["FDSUP_INSTALL_SYSCONFDIR"]

# Relative to the prefix (the configuration: to the layout's sysconfdir).
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
    "share/doc/fdsup/examples/health.toml",
    "share/doc/fdsup/examples/resources.toml",
]


def cmake_install(prefix=None, destdir=None):
    """`[DESTDIR=destdir] cmake --install BUILD [--prefix prefix]`; returns its output."""
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir is not None:
        env["DESTDIR"] = destdir
    command = ["cmake", "--install", BUILD] + (["--prefix", prefix] if prefix is not None else [])
    r = subprocess.run(command, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(command)} (DESTDIR={destdir}) failed:\n{r.stdout}{r.stderr}")
    return r.stdout


class Layout:
    """One installation: files below `root` (the DESTDIR, or "" without one), at the
    paths the installed system sees: `prefix` and `sysconfdir`."""

    def __init__(self, name, root, prefix, sysconfdir):
        self.name, self.root, self.prefix, self.sysconfdir = name, root, prefix, sysconfdir
        self.config = os.path.join(sysconfdir, "fdsup", "fdsup.toml")
        self.logrotate = os.path.join(sysconfdir, "logrotate.d", "fdsup")
        self.unit = os.path.join(prefix, "lib/systemd/system/fdsupd.service")

    def installed(self, path):
        """Where `path` (as the installed system sees it) is on this machine now."""
        return self.root + path

    def read(self, path):
        with open(self.installed(path)) as f:
            return f.read()


def absolute_paths(text):
    """The absolute paths named in the lines of `text` that are not comments."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return re.findall(r"(?<![\w:/.])/[\w.+-]+(?:/[\w.+-]+)*", "\n".join(lines))


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fdsup-install-")
        # The configured prefix (no --prefix), two special cases of GNUInstallDirs (/usr:
        # the configuration in /etc; /opt/PKG: in /etc/opt/PKG), each staged in a DESTDIR;
        # and a plain --prefix installed into for real, without DESTDIR.
        real = os.path.join(cls.tmp, "real")
        cls.layouts = [
            Layout("configured", os.path.join(cls.tmp, "configured"), PREFIX, SYSCONFDIR),
            Layout("usr", os.path.join(cls.tmp, "usr"), "/usr", "/etc"),
            Layout("opt", os.path.join(cls.tmp, "opt"), "/opt/fdsup-test", "/etc/opt/fdsup-test"),
            Layout("real", "", real, os.path.join(real, "etc")),
        ]
        cls.configured, cls.usr, cls.opt, cls.real = cls.layouts
        cmake_install(destdir=cls.configured.root)
        cmake_install(prefix="/usr", destdir=cls.usr.root)
        cmake_install(prefix="/opt/fdsup-test/", destdir=cls.opt.root)  # a trailing slash is the same prefix
        cmake_install(prefix=real)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_the_files_land_below_the_prefix_given_at_install_time(self):
        for layout in self.layouts:
            with self.subTest(layout=layout.name):
                for relative in EXPECTED:
                    self.assertTrue(os.path.isfile(layout.installed(os.path.join(layout.prefix, relative))), relative)
                self.assertTrue(os.path.isfile(layout.installed(layout.config)))
                self.assertTrue(os.path.isfile(layout.installed(layout.logrotate)))
                for program in ("bin/fdsupctl", "sbin/fdsupd"):
                    mode = os.stat(layout.installed(os.path.join(layout.prefix, program))).st_mode
                    self.assertTrue(mode & stat.S_IXOTH, program)
                # Nothing else outside the prefix and the sysconfdir (no path of another prefix).
                top = layout.root or layout.prefix
                for directory, _, files in os.walk(top):
                    for name in files:
                        path = os.path.join(directory, name)[len(layout.root):]
                        self.assertTrue(path.startswith(layout.prefix + "/") or path.startswith(layout.sysconfdir + "/"),
                                        path)

    def test_the_unit_and_the_configuration_name_the_paths_of_their_installation(self):
        for layout in self.layouts:
            with self.subTest(layout=layout.name):
                unit = layout.read(layout.unit)
                self.assertIn(f"\nExecStart={layout.prefix}/sbin/fdsupd -c {layout.config}\n", unit)
                self.assertIn(f"\nExecReload={layout.prefix}/bin/fdsupctl reload\n", unit)
                config = layout.read(layout.config)
                demo = os.path.join(layout.prefix, "share/fdsup/demo_http.py")
                self.assertIn(f'command = ["python3", "{demo}"]', config)
                # The logrotate snippet's postrotate runs the fdsupctl installed beside it.
                logrotate = layout.read(layout.logrotate)
                self.assertIn(f"\n        {layout.prefix}/bin/fdsupctl reopen-logs ", logrotate)
                for text in (unit, config):
                    for path in absolute_paths(text):
                        self.assertTrue(path.startswith(layout.prefix + "/") or path.startswith(layout.sysconfdir + "/"),
                                        path)
                        self.assertTrue(os.path.isfile(layout.installed(path)), path)

    def test_the_installed_fdsupd_runs_and_accepts_the_installed_configuration(self):
        for layout in self.layouts:
            with self.subTest(layout=layout.name):
                fdsupd = layout.installed(os.path.join(layout.prefix, "sbin/fdsupd"))
                version = subprocess.run([fdsupd, "--version"], capture_output=True, text=True, check=True).stdout
                self.assertRegex(version, r"^fdsupd \d+\.\d+\.\d+ \(state format \d+\)\n$")
                r = subprocess.run([fdsupd, "--check-config", "-c", layout.installed(layout.config)],
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_an_existing_configuration_is_never_overwritten(self):
        for prefix, destdir in (("/usr", os.path.join(self.tmp, "again-usr")),
                                (os.path.join(self.tmp, "again-real"), None)):
            with self.subTest(prefix=prefix, destdir=destdir):
                cmake_install(prefix=prefix, destdir=destdir)
                root = destdir or ""
                config = root + ("/etc" if prefix == "/usr" else prefix + "/etc") + "/fdsup/fdsup.toml"
                unit = root + prefix + "/lib/systemd/system/fdsupd.service"
                with open(config) as f:
                    original = f.read()
                edited = original.replace('instances = 2', 'instances = 7') + "# the operator's own\n"
                self.assertNotEqual(edited, original)
                with open(config, "w") as f:
                    f.write(edited)
                with open(unit, "a") as f:
                    f.write("# edited\n")
                # Edited some time after it was installed: cmake sees the same mtime
                # within a second as the same file, and copies nothing.
                os.utime(unit, (0, 0))
                out = cmake_install(prefix=prefix, destdir=destdir)
                with open(config) as f:
                    self.assertEqual(f.read(), edited)
                self.assertIn(f"Not overwritten: {config} (it exists;", out)
                # Other files are installed again as always.
                with open(unit) as f:
                    self.assertNotIn("# edited", f.read())
                # Where there is none, it is installed again.
                os.unlink(config)
                cmake_install(prefix=prefix, destdir=destdir)
                with open(config) as f:
                    self.assertEqual(f.read(), original)

    def test_the_units_pass_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        # The installation without DESTDIR: the units name files that exist; verify checks
        # that ExecStart exists and that the Documentation= man pages can be found (MANPATH
        # points at the installed ones).
        units = os.path.join(self.real.prefix, "lib/systemd/system")
        r = subprocess.run(["systemd-analyze", "verify", os.path.join(units, "fdsupd.service"),
                            os.path.join(units, "fdsupd.socket")],
                           env=dict(os.environ, MANPATH=os.path.join(self.real.prefix, "share/man")),
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_the_man_pages_render_without_warnings(self):
        if shutil.which("groff") is None:
            self.skipTest("groff is not installed")
        layout = self.configured
        for page in ("share/man/man8/fdsupd.8", "share/man/man8/fdsupctl.8", "share/man/man5/fdsup.toml.5"):
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                                layout.installed(os.path.join(layout.prefix, page))],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)
        manual = layout.read(os.path.join(layout.prefix, "share/man/man8/fdsupctl.8"))
        for verb in ("status", "restart", "upgrade", "exec", "logs"):  # made from fdsupctl's own verb table
            self.assertIn(f".B {verb}", manual)

    def test_the_man_pages_keep_their_quotes(self):
        if shutil.which("groff") is None:
            self.skipTest("groff is not installed")
        layout = self.configured
        pages = {"share/man/man8/fdsupd.8": ['ENTRYPOINT ["/usr/sbin/fdsupd", "-c", "/etc/fdsup/fdsup.toml"]'],
                 "share/man/man5/fdsup.toml.5": ['sockets = ["http", "admin"] is shorthand for '
                                                 'fds = { 3 = "http", 4 = "admin" }'],
                 "share/man/man8/fdsupctl.8": []}
        for page, texts in pages.items():
            path = layout.installed(os.path.join(layout.prefix, page))
            # As man shows it, without overstriking, hyphenation or line breaks.
            r = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou", "-rHY=0", "-rLL=1000n", path],
                               capture_output=True, text=True, check=True)
            shown = " ".join(r.stdout.replace("\u2212", "-").replace("\u2010", "-").split())
            for text in texts:
                where = shown.find(text.split()[0])
                self.assertTrue(text in shown, f"{page} shows {shown[where:where + len(text) + 20]!r}, not {text!r}")
            # A '"' inside an unquoted argument of a macro line (.B, .BR, ...) is not
            # shown as written: it must be \(dq (or "" inside a quoted argument).
            with open(path) as f:
                for number, line in enumerate(f, 1):
                    if re.match(r"^\.(B|I|BR|RB|BI|IB|IR|RI|SM|SB|IP|TP|SH|SS)\s", line):
                        unquoted = re.sub(r'(?<=\s)"(?:[^"]|"")*"(?=\s|$)', "", line.rstrip("\n"))
                        self.assertNotIn('"', unquoted, f"{page}:{number}: {line}")

    def test_cpack_builds_a_deb_for_usr_with_the_same_files(self):
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
        # Below /usr, the configuration in /etc, whatever prefix the build was configured with.
        layout = Layout("deb", os.path.join(out, "root"), "/usr", "/etc")
        self.assertEqual(files, {os.path.join("/usr", relative) for relative in EXPECTED} |
                         {layout.config, layout.logrotate} | {f for f in files if f.startswith("/usr/share/doc/fdsup/")})
        subprocess.run(["dpkg-deb", "-x", deb, layout.root], check=True)
        unit = layout.read(layout.unit)
        self.assertIn("\nExecStart=/usr/sbin/fdsupd -c /etc/fdsup/fdsup.toml\n", unit)
        self.assertIn("\nExecReload=/usr/bin/fdsupctl reload\n", unit)
        self.assertIn('command = ["python3", "/usr/share/fdsup/demo_http.py"]', layout.read(layout.config))
        control = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends"], capture_output=True, text=True,
                                 check=True).stdout
        self.assertIn("Package: fdsup", control)
        self.assertIn("libuv1", control)
        conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], capture_output=True, text=True,
                                   check=True).stdout
        self.assertEqual(conffiles, "/etc/fdsup/fdsup.toml\n/etc/logrotate.d/fdsup\n")  # kept across package upgrades


if __name__ == "__main__":
    unittest.main()
