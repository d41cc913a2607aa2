"""A local Salesforce org for tests, the demo and benchmarks, served over real HTTPS.

``Org`` is the org in memory (records, clock, tokens, quota, faults, Bulk API 2.0 query jobs);
``SandboxServer`` serves it with Salesforce's REST, Bulk API 2.0 and OAuth wire formats so
unmodified simple-salesforce can talk to it;
``serve_in_thread`` runs one inside a test; ``ControlClient`` drives one in another process.
"""

from sf_pipeline.sandbox.clock import OrgClock
from sf_pipeline.sandbox.control import ControlClient, ControlError
from sf_pipeline.sandbox.generator import populate
from sf_pipeline.sandbox.server import SandboxServer
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread

__all__ = [
    "ControlClient",
    "ControlError",
    "Org",
    "OrgClock",
    "SandboxHandle",
    "SandboxServer",
    "populate",
    "serve_in_thread",
]
