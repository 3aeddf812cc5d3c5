"""The contract between postform's two planes.

The control plane (reconciler/: plan, apply, run by CI) builds and publishes one
document, the relay policy; the data plane (relay/: the SMTP relays) reads only
that document. Everything both planes must agree on lives here, once: the
document's types and version (`policy.py`), the relay settings and limits with
their defaults (`settings.py`), the file that carries it (`policyfile.py`), and
the vocabulary inside it: DKIM statuses and algorithms
(`dkim.py`), suppression reasons (`suppression.py`), address syntax
(`addresses.py`), listener and HOST:PORT syntax (`hostport.py`), the password
hash format (`passwords.py`); and how every command ends (`errors.py`).

Nothing here imports from reconciler/ or from the relay's runtime.
"""
