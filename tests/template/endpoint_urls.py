"""What botocore resolves for each service, in every region of every partition: run by the template tests as
`python -S endpoint_urls.py SITE_DIR SERVICE[:OPERATION]...`, once on a built artifact and once on the full botocore,
with nothing on sys.path but the standard library and SITE_DIR. Prints one JSON object.

For each service, region, and FIPS and dual-stack setting: the client's region and endpoint, and the URL and
signing (region, name) of one request, caught before it is sent; or the error that stopped it. The request is
OPERATION's, else that of the service's operation with the fewest required parameters.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    import botocore.session

    session = botocore.session.get_session()
    loader = session.get_component("data_loader")
    endpoints, partitions = loader.load_data("endpoints"), loader.load_data("partitions")
    resolved: dict[str, Any] = {}
    for argument in sys.argv[2:]:
        service, _, operation = argument.partition(":")
        regions = sorted(_regions(endpoints, partitions, service))
        for region, fips, dualstack in itertools.product(regions, (False, True), (False, True)):
            key = f"{service} {region}{' fips' if fips else ''}{' dualstack' if dualstack else ''}"
            resolved[key] = _resolve(session, service, operation, region, fips=fips, dualstack=dualstack)
    json.dump(resolved, sys.stdout, sort_keys=True)


def _resolve(session: Any, service: str, operation: str, region: str, *, fips: bool, dualstack: bool) -> dict[str, Any]:
    """One client's region and endpoint, and its request's URL and signing; or the error that stopped them."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders
    from botocore.config import Config

    caught: dict[str, Any] = {}

    def catch(params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
        caught["url"] = params["url"]
        caught["signing"] = {k: v for k, v in context.get("signing", {}).items() if isinstance(v, str)}
        return AWSResponse(params["url"], 200, HTTPHeaders(), None), {}

    model = session.get_service_model(service)
    operation = operation or min(model.operation_names, key=lambda name: _required_count(model.operation_model(name)))
    try:
        client = session.create_client(
            service,
            region_name=region,
            config=Config(use_fips_endpoint=fips, use_dualstack_endpoint=dualstack),
            aws_access_key_id="endpoint-test",
            aws_secret_access_key="endpoint-test",
        )
        client.meta.events.register("before-call", catch)
        caught["client"] = [client.meta.region_name, client.meta.endpoint_url]
        getattr(client, _method(client, operation))(**_arguments(model.operation_model(operation)))
    except Exception as exc:  # noqa: BLE001 - an error is an answer too, compared like the others
        caught["error"] = type(exc).__name__
    return caught


def _regions(endpoints: dict[str, Any], partitions: dict[str, Any], service: str) -> set[str]:
    """Every region of every partition, in either data file, and the service's own endpoint names (such as
    fips-us-gov-west-1)."""
    names: set[str] = set()
    for partition in endpoints["partitions"]:
        names.update(partition["regions"])
        names.update(partition["services"].get(service, {}).get("endpoints", {}))
    for partition in partitions["partitions"]:
        names.update(partition["regions"])
    return names


def _required_count(operation: Any) -> int:
    shape = operation.input_shape
    return len(shape.required_members) if shape is not None else 0


def _arguments(operation: Any) -> dict[str, Any]:
    """The operation's required members, each a string as long as its minimum."""
    shape = operation.input_shape
    if shape is None:
        return {}
    return {name: "x" * max(1, shape.members[name].metadata.get("min", 1)) for name in shape.required_members}


def _method(client: Any, operation: str) -> str:
    return next(str(name) for name, op in client.meta.method_to_api_mapping.items() if op == operation)


if __name__ == "__main__":
    main()
