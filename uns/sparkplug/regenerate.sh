#!/usr/bin/env bash
# Regenerates sparkplug_b_pb2.py and sparkplug_b_pb2.pyi from sparkplug_b.proto.
# protoc comes from grpcio-tools and the .pyi from mypy-protobuf (both dev dependencies).
# Commit the generated files together with any change to the .proto.
set -euo pipefail
cd "$(dirname "$0")"
uv run --frozen python -m grpc_tools.protoc \
    --proto_path=. \
    --python_out=. \
    --mypy_out=quiet:. \
    sparkplug_b.proto
echo "regenerated: $(pwd)/sparkplug_b_pb2.py and sparkplug_b_pb2.pyi"
