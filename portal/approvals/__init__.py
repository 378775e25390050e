"""The one maker-checker engine: policies, approval requests, stages, decisions, the inbox.

Domain apps plug in through ``registry.register_approvable`` and call ``services.approval_submit``;
the platform never imports them (see architecture.md).
"""
