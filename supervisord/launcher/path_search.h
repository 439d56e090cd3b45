// execvp's PATH search, split in two: the parent lists the candidates before vfork
// (exec_candidates, allocation allowed), and the vfork child tries them in order after
// it has dropped privileges and changed directory (child.cpp), so the search happens
// as the worker's user, in its working_dir, exactly as the worker itself would run it.
#pragma once

#include <cerrno>
#include <string>
#include <vector>

namespace fdsup {

// The PATH of a worker whose environment has none (clear_env without PATH in `env`);
// systemd's default search path.
inline constexpr const char* kDefaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// True if `name` is searched in PATH: it has no '/' (execvp's rule).
bool is_bare_command(const std::string& name);

// The PATH a bare command name is searched in: the value of the last PATH= entry of
// the worker's environment, an envp under construction ("KEY=value" strings, no NULL
// at its end yet), else kDefaultSearchPath.
std::string search_path_in_envp(const std::vector<char*>& envp);

// "DIR/NAME" for each ':'-separated entry of `search_path`, in order. An empty entry
// (a leading, trailing or doubled ':') is the working directory: "./NAME". Duplicates
// are kept: the child's report counts each try.
std::vector<std::string> exec_candidates(const std::string& name, const std::string& search_path);

// Whether the search goes on to the next candidate after execve failed with `err`, as
// glibc's execvp does: the file is not there (ENOENT, ENOTDIR, ESTALE, ENODEV,
// ETIMEDOUT) or may not be run by this user (EACCES, remembered and reported if nothing
// else runs). Any other error (ENOEXEC, ELOOP, E2BIG, EAGAIN, ...) ends the search with
// that error. Called by the vfork child: no allocation, no libc state.
constexpr bool exec_search_goes_on(int err) {
    switch (err) {
        case EACCES:
        case ENOENT:
        case ENOTDIR:
        case ESTALE:
        case ENODEV:
        case ETIMEDOUT: return true;
        default: return false;
    }
}

}  // namespace fdsup
