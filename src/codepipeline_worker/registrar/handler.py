"""The custom resource's Lambda entry point: CloudFormation's Create, Update and Delete of the action type.

Every request is answered on its ResponseURL, SUCCESS or FAILED with a one-line reason, so that no stack waits
for CloudFormation's time-out. Configuration is read and the SDK client built here, once, at cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..shared.adapter import ActionTypeRegistry, AwsCallError, create_codepipeline_client
from ..shared.config import get_common_settings
from ..shared.errors import ConfigurationError
from ..shared.observability import logger
from .cloudformation import CustomResourceRequest, answer, send_response
from .service import NOT_REGISTERED, ActionTypeResource, Registrar, RegistrationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    Respond = Callable[[str, dict[str, Any]], None]

default_registrar = Registrar(ActionTypeRegistry(create_codepipeline_client(get_common_settings())))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    registrar: Registrar | None = None,
    respond: Respond = send_response,
) -> dict[str, Any]:
    """Handle one request and answer it; returns the answer. A request without a ResponseURL cannot be
    answered: it raises."""
    request = CustomResourceRequest.model_validate(event)
    active = registrar or default_registrar
    physical_id = request.physical_resource_id or NOT_REGISTERED
    logger.append_keys(request_type=request.request_type, logical_resource_id=request.logical_resource_id)
    try:
        if request.request_type == "Delete":
            active.delete(physical_id)
            body = answer(request, "SUCCESS", physical_id)
        else:
            registered = active.create(ActionTypeResource.model_validate(request.resource_properties))
            body = answer(request, "SUCCESS", registered, data={"ActionType": registered})
    except (RegistrationError, ConfigurationError) as exc:
        body = _failed(request, physical_id, str(exc))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        body = _failed(request, physical_id, f"invalid resource properties: {problems}")
    except AwsCallError as exc:
        body = _failed(request, physical_id, f"{exc.operation} failed: {exc.code}")
    except Exception as exc:  # noqa: BLE001 - any failure is answered, or the stack waits an hour
        logger.exception("the request failed")
        body = _failed(request, physical_id, f"{type(exc).__name__}; the function's log has where")
    respond(request.response_url, body)
    return body


def _failed(request: CustomResourceRequest, physical_id: str, reason: str) -> dict[str, Any]:
    logger.error("custom resource request failed", reason=reason)
    return answer(request, "FAILED", physical_id, reason)
