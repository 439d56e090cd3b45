#include "launcher/clone_into_cgroup.h"

#include <cerrno>

#if defined(__x86_64__)

// After the syscall the child has the parent's registers, except rax (0) and rsp (the
// top of args->stack). rcx and r11 are clobbered by `syscall`, so the argument waits in
// r8 and the function in rdx, which survive it. The same sequence as glibc's clone3.S.
extern "C" long fdsup_clone3_raw(fdsup::Clone3Args* args, unsigned long size, int (*fn)(void*), void* arg);
__asm__(R"(
    .pushsection .text, "ax", @progbits
    .globl  fdsup_clone3_raw
    .type   fdsup_clone3_raw, @function
fdsup_clone3_raw:
    mov     %rcx, %r8
    mov     $435, %eax          # __NR_clone3
    syscall
    test    %rax, %rax
    jz      1f
    ret                         # the parent: a pid or -errno
1:
    xor     %ebp, %ebp          # the child's outermost frame
    and     $-16, %rsp
    mov     %r8, %rdi
    call    *%rdx
    mov     %eax, %edi
    mov     $60, %eax           # __NR_exit
    syscall
    hlt
    .size   fdsup_clone3_raw, .-fdsup_clone3_raw
    .popsection
)");

namespace fdsup {
long clone3_run(Clone3Args* args, int (*fn)(void*), void* arg) {
    return fdsup_clone3_raw(args, sizeof *args, fn, arg);
}
}  // namespace fdsup

#else

namespace fdsup {
long clone3_run(Clone3Args*, int (*)(void*), void*) { return -ENOSYS; }
}  // namespace fdsup

#endif
