#pragma once

// ringio: the umbrella header, which includes every public header.

#include <ringio/buffer_ring.hpp>
#include <ringio/cancellation.hpp>
#include <ringio/channel.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/futex.hpp>
#include <ringio/input_buffer.hpp>
#include <ringio/io_context.hpp>
#include <ringio/map_options.hpp>
#include <ringio/mappable.hpp>
#include <ringio/mapped.hpp>
#include <ringio/multishot.hpp>
#include <ringio/net.hpp>
#include <ringio/operation.hpp>
#include <ringio/resolve.hpp>
#include <ringio/shared_atomic_ref.hpp>
#include <ringio/signal_set.hpp>
#include <ringio/socket.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>
#include <ringio/udp_socket.hpp>
#include <ringio/version.hpp>
