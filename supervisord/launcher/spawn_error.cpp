#include "launcher/spawn_error.h"

#include <cerrno>
#include <cstring>

namespace fdsup {

std::string describe_child_failure(const SpawnPlan& plan, const ChildFailure& failure) {
    std::string text = std::string("exec ") + plan.path + ": " + std::strerror(failure.err) +
                       " (stage: " + child_stage_name(failure.stage);
    // The PATH search is the last step: a failure before it tried nothing.
    if (failure.stage == ChildStage::execve && plan.search_candidate_count > 0) {
        text += "; ";
        if (failure.candidate >= 0 && static_cast<size_t>(failure.candidate) < plan.search_candidate_count)
            text += std::string(plan.search_candidates[failure.candidate]) + "; ";
        text += std::string("searched PATH=") + (plan.search_path != nullptr ? plan.search_path : "");
    }
    return text + ")";
}

bool is_permanent_child_failure(ChildStage stage, int err) {
    switch (stage) {
        case ChildStage::execve:
            switch (err) {
                case ENOENT: case EACCES: case ENOEXEC: case ENOTDIR: case ELOOP: case EISDIR:
                case ENAMETOOLONG: case EPERM: case E2BIG: case EINVAL: case ELIBBAD:
                    return true;
                default: return false;
            }
        case ChildStage::chdir:
            return err == ENOENT || err == EACCES || err == ENOTDIR || err == ELOOP || err == ENAMETOOLONG;
        case ChildStage::setgroups:
        case ChildStage::setresgid:
        case ChildStage::setresuid:
            // No CAP_SETUID/CAP_SETGID (EPERM), or an id the user namespace does not map
            // (EINVAL). EAGAIN (RLIMIT_NPROC on kernels before 3.1) is transient.
            return err == EPERM || err == EINVAL;
        case ChildStage::verify_ids:
            return err == EPERM;  // the ids read back are not those asked for
        case ChildStage::setrlimit:
            return err == EPERM || err == EINVAL;  // above the hard limit without the right to raise it
        case ChildStage::none:
        case ChildStage::cgroup:
        case ChildStage::unshare_fds:
        case ChildStage::reset_signals:
        case ChildStage::setsid:
        case ChildStage::dup_fds:
        case ChildStage::close_fds:
        case ChildStage::pdeathsig:
        case ChildStage::sigmask:
            return false;
    }
    return false;
}

}  // namespace fdsup
