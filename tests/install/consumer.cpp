// A consumer of the installed ringio package: it must compile, link against liburing and run.
#include <ringio/ringio.hpp>

#include <cstdio>

int main() {
    std::printf("ringio %d.%d.%d\n", RINGIO_VERSION_MAJOR, RINGIO_VERSION_MINOR,
                RINGIO_VERSION_PATCH);
    return RINGIO_VERSION > 0 ? 0 : 1;
}
