"""The relay's commands (`postform relay ...`, `postform suppressions ...`).

They are loaded by the root command line only when run, and find their policy and
data folder through the RelaySite the root resolves from `--config` (passed as the
command context's object), so relay/ never reads the YAML.
"""
