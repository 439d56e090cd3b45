#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "fdserver/fd_request.h"

using fdsup::fdserver::FdRequest;
using fdsup::fdserver::kMaxNamesPerRequest;
using fdsup::fdserver::parse_fd_request;

namespace {

std::string error_of(std::string_view line) {
    auto request = parse_fd_request(line);
    REQUIRE_FALSE(request.has_value());
    return request.error().text();
}

}  // namespace

TEST_CASE("fd request: get lists the names asked for, in order, repeats kept") {
    auto request = parse_fd_request(R"({"cmd":"get","names":["http","admin","http"]})");
    REQUIRE(request.has_value());
    CHECK(request->kind == FdRequest::Kind::get);
    CHECK(request->names == std::vector<std::string>{"http", "admin", "http"});
}

TEST_CASE("fd request: store has its defaults, and takes a name and poll") {
    auto plain = parse_fd_request(R"({"cmd":"store"})");
    REQUIRE(plain.has_value());
    CHECK(plain->kind == FdRequest::Kind::store);
    CHECK(plain->store_name == "stored");
    CHECK(plain->poll);
    auto named = parse_fd_request(R"({"cmd":"store","name":"conn-7","poll":false})");
    REQUIRE(named.has_value());
    CHECK(named->store_name == "conn-7");
    CHECK_FALSE(named->poll);
}

TEST_CASE("fd request: every malformed request says what is wrong") {
    CHECK(error_of("not json").find("JSON") != std::string::npos);
    CHECK(error_of(R"({"names":["http"]})").find("cmd") != std::string::npos);
    CHECK(error_of(R"({"cmd":"take","names":["http"]})") ==
          "unknown command \"take\" (this fdsupd knows: get, store)");
    CHECK(error_of(R"({"cmd":"get"})").find("names") != std::string::npos);
    CHECK(error_of(R"({"cmd":"get","names":[]})").find("at least one") != std::string::npos);
    CHECK(error_of(R"({"cmd":"get","names":["http",7]})").find("names") != std::string::npos);
    CHECK(error_of(R"({"cmd":"store","name":"a:b"})").find("printable ASCII") != std::string::npos);
    CHECK(error_of(R"({"cmd":"store","name":""})").find("non-empty") != std::string::npos);
    CHECK(error_of(R"({"cmd":"store","poll":"no"})") == "\"poll\" must be true or false");
}

TEST_CASE("fd request: at most kMaxNamesPerRequest names") {
    std::string names;
    for (size_t i = 0; i <= kMaxNamesPerRequest; ++i) names += std::string(i ? "," : "") + "\"s\"";
    CHECK(error_of(R"({"cmd":"get","names":[)" + names + "]}") ==
          "too many names (at most " + std::to_string(kMaxNamesPerRequest) + ")");
    std::string allowed = names.substr(0, names.size() - 4);  // one fewer
    CHECK(parse_fd_request(R"({"cmd":"get","names":[)" + allowed + "]}").has_value());
}
