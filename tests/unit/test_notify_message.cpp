#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "notify/notify_message.h"

using namespace std::string_view_literals;
using fdsup::notify::kMaxMessageSize;
using fdsup::notify::NotifyMessage;
using fdsup::notify::parse_notify_message;
using fdsup::notify::WatchdogRequest;

namespace {

// The parsed message; fails the test case if the datagram was rejected.
NotifyMessage parsed(std::string_view datagram) {
    auto result = parse_notify_message(datagram);
    if (!result) FAIL_CHECK("rejected: " << result.error().text());
    REQUIRE(result.has_value());
    return *result;
}

// The error text; fails the test case if the datagram was accepted.
std::string error_of(std::string_view datagram) {
    auto result = parse_notify_message(datagram);
    REQUIRE_FALSE(result.has_value());
    return result.error().text();
}

}  // namespace

TEST_CASE("notify message: a multi-line message as libsystemd sends it") {
    auto m = parsed("READY=1\nSTATUS=Serving 10 req/s\nMAINPID=42");
    CHECK(m.ready);
    REQUIRE(m.status.has_value());
    CHECK(*m.status == "Serving 10 req/s");
    CHECK(m.main_pid == 42);
    // Nothing else was set.
    CHECK_FALSE(m.reloading);
    CHECK_FALSE(m.stopping);
    CHECK(m.watchdog == WatchdogRequest::none);
    CHECK_FALSE(m.extend_timeout_usec.has_value());
    CHECK(m.ignored_keys.empty());
}

TEST_CASE("notify message: every flag key") {
    auto m = parsed("READY=1\nRELOADING=1\nSTOPPING=1\nBARRIER=1\nFDSTORE=1\nFDSTOREREMOVE=1\n");
    CHECK(m.ready);
    CHECK(m.reloading);
    CHECK(m.stopping);
    CHECK(m.barrier);
    CHECK(m.fd_store);
    CHECK(m.fd_store_remove);
    CHECK(m.ignored_keys.empty());
}

TEST_CASE("notify message: WATCHDOG=1 pings, WATCHDOG=trigger triggers") {
    CHECK(parsed("WATCHDOG=1").watchdog == WatchdogRequest::ping);
    CHECK(parsed("WATCHDOG=trigger").watchdog == WatchdogRequest::trigger);
    CHECK(parsed("READY=1").watchdog == WatchdogRequest::none);
}

TEST_CASE("notify message: value keys") {
    auto m = parsed(
        "STATUS=a=b\nFDNAME=web-8080\nFDPOLL=0\nEXTEND_TIMEOUT_USEC=5000000\n"
        "WATCHDOG_USEC=2000000\nMONOTONIC_USEC=123456789\nMAINPID=4242\nERRNO=13\n");
    // Only the first '=' separates key and value.
    CHECK(m.status == "a=b");
    CHECK(m.fd_name == "web-8080");
    REQUIRE(m.fd_poll.has_value());
    CHECK_FALSE(*m.fd_poll);
    CHECK(m.extend_timeout_usec == uint64_t{5000000});
    CHECK(m.watchdog_usec == uint64_t{2000000});
    CHECK(m.monotonic_usec == uint64_t{123456789});
    CHECK(m.main_pid == 4242);
    CHECK(m.errno_value == 13);

    CHECK(parsed("FDPOLL=1").fd_poll == true);
    CHECK(parsed("ERRNO=0").errno_value == 0);
    // An empty STATUS clears the status text: it is valid.
    CHECK(parsed("STATUS=").status == "");
    // The full uint64 range is accepted.
    CHECK(parsed("EXTEND_TIMEOUT_USEC=18446744073709551615").extend_timeout_usec == UINT64_MAX);
}

TEST_CASE("notify message: trailing newline and empty lines are tolerated") {
    auto m = parsed("\nREADY=1\n\n\nSTATUS=ok\n\n");
    CHECK(m.ready);
    CHECK(m.status == "ok");
    CHECK(parsed("READY=1\n") == parsed("READY=1"));
}

TEST_CASE("notify message: unknown keys are ignored and listed") {
    // Newer clients send keys we do not know; the known ones still count.
    auto m = parsed("READY=1\nX_CUSTOM=1\nNOTIFYACCESS=all\nFUTURE_KEY=");
    CHECK(m.ready);
    CHECK(m.ignored_keys == std::vector<std::string>{"X_CUSTOM", "NOTIFYACCESS", "FUTURE_KEY"});
}

TEST_CASE("notify message: empty, NUL byte and oversize messages are rejected") {
    CHECK(error_of("") == "empty message");
    CHECK(error_of("READY=1\0STATUS=x"sv) == "message contains a NUL byte");
    CHECK(error_of("\0"sv) == "message contains a NUL byte");

    // Exactly kMaxMessageSize bytes is accepted, one more is not.
    std::string at_limit = "STATUS=" + std::string(kMaxMessageSize - 7, 'x');
    REQUIRE(at_limit.size() == kMaxMessageSize);
    CHECK(parsed(at_limit).status->size() == kMaxMessageSize - 7);
    std::string over = at_limit + "x";
    CHECK(error_of(over) == "message of 4097 bytes (at most 4096)");
}

TEST_CASE("notify message: malformed lines and keys are rejected") {
    CHECK(error_of("READY") == "line 1: not a KEY=VALUE assignment");
    CHECK(error_of("ready=1") == "line 1: invalid key (expected [A-Z0-9_]+)");
    CHECK(error_of("Ready=1") == "line 1: invalid key (expected [A-Z0-9_]+)");
    CHECK(error_of("=1") == "line 1: invalid key (expected [A-Z0-9_]+)");
    CHECK(error_of("READY-NOW=1") == "line 1: invalid key (expected [A-Z0-9_]+)");
    // One bad line rejects the whole datagram, even after good ones.
    CHECK(error_of("READY=1\nbogus") == "line 2: not a KEY=VALUE assignment");
}

TEST_CASE("notify message: flags other than 1 are rejected") {
    CHECK(error_of("READY=0") == "line 1: READY must be 1");
    CHECK(error_of("READY=yes") == "line 1: READY must be 1");
    CHECK(error_of("READY=") == "line 1: READY must be 1");
    CHECK(error_of("STOPPING=2") == "line 1: STOPPING must be 1");
    CHECK(error_of("FDSTOREREMOVE=true") == "line 1: FDSTOREREMOVE must be 1");
    CHECK(error_of("WATCHDOG=2") == "line 1: WATCHDOG must be 1 or trigger");
    CHECK(error_of("WATCHDOG=Trigger") == "line 1: WATCHDOG must be 1 or trigger");
    CHECK(error_of("FDPOLL=2") == "line 1: FDPOLL must be 0 or 1");
}

TEST_CASE("notify message: bad numbers are rejected") {
    const std::string usec = "line 1: EXTEND_TIMEOUT_USEC must be a non-negative integer";
    CHECK(error_of("EXTEND_TIMEOUT_USEC=-1") == usec);
    CHECK(error_of("EXTEND_TIMEOUT_USEC=abc") == usec);
    CHECK(error_of("EXTEND_TIMEOUT_USEC=") == usec);
    CHECK(error_of("EXTEND_TIMEOUT_USEC=12abc") == usec);
    CHECK(error_of("EXTEND_TIMEOUT_USEC= 12") == usec);
    // UINT64_MAX + 1 overflows.
    CHECK(error_of("EXTEND_TIMEOUT_USEC=18446744073709551616") == usec);
    CHECK(error_of("WATCHDOG_USEC=x") == "line 1: WATCHDOG_USEC must be a non-negative integer");
    CHECK(error_of("MONOTONIC_USEC=-5") == "line 1: MONOTONIC_USEC must be a non-negative integer");

    CHECK(error_of("MAINPID=0") == "line 1: MAINPID must be a positive pid");
    CHECK(error_of("MAINPID=-1") == "line 1: MAINPID must be a positive pid");
    CHECK(error_of("MAINPID=") == "line 1: MAINPID must be a positive pid");
    // Beyond pid_t's range (INT_MAX + 1).
    CHECK(error_of("MAINPID=2147483648") == "line 1: MAINPID must be a positive pid");
    CHECK(error_of("ERRNO=-1") == "line 1: ERRNO must be a non-negative integer");
    CHECK(error_of("ERRNO=2147483648") == "line 1: ERRNO must be a non-negative integer");
}

TEST_CASE("notify message: STATUS with control characters is rejected") {
    // Escape sequences would rewrite an operator's terminal in `fdsupctl status`.
    const std::string bad = "line 1: STATUS is not printable UTF-8";
    CHECK(error_of("STATUS=\x1b[2Jhi") == bad);
    CHECK(error_of("STATUS=a\rb") == bad);
    CHECK(error_of("STATUS=a\tb") == bad);
    CHECK(error_of("STATUS=a\x7f") == bad);
    // C1 control U+009B (CSI), encoded as valid UTF-8.
    CHECK(error_of("STATUS=\xc2\x9b") == bad);
}

TEST_CASE("notify message: STATUS with invalid UTF-8 is rejected") {
    const std::string bad = "line 1: STATUS is not printable UTF-8";
    CHECK(error_of("STATUS=a\x80") == bad);          // lone continuation byte
    CHECK(error_of("STATUS=\xc0\xaf") == bad);       // overlong '/'
    CHECK(error_of("STATUS=\xe0\x80\xaf") == bad);   // overlong 3-byte '/'
    CHECK(error_of("STATUS=\xed\xa0\x80") == bad);   // surrogate U+D800
    CHECK(error_of("STATUS=\xe2\x9c") == bad);       // truncated U+2713 at the end
    CHECK(error_of("STATUS=\xe2\x9c\nREADY=1") == bad);  // truncated before a newline
    CHECK(error_of("STATUS=\xf4\x90\x80\x80") == bad);   // beyond U+10FFFF
    CHECK(error_of("STATUS=\xff") == bad);
}

TEST_CASE("notify message: STATUS with valid multibyte UTF-8 is accepted") {
    // 2-, 3- and 4-byte sequences.
    auto m = parsed("STATUS=caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
    CHECK(m.status == "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
    CHECK(parsed("STATUS=\xf4\x8f\xbf\xbf").status.has_value());  // U+10FFFF, the last one
}

TEST_CASE("notify message: FDNAME rules") {
    const std::string bad = "line 1: FDNAME must be 1-255 printable ASCII characters without ':'";
    CHECK(error_of("FDNAME=a:b") == bad);
    CHECK(error_of("FDNAME=a b") == bad);
    CHECK(error_of("FDNAME=") == bad);
    CHECK(error_of("FDNAME=caf\xc3\xa9") == bad);
    CHECK(error_of("FDNAME=" + std::string(256, 'n')) == bad);
    CHECK(parsed("FDNAME=" + std::string(255, 'n')).fd_name == std::string(255, 'n'));
}

TEST_CASE("notify message: the error names the line it is on") {
    CHECK(error_of("READY=1\nSTATUS=ok\nREADY=yes") == "line 3: READY must be 1");
    // Empty lines still count as lines.
    CHECK(error_of("READY=1\n\nMAINPID=0\n") == "line 3: MAINPID must be a positive pid");
}
