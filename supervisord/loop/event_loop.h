// fdsupd's one libuv loop, owned. Destroyed last (declare it first): by then every
// handle's owner has called uv_close, and the destructor runs the loop once more so
// that those closes finish before the loop is closed.
#pragma once

#include <spdlog/spdlog.h>
#include <uv.h>

namespace fdsup {

class EventLoop {
public:
    EventLoop() { uv_loop_init(&loop_); }
    ~EventLoop() {
        uv_run(&loop_, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop_) != 0) spdlog::debug("loop closed with handles still open");
    }
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    uv_loop_t* get() { return &loop_; }

private:
    uv_loop_t loop_{};
};

}  // namespace fdsup
