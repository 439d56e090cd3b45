#include "sockets/connection_count.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "sys/unique_fd.h"

namespace fdsup {
namespace {

// The kernel's TCP_TIMEWAIT_LEN (include/net/tcp.h): fixed, not a sysctl.
constexpr std::chrono::milliseconds kTimeWaitLength{60000};

// A dump request of the family's sockets: `Request` is inet_diag_req_v2 or unix_diag_req.
template <class Request>
struct DumpRequest {
    nlmsghdr header{sizeof(DumpRequest), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 0, 0};
    Request req{};
};

// Sends one dump request and hands each reply message's payload to `each`.
Result<void> dump(const void* request, size_t size, const std::function<void(const nlmsghdr&)>& each) {
    UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!nl) return fail_errno("socket(NETLINK_SOCK_DIAG)");
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(nl.get(), request, size, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
        return fail_errno("sock_diag request");
    alignas(nlmsghdr) char buffer[32768];
    for (;;) {
        ssize_t got = ::recv(nl.get(), buffer, sizeof buffer, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return fail_errno("sock_diag reply");
        }
        if (got == 0) return fail("sock_diag reply: closed early");
        // NLMSG_OK/NLMSG_NEXT, written out with unsigned sizes: a length that does not
        // fit what is left ends the walk instead of wrapping around.
        size_t left = static_cast<size_t>(got);
        for (char* at = buffer; left >= sizeof(nlmsghdr);) {
            auto* h = reinterpret_cast<nlmsghdr*>(at);
            if (h->nlmsg_len < sizeof(nlmsghdr) || h->nlmsg_len > left) break;
            size_t step = std::min<size_t>(NLMSG_ALIGN(h->nlmsg_len), left);
            at += step;
            left -= step;
            if (h->nlmsg_type == NLMSG_DONE) return {};
            if (h->nlmsg_type == NLMSG_ERROR) {
                const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
                if (e->error == 0) return {};
                return fail("sock_diag dump", -e->error);
            }
            each(*h);
        }
    }
}

Result<ConnectionSample> sample_tcp(const sockaddr_storage& local, int family) {
    DumpRequest<inet_diag_req_v2> request;
    request.req.sdiag_family = static_cast<uint8_t>(family);
    request.req.sdiag_protocol = IPPROTO_TCP;
    request.req.idiag_states = (1u << TCP_ESTABLISHED) | (1u << TCP_SYN_RECV) | (1u << TCP_CLOSE_WAIT) |
                               (1u << TCP_LAST_ACK) | (1u << TCP_TIME_WAIT);
    uint16_t port = 0;  // network order, as the kernel compares it
    const void* address = nullptr;
    size_t address_size = 0;
    bool wildcard = true;
    if (family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(local);
        port = in.sin_port;
        address = &in.sin_addr;
        address_size = sizeof in.sin_addr;
        wildcard = in.sin_addr.s_addr == htonl(INADDR_ANY);
    } else {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(local);
        port = in6.sin6_port;
        address = &in6.sin6_addr;
        address_size = sizeof in6.sin6_addr;
        wildcard = IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr);
    }
    request.req.id.idiag_sport = port;  // the dump skips other local ports

    ConnectionSample sample;
    auto dumped = dump(&request, sizeof request, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY || h.nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return;
        const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(&h));
        if (m->id.idiag_sport != port) return;
        if (!wildcard && std::memcmp(m->id.idiag_src, address, address_size) != 0) return;
        if (m->idiag_state == TCP_TIME_WAIT) {
            auto ago = kTimeWaitLength - std::chrono::milliseconds(m->idiag_expires);
            if (ago < std::chrono::milliseconds::zero()) ago = std::chrono::milliseconds::zero();
            if (!sample.last_closed_ago || ago < *sample.last_closed_ago) sample.last_closed_ago = ago;
            return;
        }
        ++sample.open;
    });
    if (!dumped) return std::unexpected(dumped.error());
    return sample;
}

Result<ConnectionSample> sample_unix(int listen_fd, const sockaddr_storage& local, socklen_t local_size, int type) {
    struct stat st{};
    if (::fstat(listen_fd, &st) != 0) return fail_errno("fstat");
    size_t name_size = local_size > offsetof(sockaddr_un, sun_path) ? local_size - offsetof(sockaddr_un, sun_path) : 0;
    if (name_size == 0) return fail("the socket has no name to match its connections by");
    const char* name = reinterpret_cast<const sockaddr_un&>(local).sun_path;

    DumpRequest<unix_diag_req> request;
    request.req.sdiag_family = AF_UNIX;
    request.req.udiag_states = (1u << TCP_ESTABLISHED) | (1u << TCP_LISTEN);
    request.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;

    ConnectionSample sample;
    auto dumped = dump(&request, sizeof request, [&](const nlmsghdr& h) {
        if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY || h.nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg))) return;
        const auto* m = static_cast<const unix_diag_msg*>(NLMSG_DATA(&h));
        if (m->udiag_type != type) return;
        int left = static_cast<int>(h.nlmsg_len - NLMSG_LENGTH(sizeof(unix_diag_msg)));
        for (auto* a = reinterpret_cast<const rtattr*>(m + 1); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
            // A connection not yet accepted is not listed (it is in no table yet): the
            // listener's own queue length counts it.
            if (m->udiag_ino == st.st_ino) {
                if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(unix_diag_rqlen))
                    sample.open += static_cast<const unix_diag_rqlen*>(RTA_DATA(a))->udiag_rqueue;
                continue;
            }
            if (m->udiag_state != TCP_ESTABLISHED || a->rta_type != UNIX_DIAG_NAME) continue;
            // The name as the listener's getsockname has it (a path with its NUL, or
            // an abstract name starting with one).
            if (RTA_PAYLOAD(a) == name_size && std::memcmp(RTA_DATA(a), name, name_size) == 0) ++sample.open;
        }
    });
    if (!dumped) return std::unexpected(dumped.error());
    return sample;
}

}  // namespace

Result<ConnectionSample> sample_connections(int listen_fd) {
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&local), &size) != 0) return fail_errno("getsockname");
    int type = 0;
    socklen_t type_size = sizeof type;
    if (::getsockopt(listen_fd, SOL_SOCKET, SO_TYPE, &type, &type_size) != 0) return fail_errno("getsockopt(SO_TYPE)");
    if ((local.ss_family == AF_INET || local.ss_family == AF_INET6) && type == SOCK_STREAM)
        return sample_tcp(local, local.ss_family);
    if (local.ss_family == AF_UNIX && (type == SOCK_STREAM || type == SOCK_SEQPACKET))
        return sample_unix(listen_fd, local, size, type);
    return fail("not a tcp, unix or unixpacket socket: it has no connections to count");
}

}  // namespace fdsup
