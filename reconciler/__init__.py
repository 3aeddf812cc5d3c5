"""postform's reconciler: config, plan, apply and state."""

__version__ = "0.1.0"
