"""``sf-pipeline demo``: a sandbox org, a connected demo integration and Dagster, on one machine.

- ``launcher``: start and stop the sandbox and ``dagster dev`` processes, connect the integration;
- ``activity``: a thread that edits a few sandbox records now and then, so syncs have work;
- ``demo_integration.yaml``: the integration file the demo applies (``{login_url}`` filled in).
"""
