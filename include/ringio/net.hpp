#pragma once

// net: the socket half of the library, without the mapped-memory half and its <filesystem>.

#include <ringio/buffer_ring.hpp>
#include <ringio/cancellation.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/input_buffer.hpp>
#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/operation.hpp>
#include <ringio/resolve.hpp>
#include <ringio/signal_set.hpp>
#include <ringio/socket.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>
#include <ringio/udp_socket.hpp>
