"""Threat intelligence: indicator feeds into the store, matched against events and flows.

::

    feed files ──stix.py / misp.py / csv_list.py──▶ Feed (indicators + skipped with reasons)
        ──model.py (normalize: canonical address/range, lower-cased domain, hash)──▶
        ──catalog.py (upsert into the store catalog's ``indicators`` table)──▶
        ──match.py (joins over the distinct addresses of events and flows)──▶ alerts

Feed modules only read files and never touch the store; ``catalog`` is the only writer of
the ``indicators`` table; ``match`` runs inside ``detect`` (and alone as ``intel match``).
"""
