"""Sigma rules on the store: pySigma parses, our pipeline maps, our backend renders DuckDB SQL.

Folders follow pySigma's own flow: :mod:`.logsources` (which Sigma sources we hold and their
field names) -> :mod:`.pipeline` (pySigma processing pipeline per source) -> :mod:`.backend`
(predicate SQL) -> :mod:`.compile` (files to runnable rules or skip reasons) -> :mod:`.runner`
(shared pass, correlations, alerts). ``rules/`` is vpnsentry's own rule pack.
"""
