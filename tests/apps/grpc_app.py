#!/usr/bin/env python3
"""A grpcio app for teal's gRPC tests (tests/it/grpc.rs), without generated stubs.

Methods of service `teal.Echo`, with raw bytes in and out:
- `Version` (unary): answers the version, as UTF-8.
- `Count` (server streaming): the request is "N DELAY_MS"; sends N messages
  "VERSION i", DELAY_MS apart.
The standard `grpc.health.v1.Health` service says SERVING, or NOT_SERVING
when the version ends in "-notserving". A version ending in "-failing"
answers every call with grpc-status UNAVAILABLE (14) in the trailers.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def identity(data):
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True)
    args = parser.parse_args()
    version = args.version
    failing = version.endswith("-failing")

    def version_call(request, context):
        if failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "this version fails on purpose")
        return version.encode()

    def count_call(request, context):
        if failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "this version fails on purpose")
        n, delay_ms = (int(x) for x in request.decode().split())
        for i in range(n):
            if i:
                time.sleep(delay_ms / 1000)
            yield f"{version} {i}".encode()

    handlers = {
        "Version": grpc.unary_unary_rpc_method_handler(
            version_call, request_deserializer=identity, response_serializer=identity
        ),
        "Count": grpc.unary_stream_rpc_method_handler(
            count_call, request_deserializer=identity, response_serializer=identity
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("teal.Echo", handlers),)
    )
    health_servicer = health.HealthServicer()
    serving = (
        health_pb2.HealthCheckResponse.NOT_SERVING
        if version.endswith("-notserving")
        else health_pb2.HealthCheckResponse.SERVING
    )
    health_servicer.set("", serving)
    health_servicer.set("teal.Echo", serving)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"grpc_app {version} listening on {args.port}", flush=True)

    stopped = threading.Event()

    def stop(signum, frame):
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    # Finish calls in flight (a stream spanning a switch) before exiting.
    server.stop(grace=30).wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
