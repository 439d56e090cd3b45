// The check of `http = "http://..."`: one HTTP/1.1 GET on the loop, judged by its status
// line alone. 2xx and 3xx pass (a redirect is not followed: the app answered); anything
// else fails with its code. The connection is closed as soon as the status is known:
// the rest of the head and the body are never read.
//
// The request: "GET PATH HTTP/1.1", Host (as written in the URL; "localhost" for a unix
// socket), "User-Agent: fdsup-probe", "Connection: close". The timeout covers the
// connect, the request and the status line. At most 8 KiB are read: a response without
// a status line within them fails.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>

#include "config/probe_target.h"
#include "health/probe_check.h"

namespace fdsup::health {

// The response bytes read at most while looking for the status line.
constexpr size_t kMaxResponseHead = 8 * 1024;

// Details: "GET http://127.0.0.1:9000/healthz: 200", "... : 503",
// "...: connect: Connection refused", "...: timed out after 1.0s",
// "...: malformed status line \"SSH-2.0-OpenSSH\"",
// "...: no status line in the first 8 KiB of the response",
// "...: connection closed before a response".
std::unique_ptr<ProbeCheck> start_http_check(uv_loop_t* loop, const config::HttpUrl& url,
                                             std::chrono::milliseconds timeout, ProbeDone done);

}  // namespace fdsup::health
