#!/bin/sh
# The image's entry point, as in AWS's image: the handler is the only argument. Under Lambda, or under the
# emulator the SAM CLI starts, AWS_LAMBDA_RUNTIME_API is set and the runtime starts at once; under a plain
# `docker run`, the emulator this image carries starts it.
if [ $# -ne 1 ]; then
    echo "entrypoint requires the handler name to be the first argument" >&2
    exit 142
fi
export _HANDLER="$1"

RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
    exec /usr/local/bin/aws-lambda-rie "$RUNTIME_ENTRYPOINT"
else
    exec "$RUNTIME_ENTRYPOINT"
fi
