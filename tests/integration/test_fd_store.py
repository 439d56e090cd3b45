"""The fd store: a worker parks fds with fdsupd (FDSTORE=1 over sd_notify, or
{"cmd":"store"} on the fd socket) and its next process gets them back after the
configured sockets, named in LISTEN_FDNAMES. Kept across crashes and restarts,
released on stop; hung-up fds are dropped unless FDPOLL=0; and nothing a worker or a
stranger sends can grow fdsupd's fd table beyond fd_store_max."""
import array
import json
import os
import re
import signal
import socket
import unittest

from fdsup_harness import (SOURCE_DIR, FdsupTestCase, fd_links, http_get, open_fd_count, wait_for_connections_closed,
                           wait_until)

SESSIONS = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.sess]
command = ["@HELPERS@/session_worker"]
sockets = ["http"]
ready = "notify"
fd_store_max = 4
restart = "always"
backoff = "50ms"
restart_strategy = "rolling"
stop_timeout = "5s"
"""

STORER = """
[workers.w]
command = ["@PYTHON@", "@SCRIPTS@/store_client.py", "@TMP@/plan.json", "@TMP@/results.jsonl"]
ready = "notify"
fd_store_max = {max}
backoff = "50ms"
"""


class Client:
    """One TCP connection to session_worker: a line out, "<pid> <fdnames> <line>" back."""

    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=20)
        self.buffer = b""

    def ask(self, line):
        self.sock.sendall(line.encode() + b"\n")
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed while waiting for the answer to {line!r}")
            self.buffer += chunk
        answer, _, self.buffer = self.buffer.partition(b"\n")
        pid, names, text = answer.decode().split(" ", 2)
        return int(pid), names, text

    def closed_by_peer(self):
        try:
            return self.sock.recv(4096) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def fd_store(d, worker):
    """{index: {name: count}} of a worker's fd store, from status --json."""
    status = d.ctl_json("status", worker)
    store = status["workers"][0]["fd_store"] or {"instances": []}
    return {slot["index"]: {n["name"]: n["fds"] for n in slot["names"]} for slot in store["instances"]}


def stop_and_wait_for_its_pipes(d, worker):
    """`fdsupctl stop` returns once the processes are gone; fdsupd closes their output
    pipes when it reads the EOF, a moment later: waits for that too."""
    pid = d.instance_pids(worker)[0]
    pipes = {os.readlink(f"/proc/{pid}/fd/{n}") for n in (1, 2)}
    d.ctl_ok("stop", worker)

    wait_until(lambda: not pipes & set(fd_links(d.pid)), what=f"{worker}'s output pipes closed in fdsupd")

    wait_for_connections_closed(d)


def fd_targets(pid):
    """What fdsupd's fds are, by kind ("socket", "pipe", "anon_inode:[eventpoll]", a
    path): equal counts of each kind, so a mismatch shows which kind it is."""
    kinds = {}
    for target in fd_links(pid):
        kind = re.sub(r":\[\d+\]$", "", target)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def environ_of(pid):
    """The environment `pid` was exec'd with (waits for the exec to have got that far:
    the launcher returns while the kernel may still be setting up the new image)."""
    def read():
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if b"=" in e)
        return env if "FDSUP_WORKER" in env else None
    return wait_until(read, what=f"the environment of pid {pid}")


class FdStoreSessions(FdsupTestCase):
    def start(self, config=SESSIONS):
        d = self.fdsupd(config).start()
        d.wait_control()
        d.wait_log(r"sess\[0\]: session_worker: pid \d+ resumed 0 connection")
        return d

    def test_a_stored_connection_outlives_its_worker_and_a_rolling_restart(self):
        d = self.start()
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)
        client = Client(d.address("http"))
        self.addCleanup(client.close)
        first, names, text = client.ask("one")
        self.assertEqual((names, text), ("http", "one"))
        conn = f"conn-{first}-1"
        wait_until(lambda: fd_store(d, "sess") == {0: {conn: 1}}, what="the connection in the fd store")
        self.assertIn(f"sess[0]: fd store: 1 of 4 fds: {conn} (1)", d.ctl_ok("status"))

        # Killed: the replacement gets the very connection, by name, after the socket.
        os.kill(first, signal.SIGKILL)
        second = d.current_pid("sess[0]", after=first)
        d.wait_log(rf"session_worker: pid {second} resumed 1 connection")
        self.assertEqual(client.ask("two"), (second, f"http:{conn}", "two"))
        env = environ_of(second)
        self.assertEqual((env["LISTEN_FDS"], env["LISTEN_FDNAMES"]), ("2", f"http:{conn}"))

        # A rolling restart hands the store to the new process, too.
        d.ctl_ok("restart", "sess")
        third = d.instance_pids("sess")[0]
        self.assertNotIn(third, (first, second))
        wait_until(lambda: not os.path.exists(f"/proc/{second}"), what="the old process gone")
        self.assertEqual(client.ask("three"), (third, f"http:{conn}", "three"))
        self.assertEqual(fd_store(d, "sess"), {0: {conn: 1}})  # handing over does not empty it

        # The client hangs up; the worker removes it (FDSTOREREMOVE=1): nothing is left.
        client.close()
        wait_until(lambda: fd_store(d, "sess") == {}, what="the store emptied by FDSTOREREMOVE=1")
        wait_until(lambda: open_fd_count(d.pid) == baseline, what=f"fdsupd back to {baseline} fds")

    def test_the_c_client_stores_through_the_fd_socket(self):
        d = self.start(SESSIONS.replace('session_worker"]', 'session_worker", "--fd-socket"]'))
        client = Client(d.address("http"))
        self.addCleanup(client.close)
        first, _, _ = client.ask("one")
        conn = f"conn-{first}-1"
        wait_until(lambda: fd_store(d, "sess") == {0: {conn: 1}}, what="the connection stored by fdsup_store_fds")
        os.kill(first, signal.SIGKILL)
        second = d.current_pid("sess[0]", after=first)
        self.assertEqual(client.ask("two"), (second, f"http:{conn}", "two"))

    def test_stop_releases_the_store_and_the_client_sees_the_end(self):
        d = self.start()
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)
        client = Client(d.address("http"))
        self.addCleanup(client.close)
        pid, _, _ = client.ask("hello")
        wait_until(lambda: fd_store(d, "sess") == {0: {f"conn-{pid}-1": 1}}, what="the connection stored")
        d.ctl_ok("stop", "sess")
        d.wait_log(r"sess\[0\]: fd store released \(the worker was stopped\): 1 fd\(s\) closed")
        # The worker and fdsupd held the only copies: the client's connection ends.
        self.assertTrue(client.closed_by_peer())
        self.assertEqual(fd_store(d, "sess"), {})
        wait_until(lambda: open_fd_count(d.pid) <= baseline, what="fdsupd's fds released")
        d.ctl_ok("start", "sess")
        d.wait_log(r"session_worker: pid \d+ resumed 0 connection", count=2)


class FdStorePythonClient(FdsupTestCase):
    def test_state_in_a_stored_memfd_survives_a_crash(self):
        # conf/examples/fdsup_fds.py --count: its request count lives in a memfd it
        # parked with store_fds(); the next process finds it through inherited_fds().
        d = self.fdsupd(f"""
[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.counter]
command = ["@PYTHON@", "{SOURCE_DIR}/conf/examples/fdsup_fds.py", "--count", "http"]
scm_rights = ["http"]
fd_store_max = 1
backoff = "50ms"
""").start()
        d.wait_control()
        d.wait_log(r"counter\[0\]: fdsup_fds: serving on fetched socket 'http'")
        address = d.address("http")
        first = d.instance_pids("counter")[0]
        self.assertTrue(http_get(*address).endswith(f"pid {first} via SCM_RIGHTS, request #1\n"))
        self.assertTrue(http_get(*address).endswith("request #2\n"))
        self.assertEqual(fd_store(d, "counter"), {0: {"counter": 1}})
        os.kill(first, signal.SIGKILL)
        second = d.current_pid("counter[0]", after=first)
        d.wait_log(r"counter\[0\]: fdsup_fds: serving on fetched socket 'http'", count=2)
        self.assertTrue(http_get(*address).endswith(f"pid {second} via SCM_RIGHTS, request #3\n"))


class FdStoreRules(FdsupTestCase):
    def storer(self, plan, max_fds=3, extra="", wait_for="plan: done"):
        """A store_client worker running `plan` (after READY=1); waits for its `wait_for` line."""
        d = self.fdsupd(STORER.format(max=max_fds) + extra)
        with open(os.path.join(d.tmp, "plan.json"), "w") as f:
            json.dump([{"notify": "READY=1"}] + plan + [{"say": "plan: done"}], f)
        d.start()
        d.wait_control()
        d.wait_log(rf"w\[0\]: {wait_for}")
        return d

    def results(self, d):
        try:
            with open(os.path.join(d.tmp, "results.jsonl")) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def test_systemd_rules_duplicates_limit_hangups_fdpoll_and_remove(self):
        d = self.storer([
            {"notify": "FDSTORE=1\nFDNAME=polled", "fds": ["pair:p1"]},
            {"notify": "FDSTORE=1\nFDNAME=unpolled\nFDPOLL=0", "fds": ["pair:p2"]},
            {"notify": "FDSTORE=1\nFDNAME=state", "fds": ["memfd:m"]},
            {"notify": "FDSTORE=1\nFDNAME=state", "fds": ["kept:m"]},  # the same open file again
            {"notify": "FDSTORE=1\nFDNAME=extra", "fds": ["null", "null"]},  # beyond fd_store_max = 3
            {"notify": "FDSTORE=1", "fds": []},  # nothing to store: nothing happens
            {"say": "plan: stored"},
            {"wait_signal": "USR1"},
            {"close": "p1"},  # the peers hang up: "polled" goes, "unpolled" (FDPOLL=0) stays
            {"close": "p2"},
            # A removal wins over a store in the same message; the fds that came with it close.
            {"notify": "FDSTOREREMOVE=1\nFDSTORE=1\nFDNAME=state", "fds": ["null"]},
        ], wait_for="plan: stored")
        wait_until(lambda: fd_store(d, "w") == {0: {"polled": 1, "unpolled": 1, "state": 1}}, what="three stored")
        d.wait_log(r'the fd store is full \(fd_store_max = 3, or 65536 bytes of names\): 2 of 2 fd\(s\) for "extra"')
        wait_for_connections_closed(d)
        with_store = open_fd_count(d.pid)

        d.ctl_ok("signal", "w", "USR1")
        d.wait_log(r'w\[0\]: stored fd "polled" hung up; dropped from the fd store')
        wait_until(lambda: fd_store(d, "w") == {0: {"unpolled": 1}}, what="polled and state gone")
        wait_until(lambda: open_fd_count(d.pid) == with_store - 2, what=f"fdsupd down to {with_store - 2} fds")

        # The next process (no sockets configured) finds it at fd 3.
        pid = d.instance_pids("w")[0]
        os.kill(pid, signal.SIGKILL)
        new_pid = d.current_pid("w[0]", after=pid)
        env = environ_of(new_pid)
        self.assertEqual((env["LISTEN_FDS"], env["LISTEN_FDNAMES"]), ("1", "unpolled"))
        self.assertTrue(os.readlink(f"/proc/{new_pid}/fd/3").startswith("socket:"))
        # Shutting down with a full store is clean (under ASan: no leak, no report).
        self.assertEqual(d.stop(), 0, d.log())

    def test_fds_stored_on_the_way_out_reach_the_next_start_of_a_stop_start_restart(self):
        # The store on SIGTERM, then exit: the datagram is queued before the exit is seen,
        # and fdsupd reads it first. A stop-start restart keeps the store.
        d = self.storer([
            {"say": "plan: waiting"},
            {"wait_signal": "TERM"},
            {"notify": "FDSTORE=1\nFDNAME=last-words\nFDPOLL=0", "fds": ["memfd:m"]},
            {"exit": 0},
        ], extra='restart_strategy = "stop-start"\n', wait_for="plan: waiting")
        first = d.instance_pids("w")[0]
        d.ctl_ok("restart", "w")
        second = d.instance_pids("w")[0]
        self.assertNotEqual(second, first)
        self.assertEqual(environ_of(second)["LISTEN_FDNAMES"], "last-words")
        self.assertEqual(fd_store(d, "w"), {0: {"last-words": 1}})

    def test_an_instance_that_ends_for_good_releases_its_store(self):
        d = self.storer([
            {"notify": "FDSTORE=1\nFDNAME=x\nFDPOLL=0", "fds": ["memfd:m"]},
            {"exit": 0},
        ], extra='restart = "on-failure"\n', wait_for="")
        d.wait_log(r"w\[0\]: fd store released \(the instance ended\): 1 fd\(s\) closed")
        self.assertEqual(d.ctl_json("status", "w")["workers"][0]["instances"][0]["state"], "exited")
        self.assertEqual(fd_store(d, "w"), {})

    def test_store_over_the_fd_socket_and_its_abuse(self):
        d = self.storer([
            {"fdsock": {"cmd": "store", "name": "conn-1"}, "fds": ["pair:a"]},
            {"fdsock": {"cmd": "store", "poll": False}, "fds": ["memfd:m"]},    # the default name
            {"fdsock": {"cmd": "store", "name": "again"}, "fds": ["kept:m"]},   # the same file: not again
            {"fdsock": {"cmd": "store", "name": "many"}, "fds": ["null"] * 200},  # 1 fits, 199 closed
            {"fdsock": {"cmd": "store", "name": "bad:name"}, "fds": ["null"]},
            {"fdsock": {"cmd": "store"}},                                        # no fds
            {"fdsock": {"cmd": "get", "names": ["s"]}, "fds": ["null"] * 3},     # fds with a get
            # 2 x 253 fds before the request line ends: more than one request may bring.
            {"parts": [['{"cmd":"store",', 253], ['"name":"x"}\n', 253]]},
            {"raw": '{"cmd":"store","name":"cut"', "fds": ["null"] * 50},         # truncated, hung up
        ])
        replies = self.results(d)
        self.assertEqual(replies[0], {"ok": True, "stored": 1, "duplicates": 0})
        self.assertEqual(replies[1], {"ok": True, "stored": 1, "duplicates": 0})
        self.assertEqual(replies[2], {"ok": True, "stored": 0, "duplicates": 1})
        self.assertEqual(replies[3], {"ok": False, "error": "the fd store is full (fd_store_max): 1 stored, 199 closed"})
        self.assertIn("\"name\" must be 1-255 printable ASCII characters without ':'", replies[4]["error"])
        self.assertIn("a store request needs fds", replies[5]["error"])
        self.assertEqual(replies[6], {"ok": False, "error": "fds sent with a get request; closed"})
        self.assertEqual(replies[7], {"ok": False, "error": "too many fds in one request (at most 253)"})
        self.assertEqual(len(replies), 8)
        self.assertEqual(fd_store(d, "w"), {0: {"conn-1": 1, "stored": 1, "many": 1}})
        # Every fd that was not stored is closed, and stop releases the stored ones: a
        # second round of the same requests leaves fdsupd with the same fds.
        stop_and_wait_for_its_pipes(d, "w")
        self.assertEqual(fd_store(d, "w"), {})
        wait_for_connections_closed(d)  # fd_store() just asked over the control socket
        after_one_round = fd_targets(d.pid)
        d.ctl_ok("start", "w")
        d.wait_log(r"w\[0\]: plan: done", count=2)
        self.assertEqual(self.results(d)[8:], replies)
        stop_and_wait_for_its_pipes(d, "w")
        self.assertEqual(fd_targets(d.pid), after_one_round)

        # A process that is no worker may not store, even as root; its fds are closed.
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, open("/dev/null") as null:
            s.connect(os.path.join(d.tmp, "run", "fds.sock"))
            s.sendmsg([b'{"cmd":"store","name":"x"}\n'],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [null.fileno()] * 100))])
            reply = json.loads(s.makefile().readline())
        self.assertEqual(reply, {"ok": False, "error": "only a worker can store fds (its own fd store)"})
        wait_until(lambda: open_fd_count(d.pid) == baseline, what="the stranger's fds closed")

    def test_stores_are_per_instance_handed_newest_first_and_go_with_scale_down_and_fd_store_max_0(self):
        d = self.fdsupd(STORER.format(max=2) + "instances = 2\n")
        with open(os.path.join(d.tmp, "plan.json"), "w") as f:
            json.dump([{"notify": "READY=1"}, {"notify": "FDSTORE=1\nFDNAME=first", "fds": ["memfd:m"]},
                       {"notify": "FDSTORE=1\nFDNAME=second", "fds": ["memfd:n"]}, {"say": "plan: done"}], f)
        d.start()
        d.wait_control()
        both = {"first": 1, "second": 1}
        wait_until(lambda: fd_store(d, "w") == {0: both, 1: both}, what="one store per instance")
        pid = d.instance_pids("w")[0]
        os.kill(pid, signal.SIGKILL)
        new_pid = d.current_pid("w[0]", after=pid)
        self.assertEqual(environ_of(new_pid)["LISTEN_FDNAMES"], "second:first")  # systemd's order
        d.ctl_ok("scale", "w", "1")
        d.wait_log(r"w\[1\]: fd store released \(the instance was scaled away\): 2 fd\(s\) closed")
        self.assertEqual(fd_store(d, "w"), {0: both})
        d.write_config(STORER.format(max=0))
        d.ctl_ok("reload")
        d.wait_log(r"w\[0\]: fd store released \(fd_store_max is now 0\): 2 fd\(s\) closed")
        self.assertIsNone(d.ctl_json("status", "w")["workers"][0]["fd_store"])

    def test_without_fd_store_max_nothing_is_stored_and_the_rest_is_handled(self):
        d = self.storer([{"notify": "READY=1\nSTATUS=still here\nFDSTORE=1\nFDNAME=a", "fds": ["null"]}],
                        max_fds=0)
        d.wait_log(r"FDSTORE=1 refused, fds closed: the fd store is not enabled for this worker \(fd_store_max = 0\)")
        worker = d.ctl_json("status", "w")["workers"][0]
        self.assertIsNone(worker["fd_store"])
        self.assertEqual(worker["instances"][0]["status"], "still here")


if __name__ == "__main__":
    unittest.main()
