// A listening unix stream socket in a fresh temp dir, both removed at the end: for the
// tests whose servers answer on a unix socket (fdsupctl's client, the probe checks).
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "sys/unique_fd.h"

struct TempUnixListener {
    std::string dir;
    std::string path;
    fdsup::UniqueFd fd;

    // /tmp/PREFIX-XXXXXX/NAME
    TempUnixListener(const std::string& prefix, const std::string& name, int backlog) {
        std::string dir_template = "/tmp/" + prefix + "-XXXXXX";
        REQUIRE(mkdtemp(dir_template.data()) != nullptr);
        dir = dir_template;
        path = dir + "/" + name;
        fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(fd.get(), backlog) == 0);
    }
    ~TempUnixListener() {
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
    }
    TempUnixListener(const TempUnixListener&) = delete;
    TempUnixListener& operator=(const TempUnixListener&) = delete;
};
