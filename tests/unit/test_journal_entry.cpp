// stdout/stderr = "journal": the native protocol's fields (plain and length-prefixed),
// a line's <N> priority prefix, and the datagrams a JournalSink sends to a socket bound
// here (a temp dir, no journald), with its fallback when nothing listens.
#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "output/journal_entry.h"
#include "output/journal_sink.h"
#include "sys/unique_fd.h"

using namespace fdsup;

namespace {

// The fields of one datagram, in order; both forms decoded, as journald does.
std::vector<std::pair<std::string, std::string>> decode(std::string_view d) {
    std::vector<std::pair<std::string, std::string>> fields;
    while (!d.empty()) {
        size_t end = d.find_first_of("=\n");
        REQUIRE(end != std::string_view::npos);
        std::string key(d.substr(0, end));
        if (d[end] == '=') {
            size_t newline = d.find('\n', end);
            REQUIRE(newline != std::string_view::npos);
            fields.emplace_back(key, std::string(d.substr(end + 1, newline - end - 1)));
            d.remove_prefix(newline + 1);
        } else {
            REQUIRE(d.size() >= end + 1 + 8);
            uint64_t length = 0;
            for (int i = 0; i < 8; ++i) length |= uint64_t(uint8_t(d[end + 1 + i])) << (8 * i);
            size_t start = end + 1 + 8;
            REQUIRE(d.size() >= start + length + 1);
            fields.emplace_back(key, std::string(d.substr(start, length)));
            CHECK(d[start + length] == '\n');
            d.remove_prefix(start + length + 1);
        }
    }
    return fields;
}

std::map<std::string, std::string> as_map(const std::vector<std::pair<std::string, std::string>>& fields) {
    return {fields.begin(), fields.end()};
}

// A datagram socket bound in a temp dir, standing in for journald.
struct FakeJournal {
    std::filesystem::path dir;
    std::string path;
    UniqueFd fd;
    FakeJournal() {
        char pattern[] = "/tmp/fdsup-journal-unit-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        dir = pattern;
        path = (dir / "socket").string();
        fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        REQUIRE(fd);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        int on = 1;
        REQUIRE(::setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
    }
    ~FakeJournal() { std::filesystem::remove_all(dir); }
    // The next datagram and the pid its credentials name; nullopt if none is queued.
    std::optional<std::pair<std::string, pid_t>> receive() {
        char buffer[65536];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        iovec iov{buffer, sizeof buffer};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd.get(), &msg, 0);
        if (n < 0) return std::nullopt;
        pid_t pid = -1;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cred;
                std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
                pid = cred.pid;
            }
        return std::make_pair(std::string(buffer, static_cast<size_t>(n)), pid);
    }
};

// fdsupd's log, captured for the test's duration.
struct CapturedLog {
    std::ostringstream text;
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    CapturedLog() {
        auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(text));
        logger->set_pattern("%l %v");
        logger->set_level(spdlog::level::info);
        spdlog::set_default_logger(logger);
    }
    ~CapturedLog() { spdlog::set_default_logger(previous); }
    size_t count(const std::string& needle) const {
        std::string all = text.str();
        size_t n = 0;
        for (size_t at = all.find(needle); at != std::string::npos; at = all.find(needle, at + 1)) ++n;
        return n;
    }
};

// Without CAP_SYS_ADMIN in the effective set for its lifetime (root keeps it permitted,
// and gets it back): the kernel then refuses credentials naming another process.
struct WithoutSysAdmin {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct saved[2]{};
    WithoutSysAdmin() {
        REQUIRE(::syscall(SYS_capget, &header, saved) == 0);
        __user_cap_data_struct lowered[2] = {saved[0], saved[1]};
        lowered[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
        REQUIRE(::syscall(SYS_capset, &header, lowered) == 0);
    }
    ~WithoutSysAdmin() { ::syscall(SYS_capset, &header, saved); }
};

}  // namespace

TEST_CASE("journal entry: a plain field is KEY=value") {
    std::string d;
    append_journal_field(d, "MESSAGE", "hello wörld");
    append_journal_field(d, "PRIORITY", "6");
    append_journal_field(d, "EMPTY", "");
    CHECK(d == "MESSAGE=hello wörld\nPRIORITY=6\nEMPTY=\n");
}

TEST_CASE("journal entry: a value with a newline or a NUL is length-prefixed (64-bit little-endian)") {
    std::string d;
    append_journal_field(d, "MESSAGE", "two\nlines");
    CHECK(d == std::string("MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\n", 8 + 8 + 9 + 1));
    std::string with_nul("a\0b", 3);
    std::string e;
    append_journal_field(e, "X", with_nul);
    CHECK(e == std::string("X\n\x03\0\0\0\0\0\0\0a\0b\n", 2 + 8 + 3 + 1));
    // Both forms in one datagram decode back to the values.
    std::string both = d + "PRIORITY=3\n" + e;
    auto fields = decode(both);
    REQUIRE(fields.size() == 3);
    CHECK(fields[0] == std::make_pair(std::string("MESSAGE"), std::string("two\nlines")));
    CHECK(fields[1].second == "3");
    CHECK(fields[2].second == with_nul);
    // A long value: its length in more than one byte.
    std::string long_value(300, 'x');
    long_value[150] = '\n';
    std::string l;
    append_journal_field(l, "M", long_value);
    CHECK(uint8_t(l[2]) == (300 & 0xff));
    CHECK(uint8_t(l[3]) == (300 >> 8));
    CHECK(decode(l)[0].second == long_value);
}

TEST_CASE("journal entry: a leading <N>, N = 0..7, is the priority and leaves the message") {
    auto p = parse_line_priority("<3>x", false);
    CHECK(p.priority == 3);
    CHECK(p.message == "x");
    CHECK(parse_line_priority("<0>emerg", true).priority == 0);
    CHECK(parse_line_priority("<7>debug", true).priority == 7);
    CHECK(parse_line_priority("<7>debug", true).message == "debug");
    // Only the prefix: a priority and an empty message.
    p = parse_line_priority("<5>", true);
    CHECK(p.priority == 5);
    CHECK(p.message.empty());
    // Only the first prefix counts.
    CHECK(parse_line_priority("<2><4>x", false).message == "<4>x");
}

TEST_CASE("journal entry: anything else is text, with the stream's default priority") {
    for (std::string_view text : {"<9>x", "<3", "<>", "<10>x", "<-1>x", "x<3>", " <3>x", "<a>x", ""}) {
        CAPTURE(text);
        auto out = parse_line_priority(text, false);
        CHECK(out.priority == kStdoutPriority);
        CHECK(out.message == text);
        auto err = parse_line_priority(text, true);
        CHECK(err.priority == kStderrPriority);
        CHECK(err.message == text);
    }
    CHECK(kStdoutPriority == 6);  // info
    CHECK(kStderrPriority == 4);  // warning
}

TEST_CASE("journal sink: one datagram per line, with the stream's fields, its pid in the credentials") {
    FakeJournal journal;
    CapturedLog log;
    JournalConnection connection(journal.path);
    // Our own pid: credentials any process may send.
    JournalSink out(connection, StreamOrigin{"web", 2, ::getpid(), false});
    JournalSink err(connection, StreamOrigin{"web", 2, ::getpid(), true});
    auto now = std::chrono::system_clock::now();
    out.write_line(now, "hello");
    out.write_line(now, "<3>failed");
    out.write_line(now, "");
    err.write_line(now, "oops");
    err.write_line(now, std::string("nul\0inside", 10));
    out.flush();
    err.flush();

    struct Expected {
        std::string message, priority, stream;
    };
    std::vector<Expected> expected{{"hello", "6", "stdout"},
                                   {"failed", "3", "stdout"},
                                   {"", "6", "stdout"},
                                   {"oops", "4", "stderr"},
                                   {std::string("nul\0inside", 10), "4", "stderr"}};
    for (const auto& e : expected) {
        auto got = journal.receive();
        REQUIRE(got);
        CHECK(got->second == ::getpid());
        auto fields = decode(got->first);
        CHECK(fields[0].first == "MESSAGE");
        auto f = as_map(fields);
        CHECK(f["MESSAGE"] == e.message);
        CHECK(f["PRIORITY"] == e.priority);
        CHECK(f["SYSLOG_IDENTIFIER"] == "web");
        CHECK(f["FDSUP_WORKER"] == "web");
        CHECK(f["FDSUP_INSTANCE"] == "2");
        CHECK(f["FDSUP_STREAM"] == e.stream);
        CHECK(f["FDSUP_PID"] == std::to_string(::getpid()));
        CHECK(f.count("OBJECT_PID") == 0);  // the credentials named it
    }
    CHECK_FALSE(journal.receive());
    CHECK(log.text.str().empty());
}

TEST_CASE("journal sink: a pid the credentials cannot name goes in OBJECT_PID") {
    FakeJournal journal;
    JournalConnection connection(journal.path);
    // A pid that is not running (ESRCH as root, EPERM otherwise: the same outcome).
    pid_t gone = 4194000;
    while (::kill(gone, 0) == 0 || errno != ESRCH) --gone;
    JournalSink out(connection, StreamOrigin{"db", 0, gone, false});
    out.write_line(std::chrono::system_clock::now(), "last words");
    auto got = journal.receive();
    REQUIRE(got);
    CHECK(got->second == ::getpid());  // the kernel filled in the sender's
    auto f = as_map(decode(got->first));
    CHECK(f["MESSAGE"] == "last words");
    CHECK(f["OBJECT_PID"] == std::to_string(gone));
    CHECK(f["FDSUP_PID"] == std::to_string(gone));
}

TEST_CASE("journal sink: once its process is reaped, a stream no longer names the pid (another may have it)") {
    if (::geteuid() != 0) {
        MESSAGE("needs root: naming another process in the credentials takes CAP_SYS_ADMIN");
        return;
    }
    FakeJournal journal;
    JournalConnection connection(journal.path);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    // The child stands for a process that took the reaped instance's pid.
    JournalSink out(connection, StreamOrigin{"web", 0, child, false});
    out.write_line(std::chrono::system_clock::now(), "still running");
    out.process_gone();
    out.write_line(std::chrono::system_clock::now(), "drained after the reap");
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    auto first = journal.receive();
    REQUIRE(first);
    CHECK(first->second == child);
    CHECK(as_map(decode(first->first)).count("OBJECT_PID") == 0);
    auto second = journal.receive();
    REQUIRE(second);
    CHECK(second->second == ::getpid());
    auto f = as_map(decode(second->first));
    CHECK(f["MESSAGE"] == "drained after the reap");
    CHECK(f["OBJECT_PID"] == std::to_string(child));
}

TEST_CASE("journal sink: without a journal, lines go to fdsupd's log, with one warning, and come back") {
    FakeJournal journal;
    std::string missing = (journal.dir / "nobody-here").string();
    CapturedLog log;
    JournalConnection connection(missing);
    JournalSink out(connection, StreamOrigin{"web", 0, ::getpid(), false});
    auto now = std::chrono::system_clock::now();
    out.write_line(now, "first");
    out.write_line(now, "<3>second");
    out.flush();
    CHECK(log.count("warning journal " + missing + ": No such file or directory; web[0] stdout goes to fdsupd's log") ==
          1);
    CHECK(log.count("info web[0]: first") == 1);
    CHECK(log.count("info web[0]: <3>second") == 1);  // as "log" would write it
    CHECK(log.count("warning") == 1);

    // The socket appears: a new stream (an instance starting) tries it again.
    std::filesystem::rename(journal.path, missing);
    connection.retry_soon();
    out.write_line(now, "third");
    auto got = journal.receive();
    REQUIRE(got);
    CHECK(as_map(decode(got->first))["MESSAGE"] == "third");
    CHECK(log.count("info journal " + missing + ": back; 2 lines went to fdsupd's log meanwhile") == 1);
    CHECK(log.count("third") == 0);
    CHECK(log.count("warning") == 1);
}

TEST_CASE("journal sink: a journal that does not take lines costs one bounded wait, and nothing is lost") {
    FakeJournal journal;  // never read until the end: its queue fills (net.unix.max_dgram_qlen)
    CapturedLog log;
    JournalConnection connection(journal.path);
    JournalSink out(connection, StreamOrigin{"web", 0, ::getpid(), false});
    auto now = std::chrono::system_clock::now();
    // More than any queue holds: net.unix.max_dgram_qlen is 10 by the kernel's default,
    // 512 where systemd's sysctl.d sets it.
    constexpr int kLines = 2000;
    auto began = Clock::now();
    for (int i = 0; i < kLines; ++i) out.write_line(now, "line " + std::to_string(i));
    out.flush();
    // One wait for room (the first full queue), not one per line.
    CHECK(Clock::now() - began >= JournalConnection::kMaxWait);
    CHECK(log.count("warning journal " + journal.path +
                    ": full (journald is behind; fdsupd waits for room at most 250 ms in 500); web[0] stdout") == 1);
    for (int i = 0; i < 3; ++i) out.write_line(now, "later " + std::to_string(i));  // no wait: still full
    out.flush();
    CHECK(log.count("warning") == 1);

    // Every line is in the journal or in fdsupd's log, once, in order.
    std::vector<std::string> received;
    while (auto got = journal.receive()) received.push_back(as_map(decode(got->first))["MESSAGE"]);
    REQUIRE(!received.empty());
    REQUIRE(received.size() < kLines);
    for (size_t i = 0; i < received.size(); ++i) CHECK(received[i] == "line " + std::to_string(i));
    for (int i = static_cast<int>(received.size()); i < kLines; ++i)
        CHECK(log.count("info web[0]: line " + std::to_string(i) + "\n") == 1);
    for (int i = 0; i < 3; ++i) CHECK(log.count("info web[0]: later " + std::to_string(i) + "\n") == 1);

    // Read: it takes lines again, and says so once.
    out.write_line(now, "again");
    auto got = journal.receive();
    REQUIRE(got);
    CHECK(as_map(decode(got->first))["MESSAGE"] == "again");
    CHECK(log.count("info journal " + journal.path + ": takes lines again; " +
                    std::to_string(kLines - received.size() + 3) + " went to fdsupd's log meanwhile") == 1);
}

TEST_CASE("journal sink: credentials the kernel refuses are not offered again, the pid goes in OBJECT_PID") {
    FakeJournal journal;
    JournalConnection connection(journal.path);
    WithoutSysAdmin lowered;  // as a non-root fdsupd is
    // pid 1 exists, and is not us: naming it needs CAP_SYS_ADMIN (EPERM without).
    JournalSink first(connection, StreamOrigin{"web", 0, 1, false});
    CHECK_FALSE(connection.credentials_refused());
    first.write_line(std::chrono::system_clock::now(), "one");
    CHECK(connection.credentials_refused());
    JournalSink second(connection, StreamOrigin{"web", 1, 1, true});
    second.write_line(std::chrono::system_clock::now(), "two");
    for (std::string message : {"one", "two"}) {
        auto got = journal.receive();
        REQUIRE(got);
        CHECK(got->second == ::getpid());
        auto f = as_map(decode(got->first));
        CHECK(f["MESSAGE"] == message);
        CHECK(f["OBJECT_PID"] == "1");
        CHECK(f["FDSUP_PID"] == "1");
    }
    CHECK_FALSE(journal.receive());
}

TEST_CASE("journal sink: every stream shares one wait budget: a slow journald holds the loop once, not per stream") {
    FakeJournal journal;  // read by hand: one line taken between the two streams' reads
    CapturedLog log;
    JournalConnection connection(journal.path);
    JournalSink first(connection, StreamOrigin{"web", 0, ::getpid(), false});
    JournalSink second(connection, StreamOrigin{"web", 1, ::getpid(), false});
    auto now = std::chrono::system_clock::now();
    // The first stream's read fills the queue and waits for room, in vain: the budget
    // (kMaxWait) is spent, and its line goes to fdsupd's log.
    int lines = 0;
    auto began = Clock::now();
    while (connection.waits() == 0) {
        REQUIRE(lines < 5000);
        first.write_line(now, "first " + std::to_string(lines++));
    }
    first.flush();
    CHECK(Clock::now() - began >= JournalConnection::kMaxWait);
    uint64_t waits = connection.waits();
    CHECK(log.count("info web[0]: first " + std::to_string(lines - 1) + "\n") == 1);

    // journald takes one line: the next stream's read sends one, finds the queue full
    // again, and does not wait (the budget is spent, its pause not over: the loop was
    // held for kMaxWait a moment ago); its other lines go to fdsupd's log at once. (The
    // pause lasts kMaxWait past the budget's end: this read would have to take longer
    // than that for a new budget to begin.)
    REQUIRE(journal.receive());
    auto second_began = Clock::now();
    for (int i = 0; i < 3; ++i) second.write_line(now, "second " + std::to_string(i));
    second.flush();
    CHECK(connection.waits() == waits);
    CHECK(Clock::now() - second_began < JournalConnection::kMaxWait);
    CHECK(log.count("info web[1]: second 0\n") == 0);
    CHECK(log.count("info web[1]: second 1\n") == 1);
    CHECK(log.count("info web[1]: second 2\n") == 1);
    std::vector<std::string> received;
    while (auto got = journal.receive()) received.push_back(as_map(decode(got->first))["MESSAGE"]);
    REQUIRE(!received.empty());
    CHECK(received.back() == "second 0");
}

TEST_CASE("journal connection: what a send's errno means") {
    using F = JournalConnection::Failure;
    CHECK(JournalConnection::classify(EINVAL, true) == F::unmapped_credentials);
    CHECK(JournalConnection::classify(EPERM, true) == F::refused_credentials);
    CHECK(JournalConnection::classify(ESRCH, true) == F::no_such_pid);
    for (int err : {EINVAL, EPERM, ESRCH, EBADF}) CHECK(JournalConnection::classify(err, false) == F::outage);
    for (int err : {ECONNREFUSED, ENOENT, ECONNRESET, ENOTCONN, EPIPE})
        for (bool with : {true, false}) CHECK(JournalConnection::classify(err, with) == F::gone);
    CHECK(JournalConnection::classify(EAGAIN, true) == F::full);
    CHECK(JournalConnection::classify(EINTR, false) == F::again);
    CHECK(JournalConnection::classify(EMSGSIZE, true) == F::this_line);
}

TEST_CASE("journal sink: ids unmapped in fdsupd's user namespace drop that stream's credentials, not the journal") {
    FakeJournal journal;
    // A child in a user namespace of its own with no uid or gid map: every id is
    // unmapped there (as 65534, the overflow id, is in a container mapping a range),
    // and the kernel answers EINVAL to credentials naming one.
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (::unshare(CLONE_NEWUSER) != 0) ::_exit(77);
        int code = 0;
        CapturedLog log;
        spdlog::default_logger()->set_level(spdlog::level::debug);
        JournalConnection connection(journal.path);
        // Its own pid, so the pid is not what the kernel objects to; its ids, read from
        // /proc, are 65534 as seen from here.
        JournalSink sink(connection, StreamOrigin{"web", 0, ::getpid(), false});
        auto now = std::chrono::system_clock::now();
        sink.write_line(now, "one");
        sink.write_line(now, "two");
        if (log.count("has no mapping") != 1) code |= 1;  // tried once, by this sink
        if (connection.credentials_refused()) code |= 2;   // not for every stream
        JournalConnection::Credentials unmapped{::getpid(), 65534, 65534};
        if (connection.send("MESSAGE=probe\n", &unmapped, "probe") != JournalConnection::Sent::unmapped_credentials)
            code |= 4;
        if (log.count("warning") != 0) code |= 8;  // no outage
        ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        MESSAGE("no user namespace here (unshare(CLONE_NEWUSER) failed): not checked");
        return;
    }
    CHECK(WEXITSTATUS(status) == 0);
    for (std::string message : {"one", "two"}) {
        auto got = journal.receive();
        REQUIRE(got);
        CHECK(got->second == child);  // the kernel filled in the sender's
        auto f = as_map(decode(got->first));
        CHECK(f["MESSAGE"] == message);
        CHECK(f["OBJECT_PID"] == std::to_string(child));
        CHECK(f["FDSUP_PID"] == std::to_string(child));
    }
    CHECK_FALSE(journal.receive());
}
