"""Starts awslambdaric on $_HANDLER with the import path Lambda's Python runtime documents: the function's code
(/var/task) first, then the layers (/opt/python/lib/python3.13/site-packages, /opt/python), the runtime's own
packages, then the standard library. PYTHONPATH, when the function sets it, replaces the layer entries."""

import os
import site
import sys

from awslambdaric import __main__ as runtime_interface_client

TASK_ROOT = os.environ["LAMBDA_TASK_ROOT"]
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
LAYER_DIRECTORIES = [f"/opt/python/lib/python{VERSION}/site-packages", "/opt/python"]


def main() -> None:
    custom_path = "PYTHONPATH" in os.environ
    if not custom_path:
        sys.path[:0] = [*LAYER_DIRECTORIES, f"/var/lang/lib/python{VERSION}/site-packages"]
    sys.path.insert(0, TASK_ROOT)
    # Site directories, so that .pth files in the code or a layer take effect
    for directory in [TASK_ROOT] if custom_path else [TASK_ROOT, *LAYER_DIRECTORIES]:
        site.addsitedir(directory)
    if not custom_path:
        os.environ["PYTHONPATH"] = os.environ["LAMBDA_RUNTIME_DIR"]
    runtime_interface_client.main([TASK_ROOT, os.environ["_HANDLER"]])


if __name__ == "__main__":
    main()
