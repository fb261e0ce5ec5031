// channel_peer: the other program of the channel tests. It maps the channel by its path alone,
// as an unrelated process would (it is started with exec, and inherits no mapping).
//   channel_peer receive PATH        takes every record until the end; prints "COUNT SUM"
//   channel_peer send PATH COUNT     sends records 1 to COUNT, then closes
//   channel_peer open_other PATH     opens it with another record type; prints the error
// Exit status 0 on success, 1 on an error (printed), 2 on bad arguments.

#include <ringio/channel.hpp>

#include "channel_peer.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <system_error>

using ringio::testing::peer_record;

int main(int argc, char* argv[]) {
    if (argc < 3) {
        return 2;
    }
    const std::string_view mode = argv[1];
    try {
        if (mode == "receive") {
            ringio::channel_receiver<peer_record> in(ringio::channel<peer_record>::open(argv[2]));
            unsigned long long count = 0;
            unsigned long long sum = 0;
            while (const auto record = in.receive()) {
                if (record->sequence != count + 1 || !ringio::testing::whole(*record)) {
                    std::printf("record %llu out of order or torn\n", count + 1);
                    return 1;
                }
                ++count;
                sum += record->sequence;
            }
            std::printf("%llu %llu\n", count, sum);
            return 0;
        }
        if (mode == "send" && argc == 4) {
            ringio::channel_sender<peer_record> out(ringio::channel<peer_record>::open(argv[2]));
            const unsigned long long count = std::strtoull(argv[3], nullptr, 10);
            for (unsigned long long n = 1; n <= count; ++n) {
                out.send(ringio::testing::record_number(n));
            }
            return 0;
        }
        if (mode == "open_other") {
            try {
                (void)ringio::channel<ringio::testing::other_record>::open(argv[2]);
            } catch (const std::system_error& e) {
                std::printf("%d %s\n", e.code().value(), e.what());
                return 0;
            }
            std::puts("opened");
            return 1;
        }
    } catch (const std::exception& e) {
        std::printf("error: %s\n", e.what());
        return 1;
    }
    return 2;
}
