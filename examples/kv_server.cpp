// kv_server PORT: a key-value store over TCP, one command per line, one answer per line:
//
//     SET key value  ->  OK            GET key  ->  VALUE value | NOT_FOUND
//     DEL key        ->  DELETED | NOT_FOUND
//
// A client that sends nothing for 2 s, reads no answer for 2 s, or sends a line past 1 KiB is
// closed; the store holds at most 10,000 keys. SIGINT or SIGTERM stops it gracefully: no new
// client, no new request, answers being written finish (within their 2 s), then status 0.

#include <ringio/net.hpp>

#include <csignal>
#include <cstdio>
#include <map>

using namespace std::chrono_literals;

using store = std::map<std::string, std::string, std::less<>>; // finds a string_view as is

static std::string answer(store& data, std::string_view line) {
    auto word = [&line] {
        const std::string_view first = line.substr(0, line.find(' '));
        line.remove_prefix(std::min(line.size(), first.size() + 1));
        return first;
    };
    const std::string_view command = word();
    const std::string_view key = command == "SET" ? word() : line;
    if (command != "SET" && command != "GET" && command != "DEL") {
        return "ERR unknown command\n";
    } else if (key.empty() || (command == "SET" && line.empty())) {
        return "ERR usage: SET key value | GET key | DEL key\n";
    } else if (command == "GET") {
        const auto found = data.find(key);
        return found == data.end() ? "NOT_FOUND\n" : "VALUE " + found->second + "\n";
    } else if (command == "DEL") {
        const auto found = data.find(key);
        if (found == data.end()) {
            return "NOT_FOUND\n";
        }
        data.erase(found);
        return "DELETED\n";
    } else if (data.size() >= 10'000 && !data.contains(key)) {
        return "ERR full\n";
    }
    data.insert_or_assign(std::string(key), std::string(line));
    return "OK\n";
}

static ringio::task<> session(ringio::tcp_stream client, store& data, ringio::cancellation& stop) {
    ringio::input_buffer in(1024);
    std::error_code error; // idle (ETIMEDOUT), too long (EMSGSIZE), reset or stop: it ends
    while (auto line =
               co_await client.read_until(in, '\n').with_timeout(2s).cancel_on(stop).into(error)) {
        const std::string reply = answer(data, line->substr(0, line->find_last_not_of('\r') + 1));
        co_await client.write_all(reply).with_timeout(2s).into(error);
        if (error) {
            co_return; // it reads no answers: ETIMEDOUT, or EPIPE once it has gone
        }
    }
    if (error == std::errc::message_size) {
        co_await client.write_all("ERR line too long\n").with_timeout(2s).into(error);
        client.shutdown(); // then what it still sends is read and dropped, for 2 s at most:
        std::array<char, 4096> sink; // closing on unread bytes would reset the answer away
        const auto until = std::chrono::steady_clock::now() + 2s;
        while (co_await client.read(sink).with_deadline(until).cancel_on(stop).into(error) > 0) {
        }
    }
}

static ringio::task<> serve(ringio::tcp_listener& listener, store& data,
                            ringio::cancellation& stop) {
    for (std::error_code error; !stop.cancelled();) {
        ringio::tcp_stream client = co_await listener.accept().cancel_on(stop).into(error);
        if (client.is_open()) {
            ringio::spawn(listener.context(), session(std::move(client), data, stop));
        } else if (!stop.cancelled()) { // out of descriptors (EMFILE): wait, go on
            co_await ringio::sleep_for(listener.context(), 100ms).cancel_on(stop).into(error);
        }
    }
}

int main(int argc, char* argv[]) {
    const auto port = argc == 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    if (!port) {
        std::fputs("usage: kv_server PORT\n", stderr);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN); // a write to a client that has gone: EPIPE, for it alone
    try {
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGINT, SIGTERM});
        ringio::cancellation stop;
        store data; // outlives every session: run() returns after the last one
        ringio::tcp_listener listener(context, ringio::endpoint::any_v6(*port));
        ringio::spawn(context, serve(listener, data, stop));
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        context.run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "kv_server: %s\n", error.what());
        return 1;
    }
}
