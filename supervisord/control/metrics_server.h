// [supervisor] metrics_listen: the Prometheus exposition over HTTP, on fdsupd's own loop,
// and the health endpoints beside it (SPEC "Health"). One request per connection:
// `GET /metrics` gets the text (control/metrics.h), `/healthz` and `/readyz` their
// pages; any other path 404, any other method 405, a malformed request 400. Then the
// connection is closed.
//
// Limits (each protects fdsupd and the scrapers): at most kMaxClients connections (a new
// one pushes out the oldest that has not sent a whole request yet), a request head of
// about kMaxRequest bytes (431), kTimeout for the whole exchange; replies are written
// without blocking the loop; out of fds, accepting pauses instead of spinning.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "loop/uv_handles.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::control {

class MetricsServer {
public:
    static constexpr size_t kMaxClients = 16;
    static constexpr size_t kMaxRequest = 8 * 1024;
    static constexpr auto kTimeout = std::chrono::seconds(10);

    // A page as served: its status code, body and content type, made per request.
    struct Page {
        int code = 200;
        std::string body;
        const char* type = "text/plain; charset=utf-8";
    };
    using Pages = std::map<std::string, std::function<Page()>>;  // by path ("/metrics")

    // `listen`: "HOST:PORT" as metrics_listen has it (a numeric or named host; [v6]).
    static Result<std::unique_ptr<MetricsServer>> open(uv_loop_t* loop, const std::string& listen, Pages pages);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    const std::string& bound() const { return bound_; }  // "127.0.0.1:9187"

private:
    struct Client;
    MetricsServer(uv_loop_t* loop, UniqueFd fd, std::string bound, Pages pages);
    void on_accept();
    void on_readable(Client& client);
    // Sends the reply, then closes (the client may be gone when this returns).
    void respond(Client& client, int code, const char* reason, const std::string& body, const char* type,
                 bool head_only = false);
    void on_writable(Client& client);
    void close(uint64_t id);

    uv_loop_t* loop_;
    UniqueFd fd_;
    std::string bound_;
    Pages pages_;
    FdWatch watch_;
    Timer accept_pause_;  // out of fds: accepting waits a moment
    std::map<uint64_t, std::unique_ptr<Client>> clients_;  // by id: oldest first
    uint64_t next_id_ = 1;
};

}  // namespace fdsup::control
