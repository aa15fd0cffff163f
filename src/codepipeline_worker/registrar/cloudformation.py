"""CloudFormation's custom-resource protocol: the request Lambda receives, and the answer PUT to its ResponseURL.

A request that gets no answer holds its stack until CloudFormation's time-out, so every request that can be
answered is: SUCCESS, or FAILED with a one-line reason that the stack's events show.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RESPONSE_ATTEMPTS = 3
RESPONSE_TIMEOUT_S = 10
RESPONSE_PAUSE_S = 1.0  # before the second attempt; twice that before the third
# CloudFormation's limit on a whole response is 4,096 bytes: the reason is cut well below it.
MAX_REASON = 1000


class CustomResourceRequest(BaseModel):
    """What CloudFormation sends for a Create, Update or Delete of a custom resource."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    response_url: str = Field(alias="ResponseURL", pattern=r"^https?://\S+$")
    stack_id: str = Field(alias="StackId", min_length=1)
    request_id: str = Field(alias="RequestId", min_length=1)
    logical_resource_id: str = Field(alias="LogicalResourceId", min_length=1)
    physical_resource_id: str | None = Field(None, alias="PhysicalResourceId")
    resource_properties: dict[str, Any] = Field(default_factory=dict, alias="ResourceProperties")
    old_resource_properties: dict[str, Any] | None = Field(None, alias="OldResourceProperties")


def answer(
    request: CustomResourceRequest,
    status: Literal["SUCCESS", "FAILED"],
    physical_resource_id: str,
    reason: str | None = None,
    data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The response body for a request."""
    body: dict[str, Any] = {
        "Status": status,
        "PhysicalResourceId": physical_resource_id,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
    }
    if reason:
        body["Reason"] = reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"
    if data:
        body["Data"] = data
    return body


def send_response(url: str, body: dict[str, Any]) -> None:
    """PUT the answer to the request's pre-signed ResponseURL (no content type: the URL's signature has none),
    trying again on a network fault or a 5xx."""
    payload = json.dumps(body).encode()
    for attempt in range(1, RESPONSE_ATTEMPTS + 1):
        request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed S3 URL, http(s) checked
            url, data=payload, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(payload))}
        )
        try:
            with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_S):  # noqa: S310 - as above
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == RESPONSE_ATTEMPTS:
                raise
        except (urllib.error.URLError, TimeoutError, OSError):
            if attempt == RESPONSE_ATTEMPTS:
                raise
        time.sleep(RESPONSE_PAUSE_S * attempt)
