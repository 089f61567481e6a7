"""Batches on a Ray cluster (``alphacut remove IN -o OUT --ray ADDRESS|auto``).

The same stage sequence (``steps.Stages``), the same plan, sinks and manifest as the local
batch runner, spread over Ray Data: decode on CPU, the model passes on a pool of actors that each hold
one session, finishing, encoding and verifying on CPU (each step a fixed pool of long-lived
actors), every output verified before it is written. Ray is an optional dependency (``alphacut[ray]``); nothing
here imports it until a batch asks for a cluster.

- ``cluster``   connect to a cluster, or start a loopback-only local one (token auth on, no
                dashboard, usage statistics off)
- ``nodes``     every node ensures and verifies its copy of the models before work starts
- ``rows``      what runs in the actors: each row catches its own errors
- ``attempts``  the bound on a file whose process keeps dying (Ray Data re-runs it forever)
- ``executor``  the driver: plan, dataset, manifest as rows finish, progress, resume
"""
