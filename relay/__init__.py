"""postform's data plane: the SMTP relay that enforces the applied policy, DKIM-signs,
spools durably and delivers; and the contract it shares with the control plane
(`relay/contract/`).

The relay reads only the published policy document (`policysource.py`); it never
reads the YAML config's resources and imports nothing from reconciler/.
"""
