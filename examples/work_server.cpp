// work_server PORT: a forked child reverses each line a client sends; the server sends it back.
// Lines go to the child through a channel in shared memory, answers come back through another,
// awaited like sockets: the loop never blocks on the child (fork_shared's idea, as a server).
// SIGINT or SIGTERM stops it once the child has ended (status 0); errors, a dead child: status 1.

#include <ringio/ringio.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>

struct job { // a line, to the child and back: trivially copyable, the same size in both
    std::uint32_t client, size;
    char text[248];
};
using clients = std::map<std::uint32_t, ringio::tcp_stream*>;

static int work(ringio::channel<job>& requests, ringio::channel<job>& answers) {
    ::setpgid(0, 0); // a Ctrl-C stops the server alone, which stops this by closing its channel
    ringio::channel_receiver in(std::move(requests));
    ringio::channel_sender out(std::move(answers));
    while (auto line = in.receive()) { // blocking: the child has no loop, nor needs one
        std::reverse(line->text, line->text + line->size);
        out.send(*line);
    }
    return 0; // and `out` closes: the server's answers end
}

static ringio::task<> session(ringio::tcp_stream stream, std::uint32_t id, clients& open,
                              ringio::channel_sender<job>& out, ringio::cancellation& stop) {
    open[id] = &stream;
    ringio::input_buffer in(sizeof job::text);
    std::error_code error; // a reset, a line too long or the stop ends this client only
    while (const auto line = co_await stream.read_until(in, '\n').cancel_on(stop).into(error)) {
        job request{id, 0, {}};
        request.size = static_cast<std::uint32_t>(line->copy(request.text, sizeof request.text));
        co_await out.send(stream.context(), request).into(error); // waits only while it is full
    }
    open.erase(id);
}

static ringio::task<> answer(ringio::io_context& context, ringio::channel_receiver<job>& in,
                             clients& open) {
    std::error_code gone; // a client that left, or reads nothing for a second
    while (const auto done = co_await in.receive(context)) { // ECONNRESET if the child died
        if (const auto to = open.find(done->client); to != open.end()) {
            const std::string text = std::string(done->text, done->size) + '\n';
            co_await to->second->write_all(text).with_timeout(std::chrono::seconds(1)).into(gone);
        }
    }
}

static ringio::task<> serve(ringio::tcp_listener& listener, clients& open,
                            ringio::channel_sender<job>& out, ringio::cancellation& stop) {
    std::error_code error;
    for (std::uint32_t id = 1; !stop.cancelled(); ++id) {
        ringio::tcp_stream client = co_await listener.accept().cancel_on(stop).into(error);
        if (client.is_open()) {
            ringio::spawn(listener.context(), session(std::move(client), id, open, out, stop));
        } else if (!stop.cancelled()) { // out of descriptors (EMFILE): wait, go on
            co_await ringio::sleep_for(listener.context(), std::chrono::milliseconds(100));
        }
    }
    out.close(); // stopped: the child answers what it has, then sees the end and closes its own
}

int main(int argc, char* argv[]) {
    const auto port = argc == 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    if (!port) {
        std::fputs("usage: work_server PORT\n", stderr);
        return 2;
    }
    try {
        auto requests = ringio::channel<job>::anonymous(64); // shared with the child
        auto answers = ringio::channel<job>::anonymous(64);
        if (const pid_t child = ::fork(); child <= 0) { // before any ring: the child has none
            return child == 0 ? work(requests, answers) : (std::perror("work_server: fork"), 1);
        }
        ringio::channel_sender out(std::move(requests));
        ringio::channel_receiver in(std::move(answers));
        clients open;
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGINT, SIGTERM});
        ringio::cancellation stop; // ends every read and accept
        ringio::tcp_listener listener(context, ringio::endpoint::any_v6(*port));
        ringio::spawn(context, serve(listener, open, out, stop));
        ringio::spawn(context, answer(context, in, open));
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        context.run();
        ::wait(nullptr); // the child, which has closed its end
    } catch (const std::exception& error) {
        std::fprintf(stderr, "work_server: %s\n", error.what());
        return 1;
    }
}
