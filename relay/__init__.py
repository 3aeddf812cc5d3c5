"""postform's SMTP relay: enforces the applied policy, DKIM-signs, spools durably.

The relay reads the applied policy from the state file (see `policy.py`); it
never reads the YAML config and never imports the plan engine.
"""
