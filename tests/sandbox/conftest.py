from .fixtures import acp_settings, network_signer, sandbox_dir  # noqa: F401
