"""Vendor gateway/firewall log parsers, one module per format.

Importing this package imports every module in it, which registers each parser: adding a
vendor is adding one file here (plus its golden tests), nothing else.
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
