"""pod-agents: companion programs for Kubernetes multi-container pods."""

__version__ = "0.1.0"
