// A consumer of the installed ringio package: it must compile, link against liburing and run a
// request through the ring, one of its own among them.
#include <ringio/ringio.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace {

// IORING_OP_NOP, a request ringio does not wrap, through the public io_operation concept.
struct nop_op {
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_nop(sqe); }
    void complete(int /*result*/) const noexcept {}
    [[nodiscard]] static std::string describe() { return "nop"; }
};

ringio::task<> exercise(ringio::io_context& context) {
    co_await ringio::operation<nop_op>(context);
    co_await ringio::sleep_for(context, std::chrono::milliseconds(1));
}

} // namespace

int main() {
    ringio::io_context context;
    ringio::sync_wait(context, exercise(context));
    std::printf("ringio %d.%d.%d\n", RINGIO_VERSION_MAJOR, RINGIO_VERSION_MINOR,
                RINGIO_VERSION_PATCH);
    return RINGIO_VERSION > 0 ? 0 : 1;
}
