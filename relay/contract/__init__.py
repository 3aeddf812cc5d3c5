"""The contract between postform's two planes.

The control plane (reconciler/: plan, apply, run by CI) builds and publishes one
document, the relay policy; the data plane (relay/: the SMTP relays) reads only
that document. Everything both planes must agree on lives here, once: the
document's types and version (`policy.py`), the file that carries it
(`policyfile.py`), and the vocabulary inside it: DKIM statuses and algorithms
(`dkim.py`), suppression reasons (`suppression.py`), address syntax
(`addresses.py`), listener and HOST:PORT syntax (`hostport.py`) and the password
hash format (`passwords.py`).

Nothing here imports from reconciler/ or from the relay's runtime.
"""
