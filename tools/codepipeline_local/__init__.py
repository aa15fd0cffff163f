"""A local AWS CodePipeline endpoint for job workers: the job operations moto and LocalStack lack.

A development tool, never deployed: `python -m codepipeline_local --help`.
"""

from .control import ControlClient, ControlError
from .jobs import JobStore
from .model import ServiceError
from .pages import StatusPages
from .server import Faults, LocalCodePipeline

__all__ = ["ControlClient", "ControlError", "Faults", "JobStore", "LocalCodePipeline", "ServiceError", "StatusPages"]
