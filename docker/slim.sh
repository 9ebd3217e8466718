#!/bin/sh
# Drop from the image's venv what serving never runs: torch's C++ test programs and test libraries, protoc, and
# the C++ headers (the runtime images have no compiler to use them with), then any bytecode pip compiled.
set -eu
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
torch=$site/torch
if [ -d "$torch" ]; then
    rm -rf "$torch/test" "$torch/include" "$torch/bin/protoc" "$torch/bin/protoc-"* "$torch/bin/"*Test "$torch/bin/test_"* \
        "$torch/lib/libtorchbind_test.so" "$torch/lib/libjitbackend_test.so" "$torch/lib/libbackend_with_compiler.so" \
        "$torch/lib/libaoti_custom_ops.so"
fi
find "$site" -name __pycache__ -prune -exec rm -rf {} +
