#include "sys/two_threads.h"

#include <pthread.h>
#include <signal.h>

#include <exception>
#include <system_error>
#include <thread>

namespace fdsup {

void on_two_threads(bool worth_a_thread, const std::function<void(int part, int parts)>& work) {
    if (!worth_a_thread) {
        work(0, 1);
        return;
    }
    // A thread inherits the mask of the one that starts it: block everything around the
    // start, so that no signal is ever delivered to the helper.
    sigset_t all, before;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    std::thread helper;
    // What either part throws is thrown here, once both have ended: a thread that ends
    // with an exception, or one left unjoined, would take the whole process down.
    std::exception_ptr helper_failed;
    try {
        helper = std::thread([&work, &helper_failed] {
            try {
                work(1, 2);
            } catch (...) {
                helper_failed = std::current_exception();
            }
        });
    } catch (const std::system_error&) {
        // Out of threads (pids.max, RLIMIT_NPROC): the same work, on this thread alone.
    }
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (!helper.joinable()) {
        work(0, 1);
        return;
    }
    try {
        work(0, 2);
    } catch (...) {
        helper.join();
        throw;
    }
    helper.join();
    if (helper_failed) std::rethrow_exception(helper_failed);
}

}  // namespace fdsup
