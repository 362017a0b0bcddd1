#!/usr/bin/env bash
# Regenerates sparkplug_b_pb2.py and sparkplug_b_pb2.pyi from sparkplug_b.proto.
# protoc comes from grpcio-tools and the .pyi from mypy-protobuf (both dev dependencies).
# Commit the generated files together with any change to the .proto.
set -euo pipefail
cd "$(dirname "$0")/../.."   # the repo root: running Python from inside the package would shadow stdlib names
uv run --frozen python -m grpc_tools.protoc \
    --proto_path=uns/sparkplug \
    --python_out=uns/sparkplug \
    --mypy_out=quiet:uns/sparkplug \
    sparkplug_b.proto
echo "regenerated uns/sparkplug/sparkplug_b_pb2.py and sparkplug_b_pb2.pyi"
