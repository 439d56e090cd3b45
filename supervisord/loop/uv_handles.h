// RAII owners for the libuv handles the supervisor uses. A libuv handle may only be
// freed from its close callback, after uv_close; these wrappers keep the handle in a
// heap box that the close callback deletes, so the owner can be destroyed at any time
// and no callback ever reaches a destroyed owner.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <utility>

#include "sys/signal_dispositions.h"

namespace fdsup {

template <class Handle, class Callback>
class UvBox {
public:
    UvBox() = default;
    ~UvBox() {
        if (box_ == nullptr) return;
        box_->callback = nullptr;
        if (box_->initialised)
            uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle),
                     [](uv_handle_t* h) { delete static_cast<Box*>(h->data); });
        else
            delete box_;
    }
    UvBox(const UvBox&) = delete;
    UvBox& operator=(const UvBox&) = delete;

protected:
    struct Box {
        Handle handle{};
        Callback callback;
        bool initialised = false;
    };
    static Box* box_of(Handle* h) { return static_cast<Box*>(h->data); }
    // Made on first use: a Timer that never runs (most instances' watchdog timer)
    // costs no allocation.
    Box& box() {
        if (box_ == nullptr) {
            box_ = new Box;
            box_->handle.data = box_;
        }
        return *box_;
    }
    Box* box_ = nullptr;
};

// A one-shot timer.
class Timer : public UvBox<uv_timer_t, std::function<void()>> {
public:
    explicit Timer(uv_loop_t* loop) : loop_(loop) {}
    void start(std::chrono::milliseconds delay, std::function<void()> callback) {
        Box& b = box();
        if (!b.initialised) {
            uv_timer_init(loop_, &b.handle);
            b.initialised = true;
        }
        b.callback = std::move(callback);
        uv_timer_start(&b.handle, &Timer::fire, static_cast<uint64_t>(delay.count()), 0);
    }
    void stop() {
        if (box_ == nullptr) return;
        uv_timer_stop(&box_->handle);
        box_->callback = nullptr;
    }
    bool active() const {
        return box_ != nullptr && uv_is_active(reinterpret_cast<const uv_handle_t*>(&box_->handle)) != 0;
    }

private:
    static void fire(uv_timer_t* h) {
        // Move out first: the callback may restart or destroy this timer.
        auto callback = std::move(box_of(h)->callback);
        box_of(h)->callback = nullptr;
        if (callback) callback();
    }

    uv_loop_t* loop_;
};

// Readiness of an fd the caller owns (pidfds, pipes). The caller must destroy the
// watch before closing the fd.
class FdWatch : public UvBox<uv_poll_t, std::function<void(int status, int events)>> {
public:
    FdWatch(uv_loop_t* loop, int fd) {
        if (uv_poll_init(loop, &box().handle, fd) == 0) box_->initialised = true;
    }
    bool ok() const { return box_->initialised; }
    int start(int events, std::function<void(int status, int events)> callback) {
        if (!box_->initialised) return UV_EBADF;
        box_->callback = std::move(callback);
        return uv_poll_start(&box_->handle, events, &FdWatch::fire);
    }
    void stop() {
        if (box_->initialised) uv_poll_stop(&box_->handle);
    }

private:
    static void fire(uv_poll_t* h, int status, int events) {
        // A copy: the callback may destroy this watch (and with it the stored callback).
        auto callback = box_of(h)->callback;
        if (callback) callback(status, events);
    }
};

// A signal handler on the loop (signalfd-like: runs as a normal callback).
class SignalWatch : public UvBox<uv_signal_t, std::function<void(int)>> {
public:
    SignalWatch(uv_loop_t* loop, int signal, std::function<void(int)> callback) {
        uv_signal_init(loop, &box().handle);
        box_->initialised = true;
        box_->callback = std::move(callback);
        uv_signal_start(&box_->handle, [](uv_signal_t* h, int sig) {
            if (box_of(h)->callback) box_of(h)->callback(sig);
        }, signal);
        note_signal_dispositions_changed();  // libuv's handler: a spawn's child must drop it
    }
};

}  // namespace fdsup
