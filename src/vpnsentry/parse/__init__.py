"""Parse: raw lines to ECS tables, one module per format (see base.py for the seam)."""
