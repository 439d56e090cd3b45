// seccomp_wrap SYSCALL=ERRNO... -- PROGRAM [ARGS...]: runs PROGRAM with each named
// system call answered by the seccomp filter instead of the kernel: ERRNO 0 makes it
// "succeed" without doing anything, any other number makes it fail with that errno.
// The filter is inherited across execve and by every child.
//
//   seccomp_wrap clone3=38 -- fdsupd ...     clone3 fails ENOSYS, as under Docker's and
//                                            podman's default profiles
//   seccomp_wrap setresuid=0 -- fdsupd ...   setresuid claims success and changes nothing
//   seccomp_wrap close_range=1 -- fdsupd ... close_range refused (EPERM), as some filters do
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#else
#error "seccomp_wrap: add this architecture's AUDIT_ARCH"
#endif

static const struct {
    const char* name;
    int nr;
} kSyscalls[] = {
    {"clone3", __NR_clone3},       {"setresuid", __NR_setresuid}, {"setresgid", __NR_setresgid},
    {"setgroups", __NR_setgroups}, {"openat2", __NR_openat2},     {"close_range", __NR_close_range},
};

#define MAX_RULES 8

int main(int argc, char** argv) {
    struct sock_filter filter[4 + 2 * MAX_RULES + 1];
    int n = 0, rules = 0, i = 1;
    // Another architecture's syscall numbers mean other calls: allow them unchanged.
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (; i < argc && strcmp(argv[i], "--") != 0; ++i) {
        char* eq = strchr(argv[i], '=');
        int nr = -1;
        if (eq != NULL && rules < MAX_RULES) {
            *eq = '\0';
            for (size_t k = 0; k < sizeof kSyscalls / sizeof kSyscalls[0]; ++k)
                if (strcmp(argv[i], kSyscalls[k].name) == 0) nr = kSyscalls[k].nr;
        }
        if (nr < 0) {
            fprintf(stderr, "seccomp_wrap: bad rule %s (SYSCALL=ERRNO, at most %d)\n", argv[i], MAX_RULES);
            return 2;
        }
        filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
        filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (atoi(eq + 1) & SECCOMP_RET_DATA));
        ++rules;
    }
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: seccomp_wrap SYSCALL=ERRNO... -- PROGRAM [ARGS...]\n");
        return 2;
    }
    struct sock_fprog program = {(unsigned short)n, filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        perror("seccomp_wrap: seccomp");
        return 1;
    }
    execvp(argv[i + 1], argv + i + 1);
    perror("seccomp_wrap: exec");
    return 127;
}
