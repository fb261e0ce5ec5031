#pragma once

/// The umbrella header: includes every public ringio header.

#include <ringio/acceptor.hpp>
#include <ringio/buffer_ring.hpp>
#include <ringio/datagram_receiver.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/io_context.hpp>
#include <ringio/map_options.hpp>
#include <ringio/mappable.hpp>
#include <ringio/mapped.hpp>
#include <ringio/receiver.hpp>
#include <ringio/resolve.hpp>
#include <ringio/sender.hpp>
#include <ringio/shared_atomic_ref.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>
#include <ringio/udp_socket.hpp>
#include <ringio/version.hpp>
